"""Command dumps: a command's stdout streamed into the snapshot as one file.

Serves the ``command_dumps:`` entries of a source (and ``dumps:`` entries of
``type: command``). The command runs through ``/bin/sh -c`` in a process group
of its own, so a timeout kills pipelines too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.interfaces import DumpRestore, DumpStream
from vger.process import ProcessRestore, ProcessStream


class CommandDump:
    """One shell command whose stdout becomes the file ``name`` of the snapshot."""

    name: ClassVar[str] = "command"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["name", "command"],
        "properties": {
            "name": {
                "description": "File name of the dump inside the snapshot (relative, no '..').",
                "type": "string",
                "minLength": 1,
                "pattern": "^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$",
            },
            "command": {"description": "Shell command printing the dump on stdout.", "type": "string"},
            "timeout": {
                "description": "Seconds after which the command is killed and the source's backup fails.",
                "type": "number",
                "exclusiveMinimum": 0,
            },
            "restore_command": {
                "description": "Shell command that reads the dump on stdin (used by `vger restore-dump`).",
                "type": "string",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def dumps(self) -> Iterator[DumpStream]:
        command = str(self.options["command"])
        metadata: dict[str, Any] = {"command": command}
        if self.options.get("restore_command"):
            metadata["restore_command"] = str(self.options["restore_command"])
        timeout = self.options.get("timeout")
        yield ProcessStream(
            str(self.options["name"]),
            command,
            shell=True,
            metadata=metadata,
            timeout=float(timeout) if timeout else None,
            what=f"command dump {self.options['name']!r}",
        )

    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None:
        """Pipes the dump into ``restore_command`` when one was recorded; else None (restore the file)."""
        command = record.get("restore_command")
        if not isinstance(command, str) or not command:
            return None
        return ProcessRestore(command, shell=True, what=f"restore command of {record.get('name')!r}")


@hookimpl
def vger_register_dump_sources() -> list[type[Any]]:
    return [CommandDump]
