"""The ParkLine simulator: the vendor's side of the wire contract the adapter in
`adapters/parkline/` speaks, a small ASGI app over the simulated world (adapters/simulated/).

    app.py            `create_simulator`: car parks, occupancy, tariffs and prices
    backend.py        the car parks it runs, its tariffs and paging, its test hooks
                      (`ParklineBackend`, `sim.backend`)
    office_routes.py  bookings, sessions, payments, permits, validations, transactions, from the
                      shared back office
    office_view.py    those records as ParkLine puts them on the wire, for its car parks only

`VENDOR_IDS` maps the world's garage keys to ParkLine car park codes. The adapter never imports
this package; the registry, the sandbox and tests do.
"""

from adapters.parkline.simulator.app import ParklineSimulator, create_simulator
from adapters.parkline.simulator.backend import VENDOR_IDS, ParklineBackend

__all__ = ["VENDOR_IDS", "ParklineBackend", "ParklineSimulator", "create_simulator"]
