"""The command dump plugin under the dump contract: a shell command's stdout, restored by another."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from vger_dump_command import CommandDump

from vger.testing import DumpSourceContract

CONTENT = "".join(f"line {i}: some dump text\n" for i in range(20000))


class TestCommandDumpContract(DumpSourceContract):
    dump_class = CommandDump

    @pytest.fixture
    def dump_options(self, tmp_path: Path) -> Mapping[str, Any]:
        source = tmp_path / "source.txt"
        source.write_text(CONTENT)
        self.restored = tmp_path / "restored.txt"
        return {
            "name": "dumps/source.txt",
            "command": f"cat '{source}'",
            "restore_command": f"cat > '{self.restored}'",
        }

    @pytest.fixture
    def failing_options(self) -> Mapping[str, Any]:
        return {"name": "half", "command": "echo some output; exit 3"}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        assert dumped == CONTENT.encode()
        assert self.restored.read_text() == CONTENT


def test_without_a_restore_command_there_is_no_restorer() -> None:
    record = {"type": "command", "name": "x", "command": "true"}
    assert CommandDump({"type": "command"}).restorer(record, {}) is None
