"""Turning ``os.stat`` results into items (and the owner-name lookups that go with it)."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from functools import lru_cache
from typing import Any

from vger.repository.items import Item


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def item_type(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def base_item(rel_path: bytes, kind: str, st: os.stat_result) -> Item:
    item: dict[str, Any] = {
        "path": rel_path,
        "type": kind,
        "mode": st.st_mode,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns,
        "atime": st.st_atime_ns,
        "ctime": st.st_ctime_ns,
    }
    user = user_name(st.st_uid)
    if user is not None:
        item["user"] = user
    group = group_name(st.st_gid)
    if group is not None:
        item["group"] = group
    return item


_NO_XATTR = {errno.ENOTSUP, errno.ENODATA, errno.EPERM, errno.EACCES}


def read_xattrs(path: bytes | int) -> list[list[bytes]]:
    """Extended attributes of ``path`` itself (a symlink's own, not its target's).

    ``path`` may be an open descriptor: the backup's workers read a file's
    attributes through the descriptor they read its content from, which saves
    a path lookup and keeps the syscalls off the walking thread.
    """
    follow = {} if isinstance(path, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(path, **follow)
    except OSError as exc:
        if exc.errno in _NO_XATTR or exc.errno == errno.ENOENT:
            return []
        raise
    result = []
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, **follow)
        except OSError:
            continue  # vanished or unreadable between list and get
        result.append([os.fsencode(name), value])
    return result
