"""Path rules that keep a restore inside its destination.

The repository may be hostile: an item path may try ``..``, an absolute path,
or a symlink followed by a file "through" it. We therefore (1) accept only
normalized relative paths, (2) check that every parent of a target is a real
directory -- never a symlink -- before creating anything, and (3) create files
with ``O_NOFOLLOW | O_EXCL`` so even a race cannot redirect a write.
"""

from __future__ import annotations

import os
import stat

from vger.errors import RestoreError


def checked_relpath(raw: object) -> bytes:
    """Return ``raw`` if it is a safe relative path, else raise RestoreError."""
    if not isinstance(raw, bytes) or not raw:
        raise RestoreError("item has an empty or non-bytes path")
    shown = raw.decode("utf-8", "backslashreplace")
    if raw.startswith(b"/"):
        raise RestoreError(f"refusing absolute path {shown!r}")
    if b"\x00" in raw:
        raise RestoreError(f"refusing path with a NUL byte {shown!r}")
    parts = raw.split(b"/")
    if any(part in (b"", b".", b"..") for part in parts):
        raise RestoreError(f"refusing path that is not normalized or leaves the destination {shown!r}")
    return raw


class SafeTree:
    """Tracks which directories under ``root`` are known to be real directories."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self._real_dirs: set[bytes] = {b""}

    def target(self, rel: bytes) -> bytes:
        return os.path.join(self.root, rel)

    def ensure_parents(self, rel: bytes) -> None:
        """Make sure every parent of ``rel`` exists as a real directory (create missing ones)."""
        parent = os.path.dirname(rel)
        if parent in self._real_dirs:
            return
        self.ensure_parents(parent)
        path = self.target(parent)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o700)
            st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            shown = parent.decode("utf-8", "backslashreplace")
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise RestoreError(f"refusing to write below {shown!r}: it is {kind}")
        self._real_dirs.add(parent)

    def add_dir(self, rel: bytes) -> None:
        self._real_dirs.add(rel)

    def is_known_dir(self, rel: bytes) -> bool:
        return rel in self._real_dirs
