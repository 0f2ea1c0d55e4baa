"""Progress display on a terminal (rich); nothing at all when stdout is not a TTY.

rich is used instead of hand-written carriage-return output: it handles terminal
width, redraw rate limiting and clean teardown on errors.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


class ProgressDisplay:
    """Files, bytes, throughput and ETA; ETA needs an expected total (e.g. the last snapshot's size)."""

    def __init__(self, description: str, total_bytes: int | None = None) -> None:
        # Imported here: only a terminal run shows progress, and rich costs
        # ~20 ms of every command's start-up otherwise.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._console = Console(stderr=False)
        columns = [
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[files]} files"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
        ]
        if total_bytes:
            columns[2:2] = [BarColumn()]
            columns.append(TimeRemainingColumn())
        self._progress = Progress(*columns, console=self._console, transient=True)
        self._task = self._progress.add_task(description, total=total_bytes or None, files=0)
        self._files = 0
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def file_done(self, path: bytes, size: int) -> None:
        with self._lock:
            self._files += 1
            self._progress.update(self._task, files=self._files)

    def bytes_read(self, count: int) -> None:
        self._progress.advance(self._task, count)


class JsonProgress:
    """``--json -v``: progress as JSON lines on stdout, at most one per ``interval`` seconds."""

    def __init__(self, description: str, total_bytes: int | None = None, interval: float = 1.0) -> None:
        self.description = description
        self.total = total_bytes
        self.interval = interval
        self.files = 0
        self.bytes = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._emit(force=True)

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._start
        doc = {
            "event": "progress",
            "task": self.description,
            "files": self.files,
            "bytes": self.bytes,
            "total_bytes": self.total,
            "elapsed": round(elapsed, 3),
            "bytes_per_second": round(self.bytes / elapsed) if elapsed > 0 else 0,
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    def file_done(self, path: bytes, size: int) -> None:
        with self._lock:
            self.files += 1
            self._emit()

    def bytes_read(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            self._emit()


def make_progress(app: Any, description: str, total_bytes: int | Callable[[], int | None] | None) -> Any:
    """The right progress sink for this run: rich on a terminal, JSON lines with --json -v, else none.

    ``total_bytes`` may be a function, called only when a display is shown:
    guessing a backup's size reads every snapshot of the repository.
    """
    from vger.cli.output import stdout_is_tty

    if app.json:
        if app.verbose < 1:
            return None
        return JsonProgress(description, total_bytes() if callable(total_bytes) else total_bytes)
    if app.quiet or not stdout_is_tty():
        return None
    return ProgressDisplay(description, total_bytes() if callable(total_bytes) else total_bytes)
