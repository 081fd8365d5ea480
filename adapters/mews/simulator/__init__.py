"""The Mews simulator: the vendor's side of the Connector API the adapter in `adapters/mews/`
speaks, a small ASGI app over the simulated world (adapters/simulated/).

    state.py      the hotels, their reservations and customers, in the documented shapes (`MewsState`)
    app.py        `create_simulator`: the Connector API over them (`MewsApi`), `sim.state`
    webhooks.py   the General Webhooks it POSTs (the gateway's side: adapters/mews/webhooks.py)

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.mews.simulator.app import MewsSimulator, create_simulator
from adapters.mews.simulator.state import OMIT, VENDOR_IDS, MewsState

__all__ = ["OMIT", "VENDOR_IDS", "MewsSimulator", "MewsState", "create_simulator"]
