"""The operator's facilities as configured: which system knows each one, and by which id.

Built once at start from the configuration, so a request never re-derives the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.models import SystemKind
from adapters.registry import DIALECTS
from gateway.config import FacilityConfig, GatewayConfig, LevelConfig


@dataclass(frozen=True)
class SystemRef:
    """A facility (or level) as one system knows it."""

    system_id: str
    vendor_id: str


@dataclass(frozen=True)
class LevelEntry:
    id: str
    config: LevelConfig
    refs: dict[SystemKind, SystemRef]


@dataclass(frozen=True)
class FacilityEntry:
    id: str
    config: FacilityConfig
    refs: dict[SystemKind, SystemRef]
    levels: tuple[LevelEntry, ...] = field(default=())

    def ref(self, kind: SystemKind) -> SystemRef | None:
        return self.refs.get(kind)


class Directory:
    def __init__(self, config: GatewayConfig) -> None:
        kinds = {system_id: DIALECTS[system.dialect].kind for system_id, system in config.systems.items()}
        self.entries: tuple[FacilityEntry, ...] = tuple(
            FacilityEntry(
                id=facility_id,
                config=facility,
                refs={kinds[s]: SystemRef(s, vendor_id) for s, vendor_id in facility.systems.items()},
                levels=tuple(
                    LevelEntry(
                        id=f"{facility_id}:{level_id}",
                        config=level,
                        refs={kinds[s]: SystemRef(s, vendor_id) for s, vendor_id in level.systems.items()},
                    )
                    for level_id, level in facility.levels.items()
                ),
            )
            for facility_id, facility in config.facilities.items()
        )
        self.by_id = {entry.id: entry for entry in self.entries}
        #: each facility's place in the list order (cursors continue from it without a scan)
        self.position = {entry.id: index for index, entry in enumerate(self.entries)}
