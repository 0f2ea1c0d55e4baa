"""Turning the exceptions a storage library raises into vger's three storage errors.

Every layer above a backend decides what to do from the class of the error
alone: :class:`~vger.errors.ObjectNotFound` is an answer (the key is absent),
:class:`~vger.errors.TransientStorageError` is worth retrying (the retry
wrapper in :mod:`vger.storage.wrappers` does), and
:class:`~vger.errors.PermanentStorageError` stops the command with a one-line
message. Libraries speak ``OSError`` (fsspec, sshfs, s3fs and the standard
library all map their failures onto ``FileNotFoundError``,
``PermissionError``, ``TimeoutError``, ``ConnectionError`` and errno codes),
so one table serves every adapter. A backend author calls
:func:`map_storage_error` in an ``except`` clause, or wraps a block in
:func:`storage_errors`::

    from vger.storage.errors import storage_errors

    def get(self, key: str) -> bytes:
        with storage_errors(self.location, key):
            return self.fs.cat_file(self._path(key))
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
    VgerError,
)

ExceptionTypes = tuple[type[BaseException], ...]

# EISDIR/ENOTDIR: the key names a folder, or runs through an object as if it
# were a folder; either way no object has that key.
NOT_FOUND_ERRNOS = frozenset({errno.ENOENT, errno.EISDIR, errno.ENOTDIR})
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: Conditions a later attempt may not meet: interrupted or throttled calls,
#: timeouts, and the network failing under us (a server restarting refuses
#: connections for a few seconds, which is why ECONNREFUSED is here too).
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EINTR,
        errno.EAGAIN,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.EPIPE,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.ENETRESET,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
    }
)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first: libraries wrap the error worth naming (a refused
    connection, a missing bucket) in layers of their own, so adapters look through all of them."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _where(location: str, key: str) -> str:
    return f"{location} ({key})" if key else location


def map_storage_error(
    exc: BaseException,
    location: str,
    key: str = "",
    *,
    not_found: ExceptionTypes = (),
    transient: ExceptionTypes = (),
    permanent: ExceptionTypes = (),
) -> StorageError:
    """The vger error for ``exc``, raised while working on ``key`` at ``location``.

    Returns the error rather than raising it, so the caller writes
    ``raise map_storage_error(exc, ...) from exc`` and keeps the chain (shown
    with ``-vv``). A :class:`~vger.errors.StorageError` comes back unchanged.
    ``not_found``/``transient``/``permanent`` add a library's own exception
    classes (checked first, in that order). Anything that is not an
    ``OSError`` and not listed is *permanent*: an unknown failure is not worth
    retrying for minutes, and the message still says what happened.

    Messages name the location, the key and the reason, on one line:
    ``s3://host/bucket (packs/ab/ab12...): connection reset by peer``.
    """
    if isinstance(exc, StorageError):
        return exc
    where = _where(location, key)
    reason = _reason(exc)
    if not_found and isinstance(exc, not_found):
        return ObjectNotFound(f"{key or '.'}: not found in {location}")
    if transient and isinstance(exc, transient):
        return TransientStorageError(f"{where}: {reason}")
    if permanent and isinstance(exc, permanent):
        return PermanentStorageError(f"{where}: {reason}")
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return ObjectNotFound(f"{key or '.'}: not found in {location}")
    if isinstance(exc, TimeoutError | ConnectionError):
        return TransientStorageError(f"{where}: {reason}")
    if isinstance(exc, PermissionError):
        return PermanentStorageError(f"permission denied: {where}: {reason}")
    if isinstance(exc, OSError):
        code = exc.errno
        if code in NOT_FOUND_ERRNOS:
            return ObjectNotFound(f"{key or '.'}: not found in {location}")
        if code in NO_SPACE_ERRNOS:
            return PermanentStorageError(f"no space left on the device holding {where}")
        if code in DENIED_ERRNOS:
            return PermanentStorageError(f"permission denied: {where}: {reason}")
        if code in TRANSIENT_ERRNOS:
            return TransientStorageError(f"{where}: {reason}")
    return PermanentStorageError(f"{where}: {reason}")


@contextmanager
def storage_errors(
    location: str,
    key: str = "",
    *,
    not_found: ExceptionTypes = (),
    transient: ExceptionTypes = (),
    permanent: ExceptionTypes = (),
) -> Iterator[None]:
    """Run a block and re-raise what it raises as a vger storage error (see :func:`map_storage_error`).

    Other :class:`~vger.errors.VgerError`\\ s (``RepositoryExists``...) pass
    through, and so do ``KeyboardInterrupt`` and programming errors
    (``TypeError``, ``ValueError``...) unless listed, so a bug in an adapter
    still shows as a bug.
    """
    mapped: ExceptionTypes = (OSError, *not_found, *transient, *permanent)
    try:
        yield
    except VgerError:
        raise
    except mapped as exc:
        raise map_storage_error(
            exc, location, key, not_found=not_found, transient=transient, permanent=permanent
        ) from exc
