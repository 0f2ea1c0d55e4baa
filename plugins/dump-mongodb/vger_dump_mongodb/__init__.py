"""MongoDB dumps with ``mongodump --archive`` (the archive goes to stdout).

``databases: [all]`` makes one archive of the whole server
(``mongodb/all.archive``); named databases get one archive each
(``mongodb/<db>.archive``). The password reaches mongodump through
``--config`` pointing at a pipe (``/dev/fd/N``) that holds one YAML line: it
is never in argv, and never in a file.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from vger import hookimpl
from vger.errors import VgerError
from vger.interfaces import DumpRestore, DumpStream
from vger.process import ProcessRestore, ProcessStream

_EXTRA = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _secret_pipe(password: str) -> int:
    """A pipe's read end holding ``password: ...`` for ``--config=/dev/fd/N``."""
    read_end, write_end = os.pipe()
    # A JSON string is valid YAML and escapes every special character; one
    # short line fits the pipe buffer, so this write cannot block.
    os.write(write_end, f"password: {json.dumps(password)}\n".encode())
    os.close(write_end)
    return read_end


class _Secret:
    """Hands the password to the tool through ``--config=/dev/fd/N``."""

    def __init__(self, password: str | None) -> None:
        self.password = password
        self.fd: int | None = None

    def command(self, argv: Sequence[str] | str) -> tuple[Sequence[str] | str, tuple[int, ...]]:
        if not self.password or isinstance(argv, str):
            return argv, ()
        self.fd = _secret_pipe(self.password)
        return [*argv, f"--config=/dev/fd/{self.fd}"], (self.fd,)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class MongoStream(ProcessStream):
    def __init__(self, name: str, argv: list[str], password: str | None, **kwargs: Any) -> None:
        super().__init__(name, argv, **kwargs)
        self.secret = _Secret(password)

    def command(self) -> tuple[Sequence[str] | str, tuple[int, ...]]:
        return self.secret.command(self.argv)

    def spawned(self) -> None:
        self.secret.close()


class MongoRestore(ProcessRestore):
    def __init__(self, argv: list[str], password: str | None) -> None:
        super().__init__(argv, what="mongorestore")
        self.secret = _Secret(password)

    def command(self) -> tuple[Sequence[str] | str, tuple[int, ...]]:
        return self.secret.command(self.argv)

    def spawned(self) -> None:
        self.secret.close()


class MongodbDump:
    """``mongodump --archive`` of the server or of each named database."""

    name: ClassVar[str] = "mongodb"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "databases": {
                "description": "Databases to dump; `all` means the whole server in one archive.",
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "default": ["all"],
            },
            "host": {"description": "Server host.", "type": "string", "default": "127.0.0.1"},
            "port": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "default": 27017,
                "description": "Port.",
            },
            "username": {"description": "User to authenticate as.", "type": "string"},
            "password": {
                "description": "Password (through a pipe, never on the command line).",
                "type": "string",
            },
            "authentication_database": {"description": "Database holding the user.", "type": "string"},
            "options": {**_EXTRA, "description": "Extra mongodump options, e.g. `--gzip` (hurts dedup)."},
            "restore_options": {**_EXTRA, "description": "Extra mongorestore options."},
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def _opt(self, key: str) -> Any:
        value = self.options.get(key)
        return self.options_schema["properties"][key].get("default") if value is None else value

    def _connection(self, host: Any, port: Any, username: Any) -> list[str]:
        args = [f"--host={host}", f"--port={port}"]
        if username:
            args.append(f"--username={username}")
            if self.options.get("authentication_database"):
                args.append(f"--authenticationDatabase={self.options['authentication_database']}")
        return args

    def dumps(self) -> Iterator[DumpStream]:
        names = list(dict.fromkeys(str(db) for db in self._opt("databases")))
        connection = self._connection(self._opt("host"), self._opt("port"), self.options.get("username"))
        base = {
            "tool": "mongodump",
            "format": "archive",
            "host": self._opt("host"),
            "port": self._opt("port"),
            "username": self.options.get("username"),
        }
        targets: list[str | None] = [None] if "all" in names else list(names)
        for database in targets:
            argv = ["mongodump", "--archive", *connection, *_words(self.options.get("options"))]
            if database is not None:
                argv.append(f"--db={database}")
            yield MongoStream(
                f"mongodb/{(database or 'all').replace('/', '%2F')}.archive",
                argv,
                self.options.get("password"),
                metadata={**base, "database": database},
                what=f"mongodump of {database or 'every database'}",
            )

    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None:
        connection = self._connection(
            overrides.get("host", record.get("host") or self._opt("host")),
            overrides.get("port", record.get("port") or self._opt("port")),
            overrides.get("username", record.get("username")),
        )
        argv = ["mongorestore", "--archive", "--drop", *connection]
        recorded = record.get("database")
        if "database" in overrides:
            if not recorded:
                raise VgerError("--database needs a dump of one database, not of the whole server")
            argv += [f"--nsFrom={recorded}.*", f"--nsTo={overrides['database']}.*"]
        argv += _words(self.options.get("restore_options"))
        return MongoRestore(argv, self.options.get("password"))


@hookimpl
def vger_register_dump_sources() -> list[type[Any]]:
    return [MongodbDump]
