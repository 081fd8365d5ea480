"""Plain helpers for the tests, by subject; fixtures live in the conftest.py files.

    servers    a free port, an ASGI app served by uvicorn on loopback, a background ticker
    bed        the sandbox test bed that the `bed` fixture hands out (Bed: graphql, new_client, simulate…)
    waiting    wait_until a condition holds; first_event on the gateway's bus
    streams    a subscription read the same way over SSE, graphql-transport-ws and graphql-ws
    vendors    what the simulated vendors send: signed webhooks, their ids for our places
    processes  a redis-server a test can stop and start (OwnRedis); gateway processes on a
               deployment's configuration
    finance    accounting files read back, one parser per format

`idempotency_key()` is a random UUID that the card-number screen does not refuse (one random UUID
in about 7,000 holds a run of digits it does: a test that draws many must not fail once in a while).

Import what you need from its module (`from tests.support.servers import serve`); a test module
never imports from another test module or from a conftest.py.
"""

import uuid
from pathlib import Path

#: the repository's root (pyproject.toml, schema.graphql, docs/): paths do not depend on a test's folder
REPO = Path(__file__).resolve().parents[2]


def idempotency_key() -> str:
    """A random UUID the card-number screen accepts, as a well-behaved client would choose again."""
    from gateway.card_numbers import looks_like_card_number

    while looks_like_card_number(key := str(uuid.uuid4())):
        pass
    return key
