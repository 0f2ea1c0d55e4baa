"""Any fsspec filesystem as a vger storage backend.

Glossary:

object store
    A filesystem whose single upload is atomic (S3, GCS, Azure Blob): a reader
    sees the old object, the new one, or nothing, never a part. ``put`` writes
    in place; there are no folders, only key prefixes.
filesystem
    Everything else (SFTP, WebDAV, SMB...): a write is visible while it runs, so
    ``put`` writes ``<key>.tmp-<random>`` in the final folder and renames it
    over the key, and listings skip temporary names.
root
    The path inside the fsspec filesystem under which the repository's keys
    live (``bucket/prefix`` on S3, ``/srv/backup/repo`` on SFTP).

A plugin subclasses :class:`FsspecBackend`, sets ``name``, ``schemes``,
``options_schema`` and ``object_store``, and implements
:meth:`FsspecBackend.open_filesystem` (importing its fsspec library *there*,
so ``vger --help`` never pays for it). Library-specific exceptions that plain
``OSError`` subclasses do not cover go in :meth:`FsspecBackend.map_error`.

Thread safety: vger's upload threads call one instance at once. fsspec's
async filesystems (s3fs, sshfs) run every call as a coroutine on fsspec's own
event-loop thread and block the caller until it finishes, so concurrent calls
from several threads are safe and really overlap on the wire. The instance
creates its filesystem lazily, under a lock, on first use.
"""

from __future__ import annotations

import builtins
import logging
import posixpath
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryExists,
    StorageError,
    VgerError,
)
from vger.interfaces import Buffer
from vger.storage.errors import map_storage_error
from vger.storage.keys import check_key, check_prefix

log = logging.getLogger("vger.storage")

#: Marks a write in progress (filesystems only). Keys are ``[a-z0-9._-]``
#: segments written by vger, which never contain it.
TEMP_MARKER = ".tmp-"


def strip_userinfo(url: str) -> str:
    """The url without ``user:password@`` and query, fit for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal lost its brackets in urlsplit
        host = f"[{host}]"
    port: int | str | None
    try:
        port = parts.port
    except ValueError:  # not a number: keep what was written after the host
        port = parts.netloc.rsplit("@", 1)[-1].rpartition(":")[2]
    netloc = host + (f":{port}" if port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _log_loop_exception(loop: Any, context: dict[str, Any]) -> None:
    # asyncio's default handler prints "Task exception was never retrieved" with
    # a traceback when a library abandons a task on a dropped connection; the
    # call that owned it already failed with a clear message.
    log.debug("fsspec event loop: %s", context.get("exception") or context.get("message"))


def _quiet_loop(fs: Any) -> None:
    loop = getattr(fs, "loop", None)
    if loop is not None and hasattr(loop, "set_exception_handler"):
        loop.set_exception_handler(_log_loop_exception)


class FsspecBackend(ABC):
    """The storage protocol over an fsspec filesystem; subclass it, see the module docstring."""

    name: ClassVar[str] = ""
    schemes: ClassVar[tuple[str, ...]] = ()
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}
    #: True when a single upload is atomic (object stores); False to write a
    #: temporary name and rename it into place.
    object_store: ClassVar[bool] = False

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.url = url
        self.options = dict(options)
        self.root = self.root_path().rstrip("/")
        self._fs: Any = None
        self._unchecked: Any = None
        self._lock = threading.Lock()
        self._made_dirs: set[str] = set()

    # -- what a subclass provides ---------------------------------------------------

    @abstractmethod
    def open_filesystem(self) -> Any:
        """Build the fsspec filesystem (import the library here, not at module level)."""

    def root_path(self) -> str:
        """Where keys live inside the filesystem; by default the url's path."""
        return urlsplit(self.url).path

    def check_filesystem(self, fs: Any) -> None:
        """Run once after connecting: raise a clear error when the location cannot work."""
        return None  # optional: the default trusts the first real call to fail clearly

    def map_error(self, exc: BaseException, key: str) -> StorageError | None:
        """Map a library-specific exception; None falls back to the generic OSError rules."""
        return None

    def is_connection_lost(self, exc: BaseException) -> bool:
        """True when the filesystem object is dead and must be rebuilt (e.g. SSH disconnect)."""
        return False

    def close_filesystem(self, fs: Any) -> None:
        """Release the connection; the default lets fsspec's finalizers do it."""
        return None

    @property
    def location(self) -> str:
        return strip_userinfo(self.url)

    # -- plumbing -------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        fs = self._fs
        if fs is not None:
            return fs
        with self._lock:
            if self._fs is None:
                try:
                    # Built once, even when the check fails: a retry after a
                    # network error reuses it instead of starting a new session.
                    if self._unchecked is None:
                        self._unchecked = self.open_filesystem()
                        _quiet_loop(self._unchecked)
                    self.check_filesystem(self._unchecked)
                except Exception as exc:
                    raise self.error(exc, "") from exc
                self._fs, self._unchecked = self._unchecked, None
            return self._fs

    def error(self, exc: BaseException, key: str) -> VgerError:
        """The vger error for ``exc``; every message names the location and the reason."""
        if isinstance(exc, VgerError):
            return exc
        if self.is_connection_lost(exc):
            # The next call reconnects; the core's retry wrapper makes that call.
            self._fs = self._unchecked = None
            self._made_dirs.clear()
        specific = self.map_error(exc, key)
        if specific is not None:
            return specific
        return map_storage_error(exc, self.location, key)

    def path(self, key: str) -> str:
        check_key(key)
        if TEMP_MARKER in key and not self.object_store:
            # list() hides such names as writes in progress: the object would be invisible.
            raise PermanentStorageError(
                f"refusing storage key {key!r}: {TEMP_MARKER!r} marks temporary files"
            )
        return f"{self.root}/{key}" if self.root else key

    def _prefix_path(self, prefix: str) -> str:
        trimmed = check_prefix(prefix)
        return f"{self.root}/{trimmed}" if self.root and trimmed else (trimmed or self.root)

    def _key_of(self, path: str) -> str:
        path = path.rstrip("/")
        base = f"{self.root}/" if self.root else ""
        return path[len(base) :] if path.startswith(base) else path

    def _is_file(self, path: str) -> bool:
        try:
            info = self.fs.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False  # NotADirectoryError: the path runs through an object
        return bool(info.get("type") == "file")

    def _not_an_object(self, exc: BaseException, key: str, path: str) -> VgerError:
        """After a failure on ``path``: ObjectNotFound when nothing is stored there.

        SFTP servers answer "failure" for a folder that is only a key prefix;
        checking is cheaper than teaching every library's error codes.
        """
        mapped = self.error(exc, key)
        if not isinstance(mapped, PermanentStorageError):
            return mapped  # not found already, or the connection is the problem
        try:
            if not self._is_file(path):
                return ObjectNotFound(f"{key}: not found in {self.location}")
        except Exception:
            pass
        return mapped

    # -- the protocol ----------------------------------------------------------------

    def create(self) -> None:
        try:
            existing = next(self.list(""), None)
        except ObjectNotFound:
            existing = None
        if existing is not None:
            raise RepositoryExists(f"{self.location} already holds objects; nothing was touched")
        if not self.object_store and self.root:
            try:
                self.fs.makedirs(self.root, exist_ok=True)
            except Exception as exc:
                raise self.error(exc, "") from exc

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return bytes(self.fs.cat_file(path))
        except Exception as exc:
            raise self._not_an_object(exc, key, path) from exc

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset``; open + seek + read works everywhere.

        Not ``cat_file(path, start, end)``: sshfs ignores the range and returns
        the whole file. Object stores override this with a ranged GET.
        """
        with self.fs.open(path, "rb", cache_type="none") as fh:
            fh.seek(offset)
            pieces: list[bytes] = []
            remaining = length
            while remaining > 0:
                piece = fh.read(remaining)
                if not piece:
                    break
                pieces.append(piece)
                remaining -= len(piece)
        return b"".join(pieces)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self.path(key)
        if offset < 0 or length < 0:
            raise PermanentStorageError(f"{key}: invalid range ({offset}, {length})")
        if length == 0:
            # A zero-byte read succeeds anywhere in most libraries: check the
            # size so an empty range past the end is refused like any other.
            if offset > self.size(key):
                raise PermanentStorageError(f"{self.location} ({key}): offset {offset} is past the end")
            return b""
        try:
            data = self.read_range(path, offset, length)
        except Exception as exc:
            raise self._not_an_object(exc, key, path) from exc
        if len(data) != length:
            raise PermanentStorageError(
                f"{self.location} ({key}): short read ({len(data)} of {length} bytes at {offset})"
            )
        return data

    def put(self, key: str, data: Buffer) -> None:
        self.put_parts(key, [data])

    def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        """Atomic write of consecutive buffers, streamed part by part (never joined)."""
        final = self.path(key)
        if self.object_store:
            self._upload(final, final, parts, key)
            return
        folder = posixpath.dirname(final)
        tmp = f"{final}{TEMP_MARKER}{secrets.token_hex(6)}"
        try:
            if folder and folder not in self._made_dirs:
                self.fs.makedirs(folder, exist_ok=True)
                self._made_dirs.add(folder)
            self._upload(tmp, final, parts, key)
            self.rename(tmp, final)
        except Exception as exc:
            try:
                self.fs.rm_file(tmp)
            except Exception:
                pass
            if isinstance(exc, VgerError):
                raise
            raise self.error(exc, key) from exc

    def _upload(self, path: str, final: str, parts: Sequence[Buffer], key: str) -> None:
        try:
            fh = self.fs.open(path, "wb")
        except Exception as exc:
            raise self.error(exc, key) from exc
        try:
            for part in parts:
                if len(part):
                    fh.write(self.writable(part))
            self.finish_file(fh)
        except BaseException as exc:
            # Closing would publish the part written so far (object stores
            # commit on close): throw the upload away instead.
            discard = getattr(fh, "discard", None)
            try:
                if self.object_store and discard is not None:
                    discard()
                    fh.closed = True
                else:
                    fh.close()
            except Exception:
                pass
            if isinstance(exc, Exception) and not isinstance(exc, VgerError):
                raise self.error(exc, key) from exc
            raise

    def writable(self, part: Buffer) -> Buffer:
        """The buffer as the library's ``write`` accepts it (a memoryview by default)."""
        return memoryview(part).cast("B") if not isinstance(part, bytes) else part

    def finish_file(self, fh: Any) -> None:
        """Flush and close a written file; filesystems fsync first when the file can."""
        fsync = getattr(fh, "fsync", None)
        if fsync is not None and not self.object_store:
            fsync()
        fh.close()

    def rename(self, tmp: str, final: str) -> None:
        """Replace ``final`` by ``tmp`` atomically (filesystems only)."""
        self.fs.mv(tmp, final)

    def exists(self, key: str) -> bool:
        path = self.path(key)
        try:
            return self._is_file(path)
        except Exception as exc:
            raise self.error(exc, key) from exc

    def size(self, key: str) -> int:
        path = self.path(key)
        try:
            info = self.fs.info(path)
        except Exception as exc:
            raise self.error(exc, key) from exc
        if info.get("type") != "file":
            raise ObjectNotFound(f"{key}: not found in {self.location}")
        return int(info["size"])

    def delete(self, key: str) -> None:
        path = self.path(key)
        # S3 deletes a missing key without complaint; the protocol wants ObjectNotFound.
        if not self.exists(key):
            raise ObjectNotFound(f"{key}: not found in {self.location}")
        try:
            self.fs.rm_file(path)
        except Exception as exc:
            raise self._not_an_object(exc, key, path) from exc

    def list(self, prefix: str) -> Iterator[str]:
        base = self._prefix_path(prefix)
        try:
            paths = self._find(base) if self.object_store else [path for path, _ in self._walk(base)]
        except Exception as exc:
            raise self.error(exc, prefix) from exc
        inside = f"{base}/" if base else ""
        for path in paths:
            if path.startswith(inside) and not path.endswith("/") and TEMP_MARKER not in path:
                yield self._key_of(path)

    def _find(self, base: str) -> builtins.list[str]:
        found = self.fs.find(base, detail=False)
        return [str(p) for p in found]

    def _walk(self, folder: str) -> Iterator[tuple[str, int]]:
        """Recursive listing of (path, size) that raises, unlike fsspec's walk, which hides errors.

        A listing that silently drops a folder after a network hiccup would make
        ``check`` report healthy packs as missing.
        """
        try:
            entries = self.fs.ls(folder, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return  # the prefix holds nothing (or vanished while we walked)
        for entry in entries:
            name = str(entry["name"])
            if entry.get("type") == "directory":
                yield from self._walk(name)
            elif entry.get("type") == "file":
                yield name, int(entry.get("size") or 0)

    def remove_incomplete(self) -> int:
        """Delete temporary files that killed writers left; returns bytes freed.

        Only while nobody writes: vger calls it from compact under the exclusive lock.
        """
        if self.object_store:
            return 0
        freed = 0
        try:
            for path, size in list(self._walk(self.root)):
                if TEMP_MARKER in posixpath.basename(path):
                    try:
                        self.fs.rm_file(path)
                        freed += size
                    except FileNotFoundError:
                        continue
        except Exception as exc:
            raise self.error(exc, "") from exc
        return freed

    def close(self) -> None:
        fs, self._fs = self._fs or self._unchecked, None
        self._unchecked = None
        if fs is not None:
            try:
                self.close_filesystem(fs)
            except Exception:
                pass  # closing a dead connection must not turn success into failure
