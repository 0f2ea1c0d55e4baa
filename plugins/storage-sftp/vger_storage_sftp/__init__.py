"""SFTP servers through sshfs (asyncssh).

Url: ``sftp://[user@]host[:port]/path``; the path is absolute, ``/~/path`` is
relative to the login's home folder. Authentication uses ``sftp_key`` (default
``~/.ssh/id_rsa`` when it exists), then the ssh agent. The server's host key
is always checked against ``known_hosts`` (default ``~/.ssh/known_hosts``): an
unknown key is refused with the command that trusts it, because accepting any
key would hand the repository to whoever sits on the network path.

SFTP writes are visible while they run, so the adapter writes a temporary
name, fsyncs it (``fsync@openssh.com``) and renames it over the key with
``posix-rename@openssh.com``, which replaces atomically. asyncssh and sshfs
are imported only when a repository on SFTP is first used.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from vger import hookimpl
from vger.errors import (
    ConfigError,
    ObjectNotFound,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
)
from vger.storage.errors import exception_chain
from vger.storage.fsspec_backend import FsspecBackend

DEFAULT_PORT = 22
DEFAULT_KEY = "~/.ssh/id_rsa"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

# asyncssh errors after which the connection is gone and must be rebuilt.
_CONNECTION_LOST = {
    "ConnectionLost",
    "DisconnectError",
    "SFTPConnectionLost",
    "SFTPNoConnection",
    "BrokenPipeError",
    "ConnectionResetError",
    "ChannelOpenError",
}


class SftpBackend(FsspecBackend):
    """A repository in a folder of an SFTP server."""

    name: ClassVar[str] = "sftp"
    schemes: ClassVar[tuple[str, ...]] = ("sftp",)
    object_store: ClassVar[bool] = False
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "sftp_key": {
                "type": "string",
                "description": "Private key file (default ~/.ssh/id_rsa when it exists, then the ssh agent).",
            },
            "known_hosts": {
                "type": "string",
                "description": "known_hosts file the server's host key must be in (default ~/.ssh/known_hosts).",
            },
        },
    }

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        if not self.host:
            raise ConfigError(f"{url}: no host; write sftp://[user@]host[:port]/path")
        try:
            self.port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(f"sftp url has a bad port: {parts.netloc.rsplit('@', 1)[-1]}") from exc
        self.username = unquote(parts.username) if parts.username else getpass.getuser()
        self._password = unquote(parts.password) if parts.password else None
        super().__init__(url, options)
        if not self.root.strip("/~"):
            raise ConfigError(f"{self.location}: no folder; write sftp://[user@]host[:port]/path")

    def root_path(self) -> str:
        path = unquote(urlsplit(self.url).path)
        # "/~/backups" is relative to the login's home folder, as in scp.
        return path[3:] if path.startswith("/~/") else path

    def _known_hosts(self) -> str:
        return os.path.expanduser(str(self.options.get("known_hosts") or DEFAULT_KNOWN_HOSTS))

    def _trust_hint(self) -> str:
        port = f"-p {self.port} " if self.port != DEFAULT_PORT else ""
        return f"ssh-keyscan {port}{self.host} >> {self._known_hosts()}"

    def open_filesystem(self) -> Any:
        from sshfs import SSHFileSystem  # heavy (asyncssh, cryptography): only when used

        known_hosts = self._known_hosts()
        configured_key = self.options.get("sftp_key")
        client_keys: list[str] | None
        if configured_key:
            key_path = os.path.expanduser(str(configured_key))
            if not os.path.isfile(key_path):
                raise PermanentStorageError(f"{self.location}: sftp_key {key_path} does not exist")
            client_keys = [key_path]
        else:
            default_key = os.path.expanduser(DEFAULT_KEY)
            # None lets asyncssh try the agent (and its usual key files).
            client_keys = [default_key] if os.path.isfile(default_key) else None
        return SSHFileSystem(
            self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            client_keys=client_keys,
            # An absent file trusts nothing (never None: that would trust everything).
            known_hosts=known_hosts if os.path.isfile(known_hosts) else (),
            connect_timeout=15,
            keepalive_interval=30,
            skip_instance_cache=True,
        )

    def rename(self, tmp: str, final: str) -> None:
        """posix-rename replaces the key atomically; sshfs's ``mv`` copies when it cannot."""
        from fsspec.asyn import sync

        fs = self.fs

        async def posix_rename() -> None:
            async with fs._pool.get() as channel:
                await channel.posix_rename(tmp, final)

        sync(fs.loop, posix_rename)

    def is_connection_lost(self, exc: BaseException) -> bool:
        return any(type(cause).__name__ in _CONNECTION_LOST for cause in exception_chain(exc))

    def map_error(self, exc: BaseException, key: str) -> StorageError | None:
        where = f"{self.location} ({key})" if key else self.location
        server = f"{self.host}:{self.port}"
        for cause in exception_chain(exc):
            kind = type(cause).__name__
            if isinstance(cause, OSError) and cause.errno and kind != "gaierror":
                reason = os.strerror(cause.errno)  # not asyncio's "Connect call failed ('host', port)"
            else:
                reason = " ".join(str(getattr(cause, "reason", "") or cause).split()) or kind
            if kind == "HostKeyNotVerifiable":
                return PermanentStorageError(
                    f"{self.location}: the host key of {server} is not trusted by {self._known_hosts()} "
                    "(unknown, or changed since it was recorded); if you trust this server, add its key "
                    f"with: {self._trust_hint()}"
                )
            if kind == "PermissionDenied":
                keys = self.options.get("sftp_key") or f"{DEFAULT_KEY} or the ssh agent"
                return PermanentStorageError(
                    f"{self.location}: {server} refused the login of user {self.username} ({reason}); "
                    f"check sftp_key ({keys}) and the user's authorized_keys on the server"
                )
            if kind == "SFTPNoSuchFile":
                return ObjectNotFound(f"{key}: not found in {self.location}")
            if kind in ("SFTPPermissionDenied",):
                return PermanentStorageError(f"{where}: permission denied on the server: {reason}")
            if kind in ("SFTPNoSpaceOnFilesystem", "SFTPQuotaExceeded"):
                return PermanentStorageError(f"{where}: no space left on the server: {reason}")
            if kind == "SFTPOpUnsupported":
                return PermanentStorageError(
                    f"{where}: the SFTP server lacks an operation vger needs ({reason}); "
                    "OpenSSH's sftp-server has it"
                )
            if kind in _CONNECTION_LOST or kind in ("ConnectionRefusedError", "TimeoutError"):
                return TransientStorageError(f"{where}: connection to {server} failed: {reason}")
            if isinstance(cause, OSError) and kind == "gaierror":
                return PermanentStorageError(f"{self.location}: cannot resolve host {self.host}: {reason}")
        return None

    def close_filesystem(self, fs: Any) -> None:
        type(fs)._finalize(fs.loop, fs._pool, fs._stack)


@hookimpl
def vger_register_storage_backends() -> list[type[Any]]:
    return [SftpBackend]
