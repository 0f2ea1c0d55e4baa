"""The files cache: skip reading files that have not changed since the last backup.

A file is "unchanged" when inode, size, mtime and ctime (nanoseconds) all match
what was recorded, and every chunk it had is still in the repository index
(``compact`` may have removed some). ctime is included because it cannot be
set from user space, so a file edited and then ``touch``ed back still gets read.

One cache file per (repository, source label) under the user's cache folder,
so concurrent backups of different sources never clobber each other's cache.
Entries not seen for ``MAX_AGE`` backups are dropped.

An entry also keeps its file's item as it was serialized into the last
snapshot (all but the path), with the stat fields that went into it. When a
file's ``lstat`` matches all of them, the backup appends those bytes to the
item stream as they are: building and packing each item was about half of a
no-change backup's per-file Python. Owner names are the one input not in the
stat result, so the cache's first record holds the uid/gid -> name pairs the
items were made with, and a renamed user or group turns the reuse off. Items
with xattrs are never kept: the cache is not encrypted, and xattr values stay
out of it (files with xattrs are rare, and take the ordinary path).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack

from vger.cachedir import cache_root, new_temp_file

MAX_AGE = 20

Chunks = Sequence[tuple[bytes, int]]  # lists when built, tuples when read back from the cache
# A file's xattrs as items store them; None: not recorded (xattrs were off, or
# the entry predates this field) and must be read from the file.
Xattrs = list[list[bytes]] | None
# The item as last serialized, without its path, in one bytes object (a tuple of six
# cost 140 bytes more per file): the stat fields it was made from (mode, uid, gid,
# atime: _MADE_FROM), its key count (one byte), then the serialized keys after the path.
Packed = bytes | None
_MADE_FROM = struct.Struct("<IIIq")
_COUNT_AT = _MADE_FROM.size
# An entry is the record as stored, so loading keeps the unpacked tuples as they come:
# (path, ino, size, mtime, ctime, age, chunks, xattrs, packed).
_Entry = tuple[bytes, int, int, int, int, int, Chunks, Xattrs, Packed]
_FIELDS = 9
#: Bumped whenever the archiver's item layout changes: packed items from another layout are not reused.
ITEM_LAYOUT = 2


class FilesCache:
    """``big_size``: remember, while loading, which recorded files are at least this big (0: none)."""

    def __init__(
        self,
        repo_id_hex: str,
        source_label: str,
        big_size: int = 0,
        owner_names: tuple[Callable[[int], str | None], Callable[[int], str | None]] | None = None,
        xattrs_on: bool = True,
    ) -> None:
        name = hashlib.blake2b(source_label.encode(), digest_size=8).hexdigest()
        self.path = cache_root() / repo_id_hex / f"files-{name}"
        self._old: dict[bytes, _Entry] = {}
        self._new: dict[bytes, _Entry] = {}
        self.hits = 0
        self.hit_xattrs: Xattrs = None  # the xattrs recorded with the last hit
        self.hit_stored = 0  # the stored (compressed) bytes of the last hit's chunks
        self._big_size = big_size
        self._big: list[tuple[int, bytes]] = []
        self._hit: _Entry = (b"", 0, 0, 0, 0, 0, (), None, None)  # the last lookup's entry, for keep_hit
        # Packed items are reused only if made with the same layout, xattr setting and owner names.
        self._names = owner_names
        self._layout = {"items": ITEM_LAYOUT, "xattrs": xattrs_on}
        self._reuse = owner_names is not None
        self._header_changed = False

    def load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                unpacker = msgpack.Unpacker(
                    fh, raw=False, use_list=False, max_buffer_size=1 << 30, strict_map_key=False
                )
                first = next(unpacker, None)
                rows: Iterator[Any] = unpacker
                if isinstance(first, dict):
                    self._check_header(first)
                else:
                    self._header_changed = True  # a cache from before packed items
                    self._reuse = False
                    rows = itertools.chain([first], unpacker) if first is not None else iter(())
                old, reuse = self._old, self._reuse
                for record in rows:
                    if len(record) != _FIELDS or not reuse:
                        record = _normalized(record, reuse)
                    elif record[8] is not None and (
                        record[8].__class__ is not bytes or len(record[8]) <= _COUNT_AT
                    ):
                        record = (*record[:8], None)  # a damaged kept item: make it afresh
                    old[record[0]] = record
            if self._big_size:
                big_size = self._big_size
                self._big = [(e[2], path) for path, e in self._old.items() if e[2] >= big_size]
        except FileNotFoundError:
            return
        except Exception:
            # A damaged cache only costs speed: start over rather than fail a backup.
            self._old.clear()
            self._big.clear()

    def _check_header(self, header: dict[Any, Any]) -> None:
        layout = {"items": header.get("items"), "xattrs": header.get("xattrs")}
        names = self._names
        if names is None or layout != self._layout:
            self._reuse = False
        else:
            user_name, group_name = names
            users, groups = header.get("users") or {}, header.get("groups") or {}
            if any(user_name(uid) != name for uid, name in users.items()) or any(
                group_name(gid) != name for gid, name in groups.items()
            ):
                self._reuse = False  # a user or group was renamed: items must be made afresh
        self._header_changed = not self._reuse

    def lookup(self, path: bytes, st: os.stat_result, index: Any) -> Chunks | None:
        """The chunks of an unchanged file, or None; ``hit_xattrs`` then holds its xattrs.

        Setting or removing an xattr changes the ctime, so an unchanged ctime
        also means unchanged xattrs: a no-change backup need not list them
        again for files recorded as having none (the archiver records only
        that, never xattr values).
        """
        found = self._match(path, st, index)
        if found is None:
            return None
        entry, stored = found
        self.hits += 1
        self._hit = entry
        self.hit_xattrs = entry[7]
        self.hit_stored = stored
        return entry[6]

    def lookup_packed(self, path: bytes, st: os.stat_result, index: Any) -> tuple[int, memoryview] | None:
        """``(key count, packed item without its path)`` of an unchanged file whose item would
        come out the same, or None. A hit is carried over (no ``keep_hit`` needed)."""
        entry = self.match_packed(path, st)
        return self.take_packed(entry, index) if entry is not None else None

    def match_packed(self, path: bytes, st: os.stat_result) -> _Entry | None:
        """The first half of :meth:`lookup_packed`, without the index and without side effects:
        the entry whose kept item is ``st``'s, or None. A backup matches files with it while
        the key is being derived, before the index can be read (backup.py, prematch)."""
        entry = self._old.get(path)
        if entry is None:
            return None
        _path, ino, size, mtime, ctime, _age, _chunks, _xattrs, packed = entry
        if (
            packed.__class__ is not bytes  # None, or damaged: only costs speed
            or ino != st.st_ino
            or size != st.st_size
            or mtime != st.st_mtime_ns
            or ctime != st.st_ctime_ns
            or not packed.startswith(_MADE_FROM.pack(st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns))
        ):
            return None
        return entry

    def take_packed(self, entry: _Entry, index: Any) -> tuple[int, memoryview] | None:
        """The second half of :meth:`lookup_packed` for an entry :meth:`match_packed` gave:
        None if a chunk of it left the index, else the hit, carried over."""
        path, ino, size, mtime, ctime, age, chunks, xattrs, packed = entry
        stored = index.stored_total(chunks) if chunks else 0
        if chunks and not stored:
            return None  # a chunk is gone (compact, another repository state)
        assert packed is not None
        self.hits += 1
        self.hit_stored = stored
        self._new[path] = entry if not age else (path, ino, size, mtime, ctime, 0, chunks, xattrs, packed)
        return packed[_COUNT_AT], memoryview(packed)[_COUNT_AT + 1 :]

    def attach_packed(self, path: bytes, st: os.stat_result, count: int, rest: bytes) -> None:
        """Keep ``path``'s freshly packed item with the entry this backup made for it."""
        entry = self._new.get(path)
        if entry is not None and self._names is not None:
            made_from = _MADE_FROM.pack(st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns)
            self._new[path] = (*entry[:8], b"".join((made_from, bytes((count,)), rest)))

    def changed(self, path: bytes, st: os.stat_result, index: Any) -> bool:
        """Whether ``lookup`` would miss, without counting it as a lookup."""
        return self._match(path, st, index) is None

    def largest(self, count: int) -> list[bytes]:
        """The paths of the ``count`` biggest recorded files of at least ``big_size`` bytes, biggest first.

        Collected right after loading, in one pass over the entries.
        """
        return [path for _size, path in sorted(self._big, reverse=True)[:count]]

    def _match(self, path: bytes, st: os.stat_result, index: Any) -> tuple[_Entry, int] | None:
        entry = self._old.get(path)
        if entry is None:
            return None
        _path, ino, size, mtime, ctime, _age, chunks, _xattrs, _packed = entry
        if (ino, size, mtime, ctime) != (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return None
        stored = index.stored_total(chunks) if chunks else 0
        if chunks and not stored:
            return None  # a chunk is gone (compact, another repository state)
        return entry, stored

    def keep_hit(self, path: bytes, xattrs_on: bool) -> None:
        """Carry the last hit's entry over: the same object when nothing about it changed.

        ``save`` can then tell, by identity, that a backup changed nothing and
        skip rewriting the whole cache (50 ms of a no-change backup here).
        With xattrs off, "no xattrs" is not carried over: nothing checked it.
        The caller's ``lookup`` of ``path`` must just have hit.
        """
        entry = self._hit
        xattrs = entry[7]
        # Only "none" is ever carried (values from an older cache are dropped).
        kept = xattrs if xattrs_on and xattrs is not None and len(xattrs) == 0 else None
        if entry[5] or kept is not xattrs:
            entry = (*entry[:5], 0, entry[6], kept, entry[8])
        self._new[path] = entry

    def remember(self, path: bytes, st: os.stat_result, chunks: Chunks, xattrs: Xattrs = None) -> None:
        self._new[path] = (
            path,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            0,
            chunks,
            xattrs,
            None,
        )

    def _header(self, records: list[_Entry]) -> dict[str, Any]:
        """The owner names every packed item was made with (see the module docstring)."""
        header: dict[str, Any] = dict(self._layout)
        if self._names is not None:
            user_name, group_name = self._names
            owners = {_MADE_FROM.unpack_from(r[8])[1:3] for r in records if r[8] is not None}
            uids = {uid for uid, _gid in owners}
            gids = {gid for _uid, gid in owners}
            header["users"] = {uid: user_name(uid) for uid in uids}
            header["groups"] = {gid: group_name(gid) for gid in gids}
        return header

    def save(self) -> None:
        """Write atomically; ageing entries that this backup did not see."""
        new = self._new
        if (
            not self._header_changed
            and len(new) == len(self._old)
            and all(new.get(p) is e for p, e in self._old.items())
        ):
            return  # every entry was a hit carried over as it was: the file already says this
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records = list(new.values())
        records += [
            (*e[:5], e[5] + 1, *e[6:])
            for path, e in self._old.items()
            if path not in new and e[5] + 1 < MAX_AGE
        ]
        fd, tmp = new_temp_file(self.path.parent, ".files-")
        try:
            with os.fdopen(fd, "wb") as fh:
                packer = msgpack.Packer(use_bin_type=True)
                fh.write(packer.pack(self._header(records)))
                for start in range(0, len(records), 4096):  # a few MB at a time, not the whole cache
                    fh.write(b"".join(map(packer.pack, records[start : start + 4096])))
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _normalized(record: tuple[Any, ...], reuse: bool) -> _Entry:
    """An entry from a record of an older cache (no xattrs or packed item) or one whose
    packed item may not be reused."""
    path, ino, size, mtime, ctime, age, chunks, *rest = record
    xattrs = rest[0] if rest else None
    packed = rest[1] if reuse and len(rest) > 1 else None
    return (path, ino, size, mtime, ctime, age, chunks, xattrs, packed)
