"""The Mews-style PMS simulator: the vendor's side of the wire contract the adapter in
`adapters/mews/` speaks, a small ASGI app over the simulated world (adapters/simulated/).

    app.py    `create_simulator`: hotels, reservations and guests, and the Connector API over
              them (`MewsState`, `sim.state`)
    webhooks.py   the ids-only events it POSTs (the gateway's side: adapters/mews/webhooks.py)

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.mews.simulator.app import OMIT, VENDOR_IDS, MewsSimulator, MewsState, create_simulator

__all__ = ["OMIT", "VENDOR_IDS", "MewsSimulator", "MewsState", "create_simulator"]
