"""``${VAR}`` / ``${VAR:-default}`` expansion on the raw text of a config file.

Expansion happens before YAML parsing (config.md), so a variable can supply any
YAML value, numbers included (``zstd_level: ${LEVEL:-3}``). The price is that a
value is pasted in verbatim: a value holding ``#`` or ``: `` should be quoted in
the file (``password: "${PGPASSWORD}"``).

Placeholders never span lines, so the text is expanded line by line and we can
keep, for every line of the expanded text, the line of the file it came from:
YAML and schema errors then point at the line the user wrote even when a value
contained newlines.

Full-line comments are left alone: a commented-out line is not configuration,
and failing on ``# password: ${OLD_VAR}`` would only punish keeping notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vger.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT_LINE = re.compile(r"^\s*#")


@dataclass(frozen=True)
class Expanded:
    """Expanded text plus ``origin[i]`` = 1-based file line of expanded line ``i + 1``."""

    text: str
    origin: tuple[int, ...]

    def file_line(self, expanded_line: int) -> int:
        """Map a 1-based line of the expanded text back to the file."""
        if not self.origin:
            return expanded_line
        index = min(max(expanded_line, 1), len(self.origin)) - 1
        return self.origin[index]


def expand_env(text: str, environ: Mapping[str, str], path: Path) -> Expanded:
    """Expand every placeholder or raise :class:`ConfigError` naming file and line."""
    out_lines: list[str] = []
    origin: list[int] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        expanded = line if _COMMENT_LINE.match(line) else _expand_line(line, number, environ, path)
        out_lines.append(expanded)
        # A value with newlines adds lines; all of them belong to this file line.
        origin.extend([number] * (expanded.count("\n") + (0 if expanded.endswith("\n") else 1)))
    return Expanded("".join(out_lines), tuple(origin))


def _expand_line(line: str, number: int, environ: Mapping[str, str], path: Path) -> str:
    parts: list[str] = []
    pos = 0
    while True:
        start = line.find("${", pos)
        if start < 0:
            parts.append(line[pos:])
            return "".join(parts)
        parts.append(line[pos:start])
        end = line.find("}", start + 2)
        if end < 0:
            raise _malformed(path, number, line[start:].rstrip("\n"), "unclosed placeholder, missing '}'")
        body = line[start + 2 : end]
        placeholder = line[start : end + 1]
        name, sep, default = body.partition(":-")
        if not name:
            raise _malformed(path, number, placeholder, "empty variable name")
        if not _NAME.fullmatch(name):
            raise _malformed(
                path,
                number,
                placeholder,
                f"'{name}' is not a variable name (letters, digits and _, not starting with a digit; "
                "the only operator is ':-')",
            )
        if "${" in default:
            raise _malformed(path, number, placeholder + "...", "placeholders cannot be nested")
        value = environ.get(name)
        if sep:
            parts.append(value if value else default)
        elif value is None:
            raise ConfigError(
                f"{path}:{number}: environment variable {name} is not set (used as ${{{name}}}); "
                f"set it, or give a default with ${{{name}:-default}}"
            )
        else:
            parts.append(value)
        pos = end + 1


def _malformed(path: Path, number: int, placeholder: str, why: str) -> ConfigError:
    return ConfigError(f"{path}:{number}: malformed placeholder {placeholder}: {why}")
