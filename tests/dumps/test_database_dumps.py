"""Database dumps through the real CLI, against the real servers of this machine.

Each test creates uniquely named databases (so it can share the servers with
anything else running), backs them up with ``vger backup``, drops them,
brings them back with ``vger restore-dump`` and compares table contents.
Tests skip when a server does not answer.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Vger
from e2e.helpers import json_out

PG = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
MARIADB = [
    shutil.which("mariadb") or "mysql",
    "--host=127.0.0.1",
    "--port=3306",
    "--user=root",
    "--batch",
    "--skip-column-names",
]


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def psql(sql: str, database: str = "postgres") -> str:
    return _run([*PG, "-d", database, "-c", sql])


def mariadb(sql: str) -> str:
    return _run([*MARIADB, f"--execute={sql}"])


def _answers(check: Any) -> bool:
    try:
        check()
    except (AssertionError, OSError):
        return False
    return True


needs_postgres = pytest.mark.skipif(
    not (shutil.which("psql") and _answers(lambda: psql("SELECT 1"))),
    reason="no PostgreSQL on 127.0.0.1:5432",
)
needs_mariadb = pytest.mark.skipif(
    not (shutil.which(MARIADB[0]) and _answers(lambda: mariadb("SELECT 1"))),
    reason="no MariaDB on 127.0.0.1:3306",
)


def _config(vger: Vger, dumps: list[dict[str, Any]]) -> None:
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [{"label": "db", "dumps": dumps}],
        }
    )
    vger.run("init")


def _dump_names(vger: Vger) -> list[str]:
    return [d["name"] for d in json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json"))]


# -- PostgreSQL ---------------------------------------------------------------

PG_SCHEMA = """
CREATE TABLE customer (id serial PRIMARY KEY, name text NOT NULL, joined date);
CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customer(id), total numeric(10,2), note text);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 1000;
INSERT INTO customer (name, joined) SELECT 'customer ' || g, date '2020-01-01' + g FROM generate_series(1, 500) g;
INSERT INTO orders (customer, total, note)
  SELECT 1 + g % 500, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'o''rder; ' || g END FROM generate_series(1, 5000) g;
"""


def pg_contents(database: str) -> str:
    return psql(
        "SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) FROM customer c;"
        "SELECT md5(string_agg(o::text, '|' ORDER BY o.id)) FROM orders o;"
        "SELECT count(*) FROM big_orders;",
        database,
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = f"vgt_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    psql(PG_SCHEMA, name)
    yield name
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_databases() -> set[str]:
    return set(psql("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate").split())


@needs_postgres
def test_postgresql_backup_drop_restore(vger: Vger, pg_database: str) -> None:
    expected = pg_contents(pg_database)
    _config(
        vger,
        [
            {
                "type": "postgresql",
                "databases": [pg_database],
                "host": "127.0.0.1",
                "port": 5432,
                "username": "postgres",
            }
        ],
    )
    vger.run("backup")
    (dump,) = json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json"))
    assert dump["name"] == f"postgresql/{pg_database}.dump"
    assert dump["path"] == f"vger-dumps/db/postgresql/{pg_database}.dump"
    assert {k: dump["record"][k] for k in ("tool", "format", "database", "host", "port")} == {
        "tool": "pg_dump",
        "format": "custom",
        "database": pg_database,
        "host": "127.0.0.1",
        "port": 5432,
    }
    psql(f"DROP DATABASE {pg_database}")
    # The command line wins over the record; --dry-run only prints.
    (step,) = json_out(
        vger.run(
            "restore-dump",
            "--snapshot",
            "latest",
            "--dry-run",
            "--port",
            "5433",
            "--username",
            "someone",
            "--json",
        )
    )["dumps"]
    assert step["status"] == "planned" and step["name"] == f"postgresql/{pg_database}.dump"
    assert "pg_restore" in step["command"] and "--port=5433 --username=someone" in step["command"]
    assert pg_database not in pg_databases()
    # A restore that fails says why and exits 1.
    failed = vger.run("restore-dump", "--snapshot", "latest", "--port", "1", check=False)
    assert failed.returncode == 1
    assert "pg_restore exited with status 1" in failed.stderr and "port 1 failed" in failed.stderr
    vger.run("restore-dump", "--snapshot", "latest")
    assert pg_contents(pg_database) == expected


@needs_postgres
def test_postgresql_all_dumps_every_database_and_the_globals(vger: Vger, pg_database: str) -> None:
    expected = pg_contents(pg_database)
    before = pg_databases()
    _config(vger, [{"type": "postgresql", "databases": ["all"], "host": "127.0.0.1", "username": "postgres"}])
    vger.run("backup")
    after = pg_databases()
    names = _dump_names(vger)
    assert names[0] == "postgresql/globals.sql"
    assert {f"postgresql/{db}.dump" for db in before & after} <= set(names)
    assert f"postgresql/{pg_database}.dump" in names
    # The whole server goes back with one command; here only print it (other
    # databases on this server are not ours to replace).
    dry = vger.run("restore-dump", "--snapshot", "latest", "--dry-run").stdout
    assert "postgresql/globals.sql: psql" in dry and f"postgresql/{pg_database}.dump: pg_restore" in dry
    psql(f"DROP DATABASE {pg_database}")
    vger.run(
        "restore-dump", "--snapshot", "latest", "postgresql/globals.sql", f"postgresql/{pg_database}.dump"
    )
    assert pg_contents(pg_database) == expected


# -- MariaDB ------------------------------------------------------------------

MARIADB_SCHEMA = """
CREATE TABLE customer (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80) NOT NULL, joined DATE) ENGINE=InnoDB;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, total DECIMAL(10,2), note TEXT,
  FOREIGN KEY (customer) REFERENCES customer(id)) ENGINE=InnoDB;
INSERT INTO customer (name, joined) SELECT CONCAT('customer ', seq), DATE_ADD('2020-01-01', INTERVAL seq DAY) FROM seq_1_to_500;
INSERT INTO orders (customer, total, note)
  SELECT 1 + seq % 500, seq * 1.25, IF(seq % 7 = 0, NULL, CONCAT('o''rder; `', seq)) FROM seq_1_to_5000;
"""


def mariadb_contents(database: str) -> str:
    return mariadb(
        f"USE {database};"
        "SELECT MD5(GROUP_CONCAT(CONCAT_WS(',', id, name, joined) ORDER BY id SEPARATOR '|')) FROM customer;"
        "SELECT MD5(GROUP_CONCAT(CONCAT_WS(',', id, customer, total, IFNULL(note, 'NULL')) ORDER BY id SEPARATOR '|'))"
        " FROM orders;"
    )


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    name = f"vgt_{uuid.uuid4().hex[:10]}"
    mariadb(f"CREATE DATABASE {name}; USE {name};" + MARIADB_SCHEMA)
    yield name
    mariadb(f"DROP DATABASE IF EXISTS {name}")


@needs_mariadb
def test_mariadb_backup_drop_restore(vger: Vger, mariadb_database: str) -> None:
    expected = mariadb_contents(mariadb_database)
    _config(vger, [{"type": "mariadb", "databases": [mariadb_database], "username": "root"}])
    vger.run("backup")
    (dump,) = json_out(vger.run("list", "--snapshot", "latest", "--dumps", "--json"))
    assert dump["name"] == f"mariadb/{mariadb_database}.sql"
    assert dump["record"]["host"] == "127.0.0.1" and dump["record"]["port"] == 3306
    mariadb(f"DROP DATABASE {mariadb_database}")
    vger.run("restore-dump", "--snapshot", "latest")
    assert mariadb_contents(mariadb_database) == expected


@needs_mariadb
def test_mysql_type_with_all_dumps_every_user_database(vger: Vger, mariadb_database: str) -> None:
    expected = mariadb_contents(mariadb_database)
    _config(vger, [{"type": "mysql", "databases": ["all"], "username": "root"}])
    vger.run("backup")
    names = _dump_names(vger)
    assert f"mysql/{mariadb_database}.sql" in names
    assert "mysql/test.sql" in names
    assert not {"mysql/mysql.sql", "mysql/information_schema.sql", "mysql/performance_schema.sql"} & set(
        names
    )
    mariadb(f"DROP DATABASE {mariadb_database}")
    vger.run("restore-dump", "--snapshot", "latest", f"mysql/{mariadb_database}.sql")
    assert mariadb_contents(mariadb_database) == expected


# -- SQLite ---------------------------------------------------------------------


def test_sqlite_live_wal_database_round_trip(vger: Vger) -> None:
    path = vger.tmp / "app" / "app.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"note {i} " * 30) for i in range(5000)])
    conn.execute("COMMIT")
    expected = conn.execute("SELECT * FROM notes ORDER BY id").fetchall()
    _config(vger, [{"type": "sqlite", "path": str(path)}])
    try:
        vger.run("backup")  # while our connection holds the database open, rows still in the WAL
    finally:
        conn.close()
    assert _dump_names(vger) == ["sqlite/app.db"]
    for leftover in path.parent.iterdir():
        leftover.unlink()
    vger.run("restore-dump", "--snapshot", "latest")
    restored = sqlite3.connect(path)
    assert restored.execute("SELECT * FROM notes ORDER BY id").fetchall() == expected
    restored.close()
    # `vger restore` gives the same image back as a plain file.
    vger.run("restore", "--snapshot", "latest", "--dest", str(vger.tmp / "out"))
    plain = sqlite3.connect(vger.tmp / "out" / "vger-dumps" / "db" / "sqlite" / "app.db")
    assert plain.execute("SELECT count(*) FROM notes").fetchone()[0] == 5000
    plain.close()


def test_restore_dump_names_what_it_cannot_find(vger: Vger) -> None:
    db = vger.tmp / "x.db"
    sqlite3.connect(db).execute("CREATE TABLE t (a)").connection.close()
    _config(vger, [{"type": "sqlite", "path": str(db)}])
    vger.run("backup")
    proc = vger.run("restore-dump", "--snapshot", "latest", "sqlite/nope.db", check=False)
    assert proc.returncode == 1
    assert "no dump named sqlite/nope.db; its dumps: sqlite/x.db" in proc.stderr
    assert "Traceback" not in proc.stderr
