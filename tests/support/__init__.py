"""Plain helpers for the tests, by subject; fixtures live in the conftest.py files.

    servers    a free port, an ASGI app served by uvicorn on loopback, a background ticker
    streams    a subscription read the same way over SSE, graphql-transport-ws and graphql-ws
    bed        the sandbox test bed that the `bed` fixture hands out

Import what you need from its module (`from tests.support.servers import serve`); a test module
never imports from another test module or from a conftest.py.
"""

from pathlib import Path

#: the repository's root (pyproject.toml, schema.graphql, docs/): paths do not depend on a test's folder
REPO = Path(__file__).resolve().parents[2]
