"""The grammar of storage keys, shared by every backend.

A key is ``/``-separated segments of ``[a-z0-9._-]`` (``packs/ab/ab12...``),
no segment empty, ``.`` or ``..``. Why so strict: the same repository must
mean the same thing on a case-insensitive disk, on an object store that treats
``/`` as an ordinary character, over SFTP and in a url; lower-case ASCII has one
spelling everywhere, while unicode has several (NFC/NFD) and upper case folds
on some filesystems. vger only ever writes such keys, so refusing anything else
costs nothing and closes path-escape holes (``../x``, ``/abs``) for free.
"""

from __future__ import annotations

import re

from vger.errors import PermanentStorageError

_SEGMENT = r"[a-z0-9._-]+"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def _bad_segment(text: str) -> bool:
    return any(segment in (".", "..") for segment in text.split("/"))


def check_key(key: str) -> str:
    """Return ``key`` if it follows the grammar, else raise :class:`~vger.errors.PermanentStorageError`."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or _bad_segment(key):
        raise PermanentStorageError(
            f"refusing storage key {key!r}: keys are '/'-separated segments of [a-z0-9._-]"
        )
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` without a trailing ``/`` (``""`` lists everything), or raise like :func:`check_key`."""
    if prefix == "":
        return ""
    body = prefix[:-1] if isinstance(prefix, str) and prefix.endswith("/") else prefix
    if not isinstance(body, str) or not _KEY.fullmatch(body) or _bad_segment(body):
        raise PermanentStorageError(
            f"refusing storage prefix {prefix!r}: keys are '/'-separated segments of [a-z0-9._-]"
        )
    return body
