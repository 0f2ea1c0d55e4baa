"""The files cache: skip reading files that have not changed since the last backup.

A file is "unchanged" when inode, size, mtime and ctime (nanoseconds) all match
what was recorded, and every chunk it had is still in the repository index
(``compact`` may have removed some). ctime is included because it cannot be
set from user space, so a file edited and then ``touch``ed back still gets read.

One cache file per (repository, source label) under the user's cache folder,
so concurrent backups of different sources never clobber each other's cache.
Entries not seen for ``MAX_AGE`` backups are dropped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import msgpack

from vger.cachedir import CACHE_ENV, cache_root

__all__ = ["CACHE_ENV", "FilesCache", "cache_root"]

MAX_AGE = 20

Chunks = Sequence[tuple[bytes, int]]  # lists when built, tuples when read back from the cache
# A file's xattrs as items store them; None: not recorded (xattrs were off, or
# the entry predates this field) and must be read from the file.
Xattrs = list[list[bytes]] | None
_Entry = tuple[int, int, int, int, int, Chunks, Xattrs]


class FilesCache:
    """``big_size``: remember, while loading, which recorded files are at least this big (0: none)."""

    def __init__(self, repo_id_hex: str, source_label: str, big_size: int = 0) -> None:
        name = hashlib.blake2b(source_label.encode(), digest_size=8).hexdigest()
        self.path = cache_root() / repo_id_hex / f"files-{name}"
        self._old: dict[bytes, _Entry] = {}
        self._new: dict[bytes, _Entry] = {}
        self.hits = 0
        self.hit_xattrs: Xattrs = None  # the xattrs recorded with the last hit
        self.hit_stored = 0  # the stored (compressed) bytes of the last hit's chunks
        self._big_size = big_size
        self._big: list[tuple[int, bytes]] = []
        self._hit: _Entry = (0, 0, 0, 0, 0, (), None)  # the last lookup's entry, for keep_hit

    def load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                unpacker = msgpack.Unpacker(fh, raw=False, use_list=False, max_buffer_size=1 << 30)
                big, big_size = self._big, self._big_size
                for path, ino, size, mtime, ctime, age, chunks, *rest in unpacker:
                    xattrs = rest[0] if rest else None
                    self._old[path] = (ino, size, mtime, ctime, age, chunks, xattrs)
                    if big_size and size >= big_size:
                        big.append((size, path))
        except FileNotFoundError:
            return
        except Exception:
            # A damaged cache only costs speed: start over rather than fail a backup.
            self._old.clear()
            self._big.clear()

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
        self.hit_xattrs = entry[6]
        self.hit_stored = stored
        return entry[5]

    def changed(self, path: bytes, st: os.stat_result, index: Any) -> bool:
        """Whether ``lookup`` would miss, without counting it as a lookup."""
        return self._match(path, st, index) is None

    def largest(self, count: int) -> list[bytes]:
        """The paths of the ``count`` biggest recorded files of at least ``big_size`` bytes, biggest first.

        Collected while loading, so a tree of millions of files costs no second pass.
        """
        return [path for _size, path in sorted(self._big, reverse=True)[:count]]

    def _match(self, path: bytes, st: os.stat_result, index: Any) -> tuple[_Entry, int] | None:
        entry = self._old.get(path)
        if entry is None:
            return None
        ino, size, mtime, ctime, _age, chunks, _xattrs = entry
        if (ino, size, mtime, ctime) != (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return None
        stored = 0
        stored_length = index.stored_length
        for chunk_id, _ in chunks:
            length = stored_length(chunk_id)
            if not length:
                return None  # the chunk is gone (compact, another repository state)
            stored += length
        return entry, stored

    def keep_hit(self, path: bytes, xattrs_on: bool) -> None:
        """Carry the last hit's entry over: the same object when nothing about it changed.

        ``save`` can then tell, by identity, that a backup changed nothing and
        skip rewriting the whole cache (50 ms of a no-change backup here).
        With xattrs off, "no xattrs" is not carried over: nothing checked it.
        The caller's ``lookup`` of ``path`` must just have hit.
        """
        entry = self._hit
        xattrs = entry[6]
        # Only "none" is ever carried (values from an older cache are dropped).
        kept = xattrs if xattrs_on and xattrs is not None and len(xattrs) == 0 else None
        if entry[4] or kept is not xattrs:
            entry = (*entry[:4], 0, entry[5], kept)
        self._new[path] = entry

    def remember(self, path: bytes, st: os.stat_result, chunks: Chunks, xattrs: Xattrs = None) -> None:
        self._new[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, 0, chunks, xattrs)

    def save(self) -> None:
        """Write atomically; ageing entries that this backup did not see."""
        new = self._new
        if len(new) == len(self._old) and all(new.get(p) is e for p, e in self._old.items()):
            return  # every entry was a hit carried over as it was: the file already says this
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".files-")
        try:
            with os.fdopen(fd, "wb") as fh:
                packer = msgpack.Packer(use_bin_type=True)
                for path, (ino, size, mtime, ctime, age, chunks, xattrs) in self._new.items():
                    fh.write(packer.pack((path, ino, size, mtime, ctime, age, chunks, xattrs)))
                for path, (ino, size, mtime, ctime, age, chunks, xattrs) in self._old.items():
                    if path not in self._new and age + 1 < MAX_AGE:
                        fh.write(packer.pack((path, ino, size, mtime, ctime, age + 1, chunks, xattrs)))
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
