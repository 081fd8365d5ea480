"""Plain helpers for the tests, by subject; fixtures live in the conftest.py files.

    servers    a free port, an ASGI app served by uvicorn on loopback, a background ticker
    bed        the sandbox test bed that the `bed` fixture hands out (Bed: graphql, new_client, simulate…)
    waiting    wait_until a condition holds; first_event on the gateway's bus
    streams    a subscription read the same way over SSE, graphql-transport-ws and graphql-ws
    vendors    what the simulated vendors send: signed webhooks, their ids for our places
    processes  a redis-server a test can stop and start (OwnRedis); gateway processes on a
               deployment's configuration
    finance    accounting files read back, one parser per format

Import what you need from its module (`from tests.support.servers import serve`); a test module
never imports from another test module or from a conftest.py.
"""

from pathlib import Path

#: the repository's root (pyproject.toml, schema.graphql, docs/): paths do not depend on a test's folder
REPO = Path(__file__).resolve().parents[2]
