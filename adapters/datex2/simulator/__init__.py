"""The DATEX II simulator: an open-data platform publishing parking as DATEX II v3.7, the publisher's
side of the wire contract the adapter in `adapters/datex2/` speaks, a small ASGI app over the
simulated world (adapters/simulated/).

    app.py           `create_simulator`: both publications over HTTP pull with If-Modified-Since,
                     the publisher's state and the test hooks on `sim.platform`
    publications.py  the two documents as XML, from what the publisher knows

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.datex2.simulator.app import VENDOR_IDS, Datex2Simulator, OpenDataPlatform, create_simulator

__all__ = ["VENDOR_IDS", "Datex2Simulator", "OpenDataPlatform", "create_simulator"]
