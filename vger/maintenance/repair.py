"""``vger check --repair``: make a damaged repository consistent without losing readable data.

1. The index is rebuilt from the packs themselves: each pack's authenticated
   header says what it holds. Where a pack's content no longer matches its id,
   or with ``--verify-data``, every blob is authenticated and only good ones are
   indexed. A pack whose header is unreadable is salvaged through the old index
   entries that name it; a pack nobody can identify is kept (never deleted) and
   reported.
2. Snapshots whose files lost chunks are rewritten without those files (each
   one named); the new snapshot object is durable before the old one goes.
   A snapshot whose item stream itself is unreadable cannot be rebuilt and is
   reported, not deleted: ``vger delete`` is the user's call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from vger.errors import VgerError
from vger.interfaces import Chunker, Compressor
from vger.maintenance.compact import SEGMENT_ENTRIES
from vger.maintenance.marking import entries_by_pack, stored_packs
from vger.repository import format as fmt
from vger.repository.index import IndexEntry
from vger.repository.items import ITEMS_AVG, ITEMS_MAX, ITEMS_MIN, Item, ItemStreamWriter, display_path
from vger.repository.pack import PackBuilder, PackEntry, decode_header, header_length, pack_id_of
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot
from vger.repository.writer import BlobWriter

Row = tuple[bytes, int, int, int, int]


@dataclass
class RepairReport:
    actions: list[str] = field(default_factory=list)
    unrecoverable: list[str] = field(default_factory=list)


def _header_entries(repo: Repository, data: bytes, what: str) -> list[PackEntry]:
    size = len(data)
    hlen = header_length(data[-4:], size, what)
    return decode_header(repo.cipher, data[size - 4 - hlen : size - 4], size, what)


def _blob_ok(repo: Repository, data: bytes, chunk_id: bytes, entry: IndexEntry) -> bool:
    if entry.offset < len(fmt.PACK_PREAMBLE) or entry.offset + entry.length > len(data):
        return False
    try:
        plain = repo.decode_blob(chunk_id, data[entry.offset : entry.offset + entry.length], entry)
        return repo.hasher(plain) == chunk_id
    except VgerError:
        return False


def rebuild_index(repo: Repository, verify_data: bool, report: RepairReport) -> None:
    try:
        old_by_pack, old_segments = entries_by_pack(repo)
    except VgerError as exc:
        report.actions.append(f"some index segments are unreadable ({exc}); rebuilding from pack headers")
        old_by_pack, old_segments = {}, repo.index_segment_keys()
    rows: list[tuple[bytes, Row]] = []
    damaged: list[bytes] = []
    for pack_id, key in sorted(stored_packs(repo).items()):
        name = f"pack {pack_id.hex()[:16]}"
        data = repo.backend.get(key)
        intact = pack_id_of(data) == pack_id
        try:
            candidates = [
                (e.chunk_id, IndexEntry(pack_id, e.blob_type, e.offset, e.length, e.plain_size))
                for e in _header_entries(repo, data, name)
            ]
        except VgerError as exc:
            candidates = list(old_by_pack.get(pack_id, ()))
            if not candidates:
                report.unrecoverable.append(
                    f"{name}: header unreadable ({exc}) and no index entry names its blobs; kept as is"
                )
                continue
            report.actions.append(
                f"{name}: header unreadable; salvaging {len(candidates)} blobs the old index knew"
            )
            intact = False
        bad = 0
        good: list[tuple[bytes, IndexEntry]] = []
        for chunk_id, entry in candidates:
            if (verify_data or not intact) and not _blob_ok(repo, data, chunk_id, entry):
                bad += 1
                continue
            good.append((chunk_id, entry))
        if bad:
            report.actions.append(f"{name}: {bad} corrupt blobs left out of the index")
        if intact:
            rows.extend((pack_id, (c, e.blob_type, e.offset, e.length, e.plain_size)) for c, e in good)
            continue
        # A damaged pack: copy its good blobs (still encrypted) into a fresh pack,
        # so what is readable lives on in a pack that verifies; the damaged one
        # goes only after the new index naming the copy is durable.
        if good:
            builder = PackBuilder()
            for chunk_id, entry in good:
                builder.add(
                    chunk_id,
                    entry.blob_type,
                    data[entry.offset : entry.offset + entry.length],
                    entry.plain_size,
                )
            entries = builder.entries
            new_id, parts = builder.finish(repo.cipher)
            repo.backend.put(fmt.pack_key(new_id), b"".join(parts))
            rows.extend(
                (new_id, (e.chunk_id, e.blob_type, e.offset, e.length, e.plain_size)) for e in entries
            )
            report.actions.append(f"{name}: {len(good)} readable blobs copied to pack {new_id.hex()[:16]}")
        damaged.append(pack_id)
    for start in range(0, len(rows), SEGMENT_ENTRIES):
        segment: dict[bytes, list[Row]] = {}
        for pack_id, row in rows[start : start + SEGMENT_ENTRIES]:
            segment.setdefault(pack_id, []).append(row)
        repo.write_index_segment(segment)
    for key in old_segments:
        repo.backend.delete(key)
    for pack_id in damaged:
        repo.backend.delete(fmt.pack_key(pack_id))
        report.actions.append(
            f"pack {pack_id.hex()[:16]}: damaged original removed (its readable blobs were copied)"
        )
    report.actions.append(
        f"index rebuilt from {len(stored_packs(repo))} packs: {len(rows)} entries, replacing {len(old_segments)} segments"
    )
    repo.reset_index()


def repair_snapshots(
    repo: Repository,
    compressor: Compressor,
    meta_chunker_factory: Callable[[int, int, int], Chunker],
    report: RepairReport,
) -> None:
    index = repo.index
    for snap_id in sorted(repo.snapshot_ids()):
        name = f"snapshot {snap_id.hex()[:8]}"
        try:
            snap = repo.load_snapshot(snap_id)
            if any(c not in index for c in snap.items):
                raise VgerError("item-stream chunks are missing")
            items = list(repo.iter_items(snap))
        except VgerError as exc:
            report.unrecoverable.append(
                f"{name}: item stream unreadable ({exc}); remove it with `vger delete`"
            )
            continue
        kept: list[Item] = []
        dropped_paths: set[bytes] = set()
        for item in items:
            chunks = item.get("chunks") or ()
            lost = any(bytes(c) not in index for c, _ in chunks)
            orphan_link = item["type"] == "hardlink" and item.get("target") in dropped_paths
            if lost or orphan_link:
                dropped_paths.add(item["path"])
                why = "hard link to a dropped file" if orphan_link else "chunks are gone"
                report.actions.append(f"{name}: dropped {display_path(item['path'])} ({why})")
                continue
            kept.append(item)
        if not dropped_paths:
            continue
        _rewrite(repo, snap, kept, compressor, meta_chunker_factory)
        report.actions.append(f"{name}: rewritten without {len(dropped_paths)} damaged entries")


def _rewrite(
    repo: Repository,
    snap: Snapshot,
    items: list[Item],
    compressor: Compressor,
    meta_chunker_factory: Callable[[int, int, int], Chunker],
) -> None:
    writer = BlobWriter(repo, compressor)

    def store(piece: memoryview) -> bytes:
        chunk_id = repo.hasher(piece)
        writer.store(chunk_id, piece, fmt.BLOB_ITEMS)
        return chunk_id

    stream = ItemStreamWriter(meta_chunker_factory(ITEMS_MIN, ITEMS_AVG, ITEMS_MAX), store)
    files = size = 0
    for item in items:
        stream.add(item)
        if item["type"] == "file":
            files += 1
            size += int(item.get("size", 0))
    ids = stream.finish()
    writer.finish()
    old_id = snap.id
    snap.id = os.urandom(32)
    snap.items = ids
    snap.item_count = len(items)
    snap.stats.files = files
    snap.stats.original_size = size
    snap.label = (snap.label + " " if snap.label else "") + "(repaired)"
    repo.put_snapshot(snap)  # durable before the old one goes
    repo.backend.delete(fmt.SNAPSHOTS_PREFIX + old_id.hex())


def repair_repository(
    repo: Repository,
    compressor: Compressor,
    meta_chunker_factory: Callable[[int, int, int], Chunker],
    verify_data: bool = False,
) -> RepairReport:
    report = RepairReport()
    rebuild_index(repo, verify_data, report)
    repair_snapshots(repo, compressor, meta_chunker_factory, report)
    return report
