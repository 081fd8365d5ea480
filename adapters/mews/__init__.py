"""The Mews Connector API (a hotel PMS): enterprises, reservations (2023-06-06), customers' cars,
General Webhooks; tokens in the JSON body, `Limitation` cursor paging.

The adapter (`adapter.py`, the wire's names and times in `wire.py`, inbound webhooks in
`webhooks.py`) speaks to Mews; the simulator (`simulator/`) plays it for the sandbox and tests.
The adapter never imports its simulator.
"""

from adapters.mews.adapter import MewsAdapter

__all__ = ["MewsAdapter"]
