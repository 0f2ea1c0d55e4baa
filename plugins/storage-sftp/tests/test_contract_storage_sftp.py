"""The SFTP backend against a real OpenSSH sshd on loopback, plus SFTP-only checks."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vger_storage_sftp import SftpBackend

from vger.errors import ConfigError, PermanentStorageError, TransientStorageError
from vger.storage.fsspec_backend import TEMP_MARKER
from vger.testing import StorageBackendContract
from vger.testing.servers import SshdServer, free_ports

MiB = 1024 * 1024


class TestSftpContract(StorageBackendContract):
    # A temporary name and a rename whatever the size; 2 MiB keeps the watcher tests quick.
    atomic_object_size = 2 * MiB
    # Nothing in SFTP changes above a few blocks (S3 keeps 100 MiB: multipart starts at 50).
    large_object_size = 24 * MiB

    @pytest.fixture
    def backend_factory(self, sshd_server: SshdServer, tmp_path: Path) -> Callable[[], Any]:
        url = sshd_server.url(tmp_path / "repo")
        return lambda: SftpBackend(url, sshd_server.options)

    @pytest.fixture
    def unreachable_backend_factory(self, sshd_server: SshdServer) -> Callable[[], Any]:
        port = free_ports(1)[0]  # nothing listens there
        return lambda: SftpBackend(
            f"sftp://{sshd_server.user}@127.0.0.1:{port}/srv/repo", sshd_server.options
        )


def test_url_forms(tmp_path: Path) -> None:
    backend = SftpBackend("sftp://backup@nas.lan:2222/srv/vger", {})
    assert (backend.username, backend.host, backend.port, backend.root) == (
        "backup",
        "nas.lan",
        2222,
        "/srv/vger",
    )
    home = SftpBackend("sftp://nas.lan/~/vger/laptop", {})
    assert (home.port, home.root) == (22, "vger/laptop")
    with_password = SftpBackend("sftp://backup:hunter2@nas.lan/srv/vger", {})
    assert "hunter2" not in with_password.location
    with pytest.raises(ConfigError, match="no folder"):
        SftpBackend("sftp://nas.lan/", {})


def test_unknown_host_key_is_refused_with_the_command_that_trusts_it(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = {**sshd_server.options, "known_hosts": str(empty)}
    backend = SftpBackend(sshd_server.url(tmp_path / "repo"), options)
    with pytest.raises(PermanentStorageError) as caught:
        backend.create()
    message = str(caught.value)
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {empty}" in message
    assert "\n" not in message
    assert not (tmp_path / "repo").exists(), "nothing may be written to an untrusted server"


def test_a_key_the_server_does_not_know_is_refused(sshd_server: SshdServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    options = {**sshd_server.options, "sftp_key": str(stranger)}
    backend = SftpBackend(sshd_server.url(tmp_path / "repo"), options)
    with pytest.raises(
        PermanentStorageError, match=f"refused the login of user {sshd_server.user}"
    ) as caught:
        backend.exists("config")
    assert str(stranger) in str(caught.value)


def test_a_missing_key_file_is_named(sshd_server: SshdServer, tmp_path: Path) -> None:
    options = {**sshd_server.options, "sftp_key": str(tmp_path / "nope")}
    with pytest.raises(PermanentStorageError, match=r"sftp_key .*nope does not exist"):
        SftpBackend(sshd_server.url(tmp_path / "repo"), options).exists("config")


def test_leftover_temporary_files_are_hidden_and_removed(sshd_server: SshdServer, tmp_path: Path) -> None:
    # The server is local, so the test can look at (and plant) what a killed writer leaves.
    backend = SftpBackend(sshd_server.url(tmp_path / "repo"), sshd_server.options)
    backend.create()
    backend.put("packs/00/real", b"real")
    (tmp_path / "repo" / "packs" / "00" / f"half{TEMP_MARKER}abc123").write_bytes(b"half-written")
    assert list(backend.list("")) == ["packs/00/real"]
    assert backend.remove_incomplete() == len(b"half-written")
    assert sorted(p.name for p in (tmp_path / "repo" / "packs" / "00").iterdir()) == ["real"]
    backend.close()


def test_a_restarted_server_is_reconnected_to(sshd_factory: Callable[[], SshdServer], tmp_path: Path) -> None:
    server = sshd_factory()
    backend = SftpBackend(server.url(tmp_path / "repo"), server.options)
    backend.create()
    backend.put("config", b"before")
    server.kill()
    with pytest.raises(TransientStorageError, match=re.escape(backend.location)):
        backend.get("config")
    server.start()
    assert backend.get("config") == b"before", "the next call after a lost connection must reconnect"
    backend.close()
    server.stop()
