"""Snapshot objects: one per backup of one source into one repository."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from vger.errors import CorruptData


@dataclass
class SnapshotStats:
    files: int = 0
    original_size: int = 0
    compressed_size: int = 0
    deduplicated_size: int = 0
    errors: int = 0


@dataclass
class Snapshot:
    id: bytes
    time_start: float
    time_end: float
    hostname: str
    username: str
    source_label: str
    source_paths: list[str]
    label: str
    chunker: dict[str, Any]
    items: list[bytes]
    stats: SnapshotStats = field(default_factory=SnapshotStats)
    item_count: int = 0
    vger_version: str = ""

    @property
    def hex_id(self) -> str:
        return self.id.hex()

    @property
    def short_id(self) -> str:
        return self.id.hex()[:8]

    @property
    def time_iso(self) -> str:
        return dt.datetime.fromtimestamp(self.time_start, dt.UTC).isoformat().replace("+00:00", "Z")

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["stats"] = asdict(self.stats)
        return doc

    @classmethod
    def from_dict(cls, doc: Any, expected_id: bytes) -> Snapshot:
        try:
            stats = SnapshotStats(**doc.pop("stats"))
            snap = cls(stats=stats, **doc)
        except (TypeError, KeyError, AttributeError) as exc:
            raise CorruptData(f"snapshot {expected_id.hex()[:8]}: malformed: {exc}") from exc
        if snap.id != expected_id:
            # The file name and the authenticated content must agree, or someone
            # renamed snapshot objects to pass one off as another.
            raise CorruptData(f"snapshot {expected_id.hex()[:8]}: id inside does not match its name")
        if not all(isinstance(c, bytes) and len(c) == 32 for c in snap.items):
            raise CorruptData(f"snapshot {expected_id.hex()[:8]}: malformed item stream ids")
        return snap
