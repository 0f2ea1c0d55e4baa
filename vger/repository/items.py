"""The item stream: a snapshot's file entries as one msgpack sequence.

Each item is a msgpack map. Paths and link targets are *bytes* (Linux file
names are bytes, not text) relative to the filesystem root without the leading
``/`` (like borg and restic, a restore recreates the full source path under the
destination). Keys:

=========  ===========================================================
path       bytes, e.g. ``b"home/ann/docs/a.txt"``
type       ``file``, ``dir``, ``symlink``, ``hardlink``, ``fifo``, ``device``
mode       full ``st_mode`` (type bits included)
uid, gid   numeric owner; ``user``/``group`` names when known
mtime, atime, ctime   nanoseconds since the epoch
size       bytes (files)
chunks     ``[[chunk_id, plain_size], ...]`` (files)
target     bytes: symlink target, or for ``hardlink`` the path of the first link
rdev       device number (devices)
xattrs     ``[[name, value], ...]`` as bytes
=========  ===========================================================

The stream is cut with a small content-defined chunker (about 32 KiB / 128 KiB /
512 KiB), so unchanged stretches of metadata deduplicate between snapshots, and
is written and read incrementally: never all items in memory at once.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack

from vger.errors import CorruptData
from vger.interfaces import Chunker

Item = dict[str, Any]

ITEMS_MIN = 32 * 1024
ITEMS_AVG = 128 * 1024
ITEMS_MAX = 512 * 1024
_FLUSH_AT = 4 * ITEMS_MAX

ITEM_TYPES = ("file", "dir", "symlink", "hardlink", "fifo", "device")
# Largest single item we accept from a repository (long xattrs, huge chunk lists).
MAX_ITEM_BYTES = 256 * 1024 * 1024


class ItemStreamWriter:
    """Serializes items and hands finished chunks to ``store`` (which returns the chunk id)."""

    def __init__(self, chunker: Chunker, store: Callable[[memoryview], bytes]) -> None:
        self._chunker = chunker
        self._store = store
        self._packer = msgpack.Packer(use_bin_type=True)
        self._buffer = bytearray()
        self.chunk_ids: list[bytes] = []
        self.count = 0

    def add(self, item: Item) -> bytes:
        """Append one item; returns its serialized form (the files cache keeps it, see ``without_path``)."""
        packed = self._packer.pack(item)
        self._buffer += packed
        self.count += 1
        if len(self._buffer) >= _FLUSH_AT:
            self._cut(final=False)
        return packed

    def add_packed(self, count: int, path: bytes, rest: bytes | memoryview) -> None:
        """Append an item serialized earlier, given as ``without_path`` split it."""
        buffer = self._buffer
        length = len(path)
        buffer += _PATH_HEADS[count][length] if length < 0x100 else _PATH_PREFIX[count] + _bin_header(length)
        buffer += path
        buffer += rest
        self.count += 1
        if len(buffer) >= _FLUSH_AT:
            self._cut(final=False)

    def _cut(self, final: bool) -> None:
        view = memoryview(self._buffer)
        lengths = self._chunker.split(view)
        if not final and lengths:
            lengths.pop()  # the last piece was cut by the buffer end, not by content
        pos = 0
        for length in lengths:
            self.chunk_ids.append(self._store(view[pos : pos + length]))
            pos += length
        view.release()
        del self._buffer[:pos]

    def finish(self) -> list[bytes]:
        self._cut(final=True)
        return self.chunk_ids


# A serialized item starts with its map header and the "path" key (items are
# built with the path first and never have more than 15 keys: a fixmap).
_PATH_PREFIX = [bytes((0x80 | n,)) + b"\xa4path" for n in range(16)]
# ... followed by the path's bin header: precomputed for paths under 256 bytes
_PATH_HEADS = [[prefix + bytes((0xC4, length)) for length in range(0x100)] for prefix in _PATH_PREFIX]


def _bin_header(length: int) -> bytes:
    if length < 0x100:
        return bytes((0xC4, length))
    if length < 0x10000:
        return b"\xc5" + length.to_bytes(2, "big")
    return b"\xc6" + length.to_bytes(4, "big")


def without_path(packed: bytes, path: bytes) -> tuple[int, bytes] | None:
    """Split a serialized item into (key count, everything after its path); None if it has another shape."""
    count = packed[0] - 0x80 if packed else -1
    if not 0 < count < 16:
        return None
    head = _PATH_PREFIX[count] + _bin_header(len(path)) + path
    if not packed.startswith(head):
        return None
    return count, packed[len(head) :]


def iter_items(chunk_ids: Iterable[bytes], fetch: Callable[[bytes], bytes]) -> Iterator[Item]:
    """Decode items chunk by chunk; memory stays at one chunk plus one item."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_ITEM_BYTES, strict_map_key=True)
    fed = done = 0  # bytes fed, and bytes up to the end of the last complete item
    for chunk_id in chunk_ids:
        data = fetch(chunk_id)
        fed += len(data)
        try:
            unpacker.feed(data)
        except msgpack.BufferFull as exc:
            raise CorruptData(f"item stream holds an item larger than {MAX_ITEM_BYTES} bytes") from exc
        try:
            for item in unpacker:
                done = unpacker.tell()
                yield _checked(item)
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
            raise CorruptData(f"item stream is malformed: {exc}") from exc
    # Bytes left over after the last complete item mean a truncated stream.
    if done != fed:
        raise CorruptData("item stream ends in the middle of an item")


def _checked(item: Any) -> Item:
    if not isinstance(item, dict):
        raise CorruptData("item stream holds something that is not an item")
    path = item.get("path")
    if not isinstance(path, bytes) or item.get("type") not in ITEM_TYPES:
        raise CorruptData("item stream holds an item without a valid path or type")
    return item


def display_path(path: bytes) -> str:
    """A printable form of a path (bytes that are not UTF-8 are escaped)."""
    return path.decode("utf-8", "backslashreplace")


def describe(item: Item) -> dict[str, Any]:
    """A JSON-friendly view of an item (``list --snapshot --json``); tolerant of damaged items."""
    mode = item.get("mode")
    target = item.get("target")
    return {
        "path": display_path(item["path"]),
        "type": item["type"],
        "mode": stat.filemode(mode) if isinstance(mode, int) else "?",
        "user": item.get("user", item.get("uid")),
        "group": item.get("group", item.get("gid")),
        "size": item.get("size", 0),
        "mtime_ns": item.get("mtime"),
        **({"target": display_path(target)} if isinstance(target, bytes) else {}),
    }
