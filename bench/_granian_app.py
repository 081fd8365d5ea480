"""The gateway's app for granian (bench/workers_bench.py --granian): granian imports a factory by name,
so the configuration file comes from PARKGATE_CONFIG; built as `parkgate serve` builds it."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.types import ASGIApp


def build() -> ASGIApp:
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.runtime import Runtime
    from resolvers.schema import schema

    return create_app(Runtime.from_config(load_config(Path(os.environ["PARKGATE_CONFIG"]))), schema)
