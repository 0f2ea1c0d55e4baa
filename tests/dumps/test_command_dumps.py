"""Command dumps through the real CLI: streamed into the snapshot, failures commit nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from conftest import Vger, write_file
from e2e.helpers import MiB, json_out, random_bytes, sha256_file


def _config(vger: Vger, sources: list[dict]) -> None:
    vger.write_config(
        {"repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}], "sources": sources}
    )


def test_dump_streams_into_the_snapshot_and_restores_as_a_file(vger: Vger) -> None:
    payload = write_file(vger.tmp / "payload.bin", random_bytes(9 * MiB + 123, seed=5))
    write_file(vger.tmp / "src/file.txt", b"a real file\n")
    _config(
        vger,
        [
            {
                "path": str(vger.tmp / "src"),
                "label": "app",
                "command_dumps": [
                    {"name": "payload.bin", "command": f"cat {payload}; echo progress >&2"},
                    {"name": "etc/packages.txt", "command": "printf 'a\\nb\\n'"},
                ],
            }
        ],
    )
    vger.run("init")
    vger.run("backup")
    dumps = json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json"))
    assert [(d["name"], d["type"], d["path"], d["size"]) for d in dumps] == [
        ("payload.bin", "command", "vger-dumps/app/payload.bin", payload.stat().st_size),
        ("etc/packages.txt", "command", "vger-dumps/app/etc/packages.txt", 4),
    ]
    assert dumps[0]["record"]["command"].startswith("cat ")
    snaps = json_out(vger.run("list", "--json"))
    assert snaps[0]["stats"]["files"] == 3
    # The same dump again deduplicates to nothing new: chunks are cut by content, in order.
    (again,) = json_out(vger.run("backup", "--json"))
    assert again["stats"]["original_size"] == snaps[0]["stats"]["original_size"]
    assert again["stats"]["deduplicated_size"] == 0
    vger.run("restore", "--snapshot", "latest", "--dest", str(vger.tmp / "out"))
    out = vger.tmp / "out" / "vger-dumps" / "app"
    assert sha256_file(out / "payload.bin") == sha256_file(payload)
    assert (out / "etc/packages.txt").read_bytes() == b"a\nb\n"
    assert (out / "payload.bin").stat().st_mode & 0o777 == 0o600
    assert (vger.tmp / "out" / str(vger.tmp / "src/file.txt").lstrip("/")).read_bytes() == b"a real file\n"
    # Without a restore_command there is no tool to stream them into: skipped, or refused when named.
    plan = json_out(vger.run("restore-dump", "--snapshot", "latest", "--dry-run", "--json"))
    assert [d["status"] for d in plan["dumps"]] == ["skipped", "skipped"]
    named = vger.run("restore-dump", "--snapshot", "latest", "payload.bin", check=False)
    assert named.returncode == 1 and "has no restore tool" in named.stderr


def test_a_dump_that_exits_3_halfway_fails_its_source_only(vger: Vger) -> None:
    write_file(vger.tmp / "src/keep.txt", b"kept\n")
    _config(
        vger,
        [
            {
                "label": "db",
                "command_dumps": [
                    {"name": "ok.txt", "command": "echo fine"},
                    {
                        "name": "half.dump",
                        "command": "head -c 6000000 /dev/urandom; echo 'pg_dump: error: connection lost' >&2; exit 3",
                    },
                ],
            },
            {"path": str(vger.tmp / "src"), "label": "files"},
        ],
    )
    vger.run("init")
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "source db" in proc.stderr and "half.dump" in proc.stderr
    assert "exited with status 3" in proc.stderr and "connection lost" in proc.stderr
    assert "Traceback" not in proc.stderr
    snaps = json_out(vger.run("list", "--json"))
    assert [s["source_label"] for s in snaps] == ["files"]  # the other source still backed up
    assert json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json")) == []
    assert vger.run("check", check=False).returncode == 0


def test_a_dump_that_outlives_its_timeout_is_killed_and_fails(vger: Vger) -> None:
    _config(
        vger,
        [
            {
                "label": "slow",
                "command_dumps": [{"name": "x", "command": "echo start; sleep 60", "timeout": 1}],
            }
        ],
    )
    vger.run("init")
    started = time.monotonic()
    proc = vger.run("backup", check=False)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    assert "timed out after 1 s" in proc.stderr
    assert json_out(vger.run("list", "--json")) == []


def test_a_dump_name_may_not_be_taken_twice(vger: Vger) -> None:
    _config(
        vger,
        [
            {
                "label": "twice",
                "dumps": [{"type": "command", "name": "a", "command": "true"}],
                "command_dumps": [{"name": "a", "command": "true"}],
            }
        ],
    )
    vger.run("init")
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1 and "two dumps of this source are named 'a'" in proc.stderr


@dataclass
class Measured:
    peak_rss: int  # bytes, the vger process alone
    written: int  # bytes it caused to be written to storage (page cache included)
    seconds: float
    opened: set[str]  # regular files it held open at some point (sampled every 20 ms)


def _measure_backup(vger: Vger, env: dict[str, str]) -> Measured:
    """Run ``vger backup`` and watch it: which files it holds open, what it costs.

    The open files come from /proc/PID/fd rather than from a listing of /tmp:
    other processes on this machine write to /tmp too, and a temporary file
    for a dump would be open for seconds, far longer than the sampling period.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"],
        env={**vger.env, **env},
        cwd=vger.tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    opened: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        fd_dir = f"/proc/{proc.pid}/fd"
        while not done.wait(0.02):
            try:
                links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
            except OSError:
                continue  # exiting, or an fd closed between listdir and readlink
            opened.update(link for link in links if link.startswith("/") and not link.startswith("/dev/"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    seconds = time.monotonic() - started
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, err
    return Measured(usage.ru_maxrss * 1024, usage.ru_oublock * 512, seconds, opened)


def _repo_bytes(vger: Vger) -> int:
    return sum(p.stat().st_size for p in (vger.tmp / "repo").rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_1gib_dump_streams_with_bounded_memory_and_no_temporary_file(vger: Vger) -> None:
    size = 1024 * MiB
    tmpdir = vger.tmp / "tmpdir"
    tmpdir.mkdir()
    env = {"TMPDIR": str(tmpdir)}
    _config(
        vger,
        [{"label": "small", "command_dumps": [{"name": "d", "command": "head -c 1048576 /dev/urandom"}]}],
    )
    vger.run("init")
    baseline = _measure_backup(vger, env)
    _config(
        vger, [{"label": "big", "command_dumps": [{"name": "d", "command": f"head -c {size} /dev/urandom"}]}]
    )
    repo_before = _repo_bytes(vger)
    big = _measure_backup(vger, env)
    repo_growth = _repo_bytes(vger) - repo_before
    growth = big.peak_rss - baseline.peak_rss
    print(
        f"1 GiB dump: {big.seconds:.1f} s, peak RSS {big.peak_rss / MiB:.0f} MiB "
        f"(baseline {baseline.peak_rss / MiB:.0f} MiB, growth {growth / MiB:.0f} MiB), "
        f"wrote {big.written / MiB:.0f} MiB, repository grew {repo_growth / MiB:.0f} MiB"
    )
    assert growth < 200 * MiB
    assert list(tmpdir.iterdir()) == []
    # Files it held open: its repository, its cache, its own code; nothing else in /tmp.
    allowed = (str(vger.tmp / "repo"), vger.env["VGER_CACHE_DIR"], sys.prefix, sys.base_prefix)
    strays = {path for path in big.opened if path.startswith("/tmp") and not path.startswith(allowed)}
    assert not strays, strays
    # The sampling works: it saw the packs being written.
    assert any(path.startswith(str(vger.tmp / "repo" / "packs")) for path in big.opened), big.opened
    # And all it wrote went into the repository: a spooled copy of the dump would add 1 GiB.
    assert big.written < repo_growth + 64 * MiB
    dumps = json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json"))
    assert dumps[0]["size"] == size


def test_a_source_of_dumps_alone_needs_a_label(vger: Vger) -> None:
    _config(vger, [{"command_dumps": [{"name": "a", "command": "true"}]}])
    proc = vger.run("config", "--check", check=False)
    assert proc.returncode == 1
    assert "sources[0].label: expected a `label` (required without `path`)" in proc.stderr
