"""The local filesystem backend must pass the storage contract, plus filesystem-only checks."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vger_storage_file import TEMP_MARKER, FileBackend

from vger.errors import PermanentStorageError
from vger.testing import StorageBackendContract


class TestFileBackendContract(StorageBackendContract):
    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> Callable[[], Any]:
        return lambda: FileBackend(str(tmp_path / "repo"), {})


class TestFileUrlContract(StorageBackendContract):
    """The same backend reached through a ``file://`` url, as a config may write it."""

    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> Callable[[], Any]:
        return lambda: FileBackend((tmp_path / "repo with space").as_uri(), {})


def test_unsafe_put_writes_nothing_outside_the_repository(tmp_path: Path) -> None:
    backend = FileBackend(str(tmp_path / "repo"), {})
    backend.create()
    for key in ("../escaped", "a/../../escaped"):
        with pytest.raises(PermanentStorageError):
            backend.put(key, b"x")
    assert not (tmp_path / "escaped").exists()


def test_leftover_temporary_file_is_not_an_object(tmp_path: Path) -> None:
    # What a crash between write and rename leaves behind.
    backend = FileBackend(str(tmp_path / "repo"), {})
    backend.create()
    backend.put("packs/00/real", b"real")
    (tmp_path / "repo" / "packs" / "00" / f"half{TEMP_MARKER}abc123").write_bytes(b"half")
    assert list(backend.list("")) == ["packs/00/real"]


def test_create_refuses_a_non_empty_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "precious.txt").write_text("user data")
    with pytest.raises(Exception, match="not empty"):
        FileBackend(str(tmp_path / "repo"), {}).create()
    assert (tmp_path / "repo" / "precious.txt").read_text() == "user data"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_is_permanent(tmp_path: Path) -> None:
    backend = FileBackend(str(tmp_path / "repo"), {})
    backend.create()
    (tmp_path / "repo").chmod(0o500)
    try:
        with pytest.raises(PermanentStorageError, match="permission denied"):
            backend.put("config", b"x")
    finally:
        (tmp_path / "repo").chmod(0o700)
