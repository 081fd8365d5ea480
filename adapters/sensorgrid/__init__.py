"""The "sensor grid" guidance system: bay sensors per level, from a German vendor.

`adapter.SensorGridAdapter` speaks its dialect (with `auth.BearerTokens` for its OAuth2
tokens); `simulator/` serves it from the simulated world. The two are the sides of one wire
contract, described in `simulator/app.py`; the adapter never imports its simulator.
"""

from adapters.sensorgrid.adapter import SensorGridAdapter

__all__ = ["SensorGridAdapter"]
