"""The whole CLI against real remote repositories: SeaweedFS (S3) and OpenSSH (SFTP) on loopback.

Every test drives ``vger`` in subprocesses, as a user would, with repository
urls of the forms config.md promises (``s3://127.0.0.1:PORT/bucket/prefix``,
``sftp://user@127.0.0.1:PORT/path``). The servers come from
``vger.testing.servers``: one of each for the session, and private ones for the
tests that kill a server.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Vger, restored_root, write_file
from e2e.helpers import assert_clean_error, json_out, random_bytes

from vger.testing.servers import SeaweedS3Server, SshdServer, free_ports

MiB = 1024 * 1024
HEAVY_MODULES = ("s3fs", "botocore", "aiobotocore", "aiohttp", "asyncssh", "sshfs")
#: Short retries so a dead server fails a command in seconds, not minutes.
FAST_RETRIES = {"VGER_STORAGE_RETRY_ATTEMPTS": "2", "VGER_STORAGE_RETRY_DELAY": "0.1"}


@dataclass
class Remote:
    """One repository location on a running server, and how to look at what is stored there."""

    kind: str
    url: str
    options: dict[str, Any]
    server: Any
    stored: Callable[[], dict[str, int]]  # key -> size, read behind vger's back

    def entry(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.url, "label": "remote", **self.options, **extra}


def s3_remote(server: SeaweedS3Server) -> Remote:
    import s3fs

    prefix = f"{server.bucket}/cli-{secrets.token_hex(4)}"
    fs = s3fs.S3FileSystem(
        key=server.access_key,
        secret=server.secret_key,
        endpoint_url=server.endpoint,
        skip_instance_cache=True,
        use_listings_cache=False,
    )

    def stored() -> dict[str, int]:
        found = fs.find(prefix, detail=True)
        return {name[len(prefix) + 1 :]: int(info["size"]) for name, info in found.items()}

    return Remote("s3", server.url(prefix), server.options, server, stored)


def sftp_remote(server: SshdServer, folder: Path) -> Remote:
    def stored() -> dict[str, int]:
        # sshd serves this machine's disk: look at the files directly.
        return {
            str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()
        }

    return Remote("sftp", server.url(folder), server.options, server, stored)


@pytest.fixture(params=["s3", "sftp"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    if request.param == "s3":
        return s3_remote(request.getfixturevalue("s3_server"))
    return sftp_remote(request.getfixturevalue("sshd_server"), tmp_path / "sftp-repo")


def configure(vger: Vger, remote: Remote, **extra: Any) -> Path:
    src = vger.tmp / "src"
    return vger.write_config(
        {
            "repositories": [remote.entry(**extra.pop("repo", {}))],
            "sources": [str(src)],
            **extra,
        }
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert_clean_error(proc)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    return lines[0]


def tree_digest(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


# -- the whole CLI ---------------------------------------------------------------------


def test_the_whole_cli_works_against_a_remote_repository(vger: Vger, remote: Remote) -> None:
    src = vger.tmp / "src"
    write_file(src / "big.bin", random_bytes(3 * MiB, 1))
    write_file(src / "copy-of-big.bin", random_bytes(3 * MiB, 1))
    for i in range(40):
        write_file(src / f"docs/note-{i:02d}.txt", f"note {i}\n".encode() * (i * 50 + 1))
    write_file(src / "empty", b"")
    configure(vger, remote, retention={"keep_last": 1})

    vger.run("init")
    assert "config" in remote.stored(), "init wrote nothing to the server"
    vger.run("backup")
    write_file(src / "docs/new.txt", b"added between the backups\n")
    (src / "docs/note-00.txt").unlink()
    vger.run("backup")
    packs_before = {key for key in remote.stored() if key.startswith("packs/")}

    vger.run("prune")  # keep_last 1: the first snapshot goes
    vger.run("compact")
    snapshots = json_out(vger.run("--json", "list"))
    assert len(snapshots) == 1
    # note-00.txt lived only in the first snapshot: compact rewrote or dropped its pack.
    assert {key for key in remote.stored() if key.startswith("packs/")} != packs_before
    dest = vger.tmp / "restored"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert tree_digest(restored_root(dest, src)) == tree_digest(src), "the restore is not byte-identical"
    vger.run("check", "--verify-data")
    stored = remote.stored()
    assert not [key for key in stored if ".tmp-" in key], "temporary files were left on the server"


# -- faults ------------------------------------------------------------------------------


def _own_remote(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    if kind == "s3":
        return s3_remote(request.getfixturevalue("s3_factory")())
    return sftp_remote(request.getfixturevalue("sshd_factory")(), tmp_path / "sftp-repo")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_server_killed_during_a_backup(
    vger: Vger, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    remote = _own_remote(kind, request, tmp_path)
    src = vger.tmp / "src"
    write_file(src / "first.txt", b"in the first snapshot\n" * 1000)
    # Small packs and a rate limit: the backup uploads one pack after the
    # other for a few seconds, so the kill lands in the middle of it.
    configure(
        vger,
        remote,
        repo={"min_pack_size": 1 * MiB, "max_pack_size": 2 * MiB},
        limits={"network": {"write_mib_per_sec": 4}},
    )
    vger.run("init")
    vger.run("backup")
    first = json_out(vger.run("--json", "list"))
    assert len(first) == 1

    write_file(src / "second.bin", random_bytes(16 * MiB, 2))
    before = set(remote.stored())
    backup = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"],
        env={**vger.env, **FAST_RETRIES},
        cwd=vger.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(key.startswith("packs/") for key in set(remote.stored()) - before):
            assert backup.poll() is None, f"the backup ended before any pack was uploaded: {backup.stderr}"
            assert time.monotonic() < deadline, "no pack was uploaded within 60 s"
            time.sleep(0.2)
        assert backup.poll() is None, "the backup finished before the server could be killed"
        remote.server.kill()
        stdout, stderr = backup.communicate(timeout=120)
    finally:
        if backup.poll() is None:
            backup.kill()
    proc = subprocess.CompletedProcess(backup.args, backup.returncode, stdout, stderr)
    line = one_error_line(proc)
    print(line)
    assert remote.url in line, f"the message must name the repository url: {line}"
    assert "locks/" not in line, f"the lock left behind hid the reason the backup failed: {line}"
    reason = line.lower()
    words = ("refused", "connect", "lost", "closed", "reset", "reach", "timed out")
    assert any(word in reason for word in words), f"the message must give the reason: {line}"

    remote.server.start()
    configure(vger, remote, repo={"min_pack_size": 1 * MiB, "max_pack_size": 2 * MiB})  # no limit now
    vger.run("check")
    assert [s["id"] for s in json_out(vger.run("--json", "list"))] == [s["id"] for s in first]
    vger.run("backup")


def test_wrong_s3_credentials(vger: Vger, s3_server: SeaweedS3Server) -> None:
    secret = "not-the-secret-" + secrets.token_hex(6)
    remote = s3_remote(s3_server)
    remote.options = {"access_key_id": s3_server.access_key, "secret_access_key": secret}
    configure(vger, remote)
    proc = vger.run("-v", "init", check=False, env=FAST_RETRIES)
    line = one_error_line(proc)
    assert "rejected the credentials" in line and "secret_access_key" in line
    assert remote.url in line
    assert secret not in proc.stderr + proc.stdout


def test_missing_bucket(vger: Vger, s3_server: SeaweedS3Server) -> None:
    configure(vger, Remote("s3", s3_server.url("no-such-bucket/repo"), s3_server.options, s3_server, dict))
    line = one_error_line(vger.run("init", check=False, env=FAST_RETRIES))
    assert "bucket 'no-such-bucket' does not exist" in line and "create it" in line


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_unreachable_host(vger: Vger, kind: str, sshd_server: SshdServer) -> None:
    port = free_ports(1)[0]  # nothing listens there
    if kind == "s3":
        url = f"s3://127.0.0.1:{port}/bucket/repo"
        options: dict[str, Any] = {"access_key_id": "id", "secret_access_key": "secret"}
    else:
        url = f"sftp://{sshd_server.user}@127.0.0.1:{port}/srv/repo"
        options = sshd_server.options
    configure(vger, Remote(kind, url, options, None, dict))
    started = time.monotonic()
    line = one_error_line(vger.run("list", check=False, env=FAST_RETRIES))
    assert time.monotonic() - started < 30
    assert url in line and "refused" in line.lower(), line
    assert "vger init" not in line, "an unreachable server is not a missing repository"


def test_unknown_host_key(vger: Vger, sshd_server: SshdServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    remote = sftp_remote(sshd_server, tmp_path / "sftp-repo")
    remote.options = {**sshd_server.options, "known_hosts": str(known_hosts)}
    configure(vger, remote)
    line = one_error_line(vger.run("init", check=False))
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {known_hosts}" in line
    assert not (tmp_path / "sftp-repo").exists()
    # Following the advice works.
    scanned = subprocess.run(
        ["ssh-keyscan", "-p", str(sshd_server.port), "127.0.0.1"], capture_output=True, text=True, check=True
    )
    known_hosts.write_text(scanned.stdout)
    vger.run("init")


# -- imports and secrets ------------------------------------------------------------------


def test_cli_without_remote_work_imports_no_network_library(vger: Vger, tmp_path: Path) -> None:
    vger.write_config(
        {
            "repositories": [
                {"url": "s3://127.0.0.1:1/bucket/p", "access_key_id": "a", "secret_access_key": "b"},
                {"url": "sftp://u@127.0.0.1:1/srv/repo"},
            ],
            "sources": [str(tmp_path)],
        }
    )
    probe = (
        "import atexit, sys\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        "from vger.cli.main import main\n"
        "sys.argv = ['vger', *sys.argv[1:]]\n"
        "main()\n"
    )
    for args in (
        ["--help"],
        ["-c", str(vger.config), "plugins"],
        ["-c", str(vger.config), "config", "--check"],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args], env=vger.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "LOADED []" in proc.stderr, f"vger {' '.join(args)}: {proc.stderr}"


def test_secrets_stay_out_of_config_output_and_messages(vger: Vger, s3_server: SeaweedS3Server) -> None:
    secret = "very-secret-" + secrets.token_hex(8)
    remote = s3_remote(s3_server)
    remote.options = {"access_key_id": s3_server.access_key, "secret_access_key": secret}
    configure(vger, remote)
    shown = vger.run("config", "--check")
    assert secret not in shown.stdout + shown.stderr
    failed = vger.run("-v", "list", check=False, env=FAST_RETRIES)
    assert failed.returncode == 1
    assert secret not in failed.stdout + failed.stderr


# -- network rate limit ----------------------------------------------------------------------


@pytest.mark.slow
def test_write_limit_holds_the_upload_rate(vger: Vger, s3_server: SeaweedS3Server) -> None:
    """``limits.network.write_mib_per_sec: 20`` measured where it matters: at the server.

    The rate is the slope of a least-squares line through (time a pack
    appeared, bytes stored so far): start-up, chunking, the limiter's initial
    burst and the packs already in flight when the first one lands shift the
    line but do not tilt it.
    """
    remote = s3_remote(s3_server)
    src = vger.tmp / "src"
    write_file(src / "data.bin", random_bytes(64 * MiB, 3))
    configure(
        vger,
        remote,
        repo={"min_pack_size": 1 * MiB, "max_pack_size": 2 * MiB},
        limits={"network": {"write_mib_per_sec": 20}},
    )
    vger.run("init")
    backup = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), "backup"],
        env=vger.env,
        cwd=vger.tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    completed: dict[str, tuple[float, int]] = {}
    try:
        while backup.poll() is None:
            now = time.monotonic()
            for key, size in remote.stored().items():
                if key.startswith("packs/") and key not in completed:
                    completed[key] = (now, size)
            time.sleep(0.05)
    finally:
        if backup.poll() is None:
            backup.kill()
    assert backup.wait() == 0, backup.stderr.read() if backup.stderr else ""
    points: list[tuple[float, float]] = []
    total = 0
    for when, size in sorted(completed.values()):
        total += size
        points.append((when, total / MiB))
    assert len(points) >= 20, f"only {len(points)} packs: too few to measure a rate"
    mean_t = sum(t for t, _ in points) / len(points)
    mean_b = sum(b for _, b in points) / len(points)
    rate = sum((t - mean_t) * (b - mean_b) for t, b in points) / sum((t - mean_t) ** 2 for t, _ in points)
    print(f"measured upload rate: {rate:.1f} MiB/s over {len(points)} packs, {total / MiB:.0f} MiB")
    assert 17 <= rate <= 23, f"upload rate {rate:.1f} MiB/s, limit 20 MiB/s (±15 %)"
