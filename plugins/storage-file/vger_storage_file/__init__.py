"""Local filesystem storage: the reference backend.

Crash safety comes from write order: every object is written to a temporary
name in its final folder, fsynced, renamed into place, and the folder fsynced,
so after a power cut an object is either whole or absent.
"""

from __future__ import annotations

import errno
import mmap
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from vger import hookimpl
from vger.directio import ALIGN, O_DIRECT, set_direct
from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryExists,
    StorageError,
)
from vger.interfaces import Buffer
from vger.storage.errors import map_storage_error
from vger.storage.keys import check_key, check_prefix

TEMP_MARKER = ".tmp-"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_full(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view) :]


#: Objects bigger than one staging buffer (packs, in practice) are written with
#: O_DIRECT: straight from the buffer to the disk, not copied into the page
#: cache. Filling fresh page-cache pages was a fifth of an initial backup's CPU
#: (the kernel's copy, 0.27 GB/s on a VM whose host backs new guest pages
#: lazily), and a backup's packs are not read back soon: caching them only
#: pushed the user's own files out of memory. fsync still follows, as before.
#: Parts are written as they arrive, a buffer at a time: a caller that hands them
#: over at a pace (the rate limiter) gets smooth writes, and a part sequence that
#: fails half-way is caught with the object still hidden.
_STAGE_BYTES = 4 * 1024 * 1024


class _StagedWriter:
    """Copies parts into an aligned buffer and writes it out in full blocks.

    The file starts buffered; when the first full buffer is written, O_DIRECT is
    switched on (``fcntl``). Where the filesystem refuses it (tmpfs, some FUSE
    and network mounts) the write is simply repeated buffered, and the backend
    stops trying. The last partial block goes through the page cache, since
    O_DIRECT cannot write a length that is not a block multiple.
    """

    def __init__(self, fd: int, stage: mmap.mmap, direct: bool) -> None:
        self.fd = fd
        self.stage = stage
        self.view = memoryview(stage)
        self.filled = 0
        self.try_direct = direct and bool(O_DIRECT)
        self.direct = False
        self.refused = False  # the filesystem said no to O_DIRECT

    def write(self, part: Buffer) -> None:
        src = memoryview(part).cast("B")
        while len(src):
            n = min(len(src), len(self.stage) - self.filled)
            self.view[self.filled : self.filled + n] = src[:n]
            self.filled += n
            src = src[n:]
            if self.filled == len(self.stage):
                self._flush(self.filled)

    def close(self) -> None:
        """Write what is left: whole blocks as they came, the tail through the page cache."""
        whole = self.filled - self.filled % ALIGN if self.direct else 0
        if whole:
            self._flush(whole)
        if self.filled:
            self._set_direct(False)
            _write_full(self.fd, self.view[: self.filled])
            self.filled = 0
        self.view.release()

    def _flush(self, length: int) -> None:
        if self.try_direct and not self.direct:
            self.try_direct = False
            self.direct = self._set_direct(True)
        try:
            _write_full(self.fd, self.view[:length])
        except OSError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
            # Accepted by fcntl, refused by the write (alignment, or the
            # filesystem): nothing was written, so write it again buffered.
            self._set_direct(False)
            self.refused = True
            _write_full(self.fd, self.view[:length])
        rest = self.filled - length
        if rest:
            self.view[:rest] = self.view[length : self.filled]
        self.filled = rest

    def _set_direct(self, on: bool) -> bool:
        if on == self.direct:
            return on
        if not set_direct(self.fd, on):
            self.refused = True
            return False
        self.direct = on
        return on


def _map_os_error(exc: OSError, key: str, location: str) -> StorageError:
    return map_storage_error(exc, location, key)


class FileBackend:
    """A repository in a local folder; keys map to relative paths."""

    name: ClassVar[str] = "file"
    schemes: ClassVar[tuple[str, ...]] = ("file",)
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "connections": {
                "description": "At most this many storage calls at once (0: no cap; a local disk queues "
                "requests itself, and vger's thread pools already follow limits.cpu.max_threads).",
                "type": "integer",
                "minimum": 0,
                "default": 0,
            },
            "direct_io": {
                "description": "Write objects over 4 MiB (packs) with O_DIRECT, bypassing the page cache: "
                "less CPU, and a backup does not push your files out of memory. Turned off by itself "
                "where the filesystem does not support it.",
                "type": "boolean",
                "default": True,
            },
        },
    }
    #: limits.io applies, not limits.network; one pack upload at a time (more did not help on disk).
    is_local: ClassVar[bool] = True
    connections: ClassVar[int] = 0

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        if url.startswith("file://"):
            parsed = urlparse(url)
            path = unquote(parsed.path)
        else:
            path = url
        self.root = os.path.abspath(os.path.expanduser(path))
        self.options = dict(options)
        self._made_dirs: set[str] = set()
        self._direct = bool(self.options.get("direct_io", True)) and bool(O_DIRECT)
        self._stages = threading.local()

    @property
    def location(self) -> str:
        return self.root

    def _path(self, key: str) -> str:
        check_key(key)
        if TEMP_MARKER in key:
            # list() hides such names as writes in progress: the object would be invisible.
            raise PermanentStorageError(
                f"refusing storage key {key!r}: {TEMP_MARKER!r} marks temporary files"
            )
        return os.path.join(self.root, key)

    def create(self) -> None:
        if os.path.isdir(self.root) and os.listdir(self.root):
            raise RepositoryExists(f"{self.root} already exists and is not empty; nothing was touched")
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise _map_os_error(exc, ".", self.root) from exc

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self._path(key)
        if offset < 0 or length < 0:
            raise PermanentStorageError(f"{self.root} ({key}): invalid range ({length} bytes at {offset})")
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        try:
            # pread of 0 bytes succeeds at any offset: check the size so an
            # empty range past the end is refused like any other.
            end = os.fstat(fd).st_size if length == 0 else offset + length
            data = os.pread(fd, length, offset) if length else b""
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        finally:
            os.close(fd)
        if len(data) != length or offset > end:
            raise PermanentStorageError(
                f"{self.root} ({key}): short read ({len(data)} of {length} bytes at {offset})"
            )
        return data

    def _ensure_dir(self, folder: str) -> None:
        if folder in self._made_dirs:
            return
        if not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            self._ensure_dir(parent)
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
            _fsync_dir(parent)
        self._made_dirs.add(folder)

    def put(self, key: str, data: Buffer) -> None:
        self.put_parts(key, [data])

    def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        """Atomic write of consecutive buffers, staged a few MiB at a time (no joining in memory).

        Whatever goes wrong before the rename -- including the part sequence
        itself raising -- removes the temporary file, so nothing is visible.
        """
        final = self._path(key)
        folder = os.path.dirname(final)
        tmp = f"{final}{TEMP_MARKER}{secrets.token_hex(6)}"
        try:
            self._ensure_dir(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                self._write_parts(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            _fsync_dir(folder)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise
            if exc.errno in (errno.EISDIR, errno.ENOTDIR):
                raise PermanentStorageError(
                    f"{self.root} ({key}): the key clashes with an existing folder or object"
                ) from exc
            raise _map_os_error(exc, key, self.root) from exc

    def _write_parts(self, fd: int, parts: Sequence[Buffer]) -> None:
        stage: mmap.mmap | None = getattr(self._stages, "buf", None)
        if stage is None:
            # page-aligned, as O_DIRECT needs, and reused: one per upload thread
            stage = self._stages.buf = mmap.mmap(-1, _STAGE_BYTES)
        writer = _StagedWriter(fd, stage, self._direct)
        try:
            for part in parts:
                writer.write(part)
            writer.close()
        finally:
            if writer.refused:
                self._direct = False

    def exists(self, key: str) -> bool:
        # isfile, not exists: a folder is only the prefix of other keys.
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        try:
            st = os.stat(self._path(key))
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"{key}: not found in {self.root}")
        return st.st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        _fsync_dir(os.path.dirname(path))

    def list(self, prefix: str) -> Iterator[str]:
        # The prefix is checked like a key so "../" cannot list outside the repository.
        folder = check_prefix(prefix)
        base = os.path.join(self.root, folder) if folder else self.root
        if not os.path.isdir(base):
            return
        root = Path(self.root)
        for dirpath, _dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(root).as_posix()
            for filename in filenames:
                if TEMP_MARKER in filename:
                    continue  # a write in progress (or left by a crash): not an object
                yield filename if rel == "." else f"{rel}/{filename}"

    def remove_incomplete(self) -> int:
        """Delete temporary files left by writers that died; returns bytes freed.

        Only safe while nobody writes: vger calls it from compact, under the
        exclusive lock, when no live backup can own a temporary file.
        """
        freed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                if TEMP_MARKER in filename:
                    path = os.path.join(dirpath, filename)
                    try:
                        freed += os.stat(path).st_size
                        os.unlink(path)
                    except FileNotFoundError:
                        continue
        return freed

    def close(self) -> None:
        return None


@hookimpl
def vger_register_storage_backends() -> list[type[Any]]:
    return [FileBackend]
