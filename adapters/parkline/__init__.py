"""ParkLine: a London PARCS vendor that is polled only (no webhooks), with its own dialect.

The adapter (`adapter.py`, its operations in `adapter_operations.py`, the wire mapping in
`wire.py` and `records.py`) speaks to it; the simulator (`simulator/`) is the sandbox's
ParkLine. They are two sides of one wire contract; the adapter never imports its simulator.
"""

from adapters.parkline.adapter import ParklineAdapter

__all__ = ["ParklineAdapter"]
