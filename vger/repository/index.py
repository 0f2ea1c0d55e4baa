"""The chunk index: which pack holds each chunk, and index segments on storage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgpack

from vger.errors import CorruptData


@dataclass(frozen=True)
class IndexEntry:
    pack_id: bytes
    blob_type: int
    offset: int
    length: int
    plain_size: int


class ChunkIndex:
    """chunk id -> location, held in memory.

    Pack ids are interned into a list so each entry stores a small pack number
    instead of another 32-byte id; entries are plain tuples (no per-entry object).
    """

    def __init__(self) -> None:
        self._packs: list[bytes] = []
        self._pack_numbers: dict[bytes, int] = {}
        self._entries: dict[bytes, tuple[int, int, int, int, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._entries

    def _pack_number(self, pack_id: bytes) -> int:
        number = self._pack_numbers.get(pack_id)
        if number is None:
            number = len(self._packs)
            self._packs.append(pack_id)
            self._pack_numbers[pack_id] = number
        return number

    def add(
        self, chunk_id: bytes, pack_id: bytes, blob_type: int, offset: int, length: int, plain: int
    ) -> None:
        self._entries[chunk_id] = (self._pack_number(pack_id), blob_type, offset, length, plain)

    def add_segment(self, data: bytes, what: str) -> None:
        """Add a decrypted index segment, checked as :func:`decode_segment` checks it.

        Every command that reads or writes data loads the whole index first, so
        this works a pack at a time with C-level iteration (``zip``, ``map``,
        ``set``), checking each column at once: 22 -> 8 ms for 20,000 chunks,
        against a Python loop over the rows.
        """
        doc = _unpack(data, what)
        entries = self._entries
        try:
            for pack_id, rows in doc:
                if pack_id.__class__ is not bytes or len(pack_id) != 32:
                    raise CorruptData(f"{what}: malformed pack id")
                if rows.__class__ is not tuple:
                    raise CorruptData(f"{what}: malformed index segment: entries of a pack are not a list")
                if not rows:
                    continue
                if set(map(len, rows)) != {5}:
                    raise CorruptData(f"{what}: malformed index segment: an entry has not 5 fields")
                ids, types, offsets, lengths, plains = zip(*rows, strict=True)
                if set(map(type, ids)) != {bytes} or set(map(len, ids)) != {32}:
                    raise CorruptData(f"{what}: malformed chunk id")
                for column in (types, offsets, lengths, plains):
                    if set(map(type, column)) != {int}:
                        raise CorruptData(f"{what}: malformed index segment: a number is not an integer")
                if min(offsets) < 0 or min(lengths) < 0 or min(plains) < 0:
                    raise CorruptData(f"{what}: negative offset or length")
                number = self._pack_number(pack_id)
                entries.update(
                    zip(
                        ids,
                        zip(repeat(number, len(ids)), types, offsets, lengths, plains, strict=True),
                        strict=True,
                    )
                )
        except (TypeError, ValueError) as exc:
            raise CorruptData(f"{what}: malformed index segment: {exc}") from exc

    def get(self, chunk_id: bytes) -> IndexEntry | None:
        raw = self._entries.get(chunk_id)
        if raw is None:
            return None
        number, blob_type, offset, length, plain = raw
        return IndexEntry(self._packs[number], blob_type, offset, length, plain)

    def stored_length(self, chunk_id: bytes) -> int:
        raw = self._entries.get(chunk_id)
        return raw[3] if raw else 0

    def stored_total(self, chunks: Iterable[tuple[bytes, int]]) -> int:
        """The stored bytes of a file's ``(chunk id, size)`` list; 0 if any chunk is missing.

        One call per file instead of one per chunk: the files cache checks every
        chunk of every unchanged file, so this is on a no-change backup's hot path.
        """
        get = self._entries.get
        total = 0
        for chunk_id, _size in chunks:
            raw = get(chunk_id)
            if raw is None:
                return 0
            total += raw[3]
        return total

    def items(self) -> Iterator[tuple[bytes, IndexEntry]]:
        for chunk_id, (number, blob_type, offset, length, plain) in self._entries.items():
            yield chunk_id, IndexEntry(self._packs[number], blob_type, offset, length, plain)

    def pack_count(self) -> int:
        return len(self._packs)

    def pack_ids(self) -> set[bytes]:
        return {self._packs[raw[0]] for raw in self._entries.values()}


def encode_segment(packs: dict[bytes, list[tuple[bytes, int, int, int, int]]]) -> bytes:
    """msgpack of ``[[pack_id, [[chunk_id, type, offset, length, plain], ...]], ...]``."""
    return msgpack.packb([[pack_id, [list(e) for e in entries]] for pack_id, entries in packs.items()])


def decode_segment(data: bytes, what: str) -> Iterator[tuple[bytes, bytes, int, int, int, int]]:
    """Yield ``(chunk_id, pack_id, type, offset, length, plain)``; CorruptData on a bad shape."""
    doc = _unpack(data, what)
    try:
        for pack_id, entries in doc:
            if not isinstance(pack_id, bytes) or len(pack_id) != 32:
                raise CorruptData(f"{what}: malformed pack id")
            for chunk_id, blob_type, offset, length, plain in entries:
                if not isinstance(chunk_id, bytes) or len(chunk_id) != 32:
                    raise CorruptData(f"{what}: malformed chunk id")
                if not all(v.__class__ is int for v in (blob_type, offset, length, plain)):
                    raise CorruptData(f"{what}: malformed index segment: a number is not an integer")
                if min(offset, length, plain) < 0:
                    raise CorruptData(f"{what}: negative offset or length")
                yield chunk_id, pack_id, blob_type, offset, length, plain
    except (TypeError, ValueError) as exc:
        raise CorruptData(f"{what}: malformed index segment: {exc}") from exc


def _unpack(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(data, use_list=False)
    except Exception as exc:
        raise CorruptData(f"{what}: not valid msgpack: {exc}") from exc
