"""`vger backup` run again walks its source in a child started with the command (walkahead.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Vger, write_file
from e2e.helpers import json_out

TAKEN = "walk: taken from the walk started with the command"


def listing(vger: Vger, snapshot: str) -> list[dict]:
    rows = json_out(vger.run("--json", "list", "--snapshot", snapshot))
    return [{k: v for k, v in row.items() if k != "snapshot"} for row in rows]


def test_a_repeated_backup_takes_the_early_walk_and_records_the_same_tree(vger: Vger) -> None:
    src = vger.tmp / "src"
    for n in range(40):
        write_file(src / f"d{n % 4}" / f"f{n:02d}.txt", f"file {n}\n".encode() * (n + 1))
    os.symlink("d0/f00.txt", src / "link")
    vger.run("init")
    first = vger.run("-vv", "backup")
    assert TAKEN not in first.stderr  # nothing remembered yet
    write_file(src / "d1" / "new.txt", b"added between the runs")
    (src / "d2" / "f02.txt").unlink()
    second = vger.run("-vv", "backup")
    assert TAKEN in second.stderr
    # the same tree as an in-process walk records
    third = vger.run("-vv", "backup", env={"VGER_WALK_AHEAD": "0"})
    assert TAKEN not in third.stderr
    snapshots = [s["id"] for s in json_out(vger.run("--json", "list"))]
    assert len(snapshots) == 3
    assert listing(vger, snapshots[1]) == listing(vger, snapshots[2])
    paths = [row["path"] for row in listing(vger, snapshots[1])]
    assert any(p.endswith("d1/new.txt") for p in paths)
    assert not any(p.endswith("d2/f02.txt") for p in paths)


def test_a_before_hook_keeps_the_walk_in_turn(vger: Vger) -> None:
    """A before hook may change the tree: the walk must come after it, as always."""
    src = vger.tmp / "src"
    write_file(src / "a.txt", b"a")
    doc = {
        "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
        "sources": [{"path": str(src), "label": "src"}],
    }
    vger.write_config(doc)
    vger.run("init")
    vger.run("backup")
    assert TAKEN in vger.run("-vv", "backup").stderr
    marker = src / "made-by-hook.txt"
    doc["sources"][0]["hooks"] = {"before": f"echo hooked > {marker}"}
    vger.write_config(doc)
    run = vger.run("-vv", "backup")  # the early walk started from the old plan: not taken
    assert TAKEN not in run.stderr
    assert TAKEN not in vger.run("-vv", "backup").stderr  # and no plan is remembered now
    (latest,) = [s["id"] for s in json_out(vger.run("--json", "list"))][-1:]
    assert any(row["path"].endswith("made-by-hook.txt") for row in listing(vger, latest))
    assert Path(marker).exists()


def test_files_matched_ahead_whose_chunks_are_gone_are_read_again(vger: Vger) -> None:
    """Files are matched against the files cache before the index can be read (prematch.py):
    the check that their chunks are still stored must still happen, later."""
    src = vger.tmp / "src"
    for n in range(20):
        write_file(src / f"f{n:02d}.bin", os.urandom(3000 + n))
    vger.run("init")
    vger.run("backup")
    vger.run("backup")  # plan remembered; files cache full
    for snapshot in [s["id"] for s in json_out(vger.run("--json", "list"))]:
        vger.run("delete", "--snapshot", snapshot)
    vger.run("compact", "--threshold", "0")  # every chunk is gone, the files cache does not know
    run = vger.run("-vv", "--json", "backup")
    assert TAKEN in run.stderr  # the walk ahead, and with it the early matching, was used
    (doc,) = json.loads(run.stdout.splitlines()[-1])  # after -vv's progress events
    assert doc["stats"]["files_read"] == 20 and doc["stats"]["cache_hits"] == 0, doc["stats"]
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    restored = dest / str(src).lstrip("/")
    assert all((restored / p.name).read_bytes() == p.read_bytes() for p in src.iterdir())
    vger.run("check", "--verify-data")
