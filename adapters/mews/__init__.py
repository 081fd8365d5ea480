"""Mews-style hotel PMS: hotels, reservations and guests' cars (tokens in the body, cursor paging).

The adapter (`adapter.py`, the wire's names and times in `wire.py`, inbound webhooks in
`webhooks.py`) speaks to the PMS; the simulator (`simulator/`) plays it for the sandbox and
tests. The adapter never imports its simulator.
"""

from adapters.mews.adapter import MewsAdapter

__all__ = ["MewsAdapter"]
