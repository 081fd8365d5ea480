"""The APDS v4 simulator: a platform speaking the patched document in adapters/apds/spec/, the
other side of the adapter in `adapters/apds/`, a small ASGI app over the simulated world
(adapters/simulated/).

    app.py            `create_simulator`: its routes below ROOT; quotes and webhook subscriptions
    catalog.py        places (campus, place, levels) with occupancy, right specifications, rate tables
    office_routes.py  assigned rights and sessions, from the shared back office
    state.py          the garages it runs, its subscriptions, the knobs tests turn (`sim.state`)
    plumbing.py       the access token, ResponseStatus errors and paging its endpoints share
    webhooks.py       the EventData it delivers to subscribers (the gateway's side: adapters/apds/webhooks.py)

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.apds.simulator.app import ROOT, ApdsSimulator, create_simulator
from adapters.apds.simulator.catalog import TARIFFS
from adapters.apds.simulator.state import REMOVE, VENDOR_IDS, ApdsState
from adapters.apds.simulator.webhooks import ApdsWebhooks

__all__ = ["REMOVE", "ROOT", "TARIFFS", "VENDOR_IDS", "ApdsSimulator", "ApdsState", "ApdsWebhooks", "create_simulator"]
