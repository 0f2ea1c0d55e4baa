"""``vger check``: find every missing, truncated or modified object.

Without ``--verify-data`` we read the small things (index segments, pack
headers, snapshot item streams) and compare sizes; with it every pack is read
in full, its id recomputed, and every blob authenticated, decompressed and its
chunk id recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vger.errors import ObjectNotFound, VgerError
from vger.repository import format as fmt
from vger.repository.index import IndexEntry
from vger.repository.items import display_path
from vger.repository.pack import decode_header, header_length, pack_id_of
from vger.repository.repository import Repository


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    chunks: int = 0
    verified_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _pack_keys(repo: Repository) -> dict[bytes, str]:
    found = {}
    for key in repo.backend.list(fmt.PACKS_PREFIX):
        name = key.rsplit("/", 1)[-1]
        try:
            found[bytes.fromhex(name)] = key
        except ValueError:
            continue
    return found


def check_repository(
    repo: Repository,
    verify_data: bool = False,
    threads: int = 2,
    on_pack: Callable[[int], None] | None = None,
) -> CheckReport:
    report = CheckReport()
    # 1. index segments decrypt and parse (loading the index does both)
    by_pack: dict[bytes, list[tuple[bytes, IndexEntry]]] = defaultdict(list)
    for key in repo.index_segment_keys():
        try:
            for chunk_id, pack_id, blob_type, offset, length, plain in repo.read_index_segment(key):
                by_pack[pack_id].append((chunk_id, IndexEntry(pack_id, blob_type, offset, length, plain)))
        except VgerError as exc:
            report.errors.append(f"index segment {key}: {exc}")
    # 2. every indexed pack exists, and its header / contents agree
    packs = _pack_keys(repo)
    for pack_id in sorted(set(packs) - set(by_pack)):
        report.warnings.append(
            f"pack {pack_id.hex()[:16]} is not in any index segment (left by an interrupted backup; "
            "`vger compact` reclaims it)"
        )
    missing = [p for p in by_pack if p not in packs]
    for pack_id in missing:
        report.errors.append(
            f"pack {pack_id.hex()} is missing but the index lists {len(by_pack[pack_id])} chunks in it"
        )

    def check_pack(pack_id: bytes) -> list[str]:
        return _check_pack(repo, pack_id, by_pack[pack_id], verify_data)

    present = sorted(p for p in by_pack if p in packs)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for pack_id, problems in zip(present, pool.map(check_pack, present), strict=True):
            report.errors.extend(problems)
            report.packs += 1
            report.chunks += len(by_pack[pack_id])
            if on_pack:
                on_pack(1)
    # 3. every snapshot's item stream reads, and every chunk it needs is indexed
    indexed = {cid for entries in by_pack.values() for cid, _ in entries}
    for snap_id in sorted(repo.snapshot_ids()):
        name = f"snapshot {snap_id.hex()[:8]}"
        try:
            snap = repo.load_snapshot(snap_id)
            missing_items = [c for c in snap.items if c not in indexed]
            if missing_items:
                report.errors.append(f"{name}: {len(missing_items)} item-stream chunks are not in the index")
                continue
            for item in repo.iter_items(snap):
                lost = [c for c, _ in item.get("chunks") or () if bytes(c) not in indexed]
                if lost:
                    report.errors.append(
                        f"{name}: file {display_path(item['path'])}: {len(lost)} chunks are not in the index"
                    )
        except VgerError as exc:
            report.errors.append(f"{name}: {exc}")
            continue
        report.snapshots += 1
    return report


def _check_pack(
    repo: Repository, pack_id: bytes, entries: list[tuple[bytes, IndexEntry]], verify: bool
) -> list[str]:
    key = fmt.pack_key(pack_id)
    what = f"pack {pack_id.hex()}"
    try:
        size = repo.backend.size(key)
        if verify:
            data = repo.backend.get(key)
            if pack_id_of(data) != pack_id:
                return [f"{what}: contents do not match its id (modified or corrupt)"]
            tail = data[-4:]
        else:
            tail = repo.backend.get_range(key, size - 4, 4) if size >= 4 else b""
        hlen = header_length(tail, size, what)
        sealed = (
            data[size - 4 - hlen : size - 4] if verify else repo.backend.get_range(key, size - 4 - hlen, hlen)
        )
        header = {e.chunk_id: e for e in decode_header(repo.cipher, sealed, size, what)}
    except ObjectNotFound:
        return [f"{what}: vanished during the check"]
    except VgerError as exc:
        return [str(exc) if str(exc).startswith(what) else f"{what}: {exc}"]
    problems = []
    for chunk_id, entry in entries:
        found = header.get(chunk_id)
        if found is None or (found.offset, found.length) != (entry.offset, entry.length):
            problems.append(
                f"{what}: index entry for chunk {chunk_id.hex()[:16]} does not match the pack header"
            )
            continue
        if verify:
            try:
                envelope = data[entry.offset : entry.offset + entry.length]
                plain = repo.decode_blob(chunk_id, envelope, entry)
                if repo.hasher(plain) != chunk_id:
                    problems.append(f"{what}: chunk {chunk_id.hex()[:16]}: content does not match its id")
            except VgerError as exc:
                problems.append(str(exc))
    return problems
