"""Where vger keeps what it can rebuild: files caches, memos, monitoring state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "VGER_CACHE_DIR"


def cache_root() -> Path:
    """``VGER_CACHE_DIR``, else the platform's user cache folder (``~/.cache/vger``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vger"))


def new_temp_file(folder: Path, prefix: str) -> tuple[int, str]:
    """A new private file in ``folder`` for an atomic replace: ``(fd, path)``.

    What ``tempfile.mkstemp`` does, without importing ``tempfile`` (with
    ``random`` and ``shutil``, about 10 ms of every command's start-up).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _memo_path(name: str) -> Path | None:
    try:
        return cache_root() / name
    except Exception:  # no home folder to find a cache folder in: no memo
        return None


def read_json_memo(name: str) -> dict[str, Any]:
    """The JSON object kept as ``name`` in the cache folder, or {} when it is missing or
    damaged (or there is no cache folder): it is only a memo."""
    path = _memo_path(name)
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_json_memo(name: str, doc: dict[str, Any], keep: int) -> None:
    """Replace the memo ``name`` atomically with the last ``keep`` entries of ``doc``.

    Best effort: a read-only or full cache folder only costs what the memo saves.
    """
    path = _memo_path(name)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = new_temp_file(path.parent, f".{name}-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(list(doc.items())[-keep:]), fh)
        os.replace(tmp, path)
    except OSError:
        pass
