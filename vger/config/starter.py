"""The commented starter file ``vger config`` writes, generated from the core schema.

As in borgmatic's generator, the schema's descriptions and examples are the
only source, so the starter cannot drift from what validation accepts (a test
checks that the starter validates, and still does with every section
uncommented). Required sections are live; optional ones are commented out with
a bare ``#`` in front of each line, so deleting that one character enables them
while ``# `` lines stay explanations.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any

from vger.config.schema import core_schema

_WIDTH = 88
_INDENT = 2

_HEADER = """\
# vger configuration.
#
# Written by `vger config`; check it with `vger config --check`, which also prints
# the effective configuration with every default filled in.
# Only `repositories` and `sources` are required. Every other section is commented
# out with a leading '#': delete that '#' on each line of a section to use it.
#
# Values may come from the environment: ${NAME}, or ${NAME:-default} when NAME is
# unset or empty. Quote values that may contain '#' or ': '.
# Only true and false are booleans; yes, no, on and off are plain text."""


def dump_scalar(value: Any) -> str:
    from vger.config.yamlload import dump_scalar as dump  # PyYAML only when a starter is written

    return dump(value)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` (and a ``then`` holding one) merged in; siblings win."""
    merged: dict[str, Any] = {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged.update(_resolve(root["$defs"][ref.removeprefix("#/$defs/")], root))
    then = schema.get("then")
    if isinstance(then, Mapping):
        merged.update(_resolve(then, root))
    merged.update({key: value for key, value in schema.items() if key not in ("$ref", "then")})
    return merged


def _child(schema: Mapping[str, Any], key: str, root: Mapping[str, Any]) -> dict[str, Any]:
    resolved = _resolve(schema, root)
    sub = resolved.get("properties", {}).get(key)
    if sub is None:
        sub = next(
            (s for p, s in resolved.get("patternProperties", {}).items() if re.search(p, key)),
            None,
        )
    return _resolve(sub, root) if isinstance(sub, Mapping) else {}


def _items(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    items = _resolve(schema, root).get("items")
    return _resolve(items, root) if isinstance(items, Mapping) else {}


def _comment(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}# {line}" for line in textwrap.wrap(text, width=max(_WIDTH - indent - 2, 40))]


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list) or not value


def _render_key(
    key: str, value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], indent: int
) -> list[str]:
    pad = " " * indent
    if _is_scalar(value):
        return [f"{pad}{key}: {dump_scalar(value)}"]
    lines = [f"{pad}{key}:"]
    if isinstance(value, Mapping):
        lines += _render_mapping(value, schema, root, indent + _INDENT)
    else:
        lines += _render_items(value, _items(schema, root), root, indent + _INDENT)
    return lines


def _render_mapping(
    value: Mapping[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], indent: int
) -> list[str]:
    lines: list[str] = []
    for key, item in value.items():
        sub = _child(schema, key, root)
        description = sub.get("description")
        if isinstance(description, str):
            lines += _comment(description, indent)
        lines += _render_key(key, item, sub, root, indent)
    return lines


def _render_items(
    values: list[Any], item_schema: Mapping[str, Any], root: Mapping[str, Any], indent: int
) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for value in values:
        if _is_scalar(value):
            lines.append(f"{pad}- {dump_scalar(value)}")
            continue
        body = _render_mapping(value, item_schema, root, indent + 2)
        # The first key line carries the "- "; comments above it stay where they are.
        first = next(i for i, line in enumerate(body) if not line.lstrip().startswith("#"))
        for i in range(first):  # the first key's description goes above the dash
            body[i] = body[i][2:]
        body[first] = f"{pad}- {body[first][indent + 2 :]}"
        lines += body
    return lines


def starter_config() -> str:
    """The starter YAML text; it validates as is once its example paths are real."""
    root = core_schema()
    required = set(root.get("required", ()))
    lines = _HEADER.splitlines()
    for key, prop in root["properties"].items():
        schema = _resolve(prop, root)
        examples = schema.get("examples") or [schema.get("default")]
        lines.append("")
        lines += _comment(str(schema.get("description", "")), 0)
        if key in required:
            lines += _render_key(key, examples[0], schema, root, 0)
            for extra in examples[1:]:
                lines.append(f"{' ' * _INDENT}# Another example:")
                lines += ["#" + line for line in _render_items(extra, _items(schema, root), root, _INDENT)]
            continue
        if "default" in schema:
            lines.append(f"# Default: {dump_scalar(schema['default'])}")
        lines += ["#" + line for line in _render_key(key, examples[0], schema, root, 0)]
    return "\n".join(lines) + "\n"
