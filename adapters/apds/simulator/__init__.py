"""The APDS-style PARCS simulator: the vendor's side of the wire contract the adapter in
`adapters/apds/` speaks, a small ASGI app over the simulated world (adapters/simulated/).

    app.py            `create_simulator`: places, occupancy, rates and quotes
    state.py          the garages it runs and the knobs tests turn (`ApdsState`, `sim.state`)
    office_routes.py  reservations, sessions, payments, permits, validations, transactions,
                      from the shared back office
    plumbing.py       the token guard, error answers and paging its endpoints share
    webhooks.py       the events it POSTs, signed (the gateway's side: adapters/apds/webhooks.py)

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.apds.simulator.app import TARIFFS, ApdsSimulator, create_simulator
from adapters.apds.simulator.state import REMOVE, VENDOR_IDS, ApdsState

__all__ = ["REMOVE", "TARIFFS", "VENDOR_IDS", "ApdsSimulator", "ApdsState", "create_simulator"]
