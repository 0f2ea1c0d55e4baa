"""format.md "Must hold" 1: `kill -9` at any instant of `backup` leaves a sound repository.

A ~75 MiB tree (many small files, a few large ones) is backed up over and over
while the source changes a little each time; most runs are killed with SIGKILL
after a seeded random delay somewhere between startup and the end of a full
backup. Afterwards `check --verify-data` must accept the repository and every
snapshot that was committed must restore byte for byte (its expected content is
kept as a sha256 manifest of the source at the time of its run).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Vger, restored_root

MiB = 1024 * 1024
RUNS = 24
SEED = 0x5EED


def _manifest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _build(src: Path, rnd: random.Random) -> None:
    for i in range(600):
        path = src / f"d{i % 25:02d}" / f"small{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(rnd.randint(0, 16 * 1024)))
    for i in range(6):
        (src / f"large{i}.bin").write_bytes(rnd.randbytes(rnd.randint(8 * MiB, 12 * MiB)))
    (src / "rolling.bin").write_bytes(rnd.randbytes(6 * MiB))


def _mutate(src: Path, run: int) -> None:
    """Deterministic changes that put new data into every run."""
    rnd = random.Random(run * 7919 + 1)
    for _ in range(3):
        i = rnd.randrange(600)
        path = src / f"d{i % 25:02d}" / f"small{i:03d}.txt"
        path.write_bytes(rnd.randbytes(rnd.randint(1, 16 * 1024)))
    (src / f"d{run % 25:02d}" / f"new{run:03d}.txt").write_bytes(rnd.randbytes(rnd.randint(1, 40 * 1024)))
    victim = src / f"d{(run * 3) % 25:02d}" / f"small{(run * 37) % 600:03d}.txt"
    if victim.exists():
        victim.unlink()
    large = src / f"large{run % 6}.bin"
    with open(large, "r+b") as fh:  # overwrite 1 MiB in the middle of a large file
        fh.seek(rnd.randrange(large.stat().st_size - MiB))
        fh.write(rnd.randbytes(MiB))
    (src / "rolling.bin").write_bytes(rnd.randbytes(6 * MiB))


def _entries(folder: Path | None) -> set[str]:
    if folder is None:
        return set()
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def _snapshot_ids(vger: Vger) -> list[str]:
    proc = vger.run("--json", "list")
    return [s["id"] for s in json.loads(proc.stdout)]


@pytest.mark.slow
def test_kill_9_during_backup_keeps_repository_sound(vger: Vger) -> None:
    rnd = random.Random(SEED)
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    _build(src, rnd)
    # Small packs, so packs are written all through a backup (not only at its end).
    vger.write_config(
        {
            "repositories": [
                {"url": str(repo), "label": "main", "min_pack_size": 4 * MiB, "max_pack_size": 8 * MiB}
            ],
            "sources": [str(src)],
        }
    )
    vger.run("init")

    manifests: dict[str, dict[str, str]] = {}
    start = time.monotonic()
    vger.run("backup")
    full_duration = time.monotonic() - start
    (first,) = _snapshot_ids(vger)
    manifests[first] = _manifest(src)

    cache = Path(vger.env["VGER_CACHE_DIR"])
    cmd = [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"]
    killed = committed = 0
    # How long finished runs took, with and without the files cache.
    finished: dict[bool, list[float]] = {False: [], True: []}
    for run in range(RUNS):
        _mutate(src, run)
        expected = _manifest(src)
        cold = bool(run % 2)
        if cold:
            # Without the files cache every file is read again: a long run to kill.
            shutil.rmtree(cache, ignore_errors=True)
        watch: Path | None = None
        if run % 4 == 3:
            # Kill the moment the commit sequence reaches the index segment or
            # the snapshot (temp names included): the narrowest crash windows.
            watch = repo / ("index" if run % 8 == 3 else "snapshots")
            delay = 2 * full_duration + 5
        elif run % 4 == 2 and finished[cold]:
            # Aim at the end of a run, where the last packs, the index segment
            # and the snapshot are written.
            delay = rnd.uniform(0.75, 1.05) * statistics.median(finished[cold])
        else:
            # Anywhere from startup to a little past a full backup.
            delay = rnd.uniform(0.05, 1.25 * full_duration)
        seen = _entries(watch)
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, env=vger.env, cwd=vger.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        while proc.poll() is None and time.monotonic() - started < delay:
            if watch is not None and _entries(watch) - seen:
                break
            time.sleep(0.001 if watch is not None else 0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        else:
            finished[cold].append(time.monotonic() - started)
        _out, err = proc.communicate(timeout=120)
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, f"run {run}: backup failed on its own:\n{err}"
            assert "Traceback" not in err
        new = [i for i in _snapshot_ids(vger) if i not in manifests]
        assert len(new) <= 1, f"run {run} made {len(new)} snapshots"
        if proc.returncode == 0:
            assert len(new) == 1, f"run {run} exited 0 without a snapshot"
        for snap_id in new:
            manifests[snap_id] = expected
            committed += 1
    assert killed >= 5, f"only {killed} of {RUNS} runs were killed: the delays do not hit running backups"
    assert committed >= 2, f"only {committed} of {RUNS} runs committed: nothing to restore but the first"

    # One more, unkilled: the repository still takes backups after all that.
    vger.run("backup")
    (latest,) = [i for i in _snapshot_ids(vger) if i not in manifests]
    manifests[latest] = _manifest(src)

    proc = vger.run("check", "--verify-data", check=False)
    assert proc.returncode == 0, f"check rejected the repository:\n{proc.stdout}\n{proc.stderr}"
    assert "error" not in proc.stderr, proc.stderr

    ids = list(manifests)
    sample = [ids[0], ids[-1], *random.Random(SEED + 1).sample(ids[1:-1], min(3, len(ids) - 2))]
    for n, snap_id in enumerate(sample):
        dest = vger.tmp / f"restore{n}"
        vger.run("restore", "--snapshot", snap_id, "--dest", str(dest))
        got = _manifest(restored_root(dest, src))
        want = manifests[snap_id]
        assert got.keys() == want.keys(), f"snapshot {snap_id[:8]}: different file set"
        wrong = [p for p in want if got[p] != want[p]]
        assert not wrong, f"snapshot {snap_id[:8]}: wrong content in {wrong[:5]}"
        shutil.rmtree(dest)
    print(f"{RUNS} runs, {killed} killed, {committed} committed; full backup {full_duration:.2f}s")
