"""``vger info``: the repository block and the per-source breakdown, through the real CLI.

Two sources with disjoint random (incompressible) content plus one file both hold
byte for byte: each label's deduplicated size is its own data (plus its small item
stream), and the shared file counts for neither.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from conftest import Vger, write_file

MiB = 1024 * 1024
# Envelope (29 bytes) + compression tag per chunk, and the item-stream chunks: far below this.
SLACK = 64 * 1024


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not JSON: {exc}\n{proc.stdout}\nstderr:\n{proc.stderr}") from exc


def two_sources(vger: Vger) -> tuple[Path, Path]:
    a = vger.tmp / "a"
    b = vger.tmp / "b"
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [{"label": "alpha", "paths": [str(a)]}, {"label": "beta", "paths": [str(b)]}],
        }
    )
    shared = random_bytes(2 * MiB, 3)
    write_file(a / "own.bin", random_bytes(3 * MiB, 1))
    write_file(a / "shared.bin", shared)
    write_file(b / "own.bin", random_bytes(5 * MiB, 2))
    write_file(b / "copy/of-shared.bin", shared)
    return a, b


def test_info_per_source(vger: Vger) -> None:
    a, _b = two_sources(vger)
    vger.run("init")
    vger.run("backup")
    write_file(a / "more.bin", random_bytes(1 * MiB, 4))
    vger.run("backup", "-S", "alpha")

    docs = json_out(vger.run("--json", "info"))
    assert len(docs) == 1
    doc = docs[0]
    # the fields that were there before stay
    for key in (
        "repository",
        "url",
        "id",
        "cipher",
        "compression",
        "chunker",
        "snapshots",
        "original_size",
        "compressed_size",
        "deduplicated_size",
        "stored_size",
        "chunks",
        "packs",
    ):
        assert key in doc, key
    assert doc["snapshots"] == 3
    assert doc["original_size"] == (5 + 6) * MiB + 7 * MiB

    sources = doc["sources"]
    assert set(sources) == {"alpha", "beta"}
    alpha, beta = sources["alpha"], sources["beta"]
    snaps = json_out(vger.run("--json", "list"))
    latest = {s["source_label"]: s for s in snaps}  # oldest first: the last one per label wins

    assert alpha["snapshots"] == 2 and beta["snapshots"] == 1
    assert alpha["latest"] == latest["alpha"]["time"] and alpha["latest_id"] == latest["alpha"]["id"]
    assert beta["latest"] == latest["beta"]["time"]
    assert alpha["latest_original_size"] == 6 * MiB
    assert alpha["original_size"] == 5 * MiB + 6 * MiB
    assert beta["latest_original_size"] == beta["original_size"] == 7 * MiB

    # unique data: alpha's own 3 + 1 MiB, beta's own 5 MiB; the shared 2 MiB in neither
    assert 4 * MiB <= alpha["deduplicated_size"] < 4 * MiB + SLACK, alpha
    assert 5 * MiB <= beta["deduplicated_size"] < 5 * MiB + SLACK, beta
    shared = doc["deduplicated_size"] - alpha["deduplicated_size"] - beta["deduplicated_size"]
    assert 2 * MiB <= shared < 2 * MiB + SLACK, shared
    assert alpha["unique_chunks"] >= 3 and beta["unique_chunks"] >= 2


def test_info_shared_content_moves_out_of_unique(vger: Vger) -> None:
    """Once beta holds a copy of alpha's own file too, alpha's unique size drops by that file."""
    _a, b = two_sources(vger)
    vger.run("init")
    vger.run("backup")
    before = json_out(vger.run("--json", "info"))[0]["sources"]
    write_file(b / "copy/of-alpha-own.bin", (vger.tmp / "a/own.bin").read_bytes())
    vger.run("backup", "-S", "beta")
    after = json_out(vger.run("--json", "info"))[0]["sources"]
    assert 3 * MiB <= before["alpha"]["deduplicated_size"] < 3 * MiB + SLACK
    assert after["alpha"]["deduplicated_size"] < SLACK  # only its item stream is its own now
    assert 5 * MiB <= after["beta"]["deduplicated_size"] < 5 * MiB + SLACK
    assert after["beta"]["snapshots"] == 2


def test_info_human_table(vger: Vger) -> None:
    two_sources(vger)
    vger.run("init")
    vger.run("backup")
    out = vger.run("info").stdout
    lines = out.splitlines()
    assert any(line.startswith("snapshots ") and line.split()[-1] == "2" for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("SOURCE"))
    assert "SNAPSHOTS" in lines[header] and "UNIQUE" in lines[header]
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : header + 3]}
    assert set(rows) == {"alpha", "beta"}
    assert rows["alpha"][1] == "1" and rows["beta"][1] == "1"
    # LATEST SIZE / ALL SNAPSHOTS / UNIQUE, human sizes at the end of the row
    assert rows["alpha"][-6:-4] == ["5.00", "MiB"] and rows["alpha"][-4:-2] == ["5.00", "MiB"]
    assert rows["beta"][-6:-4] == ["7.00", "MiB"]
    assert rows["alpha"][-1] == "MiB" and float(rows["alpha"][-2]) >= 3.0
