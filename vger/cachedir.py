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
