"""Mews-style hotel PMS: hotels, reservations and guests' cars (tokens in the body, cursor paging)."""

from adapters.mews.adapter import MewsAdapter
from adapters.mews.simulator import OMIT, VENDOR_IDS, MewsSimulator, MewsState, create_simulator

__all__ = ["OMIT", "VENDOR_IDS", "MewsAdapter", "MewsSimulator", "MewsState", "create_simulator"]

