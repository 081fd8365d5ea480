"""The "sensor grid" guidance system: bay sensors per level, from a German vendor.

`adapter.SensorGridAdapter` speaks its dialect; `simulator.create_simulator` serves it from
the simulated world. The two are the sides of one wire contract, described in `simulator.py`.
"""

from adapters.sensorgrid.adapter import SensorGridAdapter
from adapters.sensorgrid.simulator import VENDOR_IDS, create_simulator

__all__ = ["VENDOR_IDS", "SensorGridAdapter", "create_simulator"]
