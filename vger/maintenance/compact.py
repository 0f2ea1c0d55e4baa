"""``vger compact``: free the space of blobs no snapshot needs.

Plan: mark the chunks the snapshots use, then look at every pack. A pack with no
live blob is deleted; a pack whose unused share reaches the threshold is
repacked (its live blobs copied, still encrypted, into new packs); packs that
no index segment names (left by an interrupted backup) are deleted.

Order, so that a kill at any instant loses nothing: new packs, then new index
segments naming every live blob, then removal of the old segments, then
removal of the old packs. At every point, every index entry names a pack that
exists and every snapshot's chunks are indexed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vger.maintenance.marking import entries_by_pack, mark_used, stored_packs
from vger.repository import format as fmt
from vger.repository.index import IndexEntry
from vger.repository.pack import PackBuilder
from vger.repository.repository import Repository

SEGMENT_ENTRIES = 50_000  # entries per rewritten index segment (a few MiB each)


@dataclass
class PackPlan:
    pack_id: bytes
    size: int
    live: list[tuple[bytes, IndexEntry]]
    unused_bytes: int

    @property
    def live_bytes(self) -> int:
        return sum(entry.length + 4 for _, entry in self.live)  # each blob and its length prefix


@dataclass
class CompactPlan:
    keep: list[PackPlan] = field(default_factory=list)
    repack: list[PackPlan] = field(default_factory=list)
    delete: list[PackPlan] = field(default_factory=list)
    orphans: dict[bytes, int] = field(default_factory=dict)  # unindexed packs: id -> size
    missing: list[bytes] = field(default_factory=list)  # indexed but absent
    old_segments: list[str] = field(default_factory=list)

    @property
    def freed_estimate(self) -> int:
        return (
            sum(p.size for p in self.delete)
            + sum(p.unused_bytes for p in self.repack)
            + sum(self.orphans.values())
        )

    @property
    def repack_bytes(self) -> int:
        """Bytes of live blobs copied into new packs: what ``--max-repack-size`` limits."""
        return sum(p.live_bytes for p in self.repack)

    @property
    def needed(self) -> bool:
        return bool(self.repack or self.delete or self.orphans)


def plan_compact(repo: Repository, threshold: float = 10.0, max_repack_size: int = 0) -> CompactPlan:
    used = mark_used(repo)
    by_pack, segments = entries_by_pack(repo)
    present = stored_packs(repo)
    plan = CompactPlan(old_segments=segments)
    chosen: dict[bytes, bytes] = {}  # chunk id -> the one pack whose copy stays live
    for pack_id in sorted(by_pack):
        if pack_id not in present:
            plan.missing.append(pack_id)
            continue
        for chunk_id, _entry in by_pack[pack_id]:
            if chunk_id in used and chunk_id not in chosen:
                chosen[chunk_id] = pack_id
    budget = max_repack_size if max_repack_size > 0 else None
    for pack_id in sorted(by_pack):
        if pack_id not in present:
            continue
        entries = by_pack[pack_id]
        live = [(c, e) for c, e in entries if chosen.get(c) == pack_id]
        size = repo.backend.size(present[pack_id])
        info = PackPlan(pack_id, size, live, 0)
        live_bytes = info.live_bytes
        if live:
            # Fixed costs are the preamble, the header and its length field;
            # everything else that is not a live blob is reclaimable.
            header = _header_length(repo, present[pack_id], size)
            unused = max(0, size - live_bytes - len(fmt.PACK_PREAMBLE) - header - 4)
        else:
            unused = size
        info.unused_bytes = unused
        if not live:
            plan.delete.append(info)
        elif size and unused * 100.0 / size >= threshold and unused > 0:
            if budget is not None and live_bytes > budget:
                plan.keep.append(info)
                continue
            if budget is not None:
                budget -= live_bytes
            plan.repack.append(info)
        else:
            plan.keep.append(info)
    for pack_id, key in present.items():
        if pack_id not in by_pack:
            plan.orphans[pack_id] = repo.backend.size(key)
    return plan


def _header_length(repo: Repository, key: str, size: int) -> int:
    if size < 4:
        return 0
    return int.from_bytes(repo.backend.get_range(key, size - 4, 4), "little")


@dataclass
class CompactResult:
    packs_written: int = 0
    packs_deleted: int = 0
    segments_written: int = 0
    segments_deleted: int = 0
    blobs_copied: int = 0


def run_compact(
    repo: Repository,
    plan: CompactPlan,
    pack_size: int = 32 * 1024 * 1024,
    on_step: Callable[[str], None] | None = None,
    before_delete: Callable[[], None] | None = None,
) -> CompactResult:
    result = CompactResult()
    new_entries: dict[bytes, list[tuple[bytes, int, int, int, int]]] = {}

    def note(step: str) -> None:
        if on_step:
            on_step(step)

    # 1. copy live blobs of packs being repacked into new packs (no decryption)
    builders = {fmt.BLOB_DATA: PackBuilder(), fmt.BLOB_ITEMS: PackBuilder()}
    targets = {fmt.BLOB_DATA: pack_size, fmt.BLOB_ITEMS: 4 * 1024 * 1024}

    def flush(blob_type: int) -> None:
        builder = builders[blob_type]
        if builder.empty:
            return
        entries = builder.entries
        pack_id, parts = builder.finish(repo.cipher)
        repo.backend.put(fmt.pack_key(pack_id), b"".join(parts))
        new_entries[pack_id] = [(e.chunk_id, e.blob_type, e.offset, e.length, e.plain_size) for e in entries]
        builders[blob_type] = PackBuilder()
        result.packs_written += 1
        note("pack written")

    for info in plan.repack:
        data = repo.backend.get(fmt.pack_key(info.pack_id))
        for chunk_id, entry in info.live:
            envelope = data[entry.offset : entry.offset + entry.length]
            kind = fmt.BLOB_ITEMS if entry.blob_type == fmt.BLOB_ITEMS else fmt.BLOB_DATA
            builders[kind].add(chunk_id, entry.blob_type, envelope, entry.plain_size)
            result.blobs_copied += 1
            if len(builders[kind]) >= targets[kind]:
                flush(kind)
    flush(fmt.BLOB_DATA)
    flush(fmt.BLOB_ITEMS)

    # 2. new index segments naming every live blob (kept packs + new packs)
    rows: list[tuple[bytes, tuple[bytes, int, int, int, int]]] = []
    for info in plan.keep:
        rows.extend((info.pack_id, (c, e.blob_type, e.offset, e.length, e.plain_size)) for c, e in info.live)
    for pack_id, entries in new_entries.items():
        rows.extend((pack_id, entry) for entry in entries)
    for start in range(0, len(rows), SEGMENT_ENTRIES):
        segment: dict[bytes, list[tuple[bytes, int, int, int, int]]] = {}
        for pack_id, row in rows[start : start + SEGMENT_ENTRIES]:
            segment.setdefault(pack_id, []).append(row)
        repo.write_index_segment(segment)
        result.segments_written += 1
        note("index segment written")

    # 3. old segments go only now that the new ones are durable -- and only
    # while our exclusive lock still stands (nobody broke it meanwhile)
    if before_delete is not None:
        before_delete()
    for key in plan.old_segments:
        repo.backend.delete(key)
        result.segments_deleted += 1
        note("index segment deleted")

    # 4. and last the packs nothing refers to any more
    doomed = [p.pack_id for p in plan.repack] + [p.pack_id for p in plan.delete] + list(plan.orphans)
    for pack_id in doomed:
        repo.backend.delete(fmt.pack_key(pack_id))
        result.packs_deleted += 1
        note("pack deleted")
    return result
