"""The SFTP backend against a real OpenSSH sshd on loopback, plus SFTP-only checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vger_storage_sftp import SftpBackend

from vger.testing import StorageBackendContract
from vger.testing.servers import SshdServer


class TestSftpContract(StorageBackendContract):
    @pytest.fixture
    def backend_factory(self, sshd_server: SshdServer, tmp_path: Path) -> Callable[[], Any]:
        url = sshd_server.url(tmp_path / "repo")
        return lambda: SftpBackend(url, sshd_server.options)
