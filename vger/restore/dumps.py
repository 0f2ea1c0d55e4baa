"""Streaming dumps out of a snapshot and back into databases (``vger restore-dump``).

A dump's bytes are read chunk by chunk (one decrypted chunk in memory at a
time) and handed to the restorer its plugin plans; the plugin named in the
dump record is looked up again, so a third-party dump plugin restores its own
dumps. Connection settings the record does not hold (passwords) come from the
current config's entry of the same type for the snapshot's source.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vger.backup.dumps import dump_entries, dump_items
from vger.config.model import Config
from vger.errors import VgerError
from vger.interfaces import DumpRestore
from vger.pluginmanager import Registry
from vger.repository.items import Item
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot


class ChunkReader(io.RawIOBase):
    """A read-only stream over a file item's chunks, fetched and decrypted one at a time."""

    def __init__(self, repo: Repository, chunks: Sequence[Sequence[Any]]) -> None:
        super().__init__()
        self._repo = repo
        self._chunks: Iterator[Sequence[Any]] = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._current):
            entry = next(self._chunks, None)
            if entry is None:
                return 0
            data = self._repo.read_blob(entry[0])
            if len(data) != entry[1]:
                raise VgerError(
                    f"chunk {entry[0].hex()[:12]} has {len(data)} bytes, the dump lists {entry[1]}"
                )
            self._current = memoryview(data)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


def open_dump(repo: Repository, item: Item) -> io.BufferedReader:
    return io.BufferedReader(ChunkReader(repo, item.get("chunks") or []), buffer_size=1024 * 1024)


@dataclass
class PlannedRestore:
    """One dump of a snapshot and how it goes back (``restorer`` None: no tool for it)."""

    item: Item
    record: Mapping[str, Any]
    restorer: DumpRestore | None

    @property
    def name(self) -> str:
        return str(self.record.get("name"))

    def describe(self) -> str:
        if self.restorer is None:
            return "no restore tool: restore the file with `vger restore`"
        return self.restorer.describe()


def snapshot_dumps(repo: Repository, snap: Snapshot) -> list[Item]:
    return list(dump_items(repo.iter_items(snap)))


def _options_for(config: Config, source_label: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The current config's entry of this dump's type for the snapshot's source, or just the type.

    Among several entries of one type, the one pointing at the recorded host,
    port and path wins.
    """
    kind = record["type"]
    candidates: list[dict[str, Any]] = []
    for source in config.sources:
        if source.label == source_label:
            candidates = [dict(entry) for entry in dump_entries(source) if entry.get("type") == kind]
    keys = ("host", "port", "path", "name")

    def score(entry: dict[str, Any]) -> int:
        return sum(1 for key in keys if key in record and entry.get(key) == record[key])

    if candidates:
        return max(candidates, key=score)
    return {"type": kind}


def plan(
    config: Config,
    registry: Registry,
    snap: Snapshot,
    items: Sequence[Item],
    names: Sequence[str],
    overrides: Mapping[str, Any],
) -> list[PlannedRestore]:
    """Pick the dumps to restore (``names``, default all) and let each plugin plan its restore."""
    by_name = {str(item["dump"]["name"]): item for item in items}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        available = ", ".join(by_name) or "none"
        raise VgerError(
            f"snapshot {snap.short_id} holds no dump named {', '.join(unknown)}; its dumps: {available}"
        )
    chosen = [by_name[name] for name in names] if names else list(items)
    if not chosen:
        raise VgerError(f"snapshot {snap.short_id} holds no dumps (see `vger list --snapshot ID --dumps`)")
    if "database" in overrides and len(chosen) > 1:
        raise VgerError("--database needs exactly one dump: name it (see `vger list --snapshot ID --dumps`)")
    planned = []
    for item in chosen:
        record = dict(item["dump"])
        cls = registry.get("dump", str(record["type"]))
        source = cls(_options_for(config, snap.source_label, record))
        restorer = source.restorer(record, overrides)
        if restorer is None and names:
            raise VgerError(
                f"dump {record['name']!r} ({record['type']}) has no restore tool; "
                "restore it as a file with `vger restore`"
            )
        planned.append(PlannedRestore(item, record, restorer))
    return planned
