"""Big changed files are read before the walk reaches them (the archiver's head start).

The walk must still decide: it uses the early read only for the same version
of the file it meets, reads a file that changed again, and leaves out a file
that vanished. The limits are patched down so small files take the path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import Vger, restored_root, write_file

# Files of 300 kB stand in for the real 32 MiB, and take the big files' thread path.
SMALL_HEAD_START = (
    "import vger.backup.archiver as a\n"
    "a.HEAD_START_SIZE = 4096\na.HEAD_START_FILES = 8\na._SOLO_SIZE = 65536\n"
)
# Runs after the head start has submitted its reads, before the walk begins.
AFTER_HEAD_START = (
    SMALL_HEAD_START
    + "import os\n"
    + "real = a.Archiver._head_start\n"
    + "def head_start(self, *args):\n"
    + "    started = real(self, *args)\n"
    + "    for path in started:\n"
    + "        ACTION\n"
    + "    return started\n"
    + "a.Archiver._head_start = head_start\n"
)


def _body(seed: int, size: int) -> bytes:
    return bytes((seed * 7 + i * 13) % 251 for i in range(size))


def _stats(proc: Any) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    stats: dict[str, Any] = docs[0]["stats"]
    return stats


def _setup(vger: Vger) -> Path:
    src = vger.tmp / "src"
    for n in range(3):
        write_file(src / f"big{n}.bin", _body(n, 300_000))
    for n in range(40):
        write_file(src / "small" / f"f{n:02d}.txt", f"file {n}\n".encode())
    vger.run("init")
    vger.run("backup")
    return src


def _restore(vger: Vger, dest: Path) -> Path:
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    return restored_root(dest, vger.tmp / "src")


def test_a_changed_big_file_is_read_once_and_restores(vger: Vger) -> None:
    src = _setup(vger)
    (src / "big1.bin").write_bytes(_body(9, 310_000))
    stats = _stats(vger.run_patched(SMALL_HEAD_START, "backup", "--json"))
    assert stats["files_read"] == 1
    assert stats["bytes_read"] == 310_000  # the early read was used, not repeated
    assert (_restore(vger, vger.tmp / "out") / "big1.bin").read_bytes() == _body(9, 310_000)
    again = _stats(vger.run_patched(SMALL_HEAD_START, "backup", "--json"))
    assert again["files_read"] == 0  # and the files cache learnt the new version


def test_a_file_changed_again_after_the_early_read_is_read_again(vger: Vger) -> None:
    src = _setup(vger)
    (src / "big2.bin").write_bytes(_body(5, 320_000))
    action = "open(path, 'ab').write(b'appended after the head start')"
    stats = _stats(vger.run_patched(AFTER_HEAD_START.replace("ACTION", action), "backup", "--json"))
    final = _body(5, 320_000) + b"appended after the head start"
    assert stats["bytes_read"] >= 320_000 + len(final)  # the early read, then the real one
    assert (_restore(vger, vger.tmp / "out") / "big2.bin").read_bytes() == final


def test_a_file_deleted_after_the_early_read_is_simply_gone(vger: Vger) -> None:
    src = _setup(vger)
    (src / "big0.bin").write_bytes(_body(4, 300_001))
    proc = vger.run_patched(AFTER_HEAD_START.replace("ACTION", "os.unlink(path)"), "backup", "--json")
    stats = _stats(proc)
    assert stats["files"] == 42
    assert proc.stderr == ""
    restored = _restore(vger, vger.tmp / "out")
    assert not (restored / "big0.bin").exists()
    assert (restored / "big1.bin").read_bytes() == _body(1, 300_000)
    assert vger.run("check").returncode == 0
    assert sorted(os.listdir(restored / "small")) == sorted(os.listdir(src / "small"))
