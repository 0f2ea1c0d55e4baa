"""Restore reads chunks grouped by pack: a request per run of neighbours, not per chunk.

On S3 or SFTP each ranged read is a round trip; 300 small files restored with a
read each would be 300 round trips where a handful do.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import PASSPHRASE, Vger, restored_root, write_file
from vger.pluginmanager import load_plugins
from vger.repository.index import IndexEntry
from vger.repository.repository import Repository
from vger.restore.reads import Blob, plan_runs
from vger.restore.restorer import Restorer
from vger.storage import open_backend


def _entry(pack: bytes, offset: int, length: int) -> IndexEntry:
    return IndexEntry(pack, 0, offset, length, length)


def _blob(name: bytes, pack: bytes, offset: int, length: int) -> Blob:
    return Blob(name, _entry(pack, offset, length))


def test_neighbouring_blobs_of_a_pack_form_one_run() -> None:
    blobs = [
        _blob(b"c", b"P", 2000, 100),
        _blob(b"a", b"P", 10, 500),
        _blob(b"b", b"P", 514, 1000),  # 4-byte length prefix between neighbours
        _blob(b"x", b"Q", 10, 50),
    ]
    runs = plan_runs(blobs, max_gap=1024, max_run=1 << 20)
    by_pack = {run.pack_id: run for run in runs}
    assert len(runs) == 2
    assert [b.chunk_id for b in by_pack[b"P"].blobs] == [b"a", b"b", b"c"]
    assert (by_pack[b"P"].start, by_pack[b"P"].end) == (10, 2100)


def test_runs_split_at_wide_gaps_and_at_the_size_cap() -> None:
    gap = plan_runs([_blob(b"a", b"P", 0, 10), _blob(b"b", b"P", 5000, 10)], max_gap=100, max_run=1 << 20)
    assert len(gap) == 2
    capped = plan_runs([_blob(bytes([i]), b"P", i * 100, 100) for i in range(10)], max_gap=0, max_run=300)
    assert [len(run.blobs) for run in capped] == [3, 3, 3, 1]
    # a blob larger than the cap still gets read, in a run of its own
    (big,) = plan_runs([_blob(b"z", b"P", 0, 5000)], max_gap=0, max_run=300)
    assert big.end - big.start == 5000


class CountingBackend:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ranged_reads = 0

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self.ranged_reads += 1
        data: bytes = self.inner.get_range(key, offset, length)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_small_files_restore_with_a_few_reads_and_byte_identical(vger: Vger, tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(7)
    for i in range(300):
        write_file(src / f"d{i % 7}" / f"f{i}.txt", rng.randbytes(rng.randint(1, 6000)))
    write_file(src / "big.bin", os.urandom(20 << 20))  # several chunks, a batch of its own
    vger.run("init")
    vger.run("backup")

    registry = load_plugins()
    backend = open_backend(str(tmp_path / "repo"), {}, registry)
    repo = Repository.open(backend, registry, lambda: PASSPHRASE, allow_unencrypted=False)
    counting = CountingBackend(repo.backend)
    repo.backend = counting  # type: ignore[assignment]
    (snap,) = [repo.load_snapshot(sid) for sid in repo.snapshot_ids()]
    dest = tmp_path / "dest"
    result = Restorer(repo, str(dest)).run(snap)

    assert not result.errors and result.files == 301
    root = restored_root(dest, src)
    for path in src.rglob("*"):
        if path.is_file():
            assert (root / path.relative_to(src)).read_bytes() == path.read_bytes(), path
    chunks = 300 + len(next(i for i in repo.iter_items(snap) if i["path"].endswith(b"big.bin"))["chunks"])
    # item stream reads aside, a handful of reads for 300+ chunks
    assert counting.ranged_reads < 30, (counting.ranged_reads, chunks)


def test_many_writers_stay_within_a_small_open_files_limit(vger: Vger, tmp_path: Path) -> None:
    """Each writer holds its batch of files open: batches shrink to fit ``ulimit -n``."""
    import resource
    import subprocess
    import sys

    src = tmp_path / "src"
    rng = random.Random(11)
    for i in range(400):
        write_file(src / f"d{i % 5}" / f"f{i}.txt", rng.randbytes(rng.randint(1, 3000)))
    config = vger.config
    doc = yaml.safe_load(config.read_text())
    doc["limits"] = {"cpu": {"max_threads": 8}}  # 16 restore writers
    vger.write_config(doc)
    vger.run("init")
    vger.run("backup")
    dest = tmp_path / "dest"
    command = [
        sys.executable,
        "-m",
        "vger",
        "-c",
        str(config),
        "restore",
        "--snapshot",
        "latest",
        "--dest",
        str(dest),
    ]
    # 16 writers x 128 open files would need ~2,000 descriptors; allow 200.
    proc = subprocess.run(
        command,
        env=vger.env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200)),
    )
    assert proc.returncode == 0, proc.stderr
    root = restored_root(dest, src)
    restored = sorted(p.relative_to(root) for p in root.rglob("*.txt"))
    assert len(restored) == 400
    for rel in restored:
        assert (root / rel).read_bytes() == (src / rel).read_bytes()
