"""The APDS-style PARCS dialect (gates, tickets): its adapter and its simulator, one wire contract."""

from adapters.apds.adapter import ApdsAdapter
from adapters.apds.simulator import VENDOR_IDS, create_simulator

__all__ = ["ApdsAdapter", "VENDOR_IDS", "create_simulator"]
