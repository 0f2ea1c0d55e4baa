"""The fsspec adapter on a filesystem other than S3 and SFTP: a third party's backend in a few lines.

fsspec's own local filesystem needs no server, so this runs everywhere and
proves the adapter's generic path (temporary name, rename, recursive listing,
error mapping) against the whole storage contract, apart from s3fs and sshfs.
(fsspec's in-memory filesystem would not do as an object store: its files are
visible while they are written, which the contract catches.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from vger.storage.fsspec_backend import TEMP_MARKER, FsspecBackend, strip_userinfo
from vger.testing import StorageBackendContract


class LocalFsspecBackend(FsspecBackend):
    """A whole backend: ``fsspec-local:///path`` through fsspec's LocalFileSystem."""

    name: ClassVar[str] = "fsspec-local"
    schemes: ClassVar[tuple[str, ...]] = ("fsspec-local",)

    def open_filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()


class TestLocalThroughFsspec(StorageBackendContract):
    large_object_size = 16 * 1024 * 1024

    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> Callable[[], Any]:
        return lambda: LocalFsspecBackend(f"fsspec-local://{tmp_path}/repo", {})


def test_a_killed_writers_temporary_file_is_hidden_then_removed(tmp_path: Path) -> None:
    backend = LocalFsspecBackend(f"fsspec-local://{tmp_path}/repo", {})
    backend.create()
    backend.put("index/0001", b"real")
    (tmp_path / "repo" / "index" / f"0002{TEMP_MARKER}dead").write_bytes(b"12345")
    assert list(backend.list("")) == ["index/0001"]
    assert backend.remove_incomplete() == 5
    assert sorted(p.name for p in (tmp_path / "repo" / "index").iterdir()) == ["0001"]


def test_a_key_with_the_temporary_marker_is_refused(tmp_path: Path) -> None:
    backend = LocalFsspecBackend(f"fsspec-local://{tmp_path}/repo", {})
    backend.create()
    with pytest.raises(Exception, match="temporary"):
        backend.put(f"index/x{TEMP_MARKER}y", b"would be invisible")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sftp://user:hunter2@host:2222/srv/repo", "sftp://user@host:2222/srv/repo"),
        ("s3://key:secret@bucket/prefix?token=abc", "s3://key@bucket/prefix"),
        ("s3://[::1]:9000/bucket", "s3://[::1]:9000/bucket"),
        ("sftp://host:notaport/x", "sftp://host:notaport/x"),
    ],
)
def test_locations_never_show_passwords(url: str, shown: str) -> None:
    assert strip_userinfo(url) == shown
