"""Writing restored file data past the page cache (O_DIRECT), where the filesystem allows it.

Why: a restore writes every byte into fresh page-cache pages, and on the VMs we
measure on filling new pages is the kernel's most expensive copy (0.27 GB/s,
more than half of a 2 GiB restore's CPU). Restored data is not read back soon,
so caching it also pushes the user's working set out of memory. Each chunk's
block-aligned middle is therefore copied into an aligned buffer and written
with O_DIRECT; its unaligned head and tail (under 4 KiB each) go through the
page cache as before. The two never touch the same page, so the kernel keeps
them coherent. Small chunks stay buffered (the copy would not pay), and a
filesystem that refuses O_DIRECT (tmpfs on older kernels, FUSE, some network
mounts) turns it off for the rest of the restore.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading

from vger.directio import ALIGN, O_DIRECT, set_direct

#: Chunks smaller than this are written through the page cache.
DIRECT_MIN = 256 * 1024


def pwrite_all(fd: int, view: memoryview, position: int) -> None:
    while view:
        written = os.pwrite(fd, view, position)
        position += written
        view = view[written:]


class DirectWriter:
    """``write_at`` for many threads; each thread has its own aligned staging buffer."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and bool(O_DIRECT)
        self._local = threading.local()

    def write_at(self, fd: int, view: memoryview, position: int) -> None:
        """Write ``view`` at ``position`` of ``fd`` (an ordinary descriptor; O_DIRECT is set and
        cleared around the aligned part, so a descriptor is never shared between threads)."""
        if self.enabled and len(view) >= DIRECT_MIN:
            start = -position % ALIGN
            end = (position + len(view)) // ALIGN * ALIGN - position
            if end - start >= ALIGN and self._write_direct(fd, view[start:end], position + start):
                pwrite_all(fd, view[:start], position)
                pwrite_all(fd, view[end:], position + end)
                return
        pwrite_all(fd, view, position)

    def _stage(self, size: int) -> mmap.mmap:
        stage: mmap.mmap | None = getattr(self._local, "stage", None)
        if stage is None or len(stage) < size:
            if stage is not None:
                stage.close()
            # page-aligned, as O_DIRECT needs; kept for the thread's next chunks
            stage = self._local.stage = mmap.mmap(-1, max(size, 8 * 1024 * 1024))
        return stage

    def _write_direct(self, fd: int, aligned: memoryview, position: int) -> bool:
        """False (nothing written) where O_DIRECT is refused; then it stays off."""
        stage = self._stage(len(aligned))
        with memoryview(stage) as buf:
            buf[: len(aligned)] = aligned
            if not set_direct(fd, True):
                self.enabled = False
                return False
            try:
                pwrite_all(fd, buf[: len(aligned)], position)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self.enabled = False  # accepted by fcntl, refused by the write: nothing was written
                return False
            finally:
                set_direct(fd, False)
        return True
