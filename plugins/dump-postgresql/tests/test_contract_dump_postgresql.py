"""The PostgreSQL plugin under the dump contract, against a real server.

Needs a server the current user may create databases on; set PGHOST, PGPORT
and PGUSER as for psql (defaults here: 127.0.0.1:5432, user postgres). The
tests skip when none answers. Every test works in databases of its own,
dropped at teardown, so they can share a server with anything else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from vger_dump_postgresql import PostgresqlDump

from vger.testing import DumpSourceContract
from vger.testing.dump import read_stream

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = int(os.environ.get("PGPORT", "5432"))
USER = os.environ.get("PGUSER", "postgres")


def psql(sql: str, database: str = "postgres") -> str:
    proc = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(PORT),
            "-U",
            USER,
            "-d",
            database,
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def server_answers() -> bool:
    if shutil.which("psql") is None:
        return False
    try:
        psql("SELECT 1")
    except AssertionError:
        return False
    return True


pytestmark = pytest.mark.skipif(not server_answers(), reason="no PostgreSQL server to dump")

SCHEMA = """
CREATE TABLE customer (id serial PRIMARY KEY, name text NOT NULL, joined date);
CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customer(id), total numeric(10,2), note text);
INSERT INTO customer (name, joined) SELECT 'customer ' || g, date '2020-01-01' + g FROM generate_series(1, 300) g;
INSERT INTO orders (customer, total, note)
  SELECT 1 + g % 300, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'o''rder; ' || g END FROM generate_series(1, 2000) g;
"""


def contents(database: str) -> str:
    return psql(
        "SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) FROM customer c;"
        "SELECT md5(string_agg(o::text, '|' ORDER BY o.id)) FROM orders o;",
        database,
    )


def fresh_database() -> str:
    name = f"vgt_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    psql(SCHEMA, name)
    return name


def drop(*names: str) -> None:
    for name in names:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="class")
def databases() -> Iterator[tuple[str, str, str]]:
    """One database with rows and an empty one to restore into, per test class (creating them is slow)."""
    database = fresh_database()
    target = database + "_r"
    psql(f"CREATE DATABASE {target}")  # pg_restore into another database needs it to exist
    yield database, target, contents(database)
    drop(database, target)


class TestPostgresqlDumpContract(DumpSourceContract):
    dump_class = PostgresqlDump
    format = "custom"

    @pytest.fixture
    def dump_options(self, databases: tuple[str, str, str]) -> Mapping[str, Any]:
        self.database, self.target, self.expected = databases
        options = {"databases": [self.database], "host": HOST, "port": PORT, "username": USER}
        return {**options, "format": self.format}

    @pytest.fixture
    def failing_options(self) -> Mapping[str, Any]:
        return {"databases": ["vgt_does_not_exist"], "host": HOST, "port": PORT, "username": USER}

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"database": self.target}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert dumped.startswith(b"PGDMP")  # custom format
        assert contents(overrides["database"]) == self.expected


class TestPlainFormatContract(TestPostgresqlDumpContract):
    format = "plain"

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert b"CREATE TABLE" in dumped
        assert contents(overrides["database"]) == self.expected


def test_the_password_goes_in_the_environment_never_in_argv() -> None:
    source = PostgresqlDump(
        {"type": "postgresql", "databases": ["app"], "password": "s3cret!", "ssl_mode": "require"}
    )
    stream = next(source.dumps())
    assert "s3cret!" not in " ".join(stream.argv)  # type: ignore[attr-defined]
    assert stream.env == {"PGCONNECT_TIMEOUT": "15", "PGPASSWORD": "s3cret!", "PGSSLMODE": "require"}  # type: ignore[attr-defined]
    restorer = source.restorer(dict(stream.metadata), {})
    assert restorer is not None and "s3cret!" not in restorer.describe()


def test_a_database_name_that_looks_like_a_connection_string_is_only_a_name() -> None:
    # libpq reads a dbname holding "=" as connection parameters; `all` dumps
    # whatever names the server has, so a hostile name must not redirect us.
    name = f"vgt_{uuid.uuid4().hex[:6]} host=nowhere.invalid o'k\\"
    identifier = '"' + name.replace('"', '""') + '"'
    conninfo = "dbname='" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
    psql(f"CREATE DATABASE {identifier}")
    try:
        psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept');", database=conninfo)
        source = PostgresqlDump(
            {"type": "postgresql", "databases": [name], "host": HOST, "port": PORT, "username": USER}
        )
        assert b"kept" in read_stream(next(source.dumps()))
    finally:
        psql(f"DROP DATABASE IF EXISTS {identifier} WITH (FORCE)")
