"""Plan a restore's chunk reads by pack: one ranged read per run of neighbouring blobs.

A file's chunks, and the chunks of files backed up together, usually sit next to
each other in one pack. Reading them one ``get_range`` at a time costs a request
per chunk, which on S3 or SFTP is a round trip each (20,000 small files, 20,000
requests). Grouping the chunks of a batch of files by pack and reading each run
of neighbours at once turns that into a handful of requests, and on local disk
saves an open/pread/close per chunk. This is restic's restorer idea.

A run stops at a gap wider than :data:`MAX_GAP` (bytes read only to be thrown
away) or at :data:`MAX_RUN` bytes, which bounds the memory of one read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vger.repository.index import IndexEntry

MAX_GAP = 256 * 1024
MAX_RUN = 16 * 1024 * 1024


@dataclass
class Blob:
    """One chunk to read, and every place it goes: (file number, offset, expected size)."""

    chunk_id: bytes
    entry: IndexEntry
    targets: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Run:
    """Neighbouring blobs of one pack, read with a single ranged read."""

    pack_id: bytes
    start: int
    end: int
    blobs: list[Blob]


def plan_runs(blobs: Iterable[Blob], max_gap: int = MAX_GAP, max_run: int = MAX_RUN) -> list[Run]:
    """Group blobs by pack, in pack order, into runs no wider than ``max_run``.

    A blob longer than ``max_run`` gets a run of its own.
    """
    by_pack: dict[bytes, list[Blob]] = {}
    for blob in blobs:
        by_pack.setdefault(blob.entry.pack_id, []).append(blob)
    runs: list[Run] = []
    for pack_id, members in by_pack.items():
        members.sort(key=lambda b: b.entry.offset)
        current: Run | None = None
        for blob in members:
            start = blob.entry.offset
            end = start + blob.entry.length
            if (
                current is not None
                and start - current.end <= max_gap
                and max(end, current.end) - current.start <= max_run
            ):
                current.blobs.append(blob)
                current.end = max(current.end, end)
                continue
            current = Run(pack_id, start, end, [blob])
            runs.append(current)
    return runs
