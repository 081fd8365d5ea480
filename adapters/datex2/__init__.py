"""DATEX II v3.7 parking: city open-data platforms and guidance systems publishing their sites
(`ParkingTablePublication`) and live status (`ParkingStatusPublication`) as XML over HTTP pull.

`conformance.py` checks a document against the official schemas in `schemas/`; wire.py is what
every side shares: namespaces, paths, times, and parsing with DTDs refused.
"""
