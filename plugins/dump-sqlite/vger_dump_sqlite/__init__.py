"""SQLite: a consistent online copy of a database file, streamed page by page.

Why not ``sqlite3.Connection.backup``: the backup API copies into another
*database*, which is either a file (a temporary copy as large as the
database, which we must not write) or ``:memory:`` (RAM as large as the
database); ``serialize()`` also builds the whole image in memory. Instead we
take the same lock the backup API holds while it copies in one step, and read
the pages ourselves:

* rollback-journal databases: a read transaction (``BEGIN`` + a read) holds
  SQLite's SHARED lock, so no writer can change the file until we are done;
* WAL databases: ``BEGIN IMMEDIATE`` takes the write lock (readers go on, new
  writers wait), then a PASSIVE checkpoint from a second connection copies
  every committed frame into the database file; with no writer able to
  commit, the file then holds exactly the last committed state.

We then read ``page_count * page_size`` bytes in 1 MiB blocks: memory stays at
one block whatever the size. The result is a byte-exact database file (the
same thing ``.backup`` would have written) that opens with plain ``sqlite3``.

One POSIX trap: closing *any* descriptor of a file drops every lock the
process holds on it, including SQLite's. Our descriptor is therefore closed
only after both connections are closed.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, ClassVar

from vger import hookimpl
from vger.errors import VgerError
from vger.interfaces import DumpRestore, DumpStream

if TYPE_CHECKING:
    import sqlite3

HEADER = b"SQLite format 3\x00"
_BLOCK = 1024 * 1024
_CHECKPOINT_TRIES = 50  # x 0.2 s: long-running readers may hold the checkpoint back for a while


class _PageReader(io.RawIOBase):
    """Exactly ``length`` bytes of the database file, from our own descriptor."""

    def __init__(self, fd: int, length: int) -> None:
        super().__init__()
        self.fd = fd
        self.left = length
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        want = min(len(buffer), self.left, _BLOCK)
        got = os.readv(self.fd, [memoryview(buffer)[:want]])
        if got == 0:
            raise VgerError("the SQLite database file is shorter than its page count says")
        seen = min(got, len(HEADER))
        if self.read_bytes == 0 and bytes(memoryview(buffer)[:seen]) != HEADER[:seen]:
            raise VgerError("not an SQLite 3 database file (bad header)")
        self.left -= got
        self.read_bytes += got
        return got


class SqliteStream:
    """One database file, copied under SQLite's own lock."""

    def __init__(self, name: str, path: str, busy_timeout: float) -> None:
        self.name = name
        self.path = path
        self.busy_timeout = busy_timeout
        self.metadata: dict[str, Any] = {
            "tool": "sqlite3",
            "format": "sqlite3",
            "path": path,
            "database": path,
        }
        self._conn: sqlite3.Connection | None = None
        self._fd: int | None = None
        self._reader: _PageReader | None = None

    def open(self) -> IO[bytes]:
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        if not os.path.isfile(self.path):
            raise VgerError(f"sqlite: {self.path} does not exist or is not a file")
        try:
            return self._open()
        except sqlite3.Error as exc:
            self.abort()
            raise VgerError(f"sqlite: {self.path}: {exc}") from None

    def _open(self) -> IO[bytes]:
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        self._conn = conn
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        self.metadata["journal_mode"] = mode
        if mode == "wal":
            conn.execute("BEGIN IMMEDIATE")
            self._checkpoint()
        else:
            conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the SHARED lock now
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        self.metadata["page_size"] = page_size
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._reader = _PageReader(self._fd, page_size * page_count)
        return io.BufferedReader(self._reader, buffer_size=_BLOCK)

    def _checkpoint(self) -> None:
        """Copy every committed WAL frame into the database file (we hold the write lock)."""
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        other = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            for _ in range(_CHECKPOINT_TRIES):
                busy, frames, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if not busy and frames == done:
                    return
                time.sleep(0.2)
        finally:
            other.close()
        raise VgerError(
            f"sqlite: {self.path}: long-running readers keep the WAL from being checkpointed; try again"
        )

    def finish(self) -> None:
        reader = self._reader
        self._close()
        if reader is None or reader.left:
            raise VgerError(f"sqlite: {self.path}: the copy stopped before the end of the database")

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        if self._conn is not None:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._conn.close()
            self._conn = None
        if self._fd is not None:  # only now: closing it earlier would drop SQLite's locks
            os.close(self._fd)
            self._fd = None


class SqliteRestore:
    """Writes the image beside the target, checks it, then swaps it in.

    An existing target is overwritten through SQLite's backup API (so programs
    that have it open see one consistent change); a new one is renamed into
    place. The temporary file lives beside the target, never in /tmp.
    """

    def __init__(self, target: str) -> None:
        self.target = os.path.abspath(target)
        self.temporary = f"{self.target}.vger-restore-{os.getpid()}"

    def describe(self) -> str:
        return f"write {self.target} (via {os.path.basename(self.temporary)} and the SQLite backup API)"

    def run(self, data: IO[bytes]) -> None:
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        os.makedirs(os.path.dirname(self.target), exist_ok=True)
        try:
            fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while block := data.read(_BLOCK):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            self._swap_in()
        except OSError as exc:
            raise VgerError(f"sqlite: cannot restore {self.target}: {exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise VgerError(f"sqlite: cannot restore {self.target}: {exc}") from None
        finally:
            for leftover in (self.temporary, self.temporary + "-wal", self.temporary + "-shm"):
                if os.path.exists(leftover):
                    os.unlink(leftover)

    def _swap_in(self) -> None:
        import sqlite3  # at use: 1 ms of every command's start-up otherwise

        source = sqlite3.connect(self.temporary, isolation_level=None)
        try:
            problem = source.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise VgerError(f"sqlite: the restored image fails quick_check: {problem}")
            if os.path.exists(self.target):
                target = sqlite3.connect(self.target, timeout=60)
                try:
                    source.backup(target)
                finally:
                    target.close()
                return
        finally:
            source.close()
        os.replace(self.temporary, self.target)


class SqliteDump:
    """An online copy of one SQLite database file."""

    name: ClassVar[str] = "sqlite"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["path"],
        "properties": {
            "path": {"description": "The database file.", "type": "string", "minLength": 1},
            "name": {
                "description": "File name in the snapshot, below sqlite/ (default: the file's base name).",
                "type": "string",
                "pattern": "^[^/]+$",
            },
            "busy_timeout": {
                "description": "Seconds to wait for a writer to finish before giving up.",
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 60,
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def dumps(self) -> Iterator[DumpStream]:
        path = os.path.abspath(os.path.expanduser(str(self.options["path"])))
        name = str(self.options.get("name") or os.path.basename(path))
        yield SqliteStream(f"sqlite/{name}", path, float(self.options.get("busy_timeout") or 60))

    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None:
        target = overrides.get("database", record.get("path"))
        if not target:
            raise VgerError(f"dump {record.get('name')!r} records no path; give --database PATH")
        return SqliteRestore(str(target))


@hookimpl
def vger_register_dump_sources() -> list[type[Any]]:
    return [SqliteDump]
