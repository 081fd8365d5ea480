"""The base of every section of the configuration (gateway/config.py, gateway/finance/accounts.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """A configuration section: an unknown key is an error, and nothing changes once it is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
