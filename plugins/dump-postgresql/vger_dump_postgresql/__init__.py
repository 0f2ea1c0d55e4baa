"""PostgreSQL dumps with ``pg_dump`` (one per database) and ``pg_dumpall --globals-only``.

Each database is one file in the snapshot, ``postgresql/<database>.dump``
(custom format, the default), ``.sql`` (plain) or ``.tar``; ``databases:
[all]`` dumps every database that accepts connections plus the roles and
tablespaces as ``postgresql/globals.sql``. The password travels in
``PGPASSWORD``, never in argv (every local user can read argv).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.errors import VgerError
from vger.interfaces import DumpRestore, DumpStream
from vger.process import ProcessRestore, ProcessStream

EXTENSIONS = {"custom": "dump", "plain": "sql", "tar": "tar"}
GLOBALS = "globals.sql"
_SSL_ENV = {
    "ssl_mode": "PGSSLMODE",
    "ssl_cert": "PGSSLCERT",
    "ssl_key": "PGSSLKEY",
    "ssl_root_cert": "PGSSLROOTCERT",
}
#: Names libpq can only read as a database name (no "=", no "postgresql://").
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.$-]*")
_LIST_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


_EXTRA = {
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
}


class PostgresqlDump:
    """``pg_dump`` per database, ``pg_dumpall --globals-only`` for ``all``."""

    name: ClassVar[str] = "postgresql"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "databases": {
                "description": "Databases to dump; `all` means every database (one dump each) plus the globals.",
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "default": ["all"],
            },
            "host": {
                "description": "Server host or socket folder (default: the local socket).",
                "type": "string",
            },
            "port": {"description": "Server port.", "type": "integer", "minimum": 1, "maximum": 65535},
            "username": {"description": "Role to connect as.", "type": "string"},
            "password": {
                "description": "Password, passed in PGPASSWORD (never on the command line).",
                "type": "string",
            },
            "format": {
                "description": "pg_dump output format (directory cannot stream).",
                "enum": ["custom", "plain", "tar"],
                "default": "custom",
            },
            "ssl_mode": {
                "description": "libpq sslmode.",
                "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
            },
            "ssl_cert": {"description": "Client certificate file (PGSSLCERT).", "type": "string"},
            "ssl_key": {"description": "Client key file (PGSSLKEY).", "type": "string"},
            "ssl_root_cert": {"description": "CA certificate file (PGSSLROOTCERT).", "type": "string"},
            "maintenance_database": {
                "description": "Database to connect to for listing databases and for restores that recreate one.",
                "type": "string",
                "default": "postgres",
            },
            "options": {**_EXTRA, "description": "Extra pg_dump options, e.g. `--exclude-table=logs`."},
            "restore_options": {
                **_EXTRA,
                "description": "Extra pg_restore (or psql) options at restore-dump.",
            },
            "pg_dump_command": {"type": "string", "default": "pg_dump", "description": "pg_dump to run."},
            "pg_dumpall_command": {
                "type": "string",
                "default": "pg_dumpall",
                "description": "pg_dumpall to run.",
            },
            "pg_restore_command": {
                "type": "string",
                "default": "pg_restore",
                "description": "pg_restore to run.",
            },
            "psql_command": {"type": "string", "default": "psql", "description": "psql to run."},
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    # -- connection -------------------------------------------------------------
    def _opt(self, key: str, default: Any = None) -> Any:
        value = self.options.get(key)
        if value is None:
            value = self.options_schema["properties"][key].get("default", default)
        return value

    def _env(self) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": "15"}
        if self.options.get("password"):
            env["PGPASSWORD"] = str(self.options["password"])
        for key, variable in _SSL_ENV.items():
            if self.options.get(key):
                env[variable] = str(self.options[key])
        return env

    @staticmethod
    def _connection(host: Any, port: Any, username: Any) -> list[str]:
        args = []
        if host:
            args.append(f"--host={host}")
        if port:
            args.append(f"--port={port}")
        if username:
            args.append(f"--username={username}")
        return args

    def _own_connection(self) -> list[str]:
        return self._connection(
            self.options.get("host"), self.options.get("port"), self.options.get("username")
        )

    def _all_databases(self) -> list[str]:
        argv = [
            self._opt("psql_command"),
            "-X",
            "--no-password",
            "--no-align",
            "--tuples-only",
            *self._own_connection(),
            _dbname(self._opt("maintenance_database")),
            f"--command={_LIST_DATABASES}",
        ]
        try:
            proc = subprocess.run(
                argv, capture_output=True, env=_with_env(self._env()), timeout=60, check=False
            )
        except FileNotFoundError:
            raise VgerError(f"postgresql: {argv[0]} is not installed (not found on PATH)") from None
        except subprocess.TimeoutExpired:
            raise VgerError("postgresql: listing databases timed out") from None
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.decode("utf-8", "replace").split())[-1000:]
            raise VgerError(f"postgresql: cannot list databases: {tail}")
        return [line for line in proc.stdout.decode().splitlines() if line]

    # -- backup -----------------------------------------------------------------
    def dumps(self) -> Iterator[DumpStream]:
        wanted = [str(db) for db in self._opt("databases")]
        names = list(dict.fromkeys(wanted))
        fmt = str(self._opt("format"))
        base = {
            "host": self.options.get("host"),
            "port": self.options.get("port"),
            "username": self.options.get("username"),
        }
        if "all" in names:
            yield ProcessStream(
                f"postgresql/{GLOBALS}",
                [self._opt("pg_dumpall_command"), "--no-password", "--globals-only", *self._own_connection()],
                env=self._env(),
                metadata={**base, "tool": "pg_dumpall", "format": "plain", "database": None, "globals": True},
                what="pg_dumpall --globals-only",
            )
            names = list(dict.fromkeys([db for db in names if db != "all"] + self._all_databases()))
        for database in names:
            argv = [
                self._opt("pg_dump_command"),
                "--no-password",
                f"--format={fmt}",
                # vger compresses every chunk; pg_dump's own compression would
                # make each day's dump differ throughout and defeat dedup.
                *(["--compress=0"] if fmt == "custom" else []),
                *self._own_connection(),
                *_words(self.options.get("options")),
                _dbname(database),
            ]
            yield ProcessStream(
                f"postgresql/{_file_name(database)}.{EXTENSIONS[fmt]}",
                argv,
                env=self._env(),
                metadata={**base, "tool": "pg_dump", "format": fmt, "database": database},
                what=f"pg_dump of database {database!r}",
            )

    # -- restore ----------------------------------------------------------------
    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None:
        host = overrides.get("host", record.get("host"))
        port = overrides.get("port", record.get("port"))
        username = overrides.get("username", record.get("username"))
        connection = self._connection(host, port, username)
        extra = _words(self.options.get("restore_options"))
        maintenance = str(self._opt("maintenance_database"))
        if record.get("globals"):
            # No ON_ERROR_STOP: roles that exist already ("role postgres already
            # exists") are reported in the log and left as they are.
            argv = [self._opt("psql_command"), "-X", "--no-password", "--quiet", *connection]
            return ProcessRestore([*argv, *extra, _dbname(maintenance)], env=self._env(), what="psql")
        fmt = record.get("format", "custom")
        target = overrides.get("database", record.get("database"))
        if not target:
            raise VgerError(f"dump {record.get('name')!r} records no database; give --database")
        if fmt == "plain":
            argv = [self._opt("psql_command"), "-X", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1"]
            return ProcessRestore([*argv, *connection, *extra, _dbname(target)], env=self._env(), what="psql")
        argv = [self._opt("pg_restore_command"), "--no-password", "--exit-on-error", "--clean", "--if-exists"]
        if "database" in overrides:
            # Into another database: it must exist (createdb NAME); objects are replaced.
            argv.append(_dbname(target))
        else:
            # Into the original one: drop and recreate it, connected to another database.
            if maintenance == target:
                maintenance = "template1"
            argv += ["--create", _dbname(maintenance)]
        return ProcessRestore([*argv, *connection, *extra], env=self._env(), what="pg_restore")


def _dbname(database: Any) -> str:
    """``--dbname`` that libpq cannot read as a connection string.

    libpq takes a dbname holding ``=`` or starting with ``postgresql://`` as a
    whole conninfo: a database named ``host=evil.example`` (``all`` lists
    whatever names the server has) would send the next connection, password
    included, elsewhere. Written as ``dbname='...'`` it is only ever a name.
    """
    name = str(database)
    if _PLAIN_NAME.fullmatch(name):
        return f"--dbname={name}"  # no "=", no "://": libpq takes it as a name (and it reads well)
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"--dbname=dbname='{quoted}'"


def _file_name(database: str) -> str:
    # A database name may hold "/"; it must not make a folder in the snapshot.
    return database.replace("/", "%2F") or "_"


def _with_env(extra: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


@hookimpl
def vger_register_dump_sources() -> list[type[Any]]:
    return [PostgresqlDump]
