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


class TestPostgresqlDumpContract(DumpSourceContract):
    dump_class = PostgresqlDump

    @pytest.fixture
    def dump_options(self) -> Iterator[Mapping[str, Any]]:
        self.database = fresh_database()
        self.expected = contents(self.database)
        self.target = self.database + "_r"
        psql(f"CREATE DATABASE {self.target}")  # pg_restore into another database needs it to exist
        yield {"databases": [self.database], "host": HOST, "port": PORT, "username": USER}
        drop(self.database, self.target)

    @pytest.fixture
    def failing_options(self) -> Mapping[str, Any]:
        return {"databases": ["vgt_does_not_exist"], "host": HOST, "port": PORT, "username": USER}

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"database": self.target}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert dumped.startswith(b"PGDMP")  # custom format
        assert contents(overrides["database"]) == self.expected


class TestPlainFormatContract(TestPostgresqlDumpContract):
    @pytest.fixture
    def dump_options(self) -> Iterator[Mapping[str, Any]]:
        self.database = fresh_database()
        self.expected = contents(self.database)
        self.target = self.database + "_r"
        psql(f"CREATE DATABASE {self.target}")
        yield {"databases": [self.database], "host": HOST, "port": PORT, "username": USER, "format": "plain"}
        drop(self.database, self.target)

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
