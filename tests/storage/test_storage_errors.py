"""The error-mapping helper every backend adapter uses, and the key grammar."""

from __future__ import annotations

import errno

import pytest

from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryExists,
    StorageError,
    TransientStorageError,
)
from vger.storage.errors import map_storage_error, storage_errors
from vger.storage.keys import check_key, check_prefix

WHERE = "s3://127.0.0.1:9000/bucket/repo"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), ObjectNotFound),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), ObjectNotFound),
        (OSError(errno.ENOENT, "gone"), ObjectNotFound),
        (PermissionError(errno.EACCES, "Permission denied"), PermanentStorageError),
        (OSError(errno.EROFS, "Read-only file system"), PermanentStorageError),
        (OSError(errno.ENOSPC, "No space left on device"), PermanentStorageError),
        (TimeoutError("timed out"), TransientStorageError),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), TransientStorageError),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), TransientStorageError),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), TransientStorageError),
        (OSError(errno.EHOSTUNREACH, "No route to host"), TransientStorageError),
        (OSError(errno.EIO, "Input/output error"), PermanentStorageError),
        (OSError("the server said no"), PermanentStorageError),
        (RuntimeError("something unexpected"), PermanentStorageError),
    ],
)
def test_library_errors_map_onto_the_three_storage_errors(exc: BaseException, expected: type) -> None:
    mapped = map_storage_error(exc, WHERE, "packs/ab/ab12")
    assert type(mapped) is expected
    message = str(mapped)
    assert "packs/ab/ab12" in message
    assert "\n" not in message
    if expected is not ObjectNotFound:
        assert WHERE in message


def test_messages_carry_the_reason() -> None:
    mapped = map_storage_error(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), WHERE, "k")
    assert str(mapped) == f"{WHERE} (k): Connection reset by peer"
    assert "permission denied" in str(map_storage_error(PermissionError(errno.EACCES, "x"), WHERE, "k"))
    assert "no space left" in str(map_storage_error(OSError(errno.ENOSPC, "x"), WHERE))


def test_a_storage_error_passes_unchanged() -> None:
    original = TransientStorageError("already mapped")
    assert map_storage_error(original, WHERE, "k") is original


def test_library_specific_classes_can_be_added() -> None:
    class NoSuchKey(Exception):
        pass

    class SlowDown(Exception):
        pass

    assert isinstance(map_storage_error(NoSuchKey("k"), WHERE, "k", not_found=(NoSuchKey,)), ObjectNotFound)
    assert isinstance(
        map_storage_error(SlowDown("503"), WHERE, "k", transient=(SlowDown,)), TransientStorageError
    )
    with pytest.raises(TransientStorageError, match="503"), storage_errors(WHERE, "k", transient=(SlowDown,)):
        raise SlowDown("503 Slow Down")


def test_context_manager_maps_os_errors_and_keeps_the_cause() -> None:
    with pytest.raises(ObjectNotFound) as caught, storage_errors(WHERE, "config"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_context_manager_lets_vger_errors_and_bugs_through() -> None:
    with pytest.raises(RepositoryExists), storage_errors(WHERE):
        raise RepositoryExists("already there")
    # A programming error in an adapter must stay visible as what it is.
    with pytest.raises(TypeError), storage_errors(WHERE):
        raise TypeError("bad argument")


@pytest.mark.parametrize(
    "key", ["config", "keys/repokey", "packs/ab/ab12cd", "a.b_c-d/0", "index/.hidden", "x/y/z/w"]
)
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/",
        "/abs",
        "a/",
        "a//b",
        "..",
        "a/../b",
        ".",
        "a/./b",
        "A",
        "caf\u00e9",
        "a b",
        "a\\b",
        "a\x00",
        7,
    ],
)
def test_invalid_keys(key: object) -> None:
    with pytest.raises(PermanentStorageError, match="refusing storage key"):
        check_key(key)  # type: ignore[arg-type]


def test_prefixes() -> None:
    assert check_prefix("") == ""
    assert check_prefix("packs/") == "packs"
    assert check_prefix("packs/ab") == "packs/ab"
    for prefix in ("/", "//", "../", "Packs", "a//", "a/../"):
        with pytest.raises(StorageError):
            check_prefix(prefix)
