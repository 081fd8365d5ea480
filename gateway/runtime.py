"""Everything a running gateway holds for its lifetime: config, vendor systems, directory."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.directory import Directory
from gateway.systems import Systems


@dataclass
class Runtime:
    config: GatewayConfig
    systems: Systems
    directory: Directory

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Runtime:
        return cls(config=config, systems=Systems.from_config(config), directory=Directory(config))

    async def aclose(self) -> None:
        await self.systems.aclose()
