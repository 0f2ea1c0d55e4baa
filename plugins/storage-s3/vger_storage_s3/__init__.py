"""S3-compatible object storage (AWS, MinIO, SeaweedFS, Wasabi...) through s3fs.

Url forms (``../shared/spec/config.md``):

``s3://bucket/prefix``
    AWS; ``region`` picks the region (default ``us-east-1``).
``s3://host:port/bucket/prefix``
    A host with a dot or a port is a custom endpoint and the first path
    segment is the bucket. The endpoint speaks https, except for ``localhost``
    and IP literals, which speak plain http (a name can carry a certificate, an
    address on a LAN rarely does); the ``endpoint`` option overrides both.

A single PUT (or a multipart upload, on completion) is atomic, so objects are
written in place. s3fs, botocore and aiobotocore are imported only when a
repository on S3 is first used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from vger import hookimpl
from vger.errors import (
    ConfigError,
    ObjectNotFound,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
)
from vger.storage.errors import exception_chain
from vger.storage.fsspec_backend import FsspecBackend, strip_userinfo

DEFAULT_REGION = "us-east-1"

# Codes S3 (and its clones) answer that a retry can cure.
_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "500",
    "502",
    "503",
    "504",
}
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def _client_error_code(exc: BaseException) -> str | None:
    """The S3 error code carried by ``exc`` or its causes (s3fs re-raises as OSError)."""
    for current in exception_chain(exc):
        response = getattr(current, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


class S3Backend(FsspecBackend):
    """A repository under ``bucket/prefix`` of an S3-compatible service."""

    name: ClassVar[str] = "s3"
    schemes: ClassVar[tuple[str, ...]] = ("s3",)
    object_store: ClassVar[bool] = True
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "region": {"type": "string", "default": DEFAULT_REGION, "description": "S3 region."},
            "access_key_id": {
                "type": "string",
                "description": "Access key id (default: AWS_ACCESS_KEY_ID, ~/.aws/credentials, ...).",
            },
            "secret_access_key": {
                "type": "string",
                "description": "Secret access key (default: AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, ...).",
            },
            "endpoint": {
                "type": "string",
                "description": "Endpoint url of an S3-compatible service, e.g. http://minio.lan:9000.",
                "examples": ["https://s3.eu-central-1.wasabisys.com"],
            },
        },
    }

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.endpoint, self.bucket, self.prefix = parse_url(url, options)
        super().__init__(url, options)

    def root_path(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    @property
    def location(self) -> str:
        return strip_userinfo(self.url)

    def _where(self) -> str:
        return self.endpoint or f"AWS S3 ({self.options.get('region') or DEFAULT_REGION})"

    def open_filesystem(self) -> Any:
        import s3fs  # heavy (botocore, aiobotocore, aiohttp): only when used

        key = self.options.get("access_key_id")
        secret = self.options.get("secret_access_key")
        if bool(key) != bool(secret):
            raise ConfigError(
                f"{self.location}: set both access_key_id and secret_access_key, or neither "
                "(then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials are used)"
            )
        fs = s3fs.S3FileSystem(
            session=_shared_session(),
            key=key or None,
            secret=secret or None,
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": self.options.get("region") or DEFAULT_REGION},
            config_kwargs={
                "connect_timeout": 10,
                "read_timeout": 60,
                "retries": {"max_attempts": 1, "mode": "standard"},
                # botocore's default CRC32 on every request costs about a quarter
                # of the upload rate here and is refused by several S3-compatible
                # servers; vger authenticates every blob itself, and TLS (or the
                # signed payload over http) protects the transfer.
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            },
            use_listings_cache=False,
            skip_instance_cache=True,
        )
        # vger's retry wrapper retries with backoff and jitter; botocore's and
        # s3fs's own loops would multiply the attempts (and the wait before a
        # clear error), so each makes one attempt.
        fs.retries = 1
        return fs

    def check_filesystem(self, fs: Any) -> None:
        """One cheap listing proves the endpoint, the credentials and the bucket."""
        fs.call_s3("list_objects_v2", Bucket=self.bucket, Prefix=self._key_prefix(), MaxKeys=1)

    def _key_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        return bytes(self.fs.cat_file(path, start=offset, end=offset + length))

    def map_error(self, exc: BaseException, key: str) -> StorageError | None:
        where = f"{self.location} ({key})" if key else self.location
        code = _client_error_code(exc)
        if code == "NoSuchBucket":
            return PermanentStorageError(
                f"{self.location}: bucket '{self.bucket}' does not exist at {self._where()}; "
                f"create it (e.g. `aws s3 mb s3://{self.bucket}`) or fix the bucket in the url"
            )
        if code in _CREDENTIAL_CODES:
            return PermanentStorageError(
                f"{self.location}: {self._where()} rejected the credentials ({code}); check "
                "access_key_id / secret_access_key in the repository entry (or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY)"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return PermanentStorageError(
                f"{where}: access denied by {self._where()}; check the credentials and that they "
                f"may read and write bucket '{self.bucket}'"
            )
        if code in (
            "PermanentRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraintException",
        ):
            region = self.options.get("region") or DEFAULT_REGION
            return PermanentStorageError(
                f"{self.location}: bucket '{self.bucket}' is not in region {region} ({code}); "
                "set `region` in the repository entry to the bucket's region"
            )
        if code in ("NoSuchKey", "404"):
            return ObjectNotFound(f"{key}: not found in {self.location}")
        if code in _TRANSIENT_CODES:
            return TransientStorageError(f"{where}: {self._where()} answered {code}, try again later")
        for cause in exception_chain(exc):
            kind = type(cause).__name__
            if kind in ("NoCredentialsError", "PartialCredentialsError"):
                return PermanentStorageError(
                    f"{self.location}: no S3 credentials found; set access_key_id and "
                    "secret_access_key in the repository entry, or AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials"
                )
            if kind in (
                "EndpointConnectionError",
                "ConnectTimeoutError",
                "ReadTimeoutError",
                "ConnectionClosedError",
                "ClientConnectorError",
                "ServerDisconnectedError",
                "ClientOSError",
                "HTTPClientError",
            ):
                return TransientStorageError(
                    f"{where}: cannot reach {self._where()}: {_network_reason(cause)}"
                )
        return None

    def remove_incomplete(self) -> int:
        """Abort multipart uploads that killed writers left (invisible, but billed)."""
        fs = self.fs
        freed = 0
        try:
            listing = fs.call_s3("list_multipart_uploads", Bucket=self.bucket, Prefix=self._key_prefix())
            for upload in listing.get("Uploads", []):
                parts = fs.call_s3(
                    "list_parts", Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                freed += sum(int(part.get("Size", 0)) for part in parts.get("Parts", []))
                fs.call_s3(
                    "abort_multipart_upload",
                    Bucket=self.bucket,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
        except Exception as exc:
            raise self.error(exc, "") from exc
        return freed

    def close_filesystem(self, fs: Any) -> None:
        client = getattr(fs, "_s3", None)
        if client is not None:
            type(fs).close_session(fs.loop, client)


def _network_reason(exc: BaseException) -> str:
    """ "Connection refused" rather than botocore's sentence quoting the request url."""
    for cause in exception_chain(exc):
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
    return " ".join(str(exc).split())


_session: Any = None
_session_lock = threading.Lock()


def _shared_session() -> Any:
    """One botocore session per process: building one loads the S3 service model
    (about 0.3 s), which every backend instance would otherwise pay again."""
    global _session
    with _session_lock:
        if _session is None:
            from aiobotocore.session import AioSession

            _session = AioSession()
        return _session


def _is_plain_http_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        import ipaddress  # at use, not in every command's start-up

        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(url: str, options: Mapping[str, Any]) -> tuple[str | None, str, str]:
    """(endpoint url or None for AWS, bucket, prefix) of an ``s3://`` url."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{strip_userinfo(url)}: bad port in the s3 url") from exc
    segments = [segment for segment in parts.path.split("/") if segment]
    endpoint: str | None = None
    if port is not None or "." in host:
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        scheme = "http" if _is_plain_http_host(host) else "https"
        endpoint = f"{scheme}://{netloc}"
        if not segments:
            raise ConfigError(
                f"{url}: no bucket; with an endpoint host the first path segment is the bucket "
                "(s3://host:port/bucket/prefix)"
            )
        bucket, rest = segments[0], segments[1:]
    else:
        bucket, rest = host, segments
    if not bucket:
        raise ConfigError(f"{url}: no bucket; write s3://bucket/prefix or s3://host:port/bucket/prefix")
    if options.get("endpoint"):
        endpoint = str(options["endpoint"]).rstrip("/")
    return endpoint, bucket, "/".join(rest)


@hookimpl
def vger_register_storage_backends() -> list[type[Any]]:
    return [S3Backend]
