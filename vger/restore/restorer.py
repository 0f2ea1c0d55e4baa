"""Restore a snapshot (or part of it) into a destination folder.

Order of work: the main thread walks the item stream and creates directories,
symlinks, FIFOs, devices and empty target files; file contents are written by a
pool of worker threads (chunk reads, decryption and decompression release the
GIL, and the kernel's cost of filling new pages is spread over several writers).
Small files go to the workers in batches, and each batch (or big file) reads its
chunks grouped by pack, one ranged read per run of neighbouring blobs
(:mod:`vger.restore.reads`), so a remote repository is not asked once per chunk.
Directory metadata is applied last, deepest first, so writing into a directory
does not disturb its restored mtime.
"""

from __future__ import annotations

import errno
import functools
import grp
import os
import pwd
import resource
import stat
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

import pathspec

from vger.errors import IntegrityError, ObjectNotFound, RestoreError, StorageError, VgerError
from vger.repository import format as fmt
from vger.repository.items import Item, display_path
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot
from vger.restore.direct import DirectWriter
from vger.restore.reads import Blob, Run, plan_runs
from vger.restore.safety import SafeTree, checked_relpath

OVERWRITE_MODES = ("never", "if-changed", "always")
# Files below this size are written in batches of up to BATCH_FILES files or
# BATCH_BYTES bytes; bigger files are a batch of their own.
BATCH_FILES = 128
BATCH_BYTES = 16 * 1024 * 1024


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
        self._direct = DirectWriter()
        self._pool: ThreadPoolExecutor | None = None
        self._batch: list[_FileJob] = []
        self._batch_bytes = 0
        self._batch_files = _batch_files(self.threads)

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
        # Each pending file holds an open descriptor: bounded well below ulimit -n.
        max_pending = self.threads * 8 + 2 * self._batch_files
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vger-restore")
        self._pool = pool
        self._batch, self._batch_bytes = [], 0
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
                    self._send_batch()
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
            self._send_batch()  # after an abort the batch's files are removed, not left empty
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
        if not future.done():
            self._send_batch()  # it may still sit in the batch being filled
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
            # Created by the worker that fills it: creating 20,000 files costs the
            # kernel more than writing them, and the walk must not wait for that.
            return self._queue(_FileJob(target, rel, item))
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

    # -- file contents (worker threads) ----------------------------------------
    def _queue(self, job: _FileJob) -> Future[int]:
        size = int(job.item.get("size", 0))
        if size >= BATCH_BYTES:
            self._submit([job])
            return job.future
        self._batch.append(job)
        self._batch_bytes += size
        if len(self._batch) >= self._batch_files or self._batch_bytes >= BATCH_BYTES:
            self._send_batch()
        return job.future

    def _send_batch(self) -> None:
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._submit(batch)

    def _submit(self, jobs: list[_FileJob]) -> None:
        assert self._pool is not None
        try:
            self._pool.submit(self._write_files, jobs)
        except RuntimeError as exc:  # the pool is shutting down
            for job in jobs:
                job.fail(RestoreError(f"restore stopped before this file was complete ({exc})"))
                self._finish_job(job)

    def _write_files(self, jobs: list[_FileJob]) -> None:
        """Fill a batch of files: plan the chunk reads by pack, read, decode, pwrite."""
        try:
            blobs: dict[bytes, Blob] = {}
            for number, job in enumerate(jobs):
                self._plan_file(number, job, blobs)
            for run in plan_runs(blobs.values()):
                if all(jobs[n].error is not None for blob in run.blobs for n, _o, _s in blob.targets):
                    continue
                if self._abort.is_set():
                    for job in jobs:
                        job.fail(RestoreError("restore stopped before this file was complete"))
                    break
                self._write_run(run, jobs)
        except BaseException as exc:  # never leave a future unresolved: the walk waits on it
            for job in jobs:
                job.fail(
                    exc if isinstance(exc, VgerError | OSError) else VgerError(f"internal error: {exc!r}")
                )
            raise
        finally:
            for job in jobs:
                self._finish_job(job)

    def _plan_file(self, number: int, job: _FileJob, blobs: dict[bytes, Blob]) -> None:
        try:
            job.fd = os.open(
                job.target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            job.ino = os.fstat(job.fd).st_ino
            size = int(job.item.get("size", 0))
            if size:
                os.ftruncate(job.fd, size)  # allocate once; writes then fill in place
            offset = 0
            for chunk_id, plain_size in job.item.get("chunks") or []:
                cid = bytes(chunk_id)
                blob = blobs.get(cid)
                if blob is None:
                    entry = self.repo.index.get(cid)
                    if entry is None:
                        raise IntegrityError(
                            f"chunk {cid.hex()[:16]} is not in the index (repository damaged?)"
                        )
                    blob = blobs[cid] = Blob(cid, entry)
                blob.targets.append((number, offset, int(plain_size)))
                offset += int(plain_size)
            if offset != size:
                raise IntegrityError(f"the chunks add up to {offset} bytes but the snapshot recorded {size}")
        except (VgerError, OSError) as exc:
            job.fail(exc)

    def _write_run(self, run: Run, jobs: list[_FileJob]) -> None:
        first = run.blobs[0].chunk_id.hex()[:16]
        try:
            data = self.repo.backend.get_range(fmt.pack_key(run.pack_id), run.start, run.end - run.start)
        except ObjectNotFound:
            error: VgerError = IntegrityError(
                f"pack {run.pack_id.hex()[:16]} holding chunk {first} is missing"
            )
        except StorageError as exc:
            error = IntegrityError(f"cannot read pack {run.pack_id.hex()[:16]}: {exc}")
        else:
            view = memoryview(data)
            for blob in run.blobs:
                self._write_blob(blob, view[blob.entry.offset - run.start :][: blob.entry.length], jobs)
            return
        for blob in run.blobs:
            for n, _offset, _size in blob.targets:
                jobs[n].fail(error)

    def _write_blob(self, blob: Blob, envelope: memoryview, jobs: list[_FileJob]) -> None:
        if all(jobs[n].error is not None for n, _o, _s in blob.targets):
            return
        try:
            data = self.repo.decode_blob(blob.chunk_id, envelope, blob.entry)
        except VgerError as exc:
            for n, _offset, _size in blob.targets:
                jobs[n].fail(exc)
            return
        for n, offset, plain_size in blob.targets:
            job = jobs[n]
            if job.error is not None:
                continue
            if len(data) != plain_size:
                job.fail(IntegrityError(f"chunk {blob.chunk_id.hex()[:16]} has the wrong size"))
                continue
            try:
                self._direct.write_at(job.fd, memoryview(data), offset)
            except OSError as exc:
                job.fail(exc)
                continue
            job.written += len(data)
            if self.progress:
                self.progress.bytes_read(len(data))

    def _finish_job(self, job: _FileJob) -> None:
        """Close one file: metadata and success, or remove it and report why."""
        if job.future.done():
            return
        size = int(job.item.get("size", 0))
        if job.error is None and job.written != size:
            job.fail(IntegrityError(f"restored {job.written} bytes but the snapshot recorded {size}"))
        try:
            if job.error is None:
                # Through the descriptor, not the path: meanwhile a later item of a
                # hostile snapshot may have put a symlink at this path (--overwrite).
                self._apply_metadata(job.fd, job.item)
        except OSError as exc:
            job.fail(exc)
        finally:
            if job.fd >= 0:
                try:
                    os.close(job.fd)
                except OSError:
                    pass
        if job.error is None:
            if self.progress:
                self.progress.file_done(job.target, job.written)
            job.future.set_result(job.written)
            return
        # Never leave a file that looks restored but holds wrong or partial data
        # (and never remove what another item put at this path since).
        try:
            if os.lstat(job.target).st_ino == job.ino:
                os.unlink(job.target)
        except OSError:
            pass
        error = job.error
        message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        job.future.set_exception(_FileFailed(display_path(job.rel), message))

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


@functools.lru_cache(maxsize=1024)
def _uid_of(name: str) -> int | None:
    # Cached: each lookup opens and parses /etc/passwd (two opens per restored
    # file were 43,000 of a 20,000-file restore's 71,000 openat calls).
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


@functools.lru_cache(maxsize=1024)
def _gid_of(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _uid(item: Item) -> int:
    name = item.get("user")
    uid = _uid_of(name) if isinstance(name, str) and name else None
    return int(item["uid"]) if uid is None else uid


def _gid(item: Item) -> int:
    name = item.get("group")
    gid = _gid_of(name) if isinstance(name, str) and name else None
    return int(item["gid"]) if gid is None else gid


class _FileFailed(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass
class _FileJob:
    """One regular file being restored: its open descriptor and what went wrong, if anything."""

    target: bytes
    rel: bytes
    item: Item
    fd: int = -1  # opened (created) by the worker
    ino: int = -1
    written: int = 0
    error: BaseException | None = None
    future: Future[int] = field(default_factory=Future)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc


def _batch_files(threads: int) -> int:
    """Files per batch so that every writer's open files fit in ``ulimit -n``.

    A writer holds its whole batch open while it reads the batch's packs; 32
    writers (a 16-core machine) with 128 files each would pass the usual soft
    limit of 1,024 descriptors. The soft limit is raised to the hard one first,
    as Go programs like restic do at start.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        return BATCH_FILES
    spare = max(0, soft - 128)  # packs, the repository lock, the item stream, stdio
    return max(1, min(BATCH_FILES, spare // max(1, threads)))
