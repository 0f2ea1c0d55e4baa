"""What changed between two snapshots: entries added, removed, modified, or with changed metadata.

An entry is *modified* when its content differs: its type, its size or its
chunk list (ids and sizes). It has *changed metadata* when the content is the
same but any of :data:`METADATA_FIELDS` differ (``atime`` and ``ctime`` are
ignored: reading or ``chmod`` moves them without changing anything a restore
would recreate differently).

Memory: the older snapshot is loaded into a dict keyed by path whose values are
small :class:`Summary` tuples (digests instead of chunk and xattr lists; a few
hundred bytes per entry, so about 40 MB for 100 000 entries); the newer one is
streamed against it. A merge of the two sorted streams would need no dict, but
the item stream is only sorted *per source path*: a source with several paths
is walked in config order (``/srv`` before ``/etc``), and overlapping paths
repeat entries. The dict is correct for any order and any repetition, and the
bound stays proportional to one snapshot's entry count.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgpack

from vger.repository.items import Item

#: Metadata fields compared (in this order, which is also the order they are reported in).
METADATA_FIELDS = ("mode", "uid", "gid", "user", "group", "mtime", "xattrs", "target", "rdev")


class Summary(NamedTuple):
    """What diff needs of one item; content and xattrs as 16-byte digests."""

    type: str
    size: int
    content: bytes
    mode: int
    uid: int
    gid: int
    user: str | None
    group: str | None
    mtime: int
    xattrs: bytes | None
    target: bytes | None
    rdev: int | None


def _digest(value: Any) -> bytes:
    return hashlib.blake2b(msgpack.packb(value, use_bin_type=True), digest_size=16).digest()


def _text(value: Any) -> str | None:
    return sys.intern(value) if isinstance(value, str) else None


def summarize(item: Item) -> Summary:
    chunks = item.get("chunks")
    xattrs = item.get("xattrs")
    return Summary(
        type=sys.intern(str(item["type"])),
        size=int(item.get("size") or 0),
        content=_digest(chunks) if chunks else b"",
        mode=item.get("mode", 0),
        uid=item.get("uid", 0),
        gid=item.get("gid", 0),
        user=_text(item.get("user")),
        group=_text(item.get("group")),
        mtime=item.get("mtime", 0),
        xattrs=_digest(xattrs) if xattrs else None,
        target=item.get("target"),
        rdev=item.get("rdev"),
    )


def content_differs(old: Summary, new: Summary) -> bool:
    return (old.type, old.size, old.content) != (new.type, new.size, new.content)


def changed_fields(old: Summary, new: Summary) -> list[str]:
    return [name for name in METADATA_FIELDS if getattr(old, name) != getattr(new, name)]


def path_key(path: bytes) -> tuple[bytes, ...]:
    """Tree order (the walk's order): ``a/b`` sorts before ``a-b``, a folder right before its contents."""
    return tuple(path.split(b"/"))


def normalize_prefix(path: str | bytes | None) -> bytes:
    """A user-given PATH as stored (no leading or trailing slash); ``b""`` means everything."""
    if not path:
        return b""
    raw = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
    return raw.strip(b"/")


def below(path: bytes, prefix: bytes) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + b"/")


@dataclass
class DiffResult:
    added: list[bytes] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)
    modified: list[bytes] = field(default_factory=list)
    metadata_changed: list[tuple[bytes, list[str]]] = field(default_factory=list)

    def sort(self) -> None:
        self.added.sort(key=path_key)
        self.removed.sort(key=path_key)
        self.modified.sort(key=path_key)
        self.metadata_changed.sort(key=lambda entry: path_key(entry[0]))

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.modified or self.metadata_changed)

    def lines(self) -> list[tuple[bytes, str, str]]:
        """``(path, marker, suffix)`` for every change, in tree order of the path."""
        rows: list[tuple[bytes, str, str]] = [(p, "+", "") for p in self.added]
        rows += [(p, "-", "") for p in self.removed]
        rows += [(p, "M", "") for p in self.modified]
        rows += [(p, "m", f" ({', '.join(fields)})") for p, fields in self.metadata_changed]
        rows.sort(key=lambda row: (path_key(row[0]), row[1]))
        return rows


def diff_items(old: Iterable[Item], new: Iterable[Item], prefix: bytes = b"") -> DiffResult:
    """Compare two item streams (optionally only entries at or below ``prefix``)."""
    result = DiffResult()
    # path -> Summary of the old entry not yet matched; None once matched (so a
    # path repeated in a stream is reported once).
    pending: dict[bytes, Summary | None] = {}
    for item in old:
        path = item["path"]
        if below(path, prefix) and path not in pending:
            pending[path] = summarize(item)
    for item in new:
        path = item["path"]
        if not below(path, prefix):
            continue
        if path not in pending:
            result.added.append(path)
            pending[path] = None
            continue
        before = pending[path]
        if before is None:
            continue  # repeated in the new stream: already reported
        pending[path] = None
        after = summarize(item)
        if content_differs(before, after):
            result.modified.append(path)
        else:
            fields = changed_fields(before, after)
            if fields:
                result.metadata_changed.append((path, fields))
    result.removed = [path for path, summary in pending.items() if summary is not None]
    result.sort()
    return result
