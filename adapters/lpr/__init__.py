"""LPR enforcement platform: cameras and handhelds issuing citations (Basic + API key, Spring paging).

The adapter (`adapter.py`, the wire mapping in `wire.py`, Spring's refusals in `refusals.py`,
inbound webhooks in `webhooks.py`) speaks to the platform; the simulator (`simulator/`) plays it
for the sandbox and tests. The adapter never imports its simulator.
"""

from adapters.lpr.adapter import LprAdapter

__all__ = ["LprAdapter"]
