"""Walking a source in a child process that starts with the command, ahead of the backup.

Why: on a tree that did not change, a backup is mostly start-up, key
derivation and the walk (``scandir`` + ``lstat`` of every entry: 75 ms of a
0.35 s no-change backup of the 20,000-file bench tree). The walk needs only
the source's paths and walk options, yet it ran after the imports, the
config, Argon2id and the index, with the second core idle for much of that.
A thread cannot take it over: each ``lstat`` gives up the GIL and then waits
up to the switch interval (5 ms) to get it back from a busy main thread. So
a small child process (``python -S`` loading ``walker.py`` alone: about 10 ms
to start) runs the same :class:`~vger.backup.walker.Walker` and streams the
entries back in walk order, in batches of fixed-size records. The parent
rebuilds each ``os.stat_result`` from all of its fields, exactly as ``lstat``
returned it.

The child starts before the config is even read, from a *walk plan*
remembered from the last run of the same command line in the same folder
(``<cache>/walk-plans``). The backup takes its entries only if the plan is
exactly the source's paths and walk options and nothing configured runs
before the walk (hooks, dumps, a plugin's ``vger_before``): otherwise the
child is stopped and the source is walked in-process as always. The plan is
a hint, never trusted: a stale or edited one only wastes the child's work.
If the child dies mid-walk, the walk goes on in-process from where it was.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import marshal
import os
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from vger.backup.walker import Entry, Walker, WalkError, WalkOptions

_FRAME = struct.Struct("<cII")
# mode ino dev nlink uid gid size | atime mtime ctime (int s) | the same as floats |
# the same in ns | blksize blocks rdev
_RECORD = struct.Struct("<QQQQQQqqqqdddqqqqqQ")
BATCH = 2048  # entries per message (about 400 KB)
#: Beyond this many unread bytes the parent stops reading; the child then waits.
MAX_BUFFERED = 64 * 1024 * 1024
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ on Linux (the constant is Python 3.10+, Linux only)
PLANS_FILE = "walk-plans"
_KEEP_PLANS = 32
DISABLE_ENV = "VGER_WALK_AHEAD"  # "0": never start a child

# The child loads walker.py by path (the vger package would import pluggy and
# more) and writes frames to stdout: a header (_FRAME: kind, count, body
# length), then the body. Kind "e": ``count`` entries, as ``count`` fixed-size
# records of all 19 ``stat_result`` fields (_RECORD, in the tuple's order),
# then the paths joined by NUL (which no path contains). Kind "r": root number
# ``count`` is done; the body is its walk errors, marshalled. Fixed records
# decode with ``struct.iter_unpack`` straight into the tuples ``stat_result``
# takes: 28 ms for the bench tree's 21,570 entries, against 39 ms for marshal
# (whose 64-bit integers are slow to read).
_CHILD = r"""
import marshal, os, struct, sys
from importlib.machinery import SourceFileLoader
args = marshal.loads(sys.stdin.buffer.read())
sys.path[:0] = args["path"]
mod = type(sys)("_vger_walker")
sys.modules["_vger_walker"] = mod
SourceFileLoader("_vger_walker", args["walker"]).exec_module(mod)
out = os.fdopen(1, "wb", buffering=1 << 20)
frame = struct.Struct(args["frame"])
record = struct.Struct(args["record"])
pack = record.pack
def send(kind, count, body):
    out.write(frame.pack(kind, count, len(body)))
    out.write(body)
def send_batch(batch, paths):
    send(b"e", len(paths), b"".join(batch) + b"\0".join(paths))
walker = mod.Walker(mod.WalkOptions(**args["options"]))
size = args["batch"]
for number, root in enumerate(args["roots"]):
    batch, paths = [], []
    for entry in walker.walk(root):
        st = entry.st
        batch.append(pack(*st[:10], st.st_atime, st.st_mtime, st.st_ctime, st.st_atime_ns,
                          st.st_mtime_ns, st.st_ctime_ns, st.st_blksize, st.st_blocks, st.st_rdev))
        paths.append(entry.path)
        if len(paths) >= size:
            send_batch(batch, paths)
            out.flush()
            batch, paths = [], []
    if paths:
        send_batch(batch, paths)
    send(b"r", number, marshal.dumps([(e.path, e.message) for e in walker.errors]))
    walker.errors.clear()
    out.flush()
out.close()
"""


class WalkAheadFailed(Exception):
    """The child died, or said something unexpected: the caller walks on in-process."""


def _options_doc(options: WalkOptions) -> dict[str, Any]:
    return {
        "exclude": list(options.exclude),
        "exclude_if_present": list(options.exclude_if_present),
        "one_file_system": bool(options.one_file_system),
        "git_ignore": bool(options.git_ignore),
    }


def _options_from(doc: dict[str, Any]) -> WalkOptions:
    return WalkOptions(
        exclude=tuple(doc["exclude"]),
        exclude_if_present=tuple(doc["exclude_if_present"]),
        one_file_system=bool(doc["one_file_system"]),
        git_ignore=bool(doc["git_ignore"]),
    )


class WalkAhead:
    """A child walking ``roots`` with ``options``; :meth:`walk` gives what :class:`Walker` would."""

    def __init__(self, roots: Sequence[str], options: WalkOptions) -> None:
        self.roots = list(roots)
        self.options = options
        self.errors: list[WalkError] = []
        from vger.backup import walker as walker_module

        args = {
            "path": [p for p in sys.path if p],
            "walker": walker_module.__file__,
            "options": _options_doc(options),
            "roots": self.roots,
            "batch": BATCH,
            "frame": _FRAME.format,
            "record": _RECORD.format,
        }
        # The plan goes through stdin, not the command line: other users can read
        # a process's arguments, and source paths and excludes are the user's own.
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(marshal.dumps(args))
            self._proc.stdin.close()
        except OSError:
            pass  # the child is gone already: its stream just ends early
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        try:
            import fcntl

            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, _PIPE_SIZE)  # fewer, bigger reads
        except (ImportError, OSError):
            pass
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._buffered = 0
        self._stopped = False
        self._ready = threading.Condition()
        self._pending = bytearray()
        self._next_root = 0
        self._broken = False  # after a failure the stream's position is unknown: read no more
        self.delivered = 0  # entries of the current root handed out
        # A thread reads the pipe while the main thread derives the key; os.read
        # gives up the GIL and wakes once per pipe-full, not once per message.
        self._reader = threading.Thread(target=self._read_all, name="vger-walk-ahead", daemon=True)
        self._reader.start()

    def _read_all(self) -> None:
        try:
            while True:
                data = os.read(self._fd, _PIPE_SIZE)
                if not data:
                    break
                with self._ready:
                    self._chunks.append(data)
                    self._buffered += len(data)
                    self._ready.notify_all()
                    while self._buffered > MAX_BUFFERED and not self._stopped:
                        self._ready.wait()
                    if self._stopped:
                        break
        except OSError:
            pass
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify_all()

    def _take(self, size: int) -> bytes:
        """The next ``size`` bytes of the stream."""
        pending = self._pending
        while len(pending) < size:
            with self._ready:
                while not self._chunks and not self._ended:
                    self._ready.wait()
                if not self._chunks:
                    raise WalkAheadFailed("the walk process ended early")
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                self._ready.notify_all()
            pending += chunk
        data = bytes(pending[:size])
        del pending[:size]
        return data

    def _frame(self) -> tuple[bytes, int, bytes]:
        kind, count, size = _FRAME.unpack(self._take(_FRAME.size))
        return kind, count, self._take(size)

    def walk(self, root: str) -> Iterator[Entry]:
        """The entries of ``root``, which must be the plan's next root, in walk order.

        ``delivered`` counts the entries of the batches handed out in full: a
        failure can only come between batches (see :func:`walk_entries`). After
        a failure nothing more is read from the child, for this root or the next.
        """
        if self._broken:
            raise WalkAheadFailed("the walk process failed before")
        if self._next_root >= len(self.roots) or root != self.roots[self._next_root]:
            raise WalkAheadFailed(f"{root} is not the walk process's next root")
        number = self._next_root
        self._next_root += 1
        self.delivered = 0
        try:
            yield from self._entries(number)
        except WalkAheadFailed:
            self._broken = True
            raise

    def _entries(self, number: int) -> Iterator[Entry]:
        stat_result = os.stat_result
        record_size = _RECORD.size
        while True:
            kind, count, body = self._frame()
            if kind == b"e":
                end = count * record_size
                paths = body[end:].split(b"\0")
                if len(paths) != count or not count or len(body) < end:
                    raise WalkAheadFailed("the walk process sent a malformed batch")
                for path, fields in zip(paths, _RECORD.iter_unpack(memoryview(body)[:end]), strict=True):
                    yield Entry(path, stat_result(fields))
                self.delivered += count
            elif kind == b"r" and count == number:
                try:
                    errors = marshal.loads(body)
                except (ValueError, EOFError, TypeError) as exc:
                    raise WalkAheadFailed(f"the walk process sent garbage: {exc}") from exc
                self.errors.extend(WalkError(path, message) for path, message in errors)
                return
            else:
                raise WalkAheadFailed(f"unexpected frame {kind!r} from the walk process")

    def close(self) -> None:
        """Stop the child if it is still going, and reap it (again: nothing)."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._reader.join()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def walk_entries(root: str, walker: Walker, ahead: WalkAhead | None) -> Iterator[Entry]:
    """``root``'s entries from ``ahead`` if given, else (or from where it failed) from ``walker``.

    A child that dies mid-walk is resumed by walking in-process and skipping as
    many entries as it delivered: the walk order is deterministic.
    """
    if ahead is None:
        yield from walker.walk(root)
        return
    try:
        yield from ahead.walk(root)
        return
    except WalkAheadFailed:
        pass
    for number, entry in enumerate(walker.walk(root)):
        if number >= ahead.delivered:
            yield entry


# -- starting early, from a remembered plan ---------------------------------------
_early: WalkAhead | None = None


# Options that change what a backup records or prints but not what it walks:
# they are left out of a plan's key, so that `backup --label monday` and
# `backup --label tuesday` share one plan (a key is only a hint: see claim).
_FLAGS_NOT_IN_KEY = {"--stats", "--json", "--quiet", "-q", "--verbose", "--dry-run"}


def _plan_key(argv: Sequence[str]) -> str:
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--label":
            skip = True
        elif not (
            arg in _FLAGS_NOT_IN_KEY or arg.startswith("--label=") or (len(arg) > 1 and arg.strip("v") == "-")
        ):
            kept.append(arg)
    where = [kept, os.getcwd(), os.environ.get("VGER_CONFIG", "")]
    return hashlib.blake2b(json.dumps(where).encode(), digest_size=16).hexdigest()


def _read_plans() -> dict[str, Any]:
    from vger.cachedir import read_json_memo

    return read_json_memo(PLANS_FILE)


def start_early(argv: Sequence[str]) -> None:
    """Start walking the plan remembered for this command line, if there is one.

    Called first thing by the ``vger`` entry point; never fails (a problem here
    only means no head start).
    """
    global _early
    if _early is not None or "backup" not in argv or os.environ.get(DISABLE_ENV) == "0":
        return
    try:
        plan = _read_plans().get(_plan_key(argv))
        if not isinstance(plan, dict):
            return
        _early = WalkAhead([str(r) for r in plan["roots"]], _options_from(plan["options"]))
        atexit.register(_discard)
    except Exception:  # a damaged plan file, no interpreter to start, ...: no head start
        _early = None


def discard() -> None:
    """Stop the early walk, if any, without touching the remembered plans (a dry run)."""
    _discard()


def _discard() -> None:
    global _early
    if _early is not None:
        ahead, _early = _early, None
        ahead.close()


def claim(argv: Sequence[str], roots: Sequence[str], options: WalkOptions, allowed: bool) -> WalkAhead | None:
    """The early walk if it walks exactly ``roots`` with ``options`` and ``allowed``; else None.

    Remembers the plan for the next run of this command line (or forgets it
    when the walk may not start early), so the first run of a config starts
    no child and a changed config costs one wasted child at most.
    """
    global _early
    ahead, _early = _early, None
    usable = ahead is not None and allowed and ahead.roots == list(roots) and ahead.options == options
    if ahead is not None and not usable:
        ahead.close()
        ahead = None
    if ahead is not None:
        import logging

        logging.getLogger("vger").debug("walk: taken from the walk started with the command")
    _remember(argv, roots, options, allowed)
    return ahead


def _remember(argv: Sequence[str], roots: Sequence[str], options: WalkOptions, allowed: bool) -> None:
    if "backup" not in argv:
        return
    from vger.cachedir import write_json_memo

    plans = _read_plans()
    key = _plan_key(argv)
    plan = {"roots": list(roots), "options": _options_doc(options)} if allowed else None
    if plans.get(key) == plan:
        return
    plans.pop(key, None)
    if plan is not None:
        plans[key] = plan  # newest last
    write_json_memo(PLANS_FILE, plans, _KEEP_PLANS)


def may_walk_early(
    global_hooks: Mapping[str, Iterable[str]],
    repo_hooks: Mapping[str, Iterable[str]],
    source_hooks: Mapping[str, Iterable[str]],
    has_dumps: bool,
    before_plugins: Iterable[str],
) -> bool:
    """Whether walking before the command's steps ran sees what walking in turn would.

    Not when a ``before`` hook could change the tree (mount a disk, stop an
    app, write a file), when dumps run first, or when a plugin other than the
    built-in shell hooks and monitoring acts before steps.
    """
    for hooks in (global_hooks, repo_hooks, source_hooks):
        if any(name.startswith("before") and list(commands) for name, commands in hooks.items()):
            return False
    return not has_dumps and set(before_plugins) <= {"lifecycle-shell", "vger-monitoring"}
