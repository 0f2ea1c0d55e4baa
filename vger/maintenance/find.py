"""Where a path pattern appears across snapshots, with its change timeline.

Patterns are ``fnmatch`` globs (``*``, ``?``, ``[...]``; ``*`` also matches
``/``), compared case-sensitively on the stored bytes. A pattern without ``/``
matches an entry's base name; one with ``/`` matches the whole path, written
with or without the leading ``/`` (stored paths have none).

Timelines are kept per source label: a snapshot of one source says nothing
about another source's files, so an entry's status compares it with the
previous snapshot *of the same label*:

``added``      not in that label's previous snapshot (first seen, or back after being removed)
``modified``   content (type, size or chunk list) differs from the previous snapshot
``unchanged``  same content (metadata may differ)
``removed``    was in the previous snapshot, is not in this one (reported once)

Memory holds the matching paths of the previous snapshot of each label only.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vger.maintenance.diff import path_key, summarize
from vger.repository.items import Item, display_path
from vger.repository.snapshot import Snapshot

STATUSES = ("added", "modified", "unchanged", "removed")

Matcher = Callable[[bytes], bool]


def compile_pattern(pattern: str) -> Matcher:
    """A predicate on stored paths (bytes, no leading slash)."""
    raw = pattern.encode("utf-8", "surrogateescape")
    if b"/" in raw:
        whole = raw.strip(b"/")
        return lambda path: fnmatch.fnmatchcase(path, whole)
    return lambda path: fnmatch.fnmatchcase(path.rpartition(b"/")[2], raw)


@dataclass
class Appearance:
    """One point of a path's timeline."""

    snapshot: Snapshot
    status: str
    type: str | None = None
    size: int | None = None
    mtime: int | None = None  # nanoseconds

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.hex_id,
            "time": self.snapshot.time_iso,
            "source_label": self.snapshot.source_label,
            "status": self.status,
            "type": self.type,
            "size": self.size,
            "mtime": iso_ns(self.mtime) if self.mtime is not None else None,
            "mtime_ns": self.mtime,
        }


def iso_ns(ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC (microsecond precision)."""
    moment = dt.datetime.fromtimestamp(ns // 1000 / 1e6, dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def find(
    snapshots: Sequence[Snapshot],
    items_of: Callable[[Snapshot], Iterable[Item]],
    match: Matcher,
) -> list[tuple[bytes, list[Appearance]]]:
    """Timelines of every matching path over ``snapshots`` (taken oldest first), in tree order of path."""
    timelines: dict[bytes, list[Appearance]] = {}
    # source label -> path -> content of that path in the label's previous snapshot
    previous: dict[str, dict[bytes, tuple[str, int, bytes]]] = {}
    for snap in sorted(snapshots, key=lambda s: (s.time_start, s.id)):
        before = previous.get(snap.source_label, {})
        now: dict[bytes, tuple[str, int, bytes]] = {}
        for item in items_of(snap):
            path = item["path"]
            if path in now or not match(path):
                continue
            summary = summarize(item)
            content = (summary.type, summary.size, summary.content)
            old = before.get(path)
            if old is None:
                status = "added"
            elif old != content:
                status = "modified"
            else:
                status = "unchanged"
            now[path] = content
            timelines.setdefault(path, []).append(
                Appearance(snap, status, summary.type, summary.size, summary.mtime)
            )
        for path in before:
            if path not in now:
                timelines[path].append(Appearance(snap, "removed"))
        previous[snap.source_label] = now
    return sorted(timelines.items(), key=lambda entry: path_key(entry[0]))


def to_json(path: bytes, timeline: Sequence[Appearance]) -> dict[str, Any]:
    return {"path": display_path(path), "timeline": [a.to_json() for a in timeline]}
