"""Back up one source into one repository: the backup pipeline.

Shape of the pipeline (why it is fast without per-byte Python):

* The main thread walks the tree and builds items (stat, names; xattrs of
  everything but the files that workers read, which read their own).
* Each regular file whose cache entry does not match is handed to a worker
  thread that reads it in large blocks and runs chunking (pyfastcdc), hashing
  (BLAKE2b), compression (lz4/zstd) and encryption (AES-GCM/ChaCha20): all four
  release the GIL, so workers really run in parallel.
* Results are consumed in walk order, so the item stream is deterministic; the
  queue of files in flight is bounded, so memory is too.
* Packs are uploaded by their own threads (:class:`BlobWriter`).
"""

from __future__ import annotations

import errno
import getpass
import mmap
import os
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from vger import __version__
from vger.backup.blocks import content_cuts
from vger.backup.dumps import DumpStorer
from vger.backup.filecache import Chunks, FilesCache
from vger.backup.metadata import base_item, group_name, item_type, read_xattrs, user_name
from vger.backup.prematch import UNTRIED, Prematched, paired
from vger.backup.processes import BlobCollector, SmallFileProcesses
from vger.backup.scheduling import LargestFirstPool
from vger.backup.walkahead import WalkAhead
from vger.backup.walker import Walker, WalkOptions
from vger.interfaces import Chunker, Compressor, DumpSource
from vger.repository import format as fmt
from vger.repository.items import ITEMS_AVG, ITEMS_MAX, ITEMS_MIN, Item, ItemStreamWriter, without_path
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot, SnapshotStats
from vger.repository.writer import BlobWriter
from vger.storage import pack_uploads


class Progress(Protocol):
    def file_done(self, path: bytes, size: int) -> None: ...

    def bytes_read(self, count: int) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    """What the archiver needs to know about a source (decoupled from the config model)."""

    label: str
    paths: Sequence[str]
    walk: WalkOptions = field(default_factory=WalkOptions)
    xattrs: bool = True
    dumps: Sequence[DumpSource] = ()


@dataclass
class BackupResult:
    source_label: str
    snapshot: Snapshot | None
    stats: SnapshotStats
    errors: list[tuple[str, str]] = field(default_factory=list)
    files_read: int = 0
    bytes_read: int = 0
    cache_hits: int = 0
    new_chunks: int = 0
    duration: float = 0.0
    dry_run: bool = False


@dataclass
class _FileOutcome:
    chunks: Chunks
    size: int
    compressed: int
    deduplicated: int
    error: str | None = None
    xattrs: list[list[bytes]] | None = None  # read by the worker, through the open file
    xattr_error: str | None = None


# Small files are read in batches, one task per batch: per-task overhead (a
# future, a lock, a wake-up) would otherwise dominate files of a few KiB.
BATCH_FILES = 128
BATCH_BYTES = 16 * 1024 * 1024
MAX_PENDING = 16384  # items the walk may run ahead of the oldest unfinished file
_SOLO_SIZE = 4 * 1024 * 1024  # files at least this big get a task of their own
_READ_CALL = 1024 * 1024
# Changed files at least this big, up to this many, start before the walk reaches them.
HEAD_START_SIZE = 32 * 1024 * 1024
HEAD_START_FILES = 32


class _Batch:
    __slots__ = ("future", "paths", "size", "sizes")

    def __init__(self) -> None:
        self.paths: list[bytes] = []
        self.sizes: list[int] = []
        self.size = 0
        self.future: Future[list[_FileOutcome]] | None = None


class _Reused(NamedTuple):
    """An unchanged file's item as the files cache kept it: key count and the bytes after its path."""

    keys: int
    rest: bytes | memoryview


# (item, batch it waits for, slot in it, stat, path); a reused item comes with its relative path.
_Pending = tuple[Item | _Reused, "_Batch | None", int, os.stat_result, bytes]


class Archiver:
    """Runs one backup. Not reusable: make one per (source, repository)."""

    def __init__(
        self,
        repo: Repository,
        chunker: Chunker,
        compressor: Compressor,
        meta_chunker_factory: Callable[[int, int, int], Chunker],
        source: SourceSpec,
        *,
        threads: int = 0,
        pack_size: int = 32 * 1024 * 1024,
        label: str = "",
        progress: Progress | None = None,
        dry_run: bool = False,
        files_cache: FilesCache | None = None,
        walk_ahead: WalkAhead | None = None,
        prematched: Prematched | None = None,
    ) -> None:
        self.repo = repo
        self.files_cache = files_cache  # loaded ahead (load_files_cache), or None: load it in run()
        # walking the source already, in a child process (walkahead.py); run() closes it
        self.walk_ahead = walk_ahead
        # the first root's first entries, already matched against files_cache (prematch.py)
        self.prematched = prematched
        self.chunker = chunker
        self.compressor = compressor
        self.meta_chunker = meta_chunker_factory(ITEMS_MIN, ITEMS_AVG, ITEMS_MAX)
        self.source = source
        self.threads = threads if threads > 0 else (os.cpu_count() or 2)
        self.pack_size = pack_size
        self.label = label
        self.progress = progress
        self.dry_run = dry_run
        max_size = getattr(chunker, "max_size", 8 * 1024 * 1024)
        # A read block twice the largest chunk: the carried-over tail (at most
        # one chunk, usually about the average) stays a modest share of each
        # read, and two threads' buffers stay well under 100 MiB.
        self._block = max(8 * 1024 * 1024, 2 * max_size)
        self._buffer_size = self._block + max_size
        # Files below the smallest chunk are one chunk whatever the chunker (its
        # contract: only the last chunk may be shorter than min_size).
        self._small_limit = min(int(getattr(chunker, "min_size", 0) or 0), _READ_CALL)
        self._local = threading.local()
        self._writer: BlobWriter | None = None
        self._stats_lock = threading.Lock()
        self._bytes_read = 0
        self._procs: SmallFileProcesses | None = None
        self._no_procs = False
        self._helpers: ThreadPoolExecutor | None = None  # chunks of one big file, in parallel

    # -- per-file work (worker threads) ---------------------------------------
    def _buffer(self) -> mmap.mmap:
        """This thread's read buffer: an anonymous mapping that forked workers do not inherit.

        A bytearray would be shared copy-on-write with the small-file worker
        processes forked during the backup: every page of it then faulted on its
        next refill, each fault with a TLB shootdown to the other core (7 % of a
        churn backup's CPU here). A child makes buffers of its own.
        """
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = mmap.mmap(-1, self._buffer_size)
            if hasattr(mmap, "MADV_DONTFORK"):
                buf.madvise(mmap.MADV_DONTFORK)
            self._local.buf = buf
        return buf

    def _read_batch(self, paths: list[bytes], sizes: list[int]) -> list[_FileOutcome]:
        return [self._read_file(path, size) for path, size in zip(paths, sizes, strict=True)]

    # -- small files in worker processes (vger.backup.processes) ----------------
    def _processes(self) -> SmallFileProcesses | None:
        """The worker processes, forked at the first batch of small files (None: use threads)."""
        if self._procs is None and not self._no_procs and self.threads >= 2 and hasattr(os, "fork"):
            try:
                self._procs = SmallFileProcesses(
                    self.threads, self._batch_in_child, self._child_collector, _encode_outcome
                )
            except OSError:  # cannot fork (process or memory limits): threads still work
                self._no_procs = True
        return self._procs

    def _child_collector(self) -> BlobCollector:
        # In the child: fresh locks, no progress display and no helper threads
        # (all belong to the parent; a fork copies no threads), and read buffers
        # of its own (the parent's are not mapped here: MADV_DONTFORK).
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self.progress = None
        self._helpers = None
        writer = self._writer
        assert writer is not None
        return BlobCollector(self.repo.index.stored_length, writer.seal_chunk)

    def _batch_in_child(
        self, paths: list[bytes], sizes: list[int], collector: BlobCollector
    ) -> tuple[list[_FileOutcome], int]:
        self._writer = collector  # type: ignore[assignment]  # same store() contract
        before = self._bytes_read
        outcomes = []
        for i, (path, size) in enumerate(zip(paths, sizes, strict=True)):
            collector.file = i
            outcomes.append(self._read_file(path, size))
        return outcomes, self._bytes_read - before

    def _read_batch_in_process(self, paths: list[bytes], sizes: list[int]) -> list[_FileOutcome]:
        procs, writer = self._procs, self._writer
        assert procs is not None and writer is not None
        rows, blobs, read = procs.run(paths, sizes)
        if read:
            self._count_read(read)
        outcomes = [_decode_outcome(row) for row in rows]
        for blob in blobs:
            if not writer.adopt(blob.chunk_id, blob.envelope, blob.plain_size):
                outcomes[blob.file].deduplicated -= len(blob.envelope)  # another worker stored it first
        return outcomes

    def _read_file(self, path: bytes, size: int) -> _FileOutcome:
        try:
            fd = self._open(path)
        except OSError as exc:
            reason = "vanished before it could be read" if exc.errno == errno.ENOENT else exc.strerror
            return _FileOutcome([], 0, 0, 0, error=f"cannot read: {reason}")
        try:
            xattrs: list[list[bytes]] | None = None
            xattr_error = None
            if self.source.xattrs:
                try:
                    xattrs = read_xattrs(fd)
                except OSError as exc:
                    xattr_error = f"cannot read xattrs: {exc.strerror}"
            outcome = self._small_file(fd, size)
            if outcome is None:
                outcome = self._chunk_file(fd)
            outcome.xattrs, outcome.xattr_error = xattrs, xattr_error
            return outcome
        except OSError as exc:
            reason = "vanished before it could be read" if exc.errno == errno.ENOENT else exc.strerror
            return _FileOutcome([], 0, 0, 0, error=f"cannot read: {reason}")
        finally:
            os.close(fd)

    def _small_file(self, fd: int, size: int) -> _FileOutcome | None:
        """A file smaller than the smallest chunk, read in one call; None: take the general path.

        Most files of a home directory or a source tree are this small, and the
        general loop (buffer bookkeeping, a second read to see the end, the
        chunker) cost more Python than the file's own work. Such a file is one
        chunk whatever the chunker, so the chunks are the same either way.
        """
        if not 0 < size < self._small_limit:
            return None
        data = os.read(fd, size + 1)
        if len(data) > size:  # grew since the walk saw it: read it the general way
            os.lseek(fd, 0, os.SEEK_SET)
            return None
        writer = self._writer
        assert writer is not None
        if data:
            self._count_read(len(data))
        else:
            return _FileOutcome([], 0, 0, 0)
        chunk_id = self.repo.hasher(data)
        is_new, stored = writer.store(chunk_id, data)
        return _FileOutcome([(chunk_id, len(data))], len(data), stored, stored if is_new else 0)

    def _open(self, path: bytes) -> int:
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        noatime = getattr(os, "O_NOATIME", 0)
        if noatime:
            try:
                return os.open(path, flags | noatime)
            except PermissionError:
                pass  # O_NOATIME needs ownership or CAP_FOWNER
        return os.open(path, flags)

    def _chunk_file(self, fd: int) -> _FileOutcome:
        buf = self._buffer()
        view = memoryview(buf)
        chunks: list[tuple[bytes, int]] = []
        total = compressed = deduplicated = 0
        carry = 0
        while True:
            filled = carry
            while filled < len(buf):
                # At most 1 MiB per call: procfs and some other kernel files
                # refuse larger reads with ENOMEM; for real files the
                # syscall count stays trivial (1,000 per GiB).
                n = os.readv(fd, [view[filled : filled + _READ_CALL]])
                if n == 0:
                    break
                filled += n
            got = filled - carry
            total += got
            if got:
                self._count_read(got)
            eof = filled < len(buf)
            if filled == 0:
                break
            lengths = content_cuts(self.chunker, view[:filled], eof)
            pos = 0
            pieces = []
            for length in lengths:
                pieces.append(view[pos : pos + length])
                pos += length
            helpers = self._helpers if len(pieces) > 1 else None
            if helpers is not None:
                # Several chunks of one file: hash and store them on the helper
                # threads too, so a big file met last does not leave one core
                # idle (the block is reused only after every piece is stored).
                results = list(helpers.map(self._store_piece, pieces))
            else:
                results = [self._store_piece(piece) for piece in pieces]
            for piece, (chunk_id, is_new, stored) in zip(pieces, results, strict=True):
                chunks.append((chunk_id, len(piece)))
                compressed += stored
                if is_new:
                    deduplicated += stored
            del pieces, results
            carry = filled - pos
            if carry:
                buf.move(0, pos, carry)  # in place: no 2 MiB temporary on every block
            if eof:
                break
        return _FileOutcome(chunks, total, compressed, deduplicated)

    def _store_piece(self, piece: memoryview) -> tuple[bytes, bool, int]:
        writer = self._writer
        assert writer is not None
        chunk_id = self.repo.hasher(piece)
        is_new, stored = writer.store(chunk_id, piece)
        return chunk_id, is_new, stored

    def _count_read(self, count: int) -> None:
        with self._stats_lock:
            self._bytes_read += count
        if self.progress:
            self.progress.bytes_read(count)

    # -- the main loop ------------------------------------------------------------
    def run(self) -> BackupResult:
        start = time.time()
        stats = SnapshotStats()
        result = BackupResult(self.source.label, None, stats, dry_run=self.dry_run)
        cache = self.files_cache
        if cache is None:
            cache = load_files_cache(self.repo.id_hex, self.source.label, self.source.xattrs)
        index = self.repo.index
        if self.dry_run:
            if self.walk_ahead is not None:
                self.walk_ahead.close()
            self._dry_run(result, cache, index)
            result.duration = time.time() - start
            return result
        # Remote backends hide request latency behind parallel uploads; a local disk keeps up with one.
        uploads = pack_uploads(self.repo.backend, self.pack_size)
        writer = BlobWriter(self.repo, self.compressor, self.pack_size, upload_threads=uploads)
        self._writer = writer

        def store_meta(piece: memoryview) -> bytes:
            chunk_id = self.repo.hasher(piece)
            writer.store(chunk_id, piece, fmt.BLOB_ITEMS)
            return chunk_id

        items = ItemStreamWriter(self.meta_chunker, store_meta)
        hardlinks: dict[tuple[int, int], bytes] = {}
        pending: deque[_Pending] = deque()
        # Items waiting for their file's chunks, bounded so memory is too (an
        # item is a few hundred bytes). The bound is wide because the walk must
        # run far ahead of a big file being read: after a 5 % change most items
        # are files-cache hits with no work, and a narrow window left a worker
        # idle for 1.2 s of a 2.2 s backup while the walk waited on one file.
        # 16,384 items is about 15 MB; 65,536 gained nothing more on the bench
        # trees and cost 50 MB of peak RSS with 200,000 small files.
        max_pending = max(MAX_PENDING, self.threads * BATCH_FILES * 2)
        batch = _Batch()
        walker = self.prematched.walker if self.prematched is not None else Walker(self.source.walk)
        pool = LargestFirstPool(self.threads, "vger-chunk")
        if self.threads >= 2:
            self._helpers = ThreadPoolExecutor(self.threads, thread_name_prefix="vger-piece")
        try:
            if self.source.dumps:
                # Dumps first: a failing one stops the source before its tree is read.
                DumpStorer(
                    self.source.label,
                    self.chunker,
                    self.repo.hasher,
                    writer,
                    items,
                    stats,
                    self._buffer(),
                    self.progress,
                    self.threads,
                ).store_all(self.source.dumps)
            early = self._head_start(cache, index, pool)
            ahead = self.walk_ahead
            for root in self.source.paths:
                for entry, matched in paired(root, walker, ahead, self.prematched):
                    st = entry.st
                    kind = item_type(st.st_mode)
                    if kind is None:
                        continue
                    rel = entry.path.lstrip(b"/")
                    if kind == "file" and st.st_nlink == 1:
                        if matched is UNTRIED:
                            reused = cache.lookup_packed(entry.path, st, index)
                        elif matched is not None:  # matched ahead; the index is checked now
                            reused = cache.take_packed(matched, index)
                        else:
                            reused = None
                        if reused is not None:
                            # Unchanged, and its item would come out the same: reuse its bytes.
                            self._count_hit(stats, entry.path, st.st_size, cache.hit_stored)
                            if pending:
                                pending.append((_Reused(*reused), None, 0, st, rel))
                                self._drain(
                                    pool,
                                    pending,
                                    items,
                                    cache,
                                    stats,
                                    result,
                                    block=len(pending) > max_pending,
                                )
                            else:  # nothing before it is waiting: straight into the stream
                                items.add_packed(reused[0], rel, reused[1])
                            continue
                    item = base_item(rel, kind, st)
                    waits_on: _Batch | None = None
                    slot = 0
                    first: bytes | None = None
                    cached = None
                    if kind == "file":
                        link_key = (st.st_dev, st.st_ino)
                        first = hardlinks.get(link_key) if st.st_nlink > 1 else None
                        if first is None:
                            if st.st_nlink > 1:
                                hardlinks[link_key] = rel
                            cached = cache.lookup(entry.path, st, index)
                    # A file a worker reads gets its xattrs from that worker.
                    worker_reads = kind == "file" and first is None and cached is None
                    # An unchanged file's xattrs come from the files cache (same ctime, same xattrs).
                    known: list[list[bytes]] | None = cache.hit_xattrs if cached is not None else None
                    # slot 1 on an item that waits for nothing: keep its bytes in the files cache
                    keep_packed = cached is not None and st.st_nlink == 1
                    if self.source.xattrs and not worker_reads:
                        xattrs = known
                        try:
                            if xattrs is None:
                                xattrs = known = read_xattrs(entry.path)
                        except OSError as exc:
                            result.errors.append(
                                (os.fsdecode(entry.path), f"cannot read xattrs: {exc.strerror}")
                            )
                            xattrs = []
                            keep_packed = False
                        if xattrs:
                            item["xattrs"] = xattrs
                    if kind == "file":
                        if first is not None:
                            item["type"] = "hardlink"
                            item["target"] = first
                        elif cached is not None:
                            item["chunks"] = cached  # (id, size) pairs; msgpack writes tuples as arrays
                            item["size"] = st.st_size
                            cache.keep_hit(entry.path, self.source.xattrs)
                            slot = int(keep_packed)
                            self._count_hit(stats, entry.path, st.st_size, cache.hit_stored)
                        else:
                            result.files_read += 1
                            started = early.pop(entry.path, None) if early else None
                            if started is not None and _same_version(started[0], st):
                                waits_on = started[1]
                            elif st.st_size >= _SOLO_SIZE:
                                waits_on = _Batch()
                                waits_on.paths.append(entry.path)
                                waits_on.sizes.append(st.st_size)
                                waits_on.size = st.st_size
                                self._submit(pool, waits_on)
                            else:
                                if batch.future is not None:
                                    batch = _Batch()  # _drain sent the filling batch off
                                waits_on, slot = batch, len(batch.paths)
                                batch.paths.append(entry.path)
                                batch.sizes.append(st.st_size)
                                batch.size += st.st_size
                                if len(batch.paths) >= BATCH_FILES or batch.size >= BATCH_BYTES:
                                    self._submit(pool, batch)
                                    batch = _Batch()
                    elif kind == "symlink":
                        try:
                            item["target"] = os.readlink(entry.path)
                        except OSError as exc:
                            result.errors.append(
                                (os.fsdecode(entry.path), f"cannot read link: {exc.strerror}")
                            )
                            continue
                    elif kind == "device":
                        item["rdev"] = st.st_rdev
                    pending.append((item, waits_on, slot, st, entry.path))
                    self._drain(pool, pending, items, cache, stats, result, block=len(pending) > max_pending)
            self._drain(pool, pending, items, cache, stats, result, block=True, everything=True)
            for _st, unclaimed in early.values():
                # The walk did not meet it (deleted, excluded or replaced meanwhile):
                # not started yet, it is dropped; already read, its chunks are
                # unreferenced, like an interrupted backup's, until `compact`.
                assert unclaimed.future is not None
                unclaimed.future.cancel()
            walk_errors = walker.errors + (ahead.errors if ahead is not None else [])
            for path, message in ((e.path, e.message) for e in walk_errors):
                result.errors.append((os.fsdecode(path), message))
            item_ids = items.finish()
            writer.finish()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            if self._helpers is not None:
                self._helpers.shutdown(cancel_futures=True)
            if self._procs is not None:
                self._procs.close(kill=True)
            writer.abort()
            raise
        finally:
            if self.walk_ahead is not None:
                self.walk_ahead.close()
        pool.shutdown()
        if self._helpers is not None:
            self._helpers.shutdown()
        if self._procs is not None:
            self._procs.close()
        stats.errors = len(result.errors)
        snap = Snapshot(
            id=os.urandom(32),
            time_start=start,
            time_end=time.time(),
            hostname=socket.gethostname(),
            username=_username(),
            source_label=self.source.label,
            source_paths=[os.path.abspath(p) for p in self.source.paths],
            label=self.label,
            chunker={
                "algorithm": getattr(self.chunker, "name", "?"),
                "min_size": getattr(self.chunker, "min_size", 0),
                "avg_size": getattr(self.chunker, "avg_size", 0),
                "max_size": getattr(self.chunker, "max_size", 0),
            },
            items=item_ids,
            stats=stats,
            item_count=items.count,
            vger_version=__version__,
        )
        self.repo.put_snapshot(snap)
        cache.save()
        result.snapshot = snap
        result.bytes_read = self._bytes_read
        result.cache_hits = cache.hits
        result.new_chunks = writer.new_chunks
        result.duration = time.time() - start
        return result

    def _count_hit(self, stats: SnapshotStats, path: bytes, size: int, stored: int) -> None:
        """A file taken from the files cache: counted as if read, without reading it."""
        stats.files += 1
        stats.original_size += size
        stats.compressed_size += stored
        if self.progress:
            self.progress.bytes_read(size)
            self.progress.file_done(path, size)

    def _head_start(
        self, cache: FilesCache, index: Any, pool: LargestFirstPool
    ) -> dict[bytes, tuple[os.stat_result, _Batch]]:
        """Start reading the biggest files that changed since the last backup, before the walk.

        The walk goes in name order and, sharing the GIL with busy workers,
        slowly: after a 5 % change the last big changed file of the bench tree
        (in ``versions/``) was met 1.3 s in and then read alone while the other
        core idled. The files cache knows the big files; a changed one is read
        now and the walk picks up its result if it meets the same version
        (inode, size, mtime, ctime) of it.
        """
        roots = [os.fsencode(os.path.abspath(root)).rstrip(b"/") + b"/" for root in self.source.paths]
        started: dict[bytes, tuple[os.stat_result, _Batch]] = {}
        for path in cache.largest(HEAD_START_FILES):
            if not path.startswith(tuple(roots)):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue  # gone: the walk will not meet it either
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or not cache.changed(path, st, index):
                continue  # hard links are read once, at the walk's first link
            batch = _Batch()
            batch.paths.append(path)
            batch.sizes.append(st.st_size)
            batch.size = st.st_size
            self._submit(pool, batch)
            started[path] = (st, batch)
        return started

    def _submit(self, pool: LargestFirstPool, batch: _Batch) -> None:
        if batch.future is None and batch.paths:
            read = self._read_batch
            if batch.size < _SOLO_SIZE or len(batch.paths) > 1:  # small files: GIL-bound in threads
                read = self._read_batch_in_process if self._processes() is not None else read
            batch.future = pool.submit(batch.size, read, batch.paths, batch.sizes)

    def _drain(
        self,
        pool: LargestFirstPool,
        pending: deque[_Pending],
        items: ItemStreamWriter,
        cache: FilesCache,
        stats: SnapshotStats,
        result: BackupResult,
        *,
        block: bool,
        everything: bool = False,
    ) -> None:
        """Write finished items in walk order; with ``block`` wait for the oldest."""
        while pending:
            item, waits_on, slot, st, path = pending[0]
            if isinstance(item, _Reused):
                pending.popleft()
                items.add_packed(item.keys, path, item.rest)
                if not everything:
                    block = False
                continue
            keep_packed = slot == 1 and waits_on is None
            if waits_on is not None:
                if waits_on.future is None:
                    if not block:
                        return
                    self._submit(pool, waits_on)  # the batch still filling: send it now
                future = waits_on.future
                assert future is not None
                if not future.done() and not block:
                    return
                outcome = future.result()[slot]
                if outcome.error is not None:
                    pending.popleft()
                    result.errors.append((os.fsdecode(path), outcome.error))
                    continue
                if outcome.xattr_error is not None:
                    result.errors.append((os.fsdecode(path), outcome.xattr_error))
                if outcome.xattrs:
                    item["xattrs"] = outcome.xattrs
                item["chunks"] = outcome.chunks
                item["size"] = outcome.size
                stats.files += 1
                stats.original_size += outcome.size
                stats.compressed_size += outcome.compressed
                stats.deduplicated_size += outcome.deduplicated
                if outcome.size == st.st_size:
                    cache.remember(
                        path, st, outcome.chunks, _no_xattrs(outcome.xattrs) if self.source.xattrs else None
                    )
                    keep_packed = outcome.xattr_error is None and st.st_nlink == 1
                if self.progress:
                    self.progress.file_done(path, outcome.size)
            pending.popleft()
            packed = items.add(item)
            if keep_packed and "xattrs" not in item:  # xattr values never go into the (clear) cache
                split = without_path(packed, item["path"])
                if split is not None:
                    cache.attach_packed(path, st, *split)
            if not everything:
                block = False

    def _dry_run(self, result: BackupResult, cache: FilesCache, index: Any) -> None:
        """Walk and consult the files cache only: report what a backup would read."""
        walker = Walker(self.source.walk)
        stats = result.stats
        for root in self.source.paths:
            for entry in walker.walk(root):
                if item_type(entry.st.st_mode) != "file":
                    continue
                stats.files += 1
                stats.original_size += entry.st.st_size
                if cache.lookup(entry.path, entry.st, index) is None:
                    result.files_read += 1
                    result.bytes_read += entry.st.st_size
        result.errors.extend((os.fsdecode(e.path), e.message) for e in walker.errors)
        result.cache_hits = cache.hits


def load_files_cache(repo_id_hex: str, label: str, xattrs: bool) -> FilesCache:
    """A source's files cache, loaded; a backup may load it ahead, while the key is derived."""
    cache = FilesCache(
        repo_id_hex,
        label,
        big_size=HEAD_START_SIZE,
        owner_names=(user_name, group_name),
        xattrs_on=xattrs,
    )
    cache.load()
    return cache


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _encode_outcome(o: _FileOutcome) -> list[Any]:
    return [
        [list(c) for c in o.chunks],
        o.size,
        o.compressed,
        o.deduplicated,
        o.error,
        o.xattrs,
        o.xattr_error,
    ]


def _decode_outcome(row: list[Any]) -> _FileOutcome:
    chunks, size, compressed, deduplicated, error, xattrs, xattr_error = row
    # A tuple of tuples: what the files cache keeps for the file (and what a cache read
    # back holds), 16 bytes less per file than a list.
    return _FileOutcome(tuple(map(tuple, chunks)), size, compressed, deduplicated, error, xattrs, xattr_error)


def _same_version(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def _no_xattrs(xattrs: list[list[bytes]] | None) -> list[list[bytes]] | None:
    """What the files cache may record: only "this file has no xattrs".

    Values stay out of the cache folder (they can be security labels or
    capabilities); a file that has xattrs is listed again on every backup.
    """
    # Read back from the cache, "none" is an empty tuple: it must stay "none",
    # or every other no-change backup listed the xattrs of every file again.
    # One shared empty tuple: a fresh [] per file was 56 bytes of every entry
    # (11 MB of peak RSS with 200,000 small files).
    return _NO_XATTRS if xattrs is not None and len(xattrs) == 0 else None


_NO_XATTRS: Any = ()
