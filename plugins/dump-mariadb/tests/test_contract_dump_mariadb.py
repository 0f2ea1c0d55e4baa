"""The MariaDB/MySQL plugin under the dump contract, against a real server.

Needs a server at MYSQL_HOST:MYSQL_PORT (default 127.0.0.1:3306) where
MYSQL_USER (default root, password in MYSQL_PWD if any) may create
databases; the tests skip when none answers. Each test uses databases of its
own, dropped at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from vger_dump_mariadb import MariadbDump, MysqlDump

from vger.testing import DumpSourceContract

HOST = os.environ.get("MYSQL_HOST", "127.0.0.1")
PORT = int(os.environ.get("MYSQL_PORT", "3306"))
USER = os.environ.get("MYSQL_USER", "root")
CLIENT = shutil.which("mariadb") or shutil.which("mysql")


def sql(statements: str, database: str | None = None) -> str:
    assert CLIENT is not None
    argv = [CLIENT, f"--host={HOST}", f"--port={PORT}", f"--user={USER}", "--batch", "--skip-column-names"]
    if database:
        argv.append(f"--database={database}")
    proc = subprocess.run(
        [*argv, f"--execute={statements}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def server_answers() -> bool:
    if CLIENT is None:
        return False
    try:
        sql("SELECT 1")
    except AssertionError:
        return False
    return True


pytestmark = pytest.mark.skipif(not server_answers(), reason="no MariaDB/MySQL server to dump")

SCHEMA = """
CREATE TABLE customer (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80) NOT NULL, joined DATE) ENGINE=InnoDB;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, total DECIMAL(10,2), note TEXT,
  FOREIGN KEY (customer) REFERENCES customer(id)) ENGINE=InnoDB;
INSERT INTO customer (name, joined) SELECT CONCAT('customer ', seq), DATE_ADD('2020-01-01', INTERVAL seq DAY) FROM seq_1_to_300;
INSERT INTO orders (customer, total, note)
  SELECT 1 + seq % 300, seq * 1.25, IF(seq % 7 = 0, NULL, CONCAT('o''rder; `', seq)) FROM seq_1_to_2000;
"""


def contents(database: str) -> str:
    return sql(
        "SELECT MD5(GROUP_CONCAT(CONCAT_WS(',', id, name, joined) ORDER BY id SEPARATOR '|')) FROM customer;"
        "SELECT MD5(GROUP_CONCAT(CONCAT_WS(',', id, customer, total, IFNULL(note, 'NULL')) ORDER BY id SEPARATOR '|')) "
        "FROM orders;",
        database,
    )


def fresh_database() -> str:
    name = f"vgt_{uuid.uuid4().hex[:10]}"
    sql(f"CREATE DATABASE {name}")
    sql(SCHEMA, name)
    return name


def drop(*names: str) -> None:
    for name in names:
        sql(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="class")
def databases() -> Iterator[tuple[str, str, str]]:
    """A database with rows and the name to restore into (the restore creates it), per test class."""
    database = fresh_database()
    yield database, database + "_r", contents(database)
    drop(database, database + "_r")


class TestMariadbDumpContract(DumpSourceContract):
    dump_class: Any = MariadbDump

    @pytest.fixture
    def dump_options(self, databases: tuple[str, str, str]) -> Mapping[str, Any]:
        self.database, self.target, self.expected = databases
        return {"databases": [self.database], "host": HOST, "port": PORT, "username": USER}

    @pytest.fixture
    def failing_options(self) -> Mapping[str, Any]:
        return {"databases": ["vgt_does_not_exist"], "host": HOST, "port": PORT, "username": USER}

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"database": self.target}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert b"CREATE DATABASE" not in dumped and b"USE `" not in dumped  # restorable under any name
        assert contents(overrides["database"]) == self.expected


class TestMysqlAliasContract(TestMariadbDumpContract):
    dump_class = MysqlDump


def test_host_and_port_are_always_explicit_and_the_password_is_not_in_argv() -> None:
    source = MariadbDump({"type": "mariadb", "databases": ["app"], "password": "s3cret!"})
    stream = next(source.dumps())
    argv = stream.argv  # type: ignore[attr-defined]
    assert "--host=127.0.0.1" in argv and "--port=3306" in argv and "--single-transaction" in argv
    assert "s3cret!" not in " ".join(argv)
    assert stream.env == {"MYSQL_PWD": "s3cret!"}  # type: ignore[attr-defined]
