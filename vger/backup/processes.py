"""Small files read, hashed, compressed and sealed in forked worker processes.

A file of a few KiB costs a dozen syscalls and library calls, each of which
drops and retakes the GIL; with several threads wanting it the hand-overs cost
more than the calls, and a second worker thread added nothing (200,000 files:
18.7 s with one worker thread or two, 1.2 cores busy). Worker *processes* have
their own interpreter: each takes a batch of paths and sends back, per file,
its chunk list and, for chunks it did not know, the sealed blob.

The parent stays the only writer: it adopts each sealed blob into its own packs
under the usual claim (a blob two processes both sealed is stored once), so
pack writing, the index, the write order and crash safety are exactly those of
the threaded path. Children are forked (no re-import, no key re-derivation;
the AEAD nonce pool refills after a fork), ignore SIGINT (the parent decides),
never touch storage, and exit when their pipe closes, also if the parent dies.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from vger.errors import VgerError
from vger.repository import format as fmt

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


class WorkerDied(VgerError):
    """A worker process ended without answering (killed, out of memory)."""


@dataclass
class SealedBlob:
    file: int  # index of the file in its batch
    chunk_id: bytes
    envelope: bytes
    plain_size: int


class BlobCollector:
    """The ``store`` a child process uses: seal new chunks and keep them for the parent.

    ``known`` answers for chunks the repository had when the child was forked;
    chunks this child sealed before are answered from its own record, so the
    parent (which has them by now, or will) is not sent them twice.
    """

    def __init__(
        self,
        known: Callable[[bytes], int],
        seal_chunk: Callable[[bytes, Any, int], bytes],
    ) -> None:
        self._known = known
        self._seal_chunk = seal_chunk
        self._mine: dict[bytes, int] = {}
        self.blobs: list[SealedBlob] = []
        self.file = 0

    def store(self, chunk_id: bytes, data: Any, blob_type: int = fmt.BLOB_DATA) -> tuple[bool, int]:
        known = self._known(chunk_id) or self._mine.get(chunk_id, 0)
        if known:
            return False, known
        envelope = self._seal_chunk(chunk_id, data, blob_type)
        self._mine[chunk_id] = len(envelope)
        self.blobs.append(SealedBlob(self.file, chunk_id, envelope, len(data)))
        return True, len(envelope)


BatchFn = Callable[[list[bytes], list[int], BlobCollector], tuple[list[Any], int]]
Encode = Callable[[Any], list[Any]]


class SmallFileProcesses:
    """``count`` forked children; ``run`` hands one batch to a free child and waits (GIL released)."""

    def __init__(
        self, count: int, batch: BatchFn, collector: Callable[[], BlobCollector], encode: Encode
    ) -> None:
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._children: dict[Connection, int] = {}  # our end of each child's pipe -> its pid
        self._ended: dict[int, str] = {}
        from multiprocessing.connection import Pipe  # 8 ms of imports that a no-change backup never needs

        ends = [Pipe(duplex=True) for _ in range(count)]
        for mine, theirs in ends:
            try:
                pid = os.fork()
            except OSError:  # out of processes or memory: undo, the caller falls back to threads
                for a, b in ends:
                    a.close()
                    b.close()
                self.close(kill=True)
                raise
            if pid == 0:  # pragma: no cover - runs in the child, which leaves with os._exit
                code = 1
                try:
                    for other_mine, other_theirs in ends:
                        if other_theirs is not theirs:
                            other_theirs.close()
                        other_mine.close()
                    code = _serve(theirs, batch, collector, encode)
                finally:
                    os._exit(code)
            theirs.close()
            self._children[mine] = pid
            self._free.put(mine)

    def run(self, paths: list[bytes], sizes: list[int]) -> tuple[list[list[Any]], list[SealedBlob], int]:
        """Per-file encoded outcomes, the sealed new blobs, and the bytes read."""
        conn = self._free.get()
        try:
            try:
                conn.send_bytes(msgpack.packb([paths, sizes], use_bin_type=True))
                reply = msgpack.unpackb(conn.recv_bytes(), raw=False, use_list=True)
            except (EOFError, OSError) as exc:
                status = self._status(self._children.get(conn, 0))
                raise WorkerDied(f"a backup worker process died ({status}); nothing was committed") from exc
        finally:
            self._free.put(conn)
        if reply[0] != 0:
            raise VgerError(f"a backup worker process failed: {reply[1]}")
        outcomes, raw_blobs, read = reply[1], reply[2], reply[3]
        return outcomes, [SealedBlob(*b) for b in raw_blobs], read

    def _status(self, pid: int) -> str:
        """How ``pid`` ended; its pipe is closed, so it is gone or about to be (waited up to 2 s).

        A reaped child is remembered: later batches sent to it say the same, and
        ``close`` must not signal its number, which may belong to another process.
        """
        if pid in self._ended:
            return self._ended[pid]
        deadline = time.monotonic() + 2
        while pid and time.monotonic() < deadline:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return "no answer"
            if done:
                ended = (
                    f"signal {os.WTERMSIG(status)}"
                    if os.WIFSIGNALED(status)
                    else f"exit {os.WEXITSTATUS(status)}"
                )
                self._ended[pid] = ended
                return ended
            time.sleep(0.01)
        return "no answer"  # still running: close(kill=True) ends it

    def close(self, *, kill: bool = False) -> None:
        """Let the children go (their pipe closes) and reap them; ``kill`` does not wait for a batch."""
        children, self._children = self._children, {}
        for conn in children:
            conn.close()
        for pid in children.values():
            if pid in self._ended:
                continue  # reaped already: the number may belong to another process by now
            if kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _serve(
    conn: Connection, batch: BatchFn, make_collector: Callable[[], BlobCollector], encode: Encode
) -> int:
    """The child's loop: one batch in, one reply out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Locks that other parent threads held at the fork are not ours to wait on;
    # make_collector() gives the batch function fresh state.
    collector = make_collector()
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return 0
        paths, sizes = msgpack.unpackb(request, raw=False)
        collector.blobs = []
        try:
            outcomes, read = batch(paths, sizes, collector)
            reply = [0, [encode(o) for o in outcomes], [_blob_row(b) for b in collector.blobs], read]
        except BaseException as exc:  # reported to the parent, which fails the backup
            reply = [1, f"{type(exc).__name__}: {exc}"]
        try:
            conn.send_bytes(msgpack.packb(reply, use_bin_type=True))
        except (BrokenPipeError, OSError):
            return 0


def _blob_row(blob: SealedBlob) -> list[Any]:
    return [blob.file, blob.chunk_id, blob.envelope, blob.plain_size]
