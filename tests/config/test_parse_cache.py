"""Configs parsed before are read from the cache folder without PyYAML, and never with a secret."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Vger


def _imports_yaml(vger: Vger, *args: str) -> bool:
    proc = vger.run(*args, check=False, env={"PYTHONPROFILEIMPORTTIME": "1"})
    return any(
        line.rstrip().endswith("| yaml") or line.rstrip().endswith(" yaml")
        for line in proc.stderr.splitlines()
    )


def _cached(vger: Vger) -> list[dict]:
    path = Path(vger.env["VGER_CACHE_DIR"]) / "parsed-configs"
    return list(json.loads(path.read_text()).values()) if path.exists() else []


# `vger config --check` prints the config as YAML: `list` is a command that does not.
def test_a_parsed_config_is_read_again_without_pyyaml_until_it_changes(vger: Vger) -> None:
    assert _imports_yaml(vger, "init")  # the first read parses
    assert not _imports_yaml(vger, "list")
    vger.config.write_text(vger.config.read_text() + "compression: {algorithm: zstd}\n")
    assert _imports_yaml(vger, "list")  # edited: parsed again
    assert not _imports_yaml(vger, "list")
    effective = vger.run("config", "--check").stdout  # and what was parsed is what is used
    assert "zstd" in effective
    assert any(doc.get("compression") == {"algorithm": "zstd"} for doc in _cached(vger))


def test_errors_from_a_cached_parse_still_cite_the_line(vger: Vger) -> None:
    vger.config.write_text(vger.config.read_text() + "\n\ncompression: {algorithm: lz5}\n")
    first = vger.run("config", "--check", check=False)
    second = vger.run("config", "--check", check=False)
    assert first.returncode == second.returncode != 0
    assert second.stderr == first.stderr
    line = len(vger.config.read_text().splitlines())
    assert f":{line}:" in second.stderr, second.stderr


def test_a_config_holding_a_secret_is_never_cached(vger: Vger) -> None:
    vger.config.write_text(
        vger.config.read_text() + "encryption: {passphrase: correct horse battery staple}\n"
    )
    vger.run("init")
    for _ in range(2):
        assert _imports_yaml(vger, "list")
    cache = Path(vger.env["VGER_CACHE_DIR"])
    assert not any(b"correct horse" in p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_a_damaged_cache_file_only_costs_a_parse(vger: Vger) -> None:
    vger.run("init")
    (Path(vger.env["VGER_CACHE_DIR"]) / "parsed-configs").write_bytes(b"\x00{not json")
    assert _imports_yaml(vger, "list")
    assert not _imports_yaml(vger, "list")
