"""Restore a snapshot (or part of it) into a destination folder.

Order of work: the main thread walks the item stream and creates directories,
symlinks, FIFOs, devices and empty target files; file contents are written by a
pool of worker threads (chunk reads, decryption and decompression release the
GIL, and the kernel's cost of filling new pages is spread over several writers).
Directory metadata is applied last, deepest first, so writing into a directory
does not disturb its restored mtime.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

import pathspec

from vger.errors import IntegrityError, RestoreError, VgerError
from vger.repository.items import Item, display_path
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot
from vger.restore.safety import SafeTree, checked_relpath

OVERWRITE_MODES = ("never", "if-changed", "always")


class Progress(Protocol):
    def file_done(self, path: bytes, size: int) -> None: ...

    def bytes_read(self, count: int) -> None: ...


@dataclass
class RestoreResult:
    files: int = 0
    bytes: int = 0
    entries: int = 0
    skipped: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Selection:
    """Which items to restore: PATH arguments plus gitignore-style include/exclude."""

    paths: Sequence[str] = ()
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()

    def compile(self) -> tuple[list[bytes], pathspec.PathSpec | None, pathspec.PathSpec | None]:
        prefixes = [os.fsencode(p.strip("/")) for p in self.paths if p.strip("/")]
        inc = pathspec.GitIgnoreSpec.from_lines(self.include) if self.include else None
        exc = pathspec.GitIgnoreSpec.from_lines(self.exclude) if self.exclude else None
        return prefixes, inc, exc


def _under(path: bytes, prefixes: list[bytes]) -> bool:
    return not prefixes or any(path == p or path.startswith(p + b"/") for p in prefixes)


def _file_selected(
    path: bytes, prefixes: list[bytes], include: pathspec.PathSpec | None, exclude: pathspec.PathSpec | None
) -> bool:
    """Whether the selection restores the (non-directory) entry at ``path``."""
    if not _under(path, prefixes):
        return False
    text = display_path(path)
    if exclude is not None and exclude.match_file(text):
        return False
    return include is None or include.match_file(text)


class Restorer:
    def __init__(
        self,
        repo: Repository,
        dest: str,
        *,
        selection: Selection = Selection(),
        overwrite: str = "never",
        dry_run: bool = False,
        threads: int = 0,
        progress: Progress | None = None,
        restore_owner: bool | None = None,
        xattrs: bool = True,
    ) -> None:
        if overwrite not in OVERWRITE_MODES:
            raise VgerError(f"--overwrite must be one of {', '.join(OVERWRITE_MODES)}")
        self.repo = repo
        self.dest = os.path.abspath(dest)
        self.selection = selection
        self.overwrite = overwrite
        self.dry_run = dry_run
        self.threads = threads if threads > 0 else max(2, (os.cpu_count() or 2) * 2)
        self.progress = progress
        self.restore_owner = os.geteuid() == 0 if restore_owner is None else restore_owner
        self.xattrs = xattrs
        self._abort = threading.Event()

    def run(self, snap: Snapshot) -> RestoreResult:
        result = RestoreResult()
        prefixes, include, exclude = self.selection.compile()
        if not self.dry_run:
            os.makedirs(self.dest, exist_ok=True)
        tree = SafeTree(os.fsencode(self.dest))
        dirs: list[tuple[bytes, Item]] = []
        pending: deque[tuple[bytes, Future[int]]] = deque()
        # Files still being written, by path: a hard link to one waits for it,
        # so it never shares an inode that a failed write is about to drop.
        writing: dict[bytes, Future[int]] = {}
        # Selected hard links whose first link (the item holding the content) is
        # not selected, by that first link's path: restored after the main pass.
        orphans: dict[bytes, list[tuple[bytes, Item]]] = {}
        # With --include: directories that did not match, kept to give their
        # metadata to the ones that were created as parents of included files.
        parents_only: dict[bytes, Item] = {}
        max_pending = self.threads * 8
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vger-restore")
        # Set when the walk stops early (a broken item stream, ^C): queued and
        # running file writes then remove their files instead of leaving them
        # empty or partial.
        self._abort = threading.Event()
        completed = False
        try:
            for item in self.repo.iter_items(snap):
                raw = item.get("path")
                try:
                    rel = checked_relpath(raw)
                except RestoreError as exc:
                    result.errors.append((display_path(raw) if isinstance(raw, bytes) else "?", str(exc)))
                    continue
                if not _under(rel, prefixes):
                    continue
                shown = display_path(rel)
                is_dir = item["type"] == "dir"
                text = shown + ("/" if is_dir else "")
                if exclude is not None and exclude.match_file(text):
                    continue
                if include is not None and not include.match_file(text):
                    if is_dir:
                        # Not restored for its own sake; if an included file lands
                        # below it, it gets its metadata at the end.
                        parents_only[rel] = item
                    continue
                problem = item_problem(item)
                if problem is not None:
                    result.errors.append((shown, f"malformed item in the snapshot: {problem}"))
                    continue
                if (
                    not self.dry_run
                    and item["type"] == "hardlink"
                    and not _file_selected(item["target"], prefixes, include, exclude)
                ):
                    orphans.setdefault(item["target"], []).append((rel, item))
                    continue
                if self.dry_run:
                    result.planned.append(shown)
                    result.entries += 1
                    if item["type"] == "file":
                        result.files += 1
                        result.bytes += int(item.get("size", 0))
                    continue
                if item["type"] == "hardlink" and item["target"] in writing:
                    wait([writing[item["target"]]])
                future = self._attempt(tree, rel, item, dirs, result, pool)
                if future is not None:
                    pending.append((rel, future))
                    writing[rel] = future
                    while len(pending) > max_pending or (pending and pending[0][1].done()):
                        self._collect(pending.popleft(), writing, result)
            while pending:
                self._collect(pending.popleft(), writing, result)
            if orphans:
                self._restore_orphans(snap, orphans, tree, dirs, result, pool)
            completed = True
        finally:
            if not completed:
                self._abort.set()
            pool.shutdown(wait=True)
        dirs.extend((rel, item) for rel, item in parents_only.items() if tree.is_known_dir(rel))
        # Directories last, deepest first: writing into a directory changes its mtime.
        for rel, item in sorted(dirs, key=lambda d: d[0].count(b"/"), reverse=True):
            try:
                self._apply_metadata(tree.target(rel), item)
            except OSError as exc:
                result.errors.append((display_path(rel), f"cannot set metadata: {exc.strerror}"))
        return result

    def _restore_orphans(
        self,
        snap: Snapshot,
        orphans: dict[bytes, list[tuple[bytes, Item]]],
        tree: SafeTree,
        dirs: list[tuple[bytes, Item]],
        result: RestoreResult,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Hard links whose first link was left out of the selection.

        Linking them to whatever sits at the first link's path in the destination
        would give them someone else's content (or fail). Instead the first of
        each group gets the group's content and the others link to it. The first
        link's item (with the chunk list) is found with one more pass over the
        item stream; only restores that select such links pay for it.
        """
        for item in self.repo.iter_items(snap):
            if not orphans:
                break
            if item.get("type") != "file":
                continue
            links = orphans.pop(item["path"], None)
            if links is None or item_problem(item) is not None:
                if links is not None:
                    orphans[item["path"]] = links  # reported below as missing
                continue
            (first_rel, _first_link), rest = links[0], links[1:]
            # One inode: the first link's metadata is the group's; only the path differs.
            content = {**item, "path": first_rel}
            future = self._attempt(tree, first_rel, content, dirs, result, pool)
            if future is not None:
                self._collect((first_rel, future), {}, result)
            for rel, link in rest:
                self._attempt(tree, rel, {**link, "target": first_rel}, dirs, result, pool)
        for links in orphans.values():
            for rel, _link in links:
                result.errors.append(
                    (display_path(rel), "the file this hard link points to is not in the snapshot")
                )

    def _attempt(
        self,
        tree: SafeTree,
        rel: bytes,
        item: Item,
        dirs: list[tuple[bytes, Item]],
        result: RestoreResult,
        pool: ThreadPoolExecutor,
    ) -> Future[int] | None:
        """``_restore_item`` with its failures recorded in ``result``; counts what it created."""
        skipped = len(result.skipped)
        try:
            future = self._restore_item(tree, rel, item, dirs, result, pool)
        except (RestoreError, IntegrityError) as exc:
            result.errors.append((display_path(rel), str(exc)))
            return None
        except OSError as exc:
            result.errors.append((display_path(rel), exc.strerror or str(exc)))
            return None
        if len(result.skipped) == skipped:
            result.entries += 1
        return future

    def _collect(
        self, done: tuple[bytes, Future[int]], writing: dict[bytes, Future[int]], result: RestoreResult
    ) -> None:
        rel, future = done
        if writing.get(rel) is future:
            del writing[rel]
        try:
            written = future.result()
        except _FileFailed as exc:
            result.errors.append((exc.path, exc.message))
            result.entries -= 1  # counted when it was created; it was removed again
            return
        result.files += 1
        result.bytes += written

    # -- one item ---------------------------------------------------------------
    def _prepare_target(self, tree: SafeTree, rel: bytes, item: Item, result: RestoreResult) -> bool:
        """Clear the way for a new entry at ``rel``; False means skip it (overwrite rules)."""
        if tree.is_known_dir(rel):
            raise RestoreError("the snapshot lists this path twice; refusing to replace a restored directory")
        tree.ensure_parents(rel)
        target = tree.target(rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return True
        if stat.S_ISDIR(st.st_mode):
            if item["type"] == "dir":
                return True
            raise RestoreError("a directory is in the way; remove it or restore elsewhere")
        if self.overwrite == "never":
            result.skipped.append(display_path(rel))
            return False
        if (
            self.overwrite == "if-changed"
            and item["type"] == "file"
            and stat.S_ISREG(st.st_mode)
            and st.st_size == item.get("size")
            and st.st_mtime_ns == item.get("mtime")
        ):
            result.skipped.append(display_path(rel))
            return False
        os.unlink(target)
        return True

    def _restore_item(
        self,
        tree: SafeTree,
        rel: bytes,
        item: Item,
        dirs: list[tuple[bytes, Item]],
        result: RestoreResult,
        pool: ThreadPoolExecutor,
    ) -> Future[int] | None:
        kind = item["type"]
        if not self._prepare_target(tree, rel, item, result):
            return None
        target = tree.target(rel)
        if kind == "dir":
            try:
                os.mkdir(target, 0o700)
            except FileExistsError:
                pass
            tree.add_dir(rel)
            dirs.append((rel, item))
            return None
        if kind == "file":
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            return pool.submit(self._write_file, fd, target, rel, item)
        if kind == "symlink":
            link = item.get("target")
            if not isinstance(link, bytes):
                raise RestoreError("symlink without a target")
            os.symlink(link, target)
        elif kind == "hardlink":
            first = checked_relpath(item.get("target"))
            source = tree.target(first)
            tree.ensure_parents(first)
            try:
                st = os.lstat(source)
            except FileNotFoundError:
                raise RestoreError("hard link target was not restored") from None
            if not stat.S_ISREG(st.st_mode):
                raise RestoreError("hard link target is not a restored regular file")
            os.link(source, target, follow_symlinks=False)
            return None  # shares the first link's inode and metadata
        elif kind == "fifo":
            os.mkfifo(target, 0o600)
        elif kind == "device":
            if not self.restore_owner:
                raise RestoreError("device nodes can only be restored as root; skipped")
            os.mknod(target, item["mode"], int(item.get("rdev", 0)))
        self._apply_metadata(target, item)
        return None

    def _write_file(self, fd: int, target: bytes, rel: bytes, item: Item) -> int:
        written = 0
        ino = os.fstat(fd).st_ino
        try:
            try:
                chunks = item.get("chunks") or []
                size = int(item.get("size", 0))
                if size:
                    os.ftruncate(fd, size)  # allocate once; writes then fill in place
                for chunk_id, plain_size in chunks:
                    if self._abort.is_set():
                        raise RestoreError("restore stopped before this file was complete")
                    data = self.repo.read_blob(bytes(chunk_id))
                    if len(data) != plain_size:
                        raise IntegrityError(f"chunk {bytes(chunk_id).hex()[:16]} has the wrong size")
                    view = memoryview(data)
                    while view:
                        n = os.pwrite(fd, view, written)
                        written += n
                        view = view[n:]
                    if self.progress:
                        self.progress.bytes_read(len(data))
                if written != size:
                    raise IntegrityError(f"restored {written} bytes but the snapshot recorded {size}")
                # Through the descriptor, not the path: meanwhile a later item of a
                # hostile snapshot may have put a symlink at this path (--overwrite).
                self._apply_metadata(fd, item)
            finally:
                os.close(fd)
        except (VgerError, OSError) as exc:
            # Never leave a file that looks restored but holds wrong or partial data
            # (and never remove what another item put at this path since).
            try:
                if os.lstat(target).st_ino == ino:
                    os.unlink(target)
            except OSError:
                pass
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise _FileFailed(display_path(rel), message) from exc
        if self.progress:
            self.progress.file_done(target, written)
        return written

    # -- metadata -----------------------------------------------------------------
    def _apply_metadata(self, target: bytes | int, item: Item) -> None:
        """Owner, xattrs, mode and times of ``target`` (a path, never followed, or an open fd)."""
        kind = item["type"]
        is_link = kind == "symlink"
        # follow_symlinks cannot be combined with a file descriptor.
        # Paths: never follow a symlink. File descriptors: the flag must stay True
        # (os functions reject follow_symlinks=False together with an fd).
        follow = isinstance(target, int)
        if self.restore_owner:
            uid = _uid(item)
            gid = _gid(item)
            os.chown(target, uid, gid, follow_symlinks=follow)
        if self.xattrs and item.get("xattrs"):
            for name, value in item["xattrs"]:
                try:
                    os.setxattr(target, name, value, follow_symlinks=follow)
                except OSError as exc:
                    if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                        raise
        if not is_link:
            os.chmod(target, stat.S_IMODE(item["mode"]))
        os.utime(target, ns=(int(item["atime"]), int(item["mtime"])), follow_symlinks=follow)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def item_problem(item: Item) -> str | None:
    """Why ``item`` (from a possibly hostile repository) cannot be restored, or None.

    Checked before anything is created, so a malformed entry is reported and
    skipped instead of crashing the restore half-way.
    """
    kind = item["type"]
    for name in ("mode", "uid", "gid", "atime", "mtime"):
        if not _is_int(item.get(name)):
            return f"field {name!r} is missing or not an integer"
    for name in ("user", "group"):
        if item.get(name) is not None and not isinstance(item[name], str):
            return f"field {name!r} is not text"
    xattrs = item.get("xattrs")
    if xattrs is not None and not (
        isinstance(xattrs, list)
        and all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], (bytes, str)) and isinstance(x[1], bytes)
            for x in xattrs
        )
    ):
        return "malformed xattrs"
    if kind == "file":
        size, chunks = item.get("size", 0), item.get("chunks") or []
        if not _is_int(size) or size < 0:
            return "size is not a non-negative integer"
        if not isinstance(chunks, list) or not all(
            isinstance(c, list)
            and len(c) == 2
            and isinstance(c[0], bytes)
            and len(c[0]) == 32
            and _is_int(c[1])
            and c[1] >= 0
            for c in chunks
        ):
            return "malformed chunk list"
        total = sum(c[1] for c in chunks)
        if total != size:
            return f"its chunks add up to {total} bytes but its size is {size}"
    elif kind in ("symlink", "hardlink"):
        if not isinstance(item.get("target"), bytes) or not item["target"]:
            return "link without a target"
    elif kind == "device" and not _is_int(item.get("rdev", 0)):
        return "device number is not an integer"
    return None


def _uid(item: Item) -> int:
    name = item.get("user")
    if name:
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            pass
    return int(item["uid"])


def _gid(item: Item) -> int:
    name = item.get("group")
    if name:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            pass
    return int(item["gid"])


class _FileFailed(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
