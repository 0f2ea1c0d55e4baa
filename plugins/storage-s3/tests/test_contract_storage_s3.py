"""The S3 backend against a real S3 server (SeaweedFS on loopback), plus S3-only checks."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from vger_storage_s3 import S3Backend, parse_url

from vger.errors import ConfigError, ObjectNotFound, PermanentStorageError, TransientStorageError
from vger.testing import StorageBackendContract
from vger.testing.servers import SeaweedS3Server, free_ports

MiB = 1024 * 1024


class TestS3Contract(StorageBackendContract):
    # Overwrites are atomic PUTs whatever their size; 2 MiB keeps the watcher tests quick.
    atomic_object_size = 2 * MiB

    @pytest.fixture
    def backend_factory(self, s3_server: SeaweedS3Server) -> Callable[[], Any]:
        url = s3_server.url(f"{s3_server.bucket}/contract-{secrets.token_hex(4)}")
        return lambda: S3Backend(url, s3_server.options)

    @pytest.fixture
    def unreachable_backend_factory(self) -> Callable[[], Any]:
        port = free_ports(1)[0]  # nothing listens there
        return lambda: S3Backend(
            f"s3://127.0.0.1:{port}/bucket/repo", {"access_key_id": "k", "secret_access_key": "s"}
        )


# -- urls ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("s3://my-backups/laptop/daily", {}, (None, "my-backups", "laptop/daily")),
        ("s3://my-backups", {}, (None, "my-backups", "")),
        ("s3://127.0.0.1:9000/bucket/a/b", {}, ("http://127.0.0.1:9000", "bucket", "a/b")),
        ("s3://localhost:9000/bucket", {}, ("http://localhost:9000", "bucket", "")),
        ("s3://s3.wasabisys.com/bucket/p", {}, ("https://s3.wasabisys.com", "bucket", "p")),
        ("s3://minio.lan:9000/bucket/p", {}, ("https://minio.lan:9000", "bucket", "p")),
        ("s3://[::1]:9000/bucket/p", {}, ("http://[::1]:9000", "bucket", "p")),
        ("s3://bucket/p", {"endpoint": "http://minio.lan:9000/"}, ("http://minio.lan:9000", "bucket", "p")),
        ("s3://minio.lan:9000/b/p", {"endpoint": "http://10.0.0.5:9000"}, ("http://10.0.0.5:9000", "b", "p")),
    ],
)
def test_url_forms(url: str, options: dict[str, str], expected: tuple[str | None, str, str]) -> None:
    assert parse_url(url, options) == expected


@pytest.mark.parametrize("url", ["s3://minio.lan:9000", "s3://minio.lan:9000/", "s3:///prefix"])
def test_url_without_a_bucket_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="no bucket"):
        parse_url(url, {})


def test_constructing_a_backend_does_no_io_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from vger_storage_s3 import S3Backend\n"
        "S3Backend('s3://127.0.0.1:1/bucket/p', {})\n"
        "print(sorted(m for m in ('s3fs', 'botocore', 'aiobotocore') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- errors a user meets ------------------------------------------------------------------


def test_missing_bucket_says_to_create_it(s3_server: SeaweedS3Server) -> None:
    backend = S3Backend(s3_server.url("no-such-bucket/repo"), s3_server.options)
    with pytest.raises(PermanentStorageError) as caught:
        backend.get("config")
    message = str(caught.value)
    assert "bucket 'no-such-bucket' does not exist" in message
    assert "create it" in message and backend.location in message
    assert "\n" not in message


def test_wrong_credentials_are_named_without_the_secret(s3_server: SeaweedS3Server) -> None:
    secret = "wrong-secret-" + secrets.token_hex(8)
    options = {"access_key_id": s3_server.access_key, "secret_access_key": secret}
    backend = S3Backend(s3_server.url(f"{s3_server.bucket}/repo"), options)
    with pytest.raises(PermanentStorageError, match="rejected the credentials") as caught:
        backend.exists("config")
    assert secret not in str(caught.value)
    assert "secret_access_key" in str(caught.value), "the message must say which setting to fix"
    assert secret not in backend.location


def test_half_set_credentials_are_a_config_error() -> None:
    backend = S3Backend("s3://127.0.0.1:1/bucket/p", {"access_key_id": "only-the-id"})
    with pytest.raises(ConfigError, match="both access_key_id and secret_access_key"):
        backend.get("config")


def test_remove_incomplete_aborts_unfinished_multipart_uploads(s3_server: SeaweedS3Server) -> None:
    # What a backup killed during a large upload leaves: invisible, but billed.
    prefix = f"mpu-{secrets.token_hex(4)}"
    backend = S3Backend(s3_server.url(f"{s3_server.bucket}/{prefix}"), s3_server.options)
    backend.create()
    other = S3Backend(s3_server.url(f"{s3_server.bucket}/elsewhere-{prefix}"), s3_server.options)
    fs = backend.fs
    uploads = []
    for owner, key in ((backend, "packs/00/half"), (other, "packs/00/live")):
        path = owner.path(key)
        bucket, object_key = path.split("/", 1)
        upload = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=object_key)
        fs.call_s3(
            "upload_part",
            Bucket=bucket,
            Key=object_key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * (5 * 1024 * 1024),
        )
        uploads.append((bucket, object_key, upload["UploadId"]))
    assert list(backend.list("")) == []
    assert backend.remove_incomplete() == 5 * 1024 * 1024
    left = fs.call_s3("list_multipart_uploads", Bucket=s3_server.bucket).get("Uploads", [])
    left_keys = {upload["Key"] for upload in left}
    assert f"{prefix}/packs/00/half" not in left_keys
    assert f"elsewhere-{prefix}/packs/00/live" in left_keys, "another repository's upload was aborted"
    bucket, object_key, upload_id = uploads[1]
    fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=object_key, UploadId=upload_id)
    backend.close()


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("PermanentRedirect", PermanentStorageError, "set `region`"),
        ("SlowDown", TransientStorageError, "try again later"),
        ("InternalError", TransientStorageError, "try again later"),
        ("AccessDenied", PermanentStorageError, "access denied"),
        ("NoSuchKey", ObjectNotFound, "packs/00/x: not found"),
    ],
)
def test_s3_error_codes_map_to_what_to_do(code: str, kind: type[Exception], words: str) -> None:
    # Codes SeaweedFS cannot be made to answer (AWS regions, throttling), as
    # botocore raises them and s3fs re-raises them.
    from botocore.exceptions import ClientError

    backend = S3Backend("s3://bucket/prefix", {"region": "eu-west-3"})
    error = ClientError({"Error": {"Code": code, "Message": "..."}}, "PutObject")
    try:
        raise OSError("as s3fs re-raises it") from error
    except OSError as wrapped:
        mapped = backend.error(wrapped, "packs/00/x")
    assert isinstance(mapped, kind)
    assert words in str(mapped) and "\n" not in str(mapped)
