"""Matching walked entries against the files cache while the key is being derived.

Why: with the walk done ahead (walkahead.py) and the files cache loaded
while Argon2id runs (Repository.open's ``meanwhile``), the main thread still
sat idle for about 60 ms waiting for the key, and then spent 67 ms of a
0.29 s no-change backup on the first root's entries: rebuilding each
``stat_result`` from the child's records and comparing it with the cache.
Neither needs the key nor the index, so both now happen in that idle time,
for up to ``LIMIT`` entries of the first root. What needs the index (are the
file's chunks still stored, and how big are they) stays with the archiver
(:meth:`FilesCache.take_packed`), as does everything that writes.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vger.backup.filecache import FilesCache
from vger.backup.walkahead import WalkAhead, walk_entries
from vger.backup.walker import Entry, Walker, WalkOptions

#: Entries matched ahead at most (about 300 bytes each while they wait).
LIMIT = 50_000

# What ``Prematched.pairs`` holds beside an entry: the files-cache entry whose kept
# item is that file's (see FilesCache.match_packed), or None (no such entry, or not
# a regular file with one link). UNTRIED marks entries nobody matched yet.
UNTRIED = object()


@dataclass
class Prematched:
    """The first entries of ``root``'s walk, matched; ``rest`` goes on from there."""

    root: str
    pairs: list[tuple[Entry, Any]]
    rest: Iterator[Entry]
    walker: Walker  # the in-process walker the walk falls back on (its errors count)
    used: bool = False  # a root listed twice is walked twice, as in-process


def prematch(
    root: str, options: WalkOptions, ahead: WalkAhead, cache: FilesCache, limit: int = LIMIT
) -> Prematched:
    """Take up to ``limit`` entries of ``root`` from ``ahead`` and match each against ``cache``."""
    walker = Walker(options)
    entries = walk_entries(root, walker, ahead)
    pairs: list[tuple[Entry, Any]] = []
    match = cache.match_packed
    isreg = stat.S_ISREG
    for entry in entries:
        st = entry.st
        pairs.append((entry, match(entry.path, st) if st.st_nlink == 1 and isreg(st.st_mode) else None))
        if len(pairs) >= limit:
            break
    return Prematched(root, pairs, entries, walker)


def paired(
    root: str, walker: Walker, ahead: WalkAhead | None, pre: Prematched | None
) -> Iterator[tuple[Entry, Any]]:
    """``root``'s entries, each with its match if it was matched ahead, else with UNTRIED."""
    if pre is not None and pre.root == root and not pre.used:
        pre.used = True
        yield from pre.pairs
        pre.pairs = []
        entries: Iterator[Entry] = pre.rest
    else:
        entries = walk_entries(root, walker, ahead)
    for entry in entries:
        yield entry, UNTRIED
