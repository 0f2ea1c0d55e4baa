"""The S3 backend against a real S3 server (SeaweedFS on loopback), plus S3-only checks."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from vger_storage_s3 import S3Backend

from vger.testing import StorageBackendContract
from vger.testing.servers import SeaweedS3Server


class TestS3Contract(StorageBackendContract):
    @pytest.fixture
    def backend_factory(self, s3_server: SeaweedS3Server) -> Callable[[], Any]:
        url = s3_server.url(f"{s3_server.bucket}/contract-{secrets.token_hex(4)}")
        return lambda: S3Backend(url, s3_server.options)
