"""format.md "Must hold" 6: a hostile repository cannot make a restore write outside DEST.

The repository is crafted with the Python API and the real key, as a malicious
server that knows the key (or a malicious past client) could: the item stream
holds path traversal, absolute paths, symlink tricks, bad hard links and lying
sizes. The restore goes through the CLI.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard

from tests.conftest import PASSPHRASE, Vger, write_file
from vger.crypto.envelope import ObjectType
from vger.errors import CorruptData, IntegrityError
from vger.pluginmanager import Registry, load_plugins
from vger.repository import format as fmt
from vger.repository import items as items_mod
from vger.repository.index import IndexEntry
from vger.repository.items import ITEMS_AVG, ITEMS_MAX, ITEMS_MIN, ItemStreamWriter, iter_items
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot, SnapshotStats
from vger.repository.writer import BlobWriter
from vger.storage import open_backend

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_plugins()


def _open(vger: Vger, registry: Registry) -> Repository:
    backend = open_backend(str(vger.tmp / "repo"), {}, registry)
    return Repository.open(backend, registry, lambda: PASSPHRASE, allow_unencrypted=False)


def _item(path: bytes, kind: str = "file", **extra: Any) -> dict[str, Any]:
    mode = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755, "symlink": stat.S_IFLNK | 0o777}.get(
        kind, stat.S_IFREG | 0o644
    )
    now = time.time_ns()
    item: dict[str, Any] = {
        "path": path,
        "type": kind,
        "mode": mode,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "mtime": now,
        "atime": now,
        "ctime": now,
    }
    item.update(extra)
    return item


class Crafter:
    """Writes chunks, an item stream and a snapshot straight into a real repository."""

    def __init__(self, repo: Repository, registry: Registry) -> None:
        self.repo = repo
        self.registry = registry
        self.writer = BlobWriter(repo, registry.get("compressor", "zstd")({}))
        chunker = registry.get("chunker", "fastcdc")(ITEMS_MIN, ITEMS_AVG, ITEMS_MAX, {})
        self.items = ItemStreamWriter(chunker, self._store_meta)

    def _store_meta(self, piece: memoryview) -> bytes:
        chunk_id = self.repo.hasher(piece)
        self.writer.store(chunk_id, piece, fmt.BLOB_ITEMS)
        return chunk_id

    def chunk(self, data: bytes) -> list[Any]:
        chunk_id = self.repo.hasher(data)
        self.writer.store(chunk_id, data)
        return [chunk_id, len(data)]

    def file(self, path: bytes, data: bytes, **extra: Any) -> None:
        chunks = [self.chunk(data[i : i + MiB]) for i in range(0, len(data), MiB)]
        self.add(_item(path, "file", size=len(data), chunks=chunks, **extra))

    def add(self, item: dict[str, Any]) -> None:
        self.items.add(item)

    def raw_item_chunk(self, data: bytes) -> bytes:
        """An item-stream chunk with arbitrary bytes (not necessarily msgpack)."""
        chunk_id = self.repo.hasher(data)
        self.writer.store(chunk_id, data, fmt.BLOB_ITEMS)
        return chunk_id

    def commit(self, extra_item_chunks: list[bytes] = ()) -> str:  # type: ignore[assignment]
        ids = self.items.finish() + list(extra_item_chunks)
        self.writer.finish()
        snap = Snapshot(
            id=os.urandom(32),
            time_start=time.time(),
            time_end=time.time(),
            hostname="evil",
            username="mallory",
            source_label="src",
            source_paths=["/"],
            label="hostile",
            chunker={"algorithm": "fastcdc", "min_size": 0, "avg_size": 0, "max_size": 0},
            items=ids,
            stats=SnapshotStats(),
            item_count=self.items.count,
        )
        self.repo.put_snapshot(snap)
        return snap.hex_id


def _state(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Everything below ``root``: kind+mode, size, mtime and content (or link target)."""
    out: dict[str, tuple[int, int, int, bytes | None]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content: bytes | None = None
            if stat.S_ISREG(st.st_mode):
                content = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.fsencode(os.readlink(path))
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    st = os.lstat(root)
    out["."] = (st.st_mode, 0, st.st_mtime_ns, None)
    return out


def _walk_tmp(tmp: Path, skip: set[str]) -> set[str]:
    """Every path below ``tmp`` except the subtrees named in ``skip`` (relative to tmp)."""
    found = set()
    for dirpath, dirs, files in os.walk(tmp):
        rel_dir = os.path.relpath(dirpath, tmp)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for name in dirs + files:
            found.add(os.path.normpath(os.path.join(rel_dir, name)))
    return found


def test_hostile_item_stream_stays_inside_dest(vger: Vger, registry: Registry) -> None:
    vger.run("init")
    tmp = vger.tmp
    outside = tmp / "outside"
    write_file(outside / "sentinel.txt", b"do not touch")
    os.chmod(outside / "sentinel.txt", 0o600)
    out_b = os.fsencode(outside)
    dest = tmp / "work" / "dest"
    dest.mkdir(parents=True)

    c = Crafter(_open(vger, registry), registry)
    good = {b"good/before.txt": os.urandom(3000), b"good/after.txt": os.urandom(2 * MiB + 5)}
    c.add(_item(b"good", "dir"))
    c.file(b"good/before.txt", good[b"good/before.txt"])
    bad: list[bytes] = []

    def evil_file(path: bytes) -> None:
        bad.append(path)
        c.file(path, b"PWNED " + path)

    # 1. traversal and absolute paths
    evil_file(b"../../escape")
    evil_file(b"good/../../../escape2")
    evil_file(out_b + b"/abs")
    evil_file(b"//" + out_b.lstrip(b"/") + b"/abs2")
    # 2. not normalized: '.', empty components, trailing slash, NUL
    evil_file(b"good/./dot.txt")
    evil_file(b"good//empty.txt")
    evil_file(b"good/trailing/")
    evil_file(b".")
    evil_file(b"good/nul\x00byte")
    # 3. a symlink pointing outside, then a file (and a dir, and a hard link) "through" it
    c.add(_item(b"evil", "symlink", target=out_b))
    evil_file(b"evil/pwned")
    c.add(_item(b"evil", "dir"))
    evil_file(b"evil/pwned2")
    c.add(_item(b"evil_rel", "symlink", target=b"../../.."))
    evil_file(b"evil_rel/outside/pwned3")
    # 4. hard links to outside, through a symlink, to a symlink
    for link, target in [
        (b"hl_dotdot", b"../outside/sentinel.txt"),
        (b"hl_abs", out_b + b"/sentinel.txt"),
        (b"hl_through", b"evil/sentinel.txt"),
        (b"hl_to_symlink", b"evil"),
        (b"hl_dotdot2", b"../../outside/sentinel.txt"),
    ]:
        bad.append(link)
        c.add(_item(link, "hardlink", target=target))
    # 5. a directory, then a symlink with the same path, then a file below it
    c.add(_item(b"twice", "dir"))
    bad.append(b"twice")
    c.add(_item(b"twice", "symlink", target=out_b))
    twice_data = os.urandom(1000)
    c.file(b"twice/inside.txt", twice_data)
    # ... and the same with a directory that was only created implicitly
    imp_data = os.urandom(1000)
    c.file(b"imp/a.txt", imp_data)
    bad.append(b"imp")
    c.add(_item(b"imp", "symlink", target=out_b))
    c.file(b"imp/b.txt", imp_data)
    # 6. sizes that do not match the chunk list
    for path, delta in [(b"good/short.txt", 1000), (b"good/long.txt", -1000), (b"good/huge.txt", 1 << 50)]:
        data = os.urandom(5000)
        bad.append(path)
        c.add(_item(path, "file", size=len(data) + delta, chunks=[c.chunk(data)]))
    # 7. chunk entries whose plain size lies, unknown chunks, garbage chunk lists, missing fields
    real = os.urandom(4000)
    bad.append(b"good/lying_plain.txt")
    c.add(_item(b"good/lying_plain.txt", "file", size=4100, chunks=[[c.chunk(real)[0], 4100]]))
    bad.append(b"good/unknown_chunk.txt")
    c.add(_item(b"good/unknown_chunk.txt", "file", size=10, chunks=[[os.urandom(32), 10]]))
    for n, chunks in enumerate([[[b"short", 5]], "garbage", [[c.chunk(real)[0], 4000], "x"], [5]]):
        path = b"good/garbage%d.txt" % n
        bad.append(path)
        c.add(_item(path, "file", size=4000, chunks=chunks))
    bad.append(b"good/nomode.txt")
    nomode = _item(b"good/nomode.txt", "file", size=4000, chunks=[c.chunk(real)])
    del nomode["mode"]
    c.add(nomode)
    bad.append(b"good/badtime.txt")
    c.add(_item(b"good/badtime.txt", "file", size=4000, chunks=[c.chunk(real)], mtime="yesterday"))
    bad.append(b"good/notarget")
    c.add(_item(b"good/notarget", "symlink"))
    # 8. good entries after all that
    c.file(b"good/after.txt", good[b"good/after.txt"])
    c.add(_item(b"good/link", "symlink", target=b"before.txt"))
    c.add(_item(b"good/hard", "hardlink", target=b"good/before.txt"))
    snap_id = c.commit()

    watched = {"work/dest", "repo", "home", "cache"}
    before_tmp = _walk_tmp(tmp, watched)
    before_outside = _state(outside)

    proc = vger.run("restore", "--snapshot", snap_id, "--dest", str(dest), check=False)

    assert "Traceback" not in proc.stderr, proc.stderr
    assert "unexpected" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Nothing written outside DEST.
    assert _state(outside) == before_outside
    assert _walk_tmp(tmp, watched) == before_tmp
    assert not (tmp / "escape").exists() and not (tmp / "work" / "escape").exists()
    assert not Path("/escape").exists() and not Path("/escape2").exists()
    # Every bad entry is reported.
    for path in bad:
        shown = path.decode("utf-8", "backslashreplace")
        assert shown in proc.stderr, f"{shown!r} not reported:\n{proc.stderr}"
    # Good entries are restored, bad files are absent, none holds attacker data.
    assert (dest / "good" / "before.txt").read_bytes() == good[b"good/before.txt"]
    assert (dest / "good" / "after.txt").read_bytes() == good[b"good/after.txt"]
    assert os.readlink(dest / "good" / "link") == "before.txt"
    assert os.stat(dest / "good" / "hard").st_ino == os.stat(dest / "good" / "before.txt").st_ino
    assert (dest / "twice" / "inside.txt").read_bytes() == twice_data
    assert (dest / "twice").is_dir() and not (dest / "twice").is_symlink()
    assert (dest / "imp" / "a.txt").read_bytes() == imp_data
    assert (dest / "imp" / "b.txt").read_bytes() == imp_data
    assert os.readlink(dest / "evil") == str(outside)  # a symlink may point anywhere; it is not followed
    for name in ("short", "long", "huge", "lying_plain", "unknown_chunk", "nomode", "badtime"):
        assert not (dest / "good" / f"{name}.txt").exists(), name
    for dirpath, _dirs, files in os.walk(dest):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                assert not path.read_bytes().startswith(b"PWNED"), path


def test_overwrite_always_cannot_redirect_metadata(vger: Vger, registry: Registry) -> None:
    """A file item, then a symlink with the same path: the file's mode must not land on the link target."""
    vger.run("init")
    victim = write_file(vger.tmp / "outside" / "victim", b"precious")
    os.chmod(victim, 0o600)
    dest = vger.tmp / "dest"
    c = Crafter(_open(vger, registry), registry)
    for n in range(4):
        big = os.urandom(24 * MiB)
        c.file(b"f%d" % n, big, mode=stat.S_IFREG | 0o4777)
        c.add(_item(b"f%d" % n, "symlink", target=os.fsencode(victim)))
    snap_id = c.commit()
    before = victim.stat()
    proc = vger.run(
        "restore", "--snapshot", snap_id, "--dest", str(dest), "--overwrite", "always", check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    after = victim.stat()
    assert stat.S_IMODE(after.st_mode) == 0o600, oct(after.st_mode)
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert victim.read_bytes() == b"precious"


def test_garbage_item_stream_is_reported_not_crashed(vger: Vger, registry: Registry) -> None:
    vger.run("init")
    rnd = random.Random(3)
    for n, raw in enumerate(
        [
            b"\xc1" * 100,  # never-used msgpack byte
            msgpack.packb(5),  # not a map
            msgpack.packb({"path": "text", "type": "file"}),  # path must be bytes
            msgpack.packb({1: 2}),  # non-string keys
            b"\x91" * 5000 + b"\x00",  # absurd nesting
            b"\xc6" + struct.pack(">I", 0x7FFFFFFF) + b"x" * 100,  # bin longer than any item may be
            b"\xc6" + struct.pack(">I", 100 * MiB) + b"x" * 100,  # truncated item
        ]
    ):
        c = Crafter(_open(vger, registry), registry)
        # Many files queued for writing when the stream breaks: none may be left empty or partial.
        good = {b"ok%02d.txt" % i: data for i in range(40) for data in [rnd.randbytes(256 * 1024 + i)]}
        for path, data in good.items():
            c.file(path, data)
        snap_id = c.commit([c.raw_item_chunk(raw)])
        dest = vger.tmp / f"d{n}"
        for args in (
            ["list", "--snapshot", snap_id],
            ["restore", "--snapshot", snap_id, "--dest", str(dest)],
        ):
            proc = vger.run(*args, check=False)
            assert proc.returncode == 1, (n, args, proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, (n, proc.stderr)
            assert "item" in proc.stderr, (n, proc.stderr)
        for path in dest.iterdir():
            assert path.read_bytes() == good[os.fsencode(path.name)], f"{path.name} restored wrong (case {n})"


# -- unit tests: bounded decoding ---------------------------------------------------------


def _feed(chunks: list[bytes]) -> Iterator[dict[str, Any]]:
    table = {bytes([i]) * 32: data for i, data in enumerate(chunks)}
    return iter_items(list(table), table.__getitem__)


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xc1"],
        [msgpack.packb([1, 2, 3])],
        [msgpack.packb({"path": b"a", "type": "socket"})],
        [msgpack.packb({"path": b"a", "type": "file"}) + b"\xdc"],
        [b"\xa2\xff\xfe"],  # str that is not UTF-8
        [b"\x91" * 100_000],
        [b"\xc6" + struct.pack(">I", 0xFFFFFFF0)],
    ],
)
def test_iter_items_garbage_is_corrupt_data(chunks: list[bytes]) -> None:
    with pytest.raises(CorruptData):
        list(_feed(chunks))


def test_iter_items_oversized_item_is_corrupt_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # An item that claims more bytes than any item may have, spread over many chunks.
    monkeypatch.setattr(items_mod, "MAX_ITEM_BYTES", 64 * 1024)
    head = b"\xc6" + struct.pack(">I", 60 * 1024)  # under the per-item limit, so decoding waits for more
    chunks = [head] + [b"x" * 16 * 1024] * 8
    with pytest.raises(CorruptData):
        list(_feed(chunks))


def test_iter_items_good_stream_round_trips() -> None:
    items = [{"path": b"a/%d" % i, "type": "file", "size": i} for i in range(1000)]
    blob = b"".join(msgpack.packb(i) for i in items)
    pieces = [blob[i : i + 777] for i in range(0, len(blob), 777)]  # items split across chunks
    assert list(_feed(pieces)) == items


def _bomb(declared: bool, size: int) -> bytes:
    cctx = zstandard.ZstdCompressor(level=1, write_content_size=declared)
    if declared:
        return cctx.compress(b"\0" * size)
    obj = cctx.compressobj()
    block = b"\0" * (16 * MiB)
    out = [obj.compress(block) for _ in range(size // len(block))]
    out.append(obj.flush())
    return b"".join(out)


@pytest.mark.parametrize("declared", [True, False])
def test_zstd_bomb_is_bounded_by_recorded_plain_size(registry: Registry, declared: bool) -> None:
    zstd = registry.get("compressor", "zstd")({})
    bomb = _bomb(declared, 512 * MiB)
    assert len(bomb) < MiB
    with pytest.raises(CorruptData):
        zstd.decompress(bomb, 4096)
    assert zstd.decompress(zstd.compress(b"x" * 4096), 4096) == b"x" * 4096


def test_zstd_bomb_in_a_repository_blob(vger: Vger, registry: Registry) -> None:
    vger.run("init")
    repo = _open(vger, registry)
    chunk_id = os.urandom(32)
    tag = registry.get("compressor", "zstd").tag
    envelope = repo.seal(ObjectType.CHUNK, bytes([tag]) + _bomb(True, 256 * MiB), chunk_id)
    entry = IndexEntry(os.urandom(32), fmt.BLOB_DATA, 13, len(envelope), 1000)
    with pytest.raises(IntegrityError):
        repo.decode_blob(chunk_id, envelope, entry)
