"""Where vger keeps what it can rebuild: files caches, memos, monitoring state."""

from __future__ import annotations

import os
from pathlib import Path

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
