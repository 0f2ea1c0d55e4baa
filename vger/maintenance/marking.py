"""Which chunks the remaining snapshots still need ("mark" of mark-and-sweep).

Garbage is found by marking from the live snapshots every time; no reference
count is stored that could drift out of step with the snapshots.
"""

from __future__ import annotations

from collections import defaultdict

from vger.repository import format as fmt
from vger.repository.index import IndexEntry
from vger.repository.repository import Repository


def mark_used(repo: Repository) -> set[bytes]:
    """Chunk ids referenced by any snapshot (item-stream chunks and file chunks)."""
    used: set[bytes] = set()
    for snap in repo.snapshots():
        used.update(snap.items)
        for item in repo.iter_items(snap):
            for chunk_id, _size in item.get("chunks") or ():
                used.add(bytes(chunk_id))
    return used


def entries_by_pack(repo: Repository) -> tuple[dict[bytes, list[tuple[bytes, IndexEntry]]], list[str]]:
    """Every index entry grouped by pack, and the segment keys read.

    Copies of one chunk in different packs are all listed; the same chunk
    named twice for one pack (a compact stopped after writing its new segments
    but before deleting the old ones lists its kept packs in both) only once,
    so it is neither counted twice as live data nor copied twice by a repack.
    """
    by_pack: dict[bytes, list[tuple[bytes, IndexEntry]]] = defaultdict(list)
    seen: set[tuple[bytes, bytes]] = set()
    keys = repo.index_segment_keys()
    for key in keys:
        for chunk_id, pack_id, blob_type, offset, length, plain in repo.read_index_segment(key):
            if (chunk_id, pack_id) in seen:
                continue
            seen.add((chunk_id, pack_id))
            by_pack[pack_id].append((chunk_id, IndexEntry(pack_id, blob_type, offset, length, plain)))
    return by_pack, keys


def stored_packs(repo: Repository) -> dict[bytes, str]:
    """pack id -> storage key, for every pack file present."""
    found = {}
    for key in repo.backend.list(fmt.PACKS_PREFIX):
        try:
            found[bytes.fromhex(key.rsplit("/", 1)[-1])] = key
        except ValueError:
            continue
    return found
