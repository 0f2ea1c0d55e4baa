"""Repository locks: shared for backups, exclusive for delete / prune / compact / repair.

A lock is an object ``locks/<random id>`` holding who (host, pid, user), what
(shared or exclusive), since when, and when it was last refreshed. Backups only
add objects, so any number of them may run at once (shared locks); anything
that removes objects needs to be alone (exclusive).

Taking a lock: look for conflicting live locks, write ours, then look again (two
clients may have written at the same moment; then both back off). A holder
refreshes its lock every ``REFRESH`` seconds from a background thread. A lock
is *stale* when its process is gone on this host or it was not refreshed for
``TTL`` seconds; stale locks are reported and ignored, and ``vger break-lock``
removes them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import msgpack

from vger.crypto.envelope import ObjectType
from vger.errors import LockError, ObjectNotFound, PermanentStorageError, VgerError
from vger.repository import format as fmt
from vger.repository.repository import Repository

log = logging.getLogger("vger.locks")

SHARED = "shared"
EXCLUSIVE = "exclusive"


def _seconds(env: str, default: float) -> float:
    try:
        return float(os.environ.get(env, default))
    except ValueError:
        return default


TTL = _seconds("VGER_LOCK_TTL", 30 * 60)  # restic also calls a lock stale after 30 minutes
REFRESH = _seconds("VGER_LOCK_REFRESH", 5 * 60)


@dataclass(frozen=True)
class LockInfo:
    key: str
    kind: str
    hostname: str
    pid: int
    username: str
    command: str
    created: float
    refreshed: float

    def describe(self) -> str:
        since = dt.datetime.fromtimestamp(self.created).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.kind} lock by {self.command or 'vger'} (pid {self.pid} on {self.hostname}, user {self.username}) since {since}"

    def stale_reason(self, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        if self.hostname == socket.gethostname() and not _pid_alive(self.pid):
            return f"process {self.pid} no longer runs on this host"
        if now - self.refreshed > TTL:
            return f"not refreshed for {int(now - self.refreshed)} s (ttl {int(TTL)} s)"
        return None


_warned: set[str] = set()  # stale locks already reported by this process


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_locks(repo: Repository) -> Iterator[LockInfo]:
    for key in sorted(repo.backend.list(fmt.LOCKS_PREFIX)):
        try:
            plain = repo.unseal(ObjectType.LOCK, repo.backend.get(key), key.encode(), what=key)
            doc = msgpack.unpackb(plain, raw=False)
            yield LockInfo(key=key, **doc)
        except ObjectNotFound:
            continue  # released while we listed
        except (VgerError, TypeError, ValueError) as exc:
            log.warning("unreadable lock %s: %s", key, exc)
            yield LockInfo(key, EXCLUSIVE, "?", 0, "?", f"unreadable lock ({exc})", 0.0, 0.0)


class Lock:
    """A held lock; refreshed in the background until :meth:`release`."""

    def __init__(self, repo: Repository, kind: str, command: str) -> None:
        self.repo = repo
        self.kind = kind
        self.command = command
        self.key = fmt.LOCKS_PREFIX + os.urandom(16).hex()
        self.created = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._written = False
        self._last_refresh = 0.0

    def _write(self) -> None:
        now = time.time()
        doc: dict[str, object] = {
            "kind": self.kind,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "username": _user(),
            "command": self.command,
            "created": self.created,
            "refreshed": now,
        }
        self.repo.backend.put(
            self.key, self.repo.seal(ObjectType.LOCK, msgpack.packb(doc), self.key.encode())
        )
        self._written = True
        self._last_refresh = now

    def _conflicts(self) -> list[LockInfo]:
        found = []
        for info in read_locks(self.repo):
            if info.key == self.key:
                continue
            reason = info.stale_reason()
            if reason is not None:
                if info.key not in _warned:
                    _warned.add(info.key)
                    log.warning(
                        "ignoring stale %s: %s; remove it with `vger break-lock`", info.describe(), reason
                    )
                continue
            if self.kind == EXCLUSIVE or info.kind == EXCLUSIVE:
                found.append(info)
        return found

    def acquire(self) -> Lock:
        conflicts = self._conflicts()
        if not conflicts:
            try:
                self._write()
            except PermanentStorageError as exc:
                if self.kind == EXCLUSIVE:
                    raise
                # A read-only repository (a mounted archive disk, say) can still be
                # read; nobody can compact it under us either.
                log.warning("cannot write a lock (%s); reading without one", exc)
                return self
            conflicts = self._conflicts()  # someone may have locked at the same moment
            if conflicts:
                self._delete()
        if conflicts:
            holders = "; ".join(c.describe() for c in conflicts)
            raise LockError(
                f"{self.repo.label} is locked: {holders}. Try again when it finishes; if that process "
                "crashed, run `vger break-lock`"
            )
        self._thread = threading.Thread(target=self._refresh_loop, name="vger-lock", daemon=True)
        self._thread.start()
        return self

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH):
            try:
                self._write()
            except VgerError as exc:
                log.warning("could not refresh lock %s: %s", self.key, exc)

    def _delete(self) -> None:
        if not self._written:
            return
        try:
            self.repo.backend.delete(self.key)
        except ObjectNotFound:
            pass
        self._written = False

    def ensure_held(self) -> None:
        """Raise unless our lock is still in place and could not have looked stale to others.

        Called right before a commit: if the lock was broken, or we were away
        (suspended, stalled) longer than the TTL, a compact elsewhere may have
        removed data this run relies on, so committing could make a snapshot
        with holes. Better to fail and let the next run start over.
        """
        if not self._written:
            return  # lockless read-only mode never commits
        if time.time() - self._last_refresh > TTL:
            raise LockError(
                f"{self.repo.label}: our lock was not refreshed for longer than its TTL ({int(TTL)} s); "
                "another client may have treated it as stale, so nothing is committed. Run the backup again"
            )
        if not self.repo.backend.exists(self.key):
            raise LockError(
                f"{self.repo.label}: our lock was removed (vger break-lock?) while we ran; "
                "nothing is committed. Run the backup again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._delete()


@contextmanager
def locked(repo: Repository, kind: str, command: str) -> Iterator[Lock]:
    lock = Lock(repo, kind, command).acquire()
    try:
        yield lock
    except BaseException:
        # When the storage went away mid-command, removing the lock fails too;
        # the user must see why the command failed, not that the lock stayed
        # (it goes stale and is ignored, or `vger break-lock` removes it).
        try:
            lock.release()
        except VgerError as exc:
            log.info("%s: could not remove lock %s: %s", repo.backend.location, lock.key, exc)
        raise
    lock.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
