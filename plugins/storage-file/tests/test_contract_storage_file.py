"""The local filesystem backend must pass the storage contract, plus filesystem-only checks."""

import errno
import os
import shutil
import subprocess
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


# Objects written across the staging buffer's edges: below one block, exactly one
# buffer, one byte over, and a pack-like object of odd-sized parts.
@pytest.mark.parametrize(
    "sizes",
    [[0], [4095], [4 * 1024 * 1024], [4 * 1024 * 1024 + 1], [1, 3 * 1024 * 1024, 5 * 1024 * 1024 + 4097, 13]],
)
@pytest.mark.parametrize("direct_io", [True, False])
def test_big_objects_round_trip(tmp_path: Path, sizes: list[int], direct_io: bool) -> None:
    backend = FileBackend(str(tmp_path / "repo"), {"direct_io": direct_io})
    backend.create()
    parts = [os.urandom(n) for n in sizes]
    backend.put_parts("packs/ab/pack", [memoryview(p) for p in parts])
    assert backend.get("packs/ab/pack") == b"".join(parts)
    assert backend.size("packs/ab/pack") == sum(sizes)


def _cached_pages(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True, text=True
    )
    return int(out.stdout.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux's fincore")
def test_packs_bypass_the_page_cache(tmp_path: Path) -> None:
    """A backup's packs must not push the user's files out of memory (and copying into
    fresh page-cache pages was a fifth of a backup's CPU)."""
    backend = FileBackend(str(tmp_path / "repo"), {})
    backend.create()
    data = os.urandom(9 * 1024 * 1024 + 100)
    backend.put_parts("packs/00/big", [data])
    if not backend._direct:
        pytest.skip("this filesystem refuses O_DIRECT")
    # only the last partial block went through the page cache
    assert _cached_pages(tmp_path / "repo" / "packs" / "00" / "big") <= 8192
    assert backend.get("packs/00/big") == data


@pytest.mark.parametrize("refused_by", ["fcntl", "write"])
def test_filesystem_without_direct_io_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_by: str
) -> None:
    """Some filesystems (FUSE, ext4 with data=journal, older tmpfs) refuse O_DIRECT, either
    when it is switched on or at the first write: the object is written through the page
    cache all the same, and later objects do not try again."""
    import fcntl

    real_fcntl, real_write = fcntl.fcntl, os.write
    refusals = []

    def fake_fcntl(fd: int, cmd: int, arg: int = 0) -> int:
        if refused_by == "fcntl" and cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            refusals.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    def fake_write(fd: int, data: Any) -> int:
        if refused_by == "write" and real_fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refusals.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    monkeypatch.setattr(os, "write", fake_write)
    backend = FileBackend(str(tmp_path / "repo"), {})
    backend.create()
    data = os.urandom(6 * 1024 * 1024 + 3)
    backend.put_parts("packs/00/big", [data[:100], data[100:]])
    assert backend.get("packs/00/big") == data
    assert len(refusals) == 1
    backend.put_parts("packs/00/next", [data])
    assert backend.get("packs/00/next") == data
    assert len(refusals) == 1  # not tried again
