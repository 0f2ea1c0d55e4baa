"""Running dump and restore tools as child processes, for dump plugins.

Glossary:

tail
    The last few KiB of a tool's stderr. Error messages carry it because the
    reason a dump failed ("role does not exist", "Access denied") is almost
    always at the end, and a whole stderr can be megabytes.
process group
    Each tool runs in a session of its own, so a timeout or an abort kills the
    shell *and* what it started (``sh -c "pg_dump ... | gzip"`` leaves no
    orphan still writing into a pipe nobody reads).

:class:`ProcessStream` is a ready-made :class:`vger.interfaces.DumpStream`
over a command's stdout and :class:`ProcessRestore` a ready-made
:class:`vger.interfaces.DumpRestore` into a command's stdin; third-party dump
plugins may use both.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO, Any

from vger.errors import VgerError

log = logging.getLogger("vger.dumps")

#: How much of a tool's stderr an error message quotes.
TAIL_BYTES = 2048
_COPY_BLOCK = 1024 * 1024


class _StderrTail:
    """Drains a pipe on a thread of its own (a full stderr pipe would block the tool) and keeps its end."""

    def __init__(self, pipe: IO[bytes], what: str) -> None:
        self._pipe = pipe
        self._what = what
        self._kept: deque[bytes] = deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, name="vger-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for line in iter(self._pipe.readline, b""):
            log.info("%s: %s", self._what, line.rstrip(b"\n").decode("utf-8", "replace"))
            self._kept.append(line)
            self._size += len(line)
            while self._size > TAIL_BYTES and len(self._kept) > 1:
                self._size -= len(self._kept.popleft())
        self._pipe.close()

    def text(self) -> str:
        self._thread.join(timeout=10)
        raw = b"".join(self._kept)[-TAIL_BYTES:]
        return " ".join(raw.decode("utf-8", "replace").split())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _spawn(
    argv: Sequence[str] | str, *, shell: bool, env: Mapping[str, str] | None, what: str, **kwargs: Any
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            shell=shell,
            env={**os.environ, **env} if env else None,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **kwargs,
        )
    except FileNotFoundError:
        tool = argv if isinstance(argv, str) else argv[0]
        raise VgerError(f"{what}: {tool} is not installed (not found on PATH)") from None
    except OSError as exc:
        raise VgerError(f"{what}: cannot start: {exc.strerror}") from None


def _failure(what: str, returncode: int, tail: str) -> str:
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
    return f"{what} {how}" + (f": {tail}" if tail else " (no stderr)")


def shown_command(argv: Sequence[str] | str) -> str:
    """The command as a user could paste it into a shell."""
    return argv if isinstance(argv, str) else shlex.join(argv)


class _Tool:
    """What a dump and a restore share: the command, its environment, and starting it.

    Subclasses set ``argv``, ``env``, ``shell`` and ``what``.
    """

    argv: Sequence[str] | str
    env: Mapping[str, str] | None
    shell: bool
    what: str

    def command(self) -> tuple[Sequence[str] | str, tuple[int, ...]]:
        """The argv to run and descriptors to pass on; override to hand a secret over a pipe."""
        return self.argv, ()

    def spawned(self) -> None:
        """Called once the tool runs (or failed to start): close what ``command`` opened."""

    def _start(self, *, stdin: int) -> subprocess.Popen[bytes]:
        argv, fds = self.command()
        try:
            return _spawn(
                argv,
                shell=self.shell,
                env=self.env,
                what=self.what,
                stdin=stdin,
                stdout=subprocess.PIPE,
                pass_fds=fds,
            )
        finally:
            self.spawned()


class ProcessStream(_Tool):
    """A :class:`~vger.interfaces.DumpStream` reading a command's stdout.

    ``argv`` is a list (run directly) or, with ``shell=True``, a shell string.
    ``env`` is added to the environment: the way to pass passwords
    (``PGPASSWORD``, ``MYSQL_PWD``), since the argv of every process is
    readable by every user of the machine. ``timeout`` (seconds) kills the
    whole process group and fails the dump.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str] | str,
        *,
        metadata: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        timeout: float | None = None,
        what: str | None = None,
    ) -> None:
        self.name = name
        self.metadata: Mapping[str, Any] = dict(metadata or {})
        self.argv = argv
        self.env = env
        self.shell = shell
        self.timeout = timeout
        self.what = what or f"dump {name!r} ({shown_command(argv)})"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: _StderrTail | None = None
        self._timer: threading.Timer | None = None
        self._timed_out = threading.Event()

    def open(self) -> IO[bytes]:
        proc = self._start(stdin=subprocess.DEVNULL)
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        self._stderr = _StderrTail(proc.stderr, self.what)
        if self.timeout:
            self._timer = threading.Timer(self.timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return proc.stdout

    def _expire(self) -> None:
        self._timed_out.set()
        if self._proc is not None:
            _kill_group(self._proc)

    def finish(self) -> None:
        proc = self._proc
        if proc is None:
            raise VgerError(f"{self.what}: finish() without open()")
        returncode = proc.wait()
        if self._timer is not None:
            self._timer.cancel()
        assert self._stderr is not None
        tail = self._stderr.text()
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None
        if self._timed_out.is_set():
            raise VgerError(
                f"{self.what} timed out after {self.timeout:g} s and was killed"
                + (f": {tail}" if tail else "")
            )
        if returncode != 0:
            raise VgerError(_failure(self.what, returncode, tail))

    def abort(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if self._timer is not None:
            self._timer.cancel()
        _kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()


class ProcessRestore(_Tool):
    """A :class:`~vger.interfaces.DumpRestore` writing the dump into a command's stdin.

    The tool's stdout is logged (``psql`` echoes every statement); its
    stderr's tail goes into the error message.
    """

    def __init__(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        what: str | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.shell = shell
        self.what = what or shown_command(argv).split(" ", 1)[0]

    def describe(self) -> str:
        return shown_command(self.argv)

    def run(self, data: IO[bytes]) -> None:
        proc = self._start(stdin=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr = _StderrTail(proc.stderr, self.what)
        stdout = threading.Thread(target=self._log_stdout, args=(proc.stdout,), daemon=True)
        stdout.start()
        try:
            while block := data.read(_COPY_BLOCK):
                proc.stdin.write(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the tool stopped reading: its exit status and stderr say why
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        returncode = proc.wait()
        stdout.join(timeout=10)
        if returncode != 0:
            raise VgerError(_failure(self.what, returncode, stderr.text()))

    def _log_stdout(self, pipe: IO[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            log.debug("%s: %s", self.what, line.rstrip(b"\n").decode("utf-8", "replace"))
        pipe.close()
