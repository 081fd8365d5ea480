"""DATEX II v3.7 parking: city open-data platforms and guidance systems publishing their sites
(`ParkingTablePublication`) and live status (`ParkingStatusPublication`) as XML over HTTP pull.

`adapter.Datex2Adapter` reads both (reading.py turns the XML into records; wire.py is what both
sides share: namespaces, paths, times); `conformance.py` checks a document against the official
schemas in `schemas/`; `simulator/` plays a publisher for the sandbox and tests. The adapter never
imports its simulator.
"""

from adapters.datex2.adapter import Datex2Adapter

__all__ = ["Datex2Adapter"]
