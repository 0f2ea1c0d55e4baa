"""The installed ``vger`` entry points, remembered between runs.

Finding them means reading the metadata of every installed distribution
(``importlib.metadata``, which itself imports ``email``, ``zipfile`` and
``csv``): about 60 ms of every command's start-up here, a tenth of a no-change
backup. Like stevedore, we remember the answer keyed on the import path and
the modification time of each folder on it. Installing, upgrading or removing
a distribution adds or removes a folder (or a ``.dist-info``) in its
site-packages, which changes that folder's mtime, so the next run reads the
metadata again. A missing or damaged memo only costs that full read.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vger import __version__
from vger.cachedir import new_temp_file

_FORMAT = 1
_SETTLE_NS = 2_000_000_000


@dataclass(frozen=True)
class FoundEntryPoint:
    """One entry point: ``value`` is ``module`` or ``module:attribute.path``."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        module_name, _, attribute = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            target = getattr(target, part)
        return target


def find(group: str, memo_folder: Path | None) -> tuple[FoundEntryPoint, ...]:
    """Entry points of ``group`` sorted by name, from the memo when the import path is unchanged."""
    state = _path_state()
    memo = _memo_path(memo_folder, group) if memo_folder is not None else None
    if memo is not None:
        remembered = _read(memo, state)
        if remembered is not None:
            return remembered
    found = _scan(group)
    # A folder changed in the last seconds may change again within the same
    # timestamp tick (ext4 stamps are coarse), leaving its mtime as recorded:
    # remember nothing until the import path has been still for a while.
    settled = time.time_ns() - _SETTLE_NS
    if memo is not None and all(mtime is None or mtime < settled for _path, mtime in state):
        _write(memo, state, found)
    return found


def _path_state() -> list[list[Any]]:
    """Each import path entry with its mtime (None when it cannot be read)."""
    state: list[list[Any]] = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.curdir)
        try:
            mtime: int | None = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        state.append([path, mtime])
    return state


def _memo_path(folder: Path, group: str) -> Path:
    # One file per interpreter and import path: two venvs never share (or fight over) one.
    which = json.dumps([sys.executable, group, [p for p, _ in _path_state()]])
    return folder / f"entry-points-{hashlib.blake2b(which.encode(), digest_size=8).hexdigest()}.json"


def _scan(group: str) -> tuple[FoundEntryPoint, ...]:
    import importlib.metadata

    # The same distribution can be visible twice (e.g. an editable install seen
    # through two path entries); identical (name, value, distribution) are one.
    seen: set[tuple[str, str, str]] = set()
    found = []
    for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        dist = ep.dist
        item = FoundEntryPoint(
            name=ep.name,
            value=ep.value,
            distribution=dist.name if dist is not None else "unknown",
            version=dist.version if dist is not None else "?",
        )
        key = (item.name, item.value, item.distribution)
        if key not in seen:
            seen.add(key)
            found.append(item)
    return tuple(found)


def _read(memo: Path, state: list[list[Any]]) -> tuple[FoundEntryPoint, ...] | None:
    try:
        doc = json.loads(memo.read_text("utf-8"))
        if doc["format"] != _FORMAT or doc["vger"] != __version__ or doc["path"] != state:
            return None
        return tuple(FoundEntryPoint(*(str(field) for field in row)) for row in doc["entry_points"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(memo: Path, state: list[list[Any]], found: tuple[FoundEntryPoint, ...]) -> None:
    doc = {
        "format": _FORMAT,
        "vger": __version__,
        "path": state,
        "entry_points": [[e.name, e.value, e.distribution, e.version] for e in found],
    }
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = new_temp_file(memo.parent, ".entry-points-")
    except OSError:
        return  # a read-only cache folder only costs the scan next time
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, memo)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
