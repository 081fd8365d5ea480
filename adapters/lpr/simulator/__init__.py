"""The LPR platform simulator: the vendor's side of the wire contract the adapter in
`adapters/lpr/` speaks, a small ASGI app over the simulated world (adapters/simulated/).

    app.py    `create_simulator`: zones and citations over HTTP, Spring Boot in manner
    state.py  the platform's data: its zones, the citations handhelds issue, the test knobs
              (`LprState`, `sim.state`)
    webhooks.py   the events it POSTs (the gateway's side: adapters/lpr/webhooks.py)

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.lpr.simulator.app import LprSimulator, create_simulator
from adapters.lpr.simulator.state import OMIT, VENDOR_IDS, LprState, SimCitation, SimZone

__all__ = ["OMIT", "VENDOR_IDS", "LprSimulator", "LprState", "SimCitation", "SimZone", "create_simulator"]
