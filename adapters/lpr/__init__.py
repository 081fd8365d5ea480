"""LPR enforcement platform: cameras and handhelds issuing citations (Basic + API key, Spring paging)."""

from adapters.lpr.adapter import LprAdapter
from adapters.lpr.simulator import OMIT, VENDOR_IDS, LprSimulator, LprState, create_simulator

__all__ = ["OMIT", "VENDOR_IDS", "LprAdapter", "LprSimulator", "LprState", "create_simulator"]
