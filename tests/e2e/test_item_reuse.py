"""Unchanged files' items are reused from the files cache: byte for byte what a fresh build gives.

A no-change backup appends each unchanged file's item as the files cache kept it
(vger.backup.filecache). These tests pin down when that is allowed: the reused
bytes must be exactly what building the item afresh would give, so anything that
goes into an item and can change without changing the file (its atime, the owner's
name) must turn the reuse off.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import Vger, restored_root, write_file
from e2e.helpers import json_out, user_xattrs, xattrs_supported

from vger.backup.filecache import FilesCache
from vger.repository.index import ChunkIndex


def backup_stats(vger: Vger) -> dict:
    (doc,) = json_out(vger.run("--json", "backup"))
    assert doc["errors"] == []
    return doc["stats"]


def make_tree(src: Path) -> None:
    for n in range(30):
        write_file(src / f"d{n % 3}" / f"f{n:02d}.txt", f"file {n}\n".encode() * (n + 1))
    write_file(src / "empty", b"")
    os.symlink("d0/f00.txt", src / "link")
    if xattrs_supported(src):
        os.setxattr(src / "d1" / "f01.txt", "user.note", b"kept")


def test_no_change_backups_write_the_same_item_stream(vger: Vger) -> None:
    src = vger.tmp / "src"
    make_tree(src)
    vger.run("init")
    backup_stats(vger)  # reads everything
    backup_stats(vger)  # builds every item from the cache hit, and keeps its bytes
    third = backup_stats(vger)  # reuses those bytes
    assert third["cache_hits"] == 31
    # Identical item streams deduplicate completely: a single differing byte
    # would have stored a new metadata chunk.
    assert third["deduplicated_size"] == 0, third
    snapshots = json_out(vger.run("--json", "list"))
    listings = [
        [
            {k: v for k, v in row.items() if k != "snapshot"}
            for row in json_out(vger.run("--json", "list", "--snapshot", s["id"]))
        ]
        for s in snapshots
    ]
    assert len(listings[0]) == 36  # the source folder, 3 folders, 31 files, a symlink
    assert listings[0] == listings[1] == listings[2]
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    root = restored_root(dest, src)
    assert (root / "d2" / "f29.txt").read_bytes() == (src / "d2" / "f29.txt").read_bytes()
    assert user_xattrs(bytes(root / "d1" / "f01.txt")) == user_xattrs(bytes(src / "d1" / "f01.txt"))


def test_a_file_read_since_the_last_backup_gets_its_new_atime(vger: Vger) -> None:
    """Reading a file changes its atime and nothing else (not even the ctime): the
    files cache still hits, but the item must be made afresh."""
    src = vger.tmp / "src"
    make_tree(src)
    target = src / "d0" / "f03.txt"
    st = target.stat()
    # relatime updates the atime on a read only if it is older than the mtime
    os.utime(target, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))
    vger.run("init")
    backup_stats(vger)
    backup_stats(vger)
    before = target.stat()
    time.sleep(0.01)
    target.read_bytes()
    after = target.stat()
    if after.st_atime_ns == before.st_atime_ns:
        pytest.skip("this filesystem does not update atimes on read (noatime)")
    assert after.st_ctime_ns == before.st_ctime_ns
    stats = backup_stats(vger)
    assert stats["cache_hits"] == 31 and stats["files_read"] == 0
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert (restored_root(dest, src) / "d0" / "f03.txt").stat().st_atime_ns == after.st_atime_ns


def _cache(tmp: Path, owners: dict[int, str]) -> FilesCache:
    name = owners.get
    return FilesCache("00" * 32, "src", owner_names=(name, name))


def _one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, os.stat_result, ChunkIndex]:
    monkeypatch.setenv("VGER_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "f"
    path.write_bytes(b"x")
    index = ChunkIndex()
    index.add(b"c" * 32, b"p" * 32, 0, 0, 10, 1)
    return path, os.lstat(path), index


def test_a_renamed_owner_turns_the_reuse_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, st, index = _one_file(tmp_path, monkeypatch)
    first = _cache(tmp_path, {st.st_uid: "ann", st.st_gid: "ann"})
    first.load()
    first.remember(bytes(path), st, [(b"c" * 32, 1)], [])
    first.attach_packed(bytes(path), st, 12, b"made when the owner was ann")
    first.save()

    same = _cache(tmp_path, {st.st_uid: "ann", st.st_gid: "ann"})
    same.load()
    assert same.lookup_packed(bytes(path), st, index) == (12, b"made when the owner was ann")

    renamed = _cache(tmp_path, {st.st_uid: "bob", st.st_gid: "bob"})
    renamed.load()
    assert renamed.lookup_packed(bytes(path), st, index) is None
    assert renamed.lookup(bytes(path), st, index) == ((b"c" * 32, 1),)  # the content is still known


def test_a_cache_from_before_item_reuse_still_hits_and_is_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import msgpack

    path, st, index = _one_file(tmp_path, monkeypatch)
    cache = _cache(tmp_path, {st.st_uid: "ann", st.st_gid: "ann"})
    cache.path.parent.mkdir(parents=True)
    old_record = (bytes(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, 0, [[b"c" * 32, 1]], [])
    cache.path.write_bytes(msgpack.packb(old_record, use_bin_type=True))
    cache.load()
    assert cache.lookup_packed(bytes(path), st, index) is None
    assert cache.lookup(bytes(path), st, index) == ((b"c" * 32, 1),)
    cache.keep_hit(bytes(path), True)
    cache.save()  # rewritten with a header, though every entry was carried over
    with open(cache.path, "rb") as fh:
        first = next(msgpack.Unpacker(fh, raw=False, strict_map_key=False))
    assert isinstance(first, dict) and first["items"] >= 1


def test_a_damaged_kept_item_only_costs_speed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import msgpack

    path, st, index = _one_file(tmp_path, monkeypatch)
    first = _cache(tmp_path, {st.st_uid: "ann", st.st_gid: "ann"})
    first.remember(bytes(path), st, [(b"c" * 32, 1)], [])
    first.attach_packed(bytes(path), st, 12, b"rest")
    first.save()
    with open(first.path, "rb") as fh:
        header, record = msgpack.Unpacker(fh, raw=False, strict_map_key=False, use_list=False)
    for damage in (7, b"short"):
        first.path.write_bytes(msgpack.packb(header) + msgpack.packb((*record[:8], damage)))
        cache = _cache(tmp_path, {st.st_uid: "ann", st.st_gid: "ann"})
        cache.load()
        assert cache.lookup_packed(bytes(path), st, index) is None
        assert cache.lookup(bytes(path), st, index) == ((b"c" * 32, 1),)
        cache.keep_hit(bytes(path), True)
        cache.save()
