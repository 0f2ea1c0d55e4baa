"""The progress display: shown on a terminal, absent when stdout is not one."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

from tests.conftest import Vger


def _run_on_a_terminal(vger: Vger, *args: str) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), *args],
        env=vger.env,
        cwd=vger.tmp,
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(master)
    return proc.wait(timeout=60), out


def test_progress_on_a_terminal_and_none_without_one(vger: Vger) -> None:
    (vger.tmp / "src" / "big.bin").write_bytes(os.urandom(40 << 20))
    vger.run("init")
    code, shown = _run_on_a_terminal(vger, "backup")
    assert code == 0
    assert b" files" in shown and b"MiB" in shown and b"\x1b[" in shown  # rich's live line
    # The second run knows the expected size from the last snapshot: a bar and an ETA.
    (vger.tmp / "src" / "more.bin").write_bytes(os.urandom(8 << 20))
    code, shown = _run_on_a_terminal(vger, "backup")
    assert code == 0 and "━".encode() in shown  # rich's bar: a total is known, so is an ETA

    (vger.tmp / "src" / "third.bin").write_bytes(os.urandom(8 << 20))
    piped = vger.run("backup")
    assert "\x1b[" not in piped.stdout and " files " not in piped.stdout.split("snapshot")[0]
    assert piped.stdout.count("\n") == 1  # only the summary line
