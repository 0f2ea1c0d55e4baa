"""MariaDB / MySQL dumps with ``mariadb-dump`` (or ``mysqldump``), one file per database.

``--single-transaction`` gives a consistent dump of InnoDB tables without
locking them. Host and port are always passed explicitly (the command line wins over
option files), so a ``[client]`` section in someone's ``my.cnf`` cannot
silently point the dump at another server; the rest of the option files
(credentials, TLS) still applies. The password travels in ``MYSQL_PWD``, never in argv.

A dump holds no ``CREATE DATABASE``/``USE``: ``restore-dump`` sends those
first, so the same dump restores into the original database or any other.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from typing import IO, Any, ClassVar

from vger import hookimpl
from vger.errors import VgerError
from vger.interfaces import DumpRestore, DumpStream
from vger.process import ProcessRestore, ProcessStream

#: Schemas of the server itself: never part of `all` (their contents belong to one server build).
SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema", "sys", "mysql"})

_EXTRA = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _PrologueRestore(ProcessRestore):
    """Feeds ``CREATE DATABASE IF NOT EXISTS``/``USE`` before the dump, so any target works."""

    def __init__(self, argv: list[str], database: str, env: Mapping[str, str]) -> None:
        super().__init__(argv, env=env, what=os.path.basename(argv[0]))
        self.database = database
        self.prologue = f"CREATE DATABASE IF NOT EXISTS {_quoted(database)};\nUSE {_quoted(database)};\n"

    def describe(self) -> str:
        return f"{super().describe()}  # reads: {' '.join(self.prologue.split())} then the dump"

    def run(self, data: IO[bytes]) -> None:
        super().run(io.BufferedReader(_Chained(self.prologue.encode(), data)))


class _Chained(io.RawIOBase):
    """``head`` then everything ``rest`` holds, as one readable stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if len(self._head):
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class MariadbDump:
    """``mariadb-dump --single-transaction`` per database."""

    name: ClassVar[str] = "mariadb"
    #: Client programs in order of preference (the first one on PATH runs).
    dump_tools: ClassVar[tuple[str, ...]] = ("mariadb-dump", "mysqldump")
    client_tools: ClassVar[tuple[str, ...]] = ("mariadb", "mysql")
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "databases": {
                "description": "Databases to dump; `all` means every database except the server's own "
                "(information_schema, performance_schema, sys, mysql), one dump each.",
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "default": ["all"],
            },
            "host": {"description": "Server host (always passed).", "type": "string", "default": "127.0.0.1"},
            "port": {
                "description": "Server port (always passed).",
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "default": 3306,
            },
            "username": {"description": "User to connect as.", "type": "string"},
            "password": {
                "description": "Password, passed in MYSQL_PWD (never on the command line).",
                "type": "string",
            },
            "options": {**_EXTRA, "description": "Extra dump options, e.g. `--skip-lock-tables`."},
            "restore_options": {**_EXTRA, "description": "Extra client options at restore-dump."},
            "dump_command": {
                "type": "string",
                "description": "Dump program (default: mariadb-dump, else mysqldump).",
            },
            "client_command": {
                "type": "string",
                "description": "Client program (default: mariadb, else mysql).",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def _opt(self, key: str) -> Any:
        value = self.options.get(key)
        return self.options_schema["properties"][key].get("default") if value is None else value

    def _tool(self, key: str, candidates: tuple[str, ...]) -> str:
        configured = self.options.get(key)
        if configured:
            return str(configured)
        import shutil  # here: with bz2 and lzma, 1.5 ms of every command's start-up

        for candidate in candidates:
            if shutil.which(candidate):
                return candidate
        return candidates[0]  # not installed: running it reports that

    def _env(self) -> dict[str, str]:
        return {"MYSQL_PWD": str(self.options["password"])} if self.options.get("password") else {}

    def _connection(self, host: Any, port: Any, username: Any) -> list[str]:
        args = [f"--host={host}", f"--port={port}"]
        if username:
            args.append(f"--user={username}")
        return args

    def _own_connection(self) -> list[str]:
        return self._connection(self._opt("host"), self._opt("port"), self.options.get("username"))

    def _all_databases(self) -> list[str]:
        argv = [
            self._tool("client_command", self.client_tools),
            *self._own_connection(),
            "--batch",
            "--skip-column-names",
            "--execute=SHOW DATABASES",
        ]
        try:
            proc = subprocess.run(
                argv, capture_output=True, env={**os.environ, **self._env()}, timeout=60, check=False
            )
        except FileNotFoundError:
            raise VgerError(f"{self.name}: {argv[0]} is not installed (not found on PATH)") from None
        except subprocess.TimeoutExpired:
            raise VgerError(f"{self.name}: listing databases timed out") from None
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.decode("utf-8", "replace").split())[-1000:]
            raise VgerError(f"{self.name}: cannot list databases: {tail}")
        names = proc.stdout.decode().splitlines()
        return [name for name in names if name and name.lower() not in SYSTEM_SCHEMAS]

    def dumps(self) -> Iterator[DumpStream]:
        names = list(dict.fromkeys(str(db) for db in self._opt("databases")))
        if "all" in names:
            names = list(dict.fromkeys([db for db in names if db != "all"] + self._all_databases()))
        tool = self._tool("dump_command", self.dump_tools)
        base = {
            "tool": os.path.basename(tool),
            "format": "sql",
            "host": self._opt("host"),
            "port": self._opt("port"),
            "username": self.options.get("username"),
        }
        for database in names:
            argv = [
                tool,
                *self._own_connection(),
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                *_words(self.options.get("options")),
                "--",
                database,
            ]
            yield ProcessStream(
                f"{self.name}/{database.replace('/', '%2F')}.sql",
                argv,
                env=self._env(),
                metadata={**base, "database": database},
                what=f"{base['tool']} of database {database!r}",
            )

    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None:
        target = overrides.get("database", record.get("database"))
        if not target:
            raise VgerError(f"dump {record.get('name')!r} records no database; give --database")
        connection = self._connection(
            overrides.get("host", record.get("host") or self._opt("host")),
            overrides.get("port", record.get("port") or self._opt("port")),
            overrides.get("username", record.get("username")),
        )
        argv = [
            self._tool("client_command", self.client_tools),
            *connection,
            *_words(self.options.get("restore_options")),
        ]
        return _PrologueRestore(argv, str(target), self._env())


class MysqlDump(MariadbDump):
    """The same plugin under the name MySQL users look for; prefers ``mysqldump``/``mysql``."""

    name: ClassVar[str] = "mysql"
    dump_tools: ClassVar[tuple[str, ...]] = ("mysqldump", "mariadb-dump")
    client_tools: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")


@hookimpl
def vger_register_dump_sources() -> list[type[Any]]:
    return [MariadbDump, MysqlDump]
