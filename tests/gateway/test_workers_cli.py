"""`--workers` on `serve` and `sandbox` (gateway/cli.py, gateway/workers.py): every count that cannot
work is refused before anything starts, with exit status 2 and one clear line, never a traceback.
What a supervisor and its workers do once running: tests/e2e/test_workers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway import cli


@pytest.fixture(scope="module")
def memory_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers-cli") / "parkgate.yaml"
    path.write_text(yaml.safe_dump({"environment": "test", "systems": {}, "facilities": {}, "store": {"backend": "memory"}}))
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args))
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    return result.exit_code, result.stderr


@settings(max_examples=25, deadline=None)
@given(count=st.integers(max_value=0))
def test_fewer_than_one_worker_is_refused(memory_config: Path, count: int) -> None:
    for command in (["serve", "--config", str(memory_config)], ["sandbox", "--port", "0"]):
        status, stderr = invoke(*command, "--workers", str(count))
        assert status == 2
        assert "Invalid value for '--workers'" in stderr and "greater than or equal to 1" in stderr


@settings(max_examples=25, deadline=None)
@given(count=st.integers(min_value=2, max_value=10**6))
def test_several_workers_on_memory_state_are_refused(memory_config: Path, count: int) -> None:
    status, stderr = invoke("serve", "--config", str(memory_config), "--workers", str(count))
    assert status == 2
    assert stderr.startswith(f"error: --workers {count} needs `store.backend: redis`") and stderr.count("\n") == 1
    status, stderr = invoke("sandbox", "--port", "0", "--workers", str(count))
    assert status == 2
    assert stderr.startswith("error: the sandbox runs in one process") and stderr.count("\n") == 1
