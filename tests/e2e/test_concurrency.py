"""format.md "Must hold" 3: several processes on one repository at once.

Backups take a shared lock and only add objects, so two of them at the same
moment must both commit, whether they back up different sources or the same
one. `compact` and `prune` need to be alone: started while a backup runs they
refuse (naming the backup that holds the lock) and the backup is unharmed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import Vger, restored_root, write_file

MiB = 1024 * 1024


def manifest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def repo_bytes(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(root) for f in files)


def fill(folder: Path, total: int, files: int, seed: int) -> None:
    """``files`` random files adding up to about ``total`` bytes."""
    rnd = random.Random(seed)
    each = total // files
    for i in range(files):
        write_file(folder / f"d{i % 10}" / f"f{i:05d}.bin", rnd.randbytes(each + rnd.randint(0, 999)))


def start(vger: Vger, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(config or vger.config), *args],
        env=vger.env,
        cwd=vger.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], what: str) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{what} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


def snapshots(vger: Vger) -> list[dict[str, Any]]:
    return json.loads(vger.run("--json", "list").stdout)


def interval(snap: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    def parse(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    return parse(snap["time"]), parse(snap["time_end"])


def overlap(first: dict[str, Any], second: dict[str, Any]) -> bool:
    a0, a1 = interval(first)
    b0, b1 = interval(second)
    return a0 < b1 and b0 < a1


def restore_manifest(vger: Vger, snap_id: str, src: Path, dest: Path) -> dict[str, str]:
    vger.run("restore", "--snapshot", snap_id, "--dest", str(dest))
    return manifest(restored_root(dest, src))


def test_two_backups_of_different_sources_at_once(vger: Vger) -> None:
    a = vger.tmp / "a"
    b = vger.tmp / "b"
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [{"path": str(a), "label": "a"}, {"path": str(b), "label": "b"}],
        }
    )
    vger.run("init")
    size = 60 * MiB
    for attempt in range(3):
        fill(a, size, 300, seed=10 + attempt)
        fill(b, size, 300, seed=20 + attempt)
        first, second = start(vger, "--json", "backup", "-S", "a"), start(vger, "--json", "backup", "-S", "b")
        out_a, _ = finish(first, "backup -S a")
        out_b, _ = finish(second, "backup -S b")
        snap_a = json.loads(out_a)[0]["snapshot"]
        snap_b = json.loads(out_b)[0]["snapshot"]
        listed = {s["id"]: s for s in snapshots(vger)}
        assert {snap_a, snap_b} <= set(listed)
        if overlap(listed[snap_a], listed[snap_b]):
            break
        size *= 2  # they ran one after the other: try again with more to do
    else:
        raise AssertionError("the two backups never ran at the same time")
    assert listed[snap_a]["source_label"] == "a" and listed[snap_b]["source_label"] == "b"
    vger.run("check", "--verify-data")
    assert restore_manifest(vger, snap_a, a, vger.tmp / "ra") == manifest(a)
    assert restore_manifest(vger, snap_b, b, vger.tmp / "rb") == manifest(b)


def test_two_backups_of_the_same_source_at_once(vger: Vger) -> None:
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    vger.run("init")
    # a second config file naming the same repository and source
    twin = vger.tmp / "twin.yaml"
    twin.write_text(vger.config.read_text())
    size = 60 * MiB
    for attempt in range(3):
        fill(src, size, 300, seed=30 + attempt)
        expected = manifest(src)
        first, second = start(vger, "--json", "backup"), start(vger, "--json", "backup", config=twin)
        out1, _ = finish(first, "first backup")
        out2, _ = finish(second, "second backup")
        ids = [json.loads(out1)[0]["snapshot"], json.loads(out2)[0]["snapshot"]]
        listed = {s["id"]: s for s in snapshots(vger)}
        assert set(ids) <= set(listed) and ids[0] != ids[1]
        if overlap(listed[ids[0]], listed[ids[1]]):
            break
        size *= 2
    else:
        raise AssertionError("the two backups never ran at the same time")
    vger.run("check", "--verify-data")
    for n, snap in enumerate(ids):
        assert restore_manifest(vger, snap, src, vger.tmp / f"r{n}") == expected

    # Both uploaded the same chunks (neither could see the other's index);
    # compact keeps one copy of each and everything still restores.
    before = repo_bytes(repo)
    vger.run("compact", "--threshold", "0")
    assert before - repo_bytes(repo) >= size // 2, (before, repo_bytes(repo))
    vger.run("check", "--verify-data")
    for n, snap in enumerate(ids):
        assert restore_manifest(vger, snap, src, vger.tmp / f"after{n}") == expected


def _wait_for_lock(proc: subprocess.Popen[str], repo: Path) -> None:
    locks = repo / "locks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if locks.is_dir() and any(".tmp-" not in p.name for p in locks.iterdir()):
            return
        time.sleep(0.005)


def test_compact_and_prune_during_a_backup_refuse_and_harm_nothing(vger: Vger) -> None:
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    vger.write_config(
        {
            "repositories": [{"url": str(repo), "label": "main"}],
            "sources": [str(src)],
            "retention": {"keep_last": 1},
        }
    )
    vger.run("init")
    # garbage for compact to want to remove, and a snapshot for prune to want to delete
    write_file(src / "junk.bin", random.Random(1).randbytes(5 * MiB))
    vger.run("backup")
    (src / "junk.bin").unlink()

    size = 200 * MiB
    for attempt in range(3):
        before = len(snapshots(vger))  # an earlier attempt may have committed one too
        fill(src, size, 1500, seed=40 + attempt)
        expected = manifest(src)
        backup = start(vger, "--json", "backup")
        _wait_for_lock(backup, repo)
        # both at once, while the backup holds its shared lock
        tries = [
            (command, start(vger, *command)) for command in (("compact", "--threshold", "0"), ("prune",))
        ]
        refusals = []
        for command, proc in tries:
            _, err = proc.communicate(timeout=600)
            if proc.returncode == 0:
                # only fine if the backup was over before it started
                assert backup.poll() is not None, f"{command} ran during a backup"
            else:
                refusals.append((command, proc.returncode, err))
        still_running = backup.poll() is None
        out, _ = finish(backup, "backup")
        print(f"attempt {attempt}: {size // MiB} MiB, {len(refusals)} refusals")
        if len(refusals) == 2 and still_running:
            break
        size *= 2  # the backup was too quick for both: more data
    else:
        raise AssertionError("the backup always finished before compact and prune started")

    for command, code, message in refusals:
        assert code == 1, (command, message)
        assert "Traceback" not in message
        assert "locked" in message, message
        assert "backup" in message, message  # what holds it
        assert f"pid {backup.pid}" in message and socket.gethostname() in message, message
        assert "since" in message, message
        assert "vger break-lock" in message, message

    snap = json.loads(out)[0]["snapshot"]
    assert len(snapshots(vger)) == before + 1  # prune deleted nothing: the older ones are still there
    vger.run("check", "--verify-data")
    assert restore_manifest(vger, snap, src, vger.tmp / "out") == expected
    # with the backup gone, both work
    vger.run("prune")
    vger.run("compact", "--threshold", "0")
    assert [s["id"] for s in snapshots(vger)] == [snap]
    vger.run("check")
    assert restore_manifest(vger, snap, src, vger.tmp / "out2") == expected
