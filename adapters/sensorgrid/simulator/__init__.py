"""The sensor-grid simulator: the vendor's side of the wire contract the adapter in
`adapters/sensorgrid/` speaks, a small ASGI app over the simulated world (adapters/simulated/).

    app.py    `create_simulator`: OAuth2 tokens, sites and per-level occupancy, and the test
              hooks on `sim.grid`

The adapter never imports this package; the registry, the sandbox and tests do.
"""

from adapters.sensorgrid.simulator.app import DROP, QUIRKY_LEVEL, VENDOR_IDS, SensorGridSimulator, create_simulator

__all__ = ["DROP", "QUIRKY_LEVEL", "VENDOR_IDS", "SensorGridSimulator", "create_simulator"]
