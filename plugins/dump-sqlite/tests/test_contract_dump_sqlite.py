"""The SQLite plugin under the dump contract, plus the case that makes it hard: a live WAL database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from vger_dump_sqlite import SqliteDump

from vger.errors import VgerError
from vger.testing import DumpSourceContract
from vger.testing.dump import read_stream, record_of

ROWS = [(i, f"row {i} " * 20) for i in range(3000)]


def make_database(path: Path, wal: bool) -> sqlite3.Connection:
    """A database with ROWS whose last commit is (for WAL) still only in the WAL file."""
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?)", ROWS)
    conn.execute("COMMIT")
    conn.execute("PRAGMA user_version = 7")
    return conn


def rows(path: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


class TestSqliteDumpContract(DumpSourceContract):
    dump_class = SqliteDump

    @pytest.fixture(params=["wal", "rollback"])
    def dump_options(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mapping[str, Any]]:
        # The connection stays open during the test: in WAL mode the rows are
        # then still in the -wal file, which a plain copy of app.db would miss.
        conn = make_database(tmp_path / "app.db", wal=request.param == "wal")
        self.tmp = tmp_path
        yield {"path": str(tmp_path / "app.db")}
        conn.close()

    @pytest.fixture
    def failing_options(self, tmp_path: Path) -> Mapping[str, Any]:
        (tmp_path / "not.db").write_bytes(b"this is not a database" * 1000)
        return {"path": str(tmp_path / "not.db")}

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"database": str(self.tmp / "restored" / "copy.db")}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert rows(overrides["database"]) == ROWS
        assert not list((self.tmp / "restored").glob("*.vger-restore-*"))


def test_wal_rows_not_yet_checkpointed_are_in_the_dump(tmp_path: Path) -> None:
    conn = make_database(tmp_path / "live.db", wal=True)
    try:
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        stream = next(SqliteDump({"type": "sqlite", "path": str(tmp_path / "live.db")}).dumps())
        data = read_stream(stream)
        conn.execute("INSERT INTO t VALUES (999999, 'written after the dump')")
    finally:
        conn.close()
    (tmp_path / "copy.db").write_bytes(data)
    assert rows(str(tmp_path / "copy.db")) == ROWS
    assert record_of(SqliteDump({}), stream)["journal_mode"] == "wal"


def test_restore_over_an_existing_database_replaces_its_content(tmp_path: Path) -> None:
    make_database(tmp_path / "app.db", wal=False).close()
    source = SqliteDump({"type": "sqlite", "path": str(tmp_path / "app.db")})
    stream = next(source.dumps())
    data = read_stream(stream)
    conn = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    conn.execute("DELETE FROM t WHERE id < 100")
    conn.close()
    import io

    source.restorer(record_of(source, stream), {}).run(io.BytesIO(data))  # type: ignore[union-attr]
    assert rows(str(tmp_path / "app.db")) == ROWS


def test_a_writer_holding_its_lock_past_the_busy_timeout_fails_the_dump(tmp_path: Path) -> None:
    conn = make_database(tmp_path / "busy.db", wal=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        stream = next(
            SqliteDump({"type": "sqlite", "path": str(tmp_path / "busy.db"), "busy_timeout": 0.2}).dumps()
        )
        with pytest.raises(VgerError, match="locked"):
            read_stream(stream)
    finally:
        conn.execute("ROLLBACK")
        conn.close()
