"""O_DIRECT switched on and off around writes: shared by the file backend and restore.

Both write data that is not read back soon, straight from an aligned buffer to
the disk; both must fall back to ordinary writes where a filesystem refuses it.
"""

from __future__ import annotations

import os

#: O_DIRECT wants buffer, file offset and length aligned to the logical block
#: size; 4 KiB covers the usual 512-byte and 4 KiB devices.
ALIGN = 4096
O_DIRECT = getattr(os, "O_DIRECT", 0)


def set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for ``fd``; False if the filesystem refuses to turn it on."""
    import fcntl  # not on Windows; only reached where O_DIRECT exists

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | O_DIRECT) if on else (flags & ~O_DIRECT))
    except OSError:
        if on:
            return False
        raise
    return True
