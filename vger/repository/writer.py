"""Writing new blobs: dedup check, compression, encryption, packing, upload.

Called from many worker threads at once. The rules that keep it correct:

* A chunk id is *claimed* under a lock before it is compressed, so two threads
  that meet the same new chunk store it once.
* Index entries become visible (to this process) only after their pack is
  durable; the index segment is written only after every pack it names; the
  snapshot only after the index segment. A crash at any point leaves, at worst,
  unreferenced packs that ``compact`` reclaims.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from vger.crypto.envelope import ObjectType
from vger.interfaces import Buffer, Compressor
from vger.repository import format as fmt
from vger.repository.pack import PackBuilder
from vger.repository.repository import Repository

DEFAULT_DATA_PACK = 32 * 1024 * 1024
# Metadata packs stay small so reading a snapshot's item stream never pulls in
# file data (format.md: "metadata packs stay small (<= 4 MiB)").
META_PACK = 4 * 1024 * 1024
_NONE_TAG = 0
_PROBE_SIZE = 4 * 1024
_PROBES = 32
_PROBE_MIN = 16 * _PROBE_SIZE
_PROBE_RATIO = 0.97  # a sample that shrinks by less than 3 % says: store as is


class BlobWriter:
    """One write session (one backup). ``finish`` makes everything durable and indexed."""

    def __init__(
        self,
        repo: Repository,
        compressor: Compressor,
        data_pack_size: int = DEFAULT_DATA_PACK,
        upload_threads: int = 2,
        on_upload: Callable[[int], None] | None = None,
    ) -> None:
        self.repo = repo
        self.index = repo.index
        self.compressor = compressor
        self._tag = bytes((compressor.tag,))
        self._none_tag = bytes((_NONE_TAG,))
        self._targets = {fmt.BLOB_DATA: data_pack_size, fmt.BLOB_ITEMS: META_PACK}
        self._builders = {fmt.BLOB_DATA: PackBuilder(), fmt.BLOB_ITEMS: PackBuilder()}
        self._lock = threading.Lock()
        self._claimed: dict[bytes, int] = {}
        self._uploads: ThreadPoolExecutor = ThreadPoolExecutor(
            upload_threads, thread_name_prefix="vger-upload"
        )
        # At most this many finished packs are in memory, being uploaded or waiting.
        self._upload_slots = threading.BoundedSemaphore(upload_threads)
        self._futures: list[Future[None]] = []
        self._new_entries: dict[bytes, list[tuple[bytes, int, int, int, int]]] = {}
        self._on_upload = on_upload
        self.new_chunks = 0
        self.new_bytes = 0  # stored bytes of blobs written by this session

    def store(self, chunk_id: bytes, data: Buffer, blob_type: int = fmt.BLOB_DATA) -> tuple[bool, int]:
        """Store a chunk unless known. Returns ``(is_new, stored_length)``."""
        known = self.index.stored_length(chunk_id)
        if known:
            return False, known
        with self._lock:
            if chunk_id in self._claimed or chunk_id in self.index:
                # Claimed by another thread that is still compressing it: its
                # stored size is not known yet, so count the plain size.
                return False, self._claimed.get(chunk_id) or self.index.stored_length(chunk_id) or len(data)
            self._claimed[chunk_id] = 0
        envelope = self.seal_chunk(chunk_id, data, blob_type)
        self._add_to_pack(chunk_id, blob_type, envelope, len(data))
        return True, len(envelope)

    def seal_chunk(self, chunk_id: bytes, data: Buffer, blob_type: int = fmt.BLOB_DATA) -> bytes:
        """Compress (when it pays) and encrypt one chunk: the blob's envelope. Takes no lock,
        so a forked worker process can call it (vger.backup.processes)."""
        compressed = self._compress(data)
        # incompressible chunks are stored as they are (tag 0): no decompression on restore
        plain = b"".join((self._none_tag, data)) if compressed is None else self._tag + compressed
        obj_type = ObjectType.ITEMS if blob_type == fmt.BLOB_ITEMS else ObjectType.CHUNK
        return self.repo.seal(obj_type, plain, chunk_id)

    def adopt(
        self, chunk_id: bytes, envelope: bytes, plain_size: int, blob_type: int = fmt.BLOB_DATA
    ) -> bool:
        """Store a blob sealed elsewhere (a worker process); False if the chunk is already stored or claimed."""
        with self._lock:
            if chunk_id in self._claimed or chunk_id in self.index:
                return False
            self._claimed[chunk_id] = 0
        self._add_to_pack(chunk_id, blob_type, envelope, plain_size)
        return True

    def _compress(self, data: Buffer) -> bytes | None:
        """Compressed bytes, or None when compressing would not pay.

        A large chunk is first probed with a small sample (the way borg's
        ``auto`` compression predicts): random-looking data such as media or
        archives then costs 3 % of a compression instead of 100 %.
        """
        if self.compressor.tag == _NONE_TAG or not len(data):
            return None
        if len(data) >= _PROBE_MIN:
            view = memoryview(data)
            last = len(data) - _PROBE_SIZE
            for k in range(_PROBES):
                start = last * k // (_PROBES - 1)
                probe = self.compressor.compress(view[start : start + _PROBE_SIZE])
                if len(probe) <= _PROBE_SIZE * _PROBE_RATIO:
                    break
            else:
                return None
        compressed = self.compressor.compress(data)
        return compressed if len(compressed) < len(data) else None

    def _add_to_pack(self, chunk_id: bytes, blob_type: int, envelope: bytes, plain_size: int) -> None:
        full: PackBuilder | None = None
        with self._lock:
            builder = self._builders[blob_type]
            builder.add(chunk_id, blob_type, envelope, plain_size)
            self._claimed[chunk_id] = len(envelope)
            self.new_chunks += 1
            self.new_bytes += len(envelope) + 4
            if len(builder) >= self._targets[blob_type]:
                full = builder
                self._builders[blob_type] = PackBuilder()
        if full is not None:
            self._submit(full)

    def _submit(self, builder: PackBuilder) -> None:
        self._raise_upload_errors()
        self._upload_slots.acquire()
        self._futures.append(self._uploads.submit(self._upload, builder))

    def _upload(self, builder: PackBuilder) -> None:
        try:
            entries = builder.entries
            pack_id, parts = builder.finish(self.repo.cipher)
            size = sum(len(p) for p in parts)
            put_parts = getattr(self.repo.backend, "put_parts", None)
            if put_parts is not None:
                put_parts(fmt.pack_key(pack_id), parts)
            else:
                self.repo.backend.put(fmt.pack_key(pack_id), b"".join(parts))
            with self._lock:
                self._new_entries[pack_id] = [
                    (e.chunk_id, e.blob_type, e.offset, e.length, e.plain_size) for e in entries
                ]
                for e in entries:
                    self.index.add(e.chunk_id, pack_id, e.blob_type, e.offset, e.length, e.plain_size)
                    # The index answers for it from now on; a claim per chunk of
                    # a 200,000-file backup held 20 MB until the end.
                    self._claimed.pop(e.chunk_id, None)
            if self._on_upload:
                self._on_upload(size)
        finally:
            self._upload_slots.release()

    def _raise_upload_errors(self) -> None:
        pending = []
        for fut in self._futures:
            if fut.done():
                fut.result()  # re-raises a failed upload in the caller's thread
            else:
                pending.append(fut)
        self._futures = pending

    def flush(self) -> None:
        """Upload partially filled packs and wait for every upload."""
        with self._lock:
            builders = [b for b in self._builders.values() if not b.empty]
            self._builders = {fmt.BLOB_DATA: PackBuilder(), fmt.BLOB_ITEMS: PackBuilder()}
        for builder in builders:
            self._submit(builder)
        for fut in self._futures:
            fut.result()
        self._futures = []

    def finish(self) -> None:
        """Make every stored chunk durable and indexed (the step before a snapshot commit)."""
        self.flush()
        if self._new_entries:
            self.repo.write_index_segment(self._new_entries)
            self._new_entries = {}
        self._uploads.shutdown(wait=True)

    def abort(self) -> None:
        """Stop without writing an index segment (uploaded packs become garbage for compact)."""
        for fut in self._futures:
            fut.cancel()
        self._uploads.shutdown(wait=True, cancel_futures=True)
