"""The benchmark harness on a tiny corpus, so it cannot rot.

Benchmarks are not tests: no timing is asserted here. What is asserted is that
``python -m benchmarks.run`` generates its corpora, runs every available tool
through every scenario, verifies the restores and writes the JSON, the markdown
page and (when matplotlib is installed) the chart. restic and borg take part only
when they are installed; this test never installs anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MIXED_SCENARIOS = ("initial", "nochange", "churn", "restore")


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path) -> None:
    # vger-zstd (the same code as vger with another config) is left out to stay well under a minute.
    tools = ["vger"] + [name for name in ("restic", "borg") if shutil.which(name)]
    results = tmp_path / "latest.json"
    doc = tmp_path / "benchmarks.md"
    chart = tmp_path / "latest.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VGER_", "RESTIC_", "BORG_"))}
    env["HOME"] = str(tmp_path / "home")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--size",
        "20M",
        "--reps",
        "1",
        "--files",
        "200",
        "--tools",
        ",".join(tools),
        "--no-install",
        "--workdir",
        str(tmp_path / "work"),
        "--results",
        str(results),
        "--doc",
        str(doc),
        "--chart",
        str(chart),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, f"harness failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    data = json.loads(results.read_text())
    mixed = data["suites"]["mixed"]
    assert mixed["corpus"]["total_bytes"] > 15 * 2**20
    assert mixed["churn"]["files_touched"] > 0
    for tool in tools:
        for scenario in MIXED_SCENARIOS:
            entry = mixed["summary"][tool][scenario]
            assert entry["ok"] == 1, (tool, scenario, entry)
            assert entry["wall_s"]["median"] > 0
            assert entry["maxrss_mib"]["median"] > 0
        assert mixed["summary"][tool]["initial"]["repo_bytes"]["median"] > 0
    restores = [r for r in mixed["runs"] if r["scenario"] == "restore"]
    assert len(restores) == len(tools)
    assert all(r["verified"] and r["snapshot"] == "churn" for r in restores), restores

    small = data["suites"]["smallfiles"]
    assert small["corpus"]["files"] == 200
    for tool in tools:
        assert small["summary"][tool]["initial"]["ok"] == 1
        assert small["summary"][tool]["nochange"]["ok"] == 1

    page = doc.read_text()
    assert "| metric | better when | vger/restic | vger/borg |" in page
    assert "| initial backup (cold cache) | vger |" in page
    assert "load average" in page
    if importlib.util.find_spec("matplotlib") is not None:
        assert chart.read_bytes().startswith(b"\x89PNG")
        assert "latest.png" in page
