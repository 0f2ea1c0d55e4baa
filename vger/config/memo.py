"""Remembers which schemas and configs already passed validation, across runs.

Importing jsonschema and walking the metaschema for every plugin's options cost
about 150 ms of each command's start-up, a fifth of a no-change backup, to
re-prove facts that only change when the config file, vger or a plugin does.
The memo stores digests of (vger version, schema, document) that validated
cleanly; anything else is validated in full, so an edit, an upgrade or a new
plugin is always checked. Only successes are stored: a failing config is
validated, and explained, every time. Losing or corrupting the file only costs
one full validation. Documents that hold secrets (a passphrase, a token, a url
password) are never remembered: a fast hash of them on disk would make the
secret guessable offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vger import __version__

_FILE = "validated"
_KEEP = 512  # digests kept; one per config and plugin schema in use


def digest(kind: str, *parts: Any) -> str:
    """A stable digest of JSON-able ``parts``, tagged with ``kind`` and vger's version."""
    text = json.dumps([kind, __version__, *parts], sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class ValidationMemo:
    """The digests of documents known to be valid, in ``<cache>/validated``."""

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / _FILE if folder is not None else None
        self._known: list[str] | None = None
        self._added = False

    def _load(self) -> list[str]:
        if self._known is None:
            self._known = []
            if self._path is not None:
                try:
                    text = self._path.read_text("ascii")
                except (OSError, UnicodeDecodeError):
                    text = ""
                self._known = [line for line in text.split() if len(line) == 32]
        return self._known

    def __contains__(self, key: str) -> bool:
        return key in self._load()

    def add(self, key: str) -> None:
        known = self._load()
        if key not in known:
            known.append(key)
            self._added = True

    def save(self) -> None:
        """Write new digests (best effort: a read-only cache only costs speed)."""
        if not self._added or self._path is None:
            return
        known = self._load()[-_KEEP:]
        tmp = self._path.with_name(f".{_FILE}.{os.getpid()}.tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text("\n".join(known) + "\n", "ascii")
            os.replace(tmp, self._path)
        except OSError:
            tmp.unlink(missing_ok=True)
        self._added = False


def default_memo() -> ValidationMemo:
    """The memo in vger's cache folder (``VGER_CACHE_DIR`` or the user cache dir)."""
    from vger.cachedir import cache_root

    try:
        return ValidationMemo(cache_root())
    except Exception:  # no home, no cache folder: validate in full every time
        return ValidationMemo(None)
