"""Keys and locks as a user meets them.

Keys: change the passphrase (also when killed half-way), export the key and
put it back after losing it, refuse a key that belongs elsewhere.

Locks: a lock left by a dead process is reported as stale and blocks nothing;
`break-lock` removes it; a live exclusive lock stops a backup with a message
saying who holds it since when and how to break it; a holder that keeps
refreshing stays live past the TTL, one that stops refreshing goes stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PASSPHRASE, Vger, restored_root, write_file

MiB = 1024 * 1024
NEW_PASSPHRASE = "a brand new passphrase"


def manifest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def lock_files(repo: Path) -> list[str]:
    locks = repo / "locks"
    return sorted(p.name for p in locks.iterdir() if ".tmp-" not in p.name) if locks.is_dir() else []


def setup_repo(vger: Vger, size: int = 2 * MiB) -> dict[str, str]:
    src = vger.tmp / "src"
    rnd = random.Random(5)
    write_file(src / "data.bin", rnd.randbytes(size))
    write_file(src / "notes/readme.txt", b"hello\n" * 100)
    vger.run("init")
    vger.run("backup")
    return manifest(src)


def restores(vger: Vger, dest: str, expected: dict[str, str], env: dict[str, str] | None = None) -> None:
    out = vger.tmp / dest
    vger.run("restore", "--snapshot", "latest", "--dest", str(out), env=env)
    assert manifest(restored_root(out, vger.tmp / "src")) == expected


# -- passphrase ------------------------------------------------------------------
def test_change_passphrase_old_one_stops_working(vger: Vger) -> None:
    expected = setup_repo(vger)
    proc = vger.run("key", "change-passphrase", env={"VGER_NEW_PASSPHRASE": NEW_PASSPHRASE})
    assert "passphrase changed" in proc.stdout

    old = vger.run("list", check=False)
    assert old.returncode == 1, (old.stdout, old.stderr)
    assert "passphrase" in old.stderr and "Traceback" not in old.stderr, old.stderr

    new = {"VGER_PASSPHRASE": NEW_PASSPHRASE}
    assert len(json.loads(vger.run("--json", "list", env=new).stdout)) == 1
    restores(vger, "out", expected, env=new)
    vger.run("check", "--verify-data", env=new)


@pytest.mark.slow
def test_change_passphrase_killed_at_random_moments(vger: Vger) -> None:
    expected = setup_repo(vger)
    template = vger.tmp / "template"
    shutil.copytree(vger.tmp / "repo", template)
    repo = vger.tmp / "repo"
    cmd = [sys.executable, "-m", "vger", "-c", str(vger.config), "key", "change-passphrase"]
    env = {**vger.env, "VGER_NEW_PASSPHRASE": NEW_PASSPHRASE}
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    duration = time.monotonic() - start

    seed = int(os.environ.get("VGER_CRASH_SEED", str(random.randrange(2**32))))
    rnd = random.Random(seed)
    outcomes = {"old": 0, "new": 0}
    for run in range(12):
        shutil.rmtree(repo)
        shutil.copytree(template, repo)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        began = time.monotonic()
        if run % 3 == 0:
            when = "anywhere"
            time.sleep(rnd.uniform(0, duration))
        elif run % 3 == 1:
            when = "in the last quarter, where the key is rewritten"
            time.sleep(rnd.uniform(0.75 * duration, duration))
        else:
            when = "while the new key file is being written"
            keys = repo / "keys"
            while proc.poll() is None and not any(".tmp-" in p.name for p in keys.iterdir()):
                time.sleep(0.0005)
            time.sleep(rnd.uniform(0, 0.005))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        delay = time.monotonic() - began
        context = f"seed {seed}, run {run}, killed {when}, after {delay:.3f}s of {duration:.3f}s"
        opened = None
        for name, phrase in (("old", PASSPHRASE), ("new", NEW_PASSPHRASE)):
            if vger.run("list", check=False, env={"VGER_PASSPHRASE": phrase}).returncode == 0:
                opened = name
                break
        assert opened is not None, f"{context}: neither passphrase opens the repository"
        outcomes[opened] += 1
        if run % 4 == 0:
            phrase = PASSPHRASE if opened == "old" else NEW_PASSPHRASE
            restores(vger, f"out{run}", expected, env={"VGER_PASSPHRASE": phrase})
    print(f"after the kills the repository opened with: {outcomes}")


# -- export / import ---------------------------------------------------------------
def test_key_export_import_brings_a_lost_key_back(vger: Vger) -> None:
    expected = setup_repo(vger)
    exported = vger.tmp / "saved.key"
    vger.run("key", "export", str(exported))
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600  # it is a secret
    original = (vger.tmp / "repo" / "keys" / "repokey").read_bytes()

    (vger.tmp / "repo" / "keys" / "repokey").unlink()
    proc = vger.run("list", check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "key" in proc.stderr and "missing" in proc.stderr, proc.stderr
    assert "vger key import" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    vger.run("key", "import", str(exported))
    assert (vger.tmp / "repo" / "keys" / "repokey").read_bytes() == original
    assert len(json.loads(vger.run("--json", "list").stdout)) == 1
    restores(vger, "out", expected)


def test_key_import_into_another_repository_is_refused(vger: Vger) -> None:
    setup_repo(vger)
    exported = vger.tmp / "saved.key"
    vger.run("key", "export", str(exported))

    other_config = vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "other"), "label": "other"}],
            "sources": [str(vger.tmp / "src")],
        },
        vger.tmp / "other.yaml",
    )
    vger.run("init", config=other_config)  # same passphrase, different repository
    other_key = vger.tmp / "other" / "keys" / "repokey"
    before = other_key.read_bytes()
    proc = vger.run("key", "import", str(exported), config=other_config, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "belongs to repository" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert other_key.read_bytes() == before
    vger.run("backup", config=other_config)  # the other repository is unharmed

    # and with its key file gone, the wrong key still cannot take its place
    other_key.unlink()
    proc = vger.run("key", "import", str(exported), config=other_config, check=False)
    assert proc.returncode == 1 and "belongs to repository" in proc.stderr, proc.stderr
    assert not other_key.exists()


# -- locks -------------------------------------------------------------------------
HOLDER = """
import sys
from vger.cli.app import App
from vger.repository.locks import Lock

app = App(config_path=sys.argv[1])
repo = app.open_repo(app.repositories()[0])
if sys.argv[2] == "dead":
    Lock(repo, "exclusive", "test")._write()  # and exit without releasing it
else:
    lock = Lock(repo, "exclusive", "holder").acquire()
    print("ready", flush=True)
    sys.stdin.readline()
    lock.release()
"""


def hold_lock(vger: Vger, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(vger.config), "live"],
        env={**vger.env, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0


def test_lock_of_a_dead_process_is_stale_and_break_lock_removes_it(vger: Vger) -> None:
    expected = setup_repo(vger)
    repo = vger.tmp / "repo"
    subprocess.run([sys.executable, "-c", HOLDER, str(vger.config), "dead"], env=vger.env, check=True)
    assert len(lock_files(repo)) == 1

    write_file(vger.tmp / "src" / "more.txt", b"more\n")
    proc = vger.run("backup")  # an exclusive lock, but its process is gone
    assert "stale" in proc.stderr and "no longer runs" in proc.stderr, proc.stderr
    assert "vger break-lock" in proc.stderr, proc.stderr
    assert len(json.loads(vger.run("--json", "list").stdout)) == 2
    vger.run("compact")  # exclusive work is not blocked either
    assert len(lock_files(repo)) == 1  # reported, not removed behind the user's back

    proc = vger.run("break-lock", "--yes")
    assert "removed" in proc.stdout and "test" in proc.stdout, proc.stdout
    assert lock_files(repo) == []
    assert "no stale locks" in vger.run("break-lock", "--yes").stdout
    expected["more.txt"] = hashlib.sha256(b"more\n").hexdigest()
    restores(vger, "out", expected)


def test_backup_killed_mid_run_leaves_a_lock_that_blocks_nothing(vger: Vger) -> None:
    setup_repo(vger)
    repo = vger.tmp / "repo"
    src = vger.tmp / "src"
    rnd = random.Random(9)
    for i in range(200):
        write_file(src / "bulk" / f"{i:03d}.bin", rnd.randbytes(MiB))
    backup = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"],
        env=vger.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not lock_files(repo) and backup.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.1))  # it has started writing; 200 MiB take far longer
    killed = backup.poll() is None
    backup.kill()
    backup.wait()
    if not killed or not lock_files(repo):
        pytest.fail("the backup finished before it could be killed; make the source bigger")

    # compact needs an exclusive lock: the dead backup's shared lock must not stop it
    proc = vger.run("compact")
    assert "stale" in proc.stderr and f"pid {backup.pid}" in proc.stderr, proc.stderr
    vger.run("check")
    vger.run("backup")
    proc = vger.run("break-lock", "--yes")
    assert f"pid {backup.pid}" in proc.stdout, proc.stdout
    assert lock_files(repo) == []
    restores(vger, "out", manifest(src))


def test_live_exclusive_lock_stops_a_backup_and_says_who_holds_it(vger: Vger) -> None:
    setup_repo(vger)
    repo = vger.tmp / "repo"
    holder = hold_lock(vger)
    try:
        proc = vger.run("backup", check=False)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        message = proc.stderr
        assert "Traceback" not in message
        assert "locked" in message, message
        assert f"pid {holder.pid}" in message and socket.gethostname() in message, message
        assert "since" in message and "vger break-lock" in message, message
        snap = json.loads(vger.run("--json", "list").stdout)[0]["id"]
        for command in (("compact",), ("delete", "--snapshot", snap)):
            proc = vger.run(*command, check=False)
            assert proc.returncode == 1 and f"pid {holder.pid}" in proc.stderr, (command, proc.stderr)

        # break-lock without --all leaves a live lock alone
        proc = vger.run("break-lock", "--yes")
        assert "keeping live" in proc.stdout + proc.stderr, (proc.stdout, proc.stderr)
        assert len(lock_files(repo)) == 1
        assert len(json.loads(vger.run("--json", "list").stdout)) == 1
    finally:
        release(holder)
    assert lock_files(repo) == []
    vger.run("backup")
    assert len(json.loads(vger.run("--json", "list").stdout)) == 2


def test_lock_ttl_refreshed_holder_stays_live_silent_one_goes_stale(vger: Vger) -> None:
    setup_repo(vger)
    # A holder refreshing every 0.3 s is live for a reader whose TTL is 2 s...
    holder = hold_lock(vger, env={"VGER_LOCK_REFRESH": "0.3"})
    try:
        time.sleep(3)
        proc = vger.run("backup", check=False, env={"VGER_LOCK_TTL": "2"})
        assert proc.returncode == 1 and f"pid {holder.pid}" in proc.stderr, proc.stderr
    finally:
        release(holder)
    # ...one that stopped refreshing (default: every 5 minutes) is stale after it
    holder = hold_lock(vger)
    try:
        time.sleep(3)
        proc = vger.run("backup", env={"VGER_LOCK_TTL": "2"})
        assert "stale" in proc.stderr and "not refreshed" in proc.stderr, proc.stderr
    finally:
        release(holder)
    assert len(json.loads(vger.run("--json", "list").stdout)) == 2
