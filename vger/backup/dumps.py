"""Streaming command and database dumps into a snapshot.

Glossary:

dump source
    A component of kind ``dump`` (:class:`vger.interfaces.DumpSource`) built
    from one ``dumps:`` entry of a source; ``command_dumps:`` entries are
    served by the one named ``command``.
dump stream
    One file a dump source produces (:class:`vger.interfaces.DumpStream`):
    usually a tool's stdout, read until it ends.
dump folder
    Where dumps live in a snapshot: ``vger-dumps/<source label>/<name>``. Item
    paths are absolute source paths without their leading ``/``, so only a
    source covering ``/`` that really holds a ``/vger-dumps`` could collide;
    such a backup is refused (:func:`check_no_collision`).
dump record
    The ``dump`` key of a dump's item: ``type`` (the plugin), ``name`` and the
    stream's ``metadata``. ``vger list --dumps`` and ``vger restore-dump`` read
    nothing else; ``vger restore`` ignores it and restores a plain file.

Each stream is chunked as it is read, with the same chunker, dedup, compression
and encryption as file contents, through one reusable buffer: memory stays at
a buffer plus the packs in flight however large the dump, and nothing touches
the local disk. A stream whose tool fails raises, and the archiver then commits
no snapshot for the source.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Protocol

from vger.backup.blocks import content_cuts
from vger.backup.metadata import group_name, user_name
from vger.errors import ConfigError, VgerError
from vger.interfaces import Chunker, DumpSource, DumpStream
from vger.repository.items import Item
from vger.repository.snapshot import SnapshotStats

#: Top folder of every dump in a snapshot.
DUMPS_FOLDER = "vger-dumps"
#: The dump source that serves ``command_dumps:`` entries.
COMMAND_TYPE = "command"
_READ_CALL = 1024 * 1024


class _Writer(Protocol):
    def store(self, chunk_id: bytes, data: memoryview) -> tuple[bool, int]: ...


class _Items(Protocol):
    def add(self, item: Item) -> object: ...


class _Progress(Protocol):
    def file_done(self, path: bytes, size: int) -> None: ...

    def bytes_read(self, count: int) -> None: ...


class _Registry(Protocol):
    def get(self, kind: str, name: str) -> type[Any]: ...


def folder_of(source_label: str) -> str:
    """The dump folder of a source (``/`` in a label cannot make a deeper path)."""
    label = source_label.replace("/", "_")
    if label in (".", ".."):
        label = "_" + label
    return f"{DUMPS_FOLDER}/{label}"


def dump_entries(source: Any) -> list[Mapping[str, Any]]:
    """Every dump entry of a configured source, command dumps first, as ``dumps:`` entries."""
    entries: list[Mapping[str, Any]] = [{**d, "type": COMMAND_TYPE} for d in source.command_dumps]
    entries.extend(source.dumps)
    return entries


def build_sources(entries: Iterable[Mapping[str, Any]], registry: _Registry) -> list[DumpSource]:
    """Instantiate the dump plugin each entry's ``type`` names."""
    built: list[DumpSource] = []
    for entry in entries:
        cls = registry.get("dump", str(entry["type"]))
        built.append(cls(dict(entry)))
    return built


def check_name(name: object) -> str:
    """A dump name must be a normalized relative path: it becomes an item path."""
    if not isinstance(name, str) or not name:
        raise VgerError(f"a dump plugin produced an invalid dump name {name!r}")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\x00" in name:
        raise VgerError(f"a dump plugin produced an invalid dump name {name!r} (not a clean relative path)")
    return name


def check_no_collision(source_paths: Sequence[str]) -> None:
    """Refuse a source that backs up a real ``/vger-dumps``: its files and the dumps would share paths."""
    real = "/" + DUMPS_FOLDER
    for path in source_paths:
        top = os.path.abspath(path)
        covers = top == "/" or real == top or real.startswith(top.rstrip("/") + "/")
        if covers and os.path.lexists(real):
            raise ConfigError(
                f"this source backs up {real}, which is where vger puts dumps in a snapshot; "
                f"exclude {real} or move dumps to a source without it"
            )


def _item(path: str, kind: str, mode: int) -> Item:
    now = time.time_ns()
    uid, gid = os.getuid(), os.getgid()
    item: Item = {
        "path": path.encode("utf-8"),
        "type": kind,
        "mode": mode,
        "uid": uid,
        "gid": gid,
        "mtime": now,
        "atime": now,
        "ctime": now,
    }
    user, group = user_name(uid), group_name(gid)
    if user is not None:
        item["user"] = user
    if group is not None:
        item["group"] = group
    return item


class DumpStorer:
    """Writes a source's dumps into the snapshot being built (one per backup).

    ``writer`` is the backup's blob writer (dedup, compression, encryption,
    packs); ``buffer`` is the archiver's read buffer (at least twice the largest
    chunk, so a chunk cut by the buffer's end can be carried over), reused for
    every dump: that buffer is all the memory a dump adds, whatever its size.
    """

    def __init__(
        self,
        source_label: str,
        chunker: Chunker,
        hasher: Callable[[memoryview], bytes],
        writer: _Writer,
        items: _Items,
        stats: SnapshotStats,
        buffer: bytearray | mmap.mmap,
        progress: _Progress | None = None,
        threads: int = 2,
    ) -> None:
        self.folder = folder_of(source_label)
        self.chunker = chunker
        self.hasher = hasher
        self.writer = writer
        self.items = items
        self.stats = stats
        self.buffer = buffer
        self.progress = progress
        self.threads = max(1, threads)
        self._dirs: set[str] = set()
        self._names: set[str] = set()

    def store_all(self, sources: Iterable[DumpSource]) -> None:
        for source in sources:
            for stream in source.dumps():
                self.store(source.name, stream)

    def store(self, plugin: str, stream: DumpStream) -> None:
        try:
            name = check_name(stream.name)
            if name in self._names:
                raise ConfigError(
                    f"two dumps of this source are named {name!r}; give one of them another name "
                    f"(or another database/path)"
                )
            self._names.add(name)
            path = f"{self.folder}/{name}"
            self._add_dirs(path)
            reader = stream.open()
            chunks, size, compressed, deduplicated = self._chunk(reader)
        except BaseException:
            stream.abort()
            raise
        stream.finish()  # raises when the tool failed: nothing of this source is committed
        item = _item(path, "file", stat.S_IFREG | 0o600)  # dumps hold every row: owner-only
        item["size"] = size
        item["chunks"] = chunks
        item["dump"] = {**dict(stream.metadata), "type": plugin, "name": name}
        self.items.add(item)
        self.stats.files += 1
        self.stats.original_size += size
        self.stats.compressed_size += compressed
        self.stats.deduplicated_size += deduplicated
        if self.progress:
            self.progress.file_done(item["path"], size)

    def _add_dirs(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in self._dirs:
                self._dirs.add(folder)
                self.items.add(_item(folder, "dir", stat.S_IFDIR | 0o700))

    def _chunk(self, reader: IO[bytes]) -> tuple[list[list[Any]], int, int, int]:
        """Read ``reader`` to its end, storing content-defined chunks as they complete.

        This thread reads and cuts; hashing, compression and encryption (which
        release the GIL) run on ``threads`` workers, on their own copy of each
        chunk since the buffer is refilled meanwhile. At most ``2 * threads``
        chunks are in flight, so memory stays bounded (8 MiB each at most).
        """
        buf = self.buffer
        view = memoryview(buf)
        readinto = getattr(reader, "readinto", None)
        chunks: list[list[Any]] = []
        total = carry = 0
        sizes = [0, 0]  # compressed, deduplicated
        pending: deque[Future[tuple[bytes, int, bool, int]]] = deque()

        def collect(future: Future[tuple[bytes, int, bool, int]]) -> None:
            chunk_id, length, is_new, stored = future.result()
            chunks.append([chunk_id, length])
            sizes[0] += stored
            if is_new:
                sizes[1] += stored

        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vger-dump")
        try:
            while True:
                filled = carry
                while filled < len(buf):
                    want = view[filled : filled + _READ_CALL]
                    if readinto is not None:
                        got = readinto(want) or 0
                    else:
                        data = reader.read(len(want))
                        got = len(data)
                        want[:got] = data
                    if got == 0:
                        break
                    filled += got
                    if self.progress:
                        self.progress.bytes_read(got)
                eof = filled < len(buf)
                total += filled - carry
                if filled == 0:
                    break
                lengths = content_cuts(self.chunker, view[:filled], eof)
                pos = 0
                for length in lengths:
                    pending.append(pool.submit(self._store_piece, bytes(view[pos : pos + length])))
                    while len(pending) > 2 * self.threads:
                        collect(pending.popleft())
                    pos += length
                carry = filled - pos
                if carry:
                    view[:carry] = bytes(view[pos:filled])
                if eof:
                    break
            while pending:
                collect(pending.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            view.release()
        return chunks, total, sizes[0], sizes[1]

    def _store_piece(self, data: bytes) -> tuple[bytes, int, bool, int]:
        chunk_id = self.hasher(memoryview(data))
        is_new, stored = self.writer.store(chunk_id, memoryview(data))
        return chunk_id, len(data), is_new, stored


def dump_items(items: Iterable[Item]) -> Iterator[Item]:
    """The items of a snapshot that are dumps (they carry a ``dump`` record)."""
    for item in items:
        record = item.get("dump")
        if item.get("type") == "file" and isinstance(record, dict) and isinstance(record.get("type"), str):
            yield item
