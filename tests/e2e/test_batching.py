"""Small files are read in batches; a batch sent off early must never be refilled.

Regression: with more than ``max_pending`` unchanged files queued behind a batch
that was still filling, the drain sent that batch off and the walk kept adding
files to it, so their results pointed past the end (IndexError, exit 1).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import Vger, restored_root


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_changes_far_apart_among_thousands_of_unchanged_small_files(vger: Vger) -> None:
    src = vger.tmp / "src"
    for d in range(50):  # 5,000 files: more than the 1,024 items the patched walk keeps pending
        folder = src / f"d{d:02d}"
        folder.mkdir()
        for f in range(100):
            (folder / f"f{f:04d}").write_bytes(f"{d}/{f}\n".encode() * 40)
    vger.run("init")
    vger.run("backup")
    with open(src / "d00" / "f0005", "ab") as fh:
        fh.write(b"appended\n")
    with open(src / "d45" / "f0050", "ab") as fh:
        fh.write(b"appended too\n")
    # The real window (MAX_PENDING) is 16,384 items; a smaller one reaches the
    # same code path with a tree that is quick to build.
    proc = vger.run_patched("import vger.backup.archiver as a; a.MAX_PENDING = 1024", "backup", "--json")
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout)
    assert second[0]["stats"]["files_read"] == 2
    assert second[0]["stats"]["cache_hits"] == 4998
    dest = vger.tmp / "restore"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert _tree_digest(restored_root(dest, src)) == _tree_digest(src)
