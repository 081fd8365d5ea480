"""ParkLine: a London PARCS vendor that is polled only (no webhooks), with its own dialect.

`ParklineAdapter` speaks to it; `create_simulator` is the sandbox's ParkLine; `VENDOR_IDS`
maps the world's garage keys to ParkLine car park codes.
"""

from adapters.parkline.adapter import ParklineAdapter
from adapters.parkline.simulator import VENDOR_IDS, create_simulator

__all__ = ["VENDOR_IDS", "ParklineAdapter", "create_simulator"]
