"""Local filesystem storage: the reference backend.

Crash safety comes from write order: every object is written to a temporary
name in its final folder, fsynced, renamed into place, and the folder fsynced,
so after a power cut an object is either whole or absent.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from vger import hookimpl
from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryExists,
    StorageError,
    TransientStorageError,
)
from vger.interfaces import Buffer

TEMP_MARKER = ".tmp-"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_IOV_MAX = 1024  # POSIX minimum for writev's vector length on Linux


def _write_all(fd: int, parts: Sequence[Buffer]) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        batch = views[:_IOV_MAX]
        written = os.writev(fd, batch)
        # drop fully written buffers, trim a partially written one
        while written and views:
            head = views[0]
            if written >= len(head):
                written -= len(head)
                views.pop(0)
            else:
                views[0] = head[written:]
                written = 0


def _map_os_error(exc: OSError, key: str, location: str) -> StorageError:
    # EISDIR/ENOTDIR: the key names a folder, or runs through an object as if
    # it were a folder; either way no object has that key.
    if exc.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
        return ObjectNotFound(f"{key}: not found in {location}")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PermanentStorageError(f"no space left on the device holding {location} ({key})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermanentStorageError(f"permission denied writing {location} ({key}): {exc.strerror}")
    if exc.errno in (errno.EINTR, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT):
        return TransientStorageError(f"{location} ({key}): {exc.strerror}")
    return PermanentStorageError(f"{location} ({key}): {exc.strerror or exc}")


class FileBackend:
    """A repository in a local folder; keys map to relative paths."""

    name: ClassVar[str] = "file"
    schemes: ClassVar[tuple[str, ...]] = ("file",)
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        if url.startswith("file://"):
            parsed = urlparse(url)
            path = unquote(parsed.path)
        else:
            path = url
        self.root = os.path.abspath(os.path.expanduser(path))
        self.options = dict(options)
        self._made_dirs: set[str] = set()

    @property
    def location(self) -> str:
        return self.root

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/") or "\x00" in key:
            raise PermanentStorageError(f"refusing unsafe key {key!r}")
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
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        try:
            data = os.pread(fd, length, offset)
        except OSError as exc:
            raise _map_os_error(exc, key, self.root) from exc
        finally:
            os.close(fd)
        if len(data) != length:
            raise StorageError(f"{key}: short read ({len(data)} of {length} bytes at {offset})")
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
        """Atomic write of consecutive buffers (``os.writev``, no joining in memory)."""
        final = self._path(key)
        folder = os.path.dirname(final)
        tmp = f"{final}{TEMP_MARKER}{secrets.token_hex(6)}"
        try:
            self._ensure_dir(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            _fsync_dir(folder)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if exc.errno in (errno.EISDIR, errno.ENOTDIR):
                raise PermanentStorageError(
                    f"{self.root} ({key}): the key clashes with an existing folder or object"
                ) from exc
            raise _map_os_error(exc, key, self.root) from exc

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
        base = self._path(prefix.rstrip("/")) if prefix else self.root
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
