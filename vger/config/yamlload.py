"""YAML parsing with YAML 1.2 core scalars and a map of where every key sits.

PyYAML resolves plain scalars by YAML 1.1 rules, where ``no``, ``on``, ``off``
and ``yes`` are booleans, ``0755`` is octal, ``1:30`` is 90 and ``2024-01-01``
is a date. In a backup config that silently turns ``label: no`` into ``False``.
:class:`VgerLoader` swaps those resolvers for the YAML 1.2 core schema: only
``true``/``false`` (three spellings each) are booleans, integers are decimal
unless written ``0o``/``0x``, and there are no implicit timestamps.

It also refuses duplicate keys (PyYAML keeps the last one without a word) and
non-text keys (JSON Schema can only reason about string keys).

:class:`Locations` remembers the line of every key and list item, so validation
errors can say ``config.yaml:12:`` as well as the key path.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vger.config.expand import Expanded
from vger.config.locations import KeyPath, Locations
from vger.errors import ConfigError

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_NULL_TAG = "tag:yaml.org,2002:null"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_REPLACED = {_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _NULL_TAG, _TIMESTAMP_TAG}


class VgerLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, no duplicate keys, text keys only."""

    # Start from SafeLoader's resolvers minus the YAML 1.1 scalar ones; the
    # class-level dict is copied so SafeLoader itself is left untouched.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml12_int(self, node: ScalarNode) -> int:
        """Decimal unless prefixed: YAML 1.2 reads ``0755`` as 755, not 493."""
        value = str(self.construct_scalar(node))
        if value.startswith("0o"):
            return int(value[2:], 8)
        if value.startswith("0x"):
            return int(value[2:], 16)
        return int(value, 10)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None,
                    None,
                    "a mapping key must be text, found a nested list or mapping",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConstructorError(
                    None,
                    None,
                    f"a mapping key must be text, found {key!r}; quote it ('{key_node.value}':)",
                    key_node.start_mark,
                )
            if key in seen:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


VgerLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
VgerLoader.add_implicit_resolver(_NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
# int before float: the resolver takes the first regexp that matches "123".
VgerLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
VgerLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
VgerLoader.add_constructor(_INT_TAG, VgerLoader.construct_yaml12_int)


def parse_yaml(expanded: Expanded, path: Path) -> tuple[Any, Locations]:
    """Parse expanded text; errors become :class:`ConfigError` with file:line."""
    loader = VgerLoader(expanded.text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_error_message(exc, expanded, path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: YAML anchors refer to themselves (a recursive alias)") from exc
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk(node, (), lines, expanded, path, set())
    return data, Locations(lines)


def _yaml_error_message(exc: yaml.MarkedYAMLError, expanded: Expanded, path: Path) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "not valid YAML"
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
        problem = f"{problem} ({exc.context} on line {expanded.file_line(exc.context_mark.line + 1)})"
    elif exc.context:
        problem = f"{problem} ({exc.context})"
    if mark is None:
        return f"{path}: {problem}"
    return f"{path}:{expanded.file_line(mark.line + 1)}: {problem}"


def _walk(
    node: Node, prefix: KeyPath, lines: dict[KeyPath, int], expanded: Expanded, path: Path, active: set[int]
) -> None:
    if id(node) in active:
        raise ConfigError(f"{path}:{expanded.file_line(node.start_mark.line + 1)}: recursive YAML alias")
    active.add(id(node))
    try:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key_path = (*prefix, key_node.value)
                lines.setdefault(key_path, expanded.file_line(key_node.start_mark.line + 1))
                _walk(value_node, key_path, lines, expanded, path, active)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                item_path = (*prefix, index)
                lines.setdefault(item_path, expanded.file_line(item.start_mark.line + 1))
                _walk(item, item_path, lines, expanded, path, active)
    finally:
        active.discard(id(node))


class VgerDumper(yaml.SafeDumper):
    """Quotes every string that YAML 1.1 *or* 1.2 would read as something else.

    Output written for humans may be read back by us (YAML 1.2 scalars) or by
    any other YAML tool (usually 1.1), so ``'no'`` and ``'1e3'`` both get quotes.
    """

    yaml_implicit_resolvers = {
        first: list(yaml.SafeDumper.yaml_implicit_resolvers.get(first, []))
        + list(VgerLoader.yaml_implicit_resolvers.get(first, []))
        for first in set(yaml.SafeDumper.yaml_implicit_resolvers) | set(VgerLoader.yaml_implicit_resolvers)
    }


def dump_yaml(data: Any) -> str:
    """Block-style YAML in the given key order."""
    return yaml.dump(data, Dumper=VgerDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_scalar(value: Any) -> str:
    """One value as flow-style YAML on a single line (for comments and examples)."""
    text = yaml.dump(
        value, Dumper=VgerDumper, default_flow_style=True, allow_unicode=True, width=1 << 16, sort_keys=False
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()
