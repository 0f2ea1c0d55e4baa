"""Small files go through forked worker processes when there are two or more workers.

The process path must store exactly what the thread path stores, keep dedup
exact across processes, and fail cleanly (one line, exit 1, nothing committed)
when a worker process dies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Vger, restored_root, write_file


def _tree(src: Path, files: int, copies: int = 1) -> None:
    """``files`` small files of distinct content, each present ``copies`` times in different folders."""
    for n in range(files):
        body = f"{src.name} file {n}\n".encode() * (1 + n % 300)
        for c in range(copies):
            write_file(src / f"copy{c}" / f"d{n % 40:02d}" / f"f{n:05d}.txt", body)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _runner(vger: Vger, name: str, threads: int) -> Vger:
    runner = Vger(
        vger.tmp, {**vger.env, "VGER_CACHE_DIR": str(vger.tmp / f"cache-{name}")}, vger.tmp / f"{name}.yaml"
    )
    runner.write_config(
        {
            "repositories": [{"url": str(vger.tmp / f"repo-{name}")}],
            "sources": [str(vger.tmp / "src")],
            "limits": {"cpu": {"max_threads": threads}},
        }
    )
    runner.run("init")
    return runner


def _chunks(runner: Vger) -> int:
    out = runner.run("check").stdout
    found = re.search(r"(\d+) chunks", out)
    assert found, out
    return int(found.group(1))


def test_processes_store_what_threads_store_with_exact_dedup(vger: Vger) -> None:
    _tree(vger.tmp / "src", 1500, copies=3)  # every content three times: processes meet each other's chunks
    # Files above the smallest chunk go through a read buffer, in the children
    # too (each makes its own: the parent's are not mapped after a fork), and a
    # big file gives the parent's threads buffers of their own before the fork.
    write_file(vger.tmp / "src" / "a-big.bin", os.urandom(6 * 1024 * 1024))
    for n in range(10):
        write_file(vger.tmp / "src" / "copy0" / "medium" / f"m{n}.bin", os.urandom(700_000 + n * 100_000))
    results = {}
    for name, threads in (("procs", 2), ("threads", 1)):
        runner = _runner(vger, name, threads)
        stats = json.loads(runner.run("backup", "--json").stdout)[0]["stats"]
        dest = vger.tmp / f"dest-{name}"
        runner.run("restore", "--snapshot", "latest", "--dest", str(dest))
        assert _digest(restored_root(dest, vger.tmp / "src")) == _digest(vger.tmp / "src")
        results[name] = (stats["files"], stats["original_size"], stats["deduplicated_size"], _chunks(runner))
    # The same files, sizes and newly stored file bytes: a content two worker
    # processes both sealed was stored once. (Chunk counts also include the
    # item stream, which differs with the folders' atimes, moved by reading.)
    assert results["procs"][:3] == results["threads"][:3]
    files, _, _, chunks = results["procs"]
    assert files == 4511
    assert chunks < 1500 + 10 + 4 + 50  # distinct contents stored once each, plus item-stream chunks


def test_a_killed_worker_process_fails_the_backup_cleanly(vger: Vger) -> None:
    _tree(vger.tmp / "src", 200)
    runner = _runner(vger, "procs", 2)
    runner.run("backup")
    # 30,000 incompressible small files (about 90 MiB): several data packs, so
    # the kill below lands while the workers still have most of it to do.
    for n in range(30000):
        write_file(vger.tmp / "src2" / f"d{n % 60:02d}" / f"f{n:05d}", os.urandom(1024 + n % 4096))
    packs = vger.tmp / "repo-procs" / "packs"
    packs_before = sum(1 for p in packs.rglob("*") if p.is_file())
    runner.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo-procs")}],
            "sources": [str(vger.tmp / "src2")],
            "limits": {"cpu": {"max_threads": 2}},
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(runner.config), "backup"],
        env=runner.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cmdline = b"\0".join(os.fsencode(a) for a in proc.args) + b"\0"  # type: ignore[union-attr]
    killed = False
    deadline = time.monotonic() + 60
    while not killed and time.monotonic() < deadline and proc.poll() is None:
        if sum(1 for p in packs.rglob("*") if p.is_file()) <= packs_before:
            time.sleep(0.01)  # wait for the first new pack: the backup is well under way
            continue
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        for pid in children.read_text().split() if children.exists() else []:
            try:
                # A forked worker has the parent's command line; other children
                # (ldconfig run by ctypes at start-up) are not what this test kills.
                if Path(f"/proc/{pid}/cmdline").read_bytes() != cmdline:
                    continue
                os.kill(int(pid), signal.SIGKILL)
                killed = True
            except (ProcessLookupError, FileNotFoundError):
                pass
        time.sleep(0.01)
    assert killed, "no worker process appeared"
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "worker process died" in err and "signal 9" in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "OK" in runner.run("check").stdout
    snapshots = runner.run("list", "--json").stdout
    assert len(json.loads(snapshots)) == 1  # the first backup, intact; the killed one committed nothing
    runner.run("backup")
    assert len(json.loads(runner.run("list", "--json").stdout)) == 2


def test_when_fork_fails_small_files_go_through_threads(vger: Vger) -> None:
    _tree(vger.tmp / "src", 600)
    runner = _runner(vger, "nofork", 2)
    refuse = (
        "import errno, os\n"
        "def fork():\n"
        "    raise OSError(errno.EAGAIN, 'Resource temporarily unavailable')\n"
        "os.fork = fork\n"
    )
    proc = runner.run_patched(refuse, "backup", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["stats"]["files"] == 600
    dest = vger.tmp / "dest"
    runner.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert _digest(restored_root(dest, vger.tmp / "src")) == _digest(vger.tmp / "src")


def test_worker_processes_after_a_dump_read_with_buffers_of_their_own(vger: Vger) -> None:
    """A dump fills the main thread's read buffer; the workers forked from that thread must not use it.

    The buffer is not mapped in a child (MADV_DONTFORK): a child that kept the
    parent's thread-local buffer would crash on its first file above the
    smallest chunk.
    """
    src = vger.tmp / "src"
    for n in range(12):
        write_file(src / "medium" / f"m{n:02d}.bin", os.urandom(600_000 + n * 50_000))
    _tree(src, 300)
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo")}],
            "sources": [
                {
                    "path": str(src),
                    "label": "app",
                    "command_dumps": [{"name": "blob.bin", "command": "head -c 3000000 /dev/urandom"}],
                }
            ],
            "limits": {"cpu": {"max_threads": 2}},
        }
    )
    vger.run("init")
    stats = json.loads(vger.run("backup", "--json").stdout)[0]["stats"]
    assert stats["files"] == 12 + 300 + 1
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert _digest(restored_root(dest, src)) == _digest(src)
