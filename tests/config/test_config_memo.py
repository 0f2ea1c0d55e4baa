"""Validation results are remembered across runs, and only successes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Vger


def _imports_jsonschema(vger: Vger, *args: str) -> bool:
    proc = vger.run(*args, check=False, env={"PYTHONPROFILEIMPORTTIME": "1"})
    return any(line.rstrip().endswith("jsonschema") for line in proc.stderr.splitlines())


def test_a_config_that_validated_is_not_validated_again_until_it_changes(vger: Vger) -> None:
    assert _imports_jsonschema(vger, "config", "--check")  # first run: full validation
    assert (Path(vger.env["VGER_CACHE_DIR"]) / "validated").is_file()
    assert not _imports_jsonschema(vger, "config", "--check")  # remembered: jsonschema not even imported
    text = vger.config.read_text()
    vger.config.write_text(text + "compression: {algorithm: lz4}\n")
    assert _imports_jsonschema(vger, "config", "--check")  # edited: validated in full again


def test_an_invalid_config_is_reported_every_time(vger: Vger) -> None:
    vger.run("config", "--check")
    vger.config.write_text(vger.config.read_text() + "compression: {algorithm: lz5}\n")
    for _ in range(2):
        proc = vger.run("config", "--check", check=False)
        assert proc.returncode != 0, proc.stderr
        assert "lz5" in proc.stderr


def test_a_damaged_memo_file_only_costs_a_full_validation(vger: Vger) -> None:
    vger.run("config", "--check")
    memo = Path(vger.env["VGER_CACHE_DIR"]) / "validated"
    memo.write_bytes(b"\xff\xfe garbage \x00" * 10)
    assert _imports_jsonschema(vger, "config", "--check")
    assert not _imports_jsonschema(vger, "config", "--check")


def test_a_config_holding_a_secret_is_never_remembered(vger: Vger) -> None:
    vger.config.write_text(
        vger.config.read_text() + "encryption: {passphrase: correct horse battery staple}\n"
    )
    memo = Path(vger.env["VGER_CACHE_DIR"]) / "validated"
    for _ in range(2):
        assert _imports_jsonschema(vger, "config", "--check")  # validated in full every time
    remembered = memo.read_text().split() if memo.exists() else []
    vger.config.write_text(vger.config.read_text().replace("correct horse battery staple", "x"))
    assert _imports_jsonschema(vger, "config", "--check")
    assert (memo.read_text().split() if memo.exists() else []) == remembered  # only plugin schemas, no config
