"""The remembered entry-point scan: the same answer as a fresh scan, renewed when a distribution is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vger import entrypoints
from vger.entrypoints import FoundEntryPoint


def install(site: Path, dist: str, entry: str, value: str) -> None:
    """What ``pip install`` leaves for a distribution with one ``vger`` entry point."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[vger]\n{entry} = {value}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    os.utime(folder, ns=(0, 0))  # installed long ago: a folder changed just now is never remembered
    monkeypatch.syspath_prepend(str(folder))
    return folder


def names(found: tuple[FoundEntryPoint, ...]) -> list[str]:
    return [ep.name for ep in found]


def test_memo_gives_the_same_answer_as_a_scan(tmp_path: Path, site: Path) -> None:
    scanned = entrypoints.find("vger", None)
    assert "compressor-lz4" in names(scanned)
    first = entrypoints.find("vger", tmp_path / "cache")
    assert first == scanned
    memo = next((tmp_path / "cache").glob("entry-points-*.json"))
    assert "compressor-lz4" in memo.read_text()
    assert entrypoints.find("vger", tmp_path / "cache") == scanned


def test_an_installed_distribution_is_seen_on_the_next_run(tmp_path: Path, site: Path) -> None:
    cache = tmp_path / "cache"
    assert "storage-gopher" not in names(entrypoints.find("vger", cache))
    install(site, "vger_gopher", "storage-gopher", "json:dumps")
    found = {ep.name: ep for ep in entrypoints.find("vger", cache)}
    assert found["storage-gopher"].distribution == "vger_gopher"
    assert found["storage-gopher"].load() is json.dumps


def test_a_folder_changed_just_now_is_not_remembered(tmp_path: Path, site: Path) -> None:
    install(site, "vger_gopher", "storage-gopher", "json:dumps")
    assert "storage-gopher" in names(entrypoints.find("vger", tmp_path / "cache"))
    assert not list((tmp_path / "cache").glob("entry-points-*.json"))


def test_a_damaged_memo_costs_only_a_scan(tmp_path: Path, site: Path) -> None:
    cache = tmp_path / "cache"
    good = entrypoints.find("vger", cache)
    for memo in cache.glob("entry-points-*.json"):
        memo.write_text('{"format": 1, "vger": "0.1.0", "path": [], "entry_points": [[')
    assert entrypoints.find("vger", cache) == good


def test_a_remembered_run_does_not_read_distribution_metadata(tmp_path: Path) -> None:
    work = tmp_path / "work"  # the script's folder is on its import path: keep it still
    work.mkdir()
    os.utime(work, ns=(0, 0))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vger import entrypoints\n"
        f"found = entrypoints.find('vger', Path({str(tmp_path / 'cache')!r}))\n"
        "print(len(found), 'importlib.metadata' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=work
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs[0][0] == runs[1][0] and int(runs[0][0]) >= 21
    assert runs[0][1] == "True"  # the first run scans
    assert runs[1][1] == "False"  # the second trusts the memo


def test_attribute_paths_load_like_importlib() -> None:
    ep = FoundEntryPoint("x", "os.path:join", "d", "1")
    assert ep.load() is __import__("os").path.join
    assert FoundEntryPoint("x", "os.path", "d", "1").load() is __import__("os").path
