"""The APDS v4 PARCS dialect: the APDS API document (spec/, MIT), spoken exactly.

The adapter (`adapter.py`, its operations in `adapter_operations.py`, the list reading both
share in `pages.py`, the wire mapping in `wire.py` and `operations_wire.py`, webhook
subscriptions and deliveries in `webhooks.py`) speaks to an APDS platform; the simulator
(`simulator/`) is one, for the sandbox and tests. Both are checked against the document
(`patches.py`: its known defects, patched in one place; `conformance.py`: messages validated
with openapi-core). The adapter never imports its simulator.
"""

from adapters.apds.adapter import ApdsAdapter

__all__ = ["ApdsAdapter"]
