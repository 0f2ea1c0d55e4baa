"""Progress display on a terminal (rich); nothing at all when stdout is not a TTY.

rich is used instead of hand-written carriage-return output: it handles terminal
width, redraw rate limiting and clean teardown on errors.
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ProgressDisplay:
    """Files, bytes, throughput and ETA; ETA needs an expected total (e.g. the last snapshot's size)."""

    def __init__(self, description: str, total_bytes: int | None = None) -> None:
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
        self._task: TaskID = self._progress.add_task(description, total=total_bytes or None, files=0)
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
