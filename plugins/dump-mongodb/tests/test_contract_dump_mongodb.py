"""The MongoDB plugin under the dump contract, against a scripted stand-in.

MongoDB's tools are not installable where vger is tested, so ``standin/``
provides ``mongodump`` and ``mongorestore`` that speak the same command-line
contract (see its docstring). With the real tools on PATH and a server, the
same suite could run against them by replacing the fixtures.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from vger_dump_mongodb import MongodbDump

from vger.testing import DumpSourceContract

STANDIN = Path(__file__).parent / "standin" / "mongo_standin.py"
PASSWORD = "pa$$ 'word\""


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``mongodump``/``mongorestore`` on PATH, serving ``tmp/data``; returns the data folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mongodump", "mongorestore"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\nMONGO_STANDIN_TOOL={tool} exec {sys.executable} {STANDIN} "$@"\n')
        script.chmod(0o755)
    data = tmp_path / "data"
    for database, collections in {"app": ("users", "orders"), "other": ("things",)}.items():
        for collection in collections:
            (data / database).mkdir(parents=True, exist_ok=True)
            documents = [{"_id": i, "name": f"{collection} {i}"} for i in range(200)]
            (data / database / f"{collection}.json").write_text(json.dumps(documents))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MONGO_STANDIN_DATA", str(data))
    monkeypatch.setenv("MONGO_STANDIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("MONGO_STANDIN_LOG", str(tmp_path / "argv.log"))
    return data


def read_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.json"))}


class TestMongodbDumpContract(DumpSourceContract):
    dump_class = MongodbDump
    secret = PASSWORD

    @pytest.fixture
    def dump_options(self, standin: Path) -> Iterator[Mapping[str, Any]]:
        self.data = standin
        self.expected = read_tree(standin / "app")
        yield {
            "databases": ["app"],
            "username": "backup",
            "password": PASSWORD,
            "authentication_database": "admin",
        }

    @pytest.fixture
    def failing_options(self, standin: Path) -> Mapping[str, Any]:
        return {"databases": ["missing"]}

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"database": "app_restored"}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert read_tree(self.data / "app_restored") == self.expected


def test_all_is_one_archive_of_the_server_and_restores_in_place(standin: Path) -> None:
    import io

    from vger.testing.dump import read_stream, record_of

    before = read_tree(standin)
    source = MongodbDump({"type": "mongodb", "databases": ["all"], "port": 27018})
    (stream,) = list(source.dumps())
    assert stream.name == "mongodb/all.archive"
    data = read_stream(stream)
    (standin / "app" / "users.json").write_text("[]")
    restorer = source.restorer(record_of(source, stream), {})
    assert restorer is not None
    assert restorer.describe() == "mongorestore --archive --drop --host=127.0.0.1 --port=27018"
    restorer.run(io.BytesIO(data))  # type: ignore[arg-type]
    assert read_tree(standin) == before


def test_a_wrong_password_fails_with_the_tools_message(standin: Path) -> None:
    from vger.errors import VgerError
    from vger.testing.dump import read_stream

    source = MongodbDump({"type": "mongodb", "databases": ["app"], "username": "u", "password": "wrong"})
    with pytest.raises(VgerError, match="auth error"):
        read_stream(next(source.dumps()))
    logged = (standin.parent / "argv.log").read_text()
    assert "wrong" not in logged  # argv never held it
