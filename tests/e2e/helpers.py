"""Helpers for the end-to-end tests: building trees, describing them, parsing CLI output."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def is_root() -> bool:
    return os.geteuid() == 0


def random_bytes(size: int, seed: int) -> bytes:
    """Deterministic, incompressible bytes (fast: BLAKE2b in counter mode would be slower)."""
    import random

    return random.Random(seed).randbytes(size)


def xattrs_supported(directory: Path) -> bool:
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.vger-probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()
    return True


def user_xattrs(path: bytes) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            return {}
        raise
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names) if n.startswith("user.")}


@dataclass
class Entry:
    """What a test compares about one filesystem entry."""

    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    atime_ns: int
    ino: int
    nlink: int
    sha256: str | None = None
    target: bytes | None = None
    rdev: int | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "chardev"),
        (stat.S_ISBLK, "blockdev"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "?"


def sha256_file(path: bytes | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def describe_tree(root: Path) -> dict[bytes, Entry]:
    """Every entry below ``root`` (exclusive), keyed by its relative path as bytes.

    Every entry is ``lstat``ed before any content is read, so reading does not
    disturb the atimes that are recorded.
    """
    root_b = os.fsencode(root)
    out: dict[bytes, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root_b):
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            kind = _kind(st.st_mode)
            entry = Entry(
                kind=kind,
                mode=stat.S_IMODE(st.st_mode),
                uid=st.st_uid,
                gid=st.st_gid,
                mtime_ns=st.st_mtime_ns,
                atime_ns=st.st_atime_ns,
                ino=st.st_ino,
                nlink=st.st_nlink,
                xattrs=user_xattrs(path),
            )
            if kind == "symlink":
                entry.target = os.readlink(path)
            elif kind in ("chardev", "blockdev"):
                entry.rdev = st.st_rdev
            out[os.path.relpath(path, root_b)] = entry
    # Contents only after every stat: reading one name of a hard-link group moves the atime of all.
    for rel, entry in out.items():
        if entry.kind == "file":
            entry.sha256 = sha256_file(os.path.join(root_b, rel))
    return out


def files_below(root: Path) -> set[str]:
    """Relative paths (text) of every non-directory entry below ``root``."""
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def tree_bytes(root: Path) -> int:
    """Sum of the apparent sizes of every file below ``root`` (what ``du -b`` reports for files)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Path -> (size, mtime_ns) for every entry below ``root``: equal states mean nothing was written."""
    state = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            state[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return state


def grep_tree(root: Path, needle: bytes) -> list[Path]:
    """Every file below ``root`` whose bytes contain ``needle``."""
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if needle in path.read_bytes():
                hits.append(path)
    return hits


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"stdout is not one JSON document: {exc}\n{proc.stdout}\nstderr:\n{proc.stderr}"
        ) from exc


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """A failure the user is expected to meet: exit ``code``, a short message, no traceback."""
    assert proc.returncode == code, (
        f"exit {proc.returncode}, wanted {code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    assert proc.stderr.strip(), "no message on stderr"
    return proc.stderr
