"""The APDS-style PARCS dialect (gates, tickets).

The adapter (`adapter.py`, its operations in `adapter_operations.py`, the list reading both
share in `pages.py`, the wire mapping in `wire.py` and `operations_wire.py`, inbound webhooks in
`webhooks.py`) speaks to the vendor;
the simulator (`simulator/`) plays the vendor for the sandbox and tests. They are two sides of
one wire contract; the adapter never imports its simulator.
"""

from adapters.apds.adapter import ApdsAdapter

__all__ = ["ApdsAdapter"]
