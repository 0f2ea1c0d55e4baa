"""``limits`` through the real CLI: an I/O rate cap on a local backup, niceness and thread caps.

The rate is measured from the repository side: each pack's mtime is when its
last bytes were written, so the bytes of every pack but the first divided by
the time between the first and the last pack is the write rate the disk saw,
free of process start-up and key derivation.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Vger, write_file
from e2e.helpers import MiB, random_bytes

RATE = 20  # MiB/s, as in the issue
PACK = 8 * MiB  # small packs: more points to measure between


def configure(vger: Vger, limits: dict[str, Any], sources: list[str]) -> None:
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main", "min_pack_size": PACK}],
            "sources": sources,
            "limits": limits,
        }
    )


def pack_times(repo: Path) -> list[tuple[float, int]]:
    packs = [p for p in (repo / "packs").rglob("*") if p.is_file()]
    return sorted((p.stat().st_mtime, p.stat().st_size) for p in packs)


@pytest.mark.slow
def test_io_write_limit_caps_a_local_backup(vger: Vger) -> None:
    src = vger.tmp / "src"
    for i in range(10):
        write_file(src / f"f{i}.bin", random_bytes(8 * MiB, seed=500 + i))  # incompressible
    configure(vger, {"io": {"write_mib_per_sec": RATE}}, [str(src)])
    vger.run("init")
    started = time.monotonic()
    vger.run("backup")
    elapsed = time.monotonic() - started
    times = pack_times(vger.tmp / "repo")
    assert len(times) >= 8, times
    written = sum(size for _, size in times[1:])
    span = times[-1][0] - times[0][0]
    rate = written / span / MiB
    print(f"measured write rate: {rate:.2f} MiB/s over {span:.2f} s ({len(times)} packs)")
    assert RATE * 0.85 <= rate <= RATE * 1.15, f"{rate:.1f} MiB/s, limit {RATE}"
    total = sum(size for _, size in times) / MiB
    assert elapsed > total / RATE * 0.85


def proc_stat(pid: int) -> tuple[int, int]:
    """(niceness, number of threads) of a running process, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    # after "pid (comm) ": state is field 3, nice field 19, num_threads field 20
    return int(fields[16]), int(fields[17])


def watch_backup(vger: Vger) -> tuple[int, int]:
    """Run a backup slowed by an I/O limit; the highest niceness and thread count seen."""
    cmd = [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"]
    proc = subprocess.Popen(cmd, env=vger.env, cwd=vger.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    nice = threads = 0
    try:
        while proc.poll() is None:
            try:
                now_nice, now_threads = proc_stat(proc.pid)
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                break
            nice, threads = max(nice, now_nice), max(threads, now_threads)
            time.sleep(0.02)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    return nice, threads


@pytest.mark.slow
def test_nice_and_max_threads_apply_to_the_backup_process(vger: Vger) -> None:
    sources = []
    for run in range(2):
        src = vger.tmp / f"src{run}"
        # files of 4 MiB and more are a chunking task each: eight tasks at once
        for i in range(8):
            write_file(src / f"f{i}.bin", random_bytes(4 * MiB, seed=700 + 100 * run + i))
        sources.append(str(src))
    # The io limit keeps each backup running for over a second to look at it.
    configure(vger, {"cpu": {"nice": 7, "max_threads": 1}, "io": {"write_mib_per_sec": 24}}, sources[:1])
    vger.run("init")
    nice, threads_one = watch_backup(vger)
    assert nice == 7
    configure(vger, {"cpu": {"max_threads": 3}, "io": {"write_mib_per_sec": 24}}, sources[1:])
    nice, threads_three = watch_backup(vger)
    assert nice == 0
    # max_threads 1: one chunking thread and no helpers; max_threads 3: three
    # chunking threads and three helpers that share the chunks of big files.
    # Everything else (uploads, lock refresh) is the same.
    assert threads_three - threads_one == 5, (threads_one, threads_three)
