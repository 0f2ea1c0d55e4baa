"""Turn JSON Schema errors into messages a user can act on.

jsonschema's own messages name neither the file nor, for unknown keys, the key
path (``Additional properties are not allowed ('x' was unexpected)`` sits on the
parent object). Every :class:`Problem` here is
``<file>:<line>: <key path>: expected <what>, found <what>``, where the key path
ends with the offending key, and unknown keys get a "did you mean" from the
keys that are allowed at that spot.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vger.config.locations import KeyPath, Locations
from vger.config.schema import BRANCH_KEY, EXPECTED_KEY, HINT_KEY, KIND_KEY
from vger.errors import ConfigError
from vger.pluginmanager import INSTALL_HINTS, Registry

if TYPE_CHECKING:  # jsonschema is imported only when a config is validated in full (vger.config.memo)
    from jsonschema.exceptions import ValidationError

#: More than this many problems are summarised: the first ones are what matters.
MAX_REPORTED = 20
_LISTED_KEYS = 14
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "nothing (null)",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, where it is, and what was expected."""

    path: KeyPath
    message: str
    line: int | None = None

    def format(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line is not None else str(file)
        return f"{where}: {format_path(self.path)}: {self.message}"


class ConfigValidationError(ConfigError):
    """A config that parsed but breaks the schema or a cross-key rule.

    ``problems`` lets the CLI (and tests) look at each one; ``str()`` is the
    first problem alone, or every problem one per line.
    """

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = [problem.format(path) for problem in self.problems[:MAX_REPORTED]]
        if len(self.problems) > MAX_REPORTED:
            lines.append(f"... and {len(self.problems) - MAX_REPORTED} more problems")
        super().__init__("\n".join(lines))


def format_path(path: KeyPath) -> str:
    """``('repositories', 0, 'compression')`` -> ``repositories[0].compression``."""
    if not path:
        return "(top level)"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def describe(value: Any) -> str:
    """A value as the user wrote it in YAML, with its kind when that is the point."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}" if value else "an empty string"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "an empty list" if not value else f"a list of {len(value)}"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def shown(value: Any) -> str:
    """A value quoted as written when it is text (where its kind is not the point)."""
    return repr(value) if isinstance(value, str) and value else describe(value)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or ``''``."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _expand_alternations(pattern: str) -> list[str] | None:
    """Every name a pattern like ``^(a|b)_(c|d)$`` matches, or None for other patterns.

    Enough for the hook names, so "did you mean before_backup?" works for them.
    """
    body = pattern.removeprefix("^").removesuffix("$")
    pieces = re.split(r"\(([^()]*)\)", body)
    choices: list[list[str]] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            choices.append(piece.split("|"))
        elif re.search(r"[\\.*+?\[\]{}|^$]", piece):
            return None
        else:
            choices.append([piece])
    return ["".join(parts) for parts in itertools.product(*choices)]


@dataclass
class _KeySpace:
    """Which keys an object schema accepts for one instance, and which only another branch would."""

    keys: set[str]
    patterns: list[str]
    elsewhere: dict[str, str]


def _resolve_local_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _key_space(schema: Mapping[str, Any], instance: Any, root: Mapping[str, Any], space: _KeySpace) -> None:
    space.keys.update(schema.get("properties", {}))
    space.patterns.extend(schema.get("patternProperties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve_local_ref(root, ref)
        if target is not None:
            _key_space(target, instance, root, space)
    for sub in schema.get("allOf", ()):
        if "if" not in sub:
            _key_space(sub, instance, root, space)
            continue
        from jsonschema import Draft202012Validator

        applies = Draft202012Validator(sub["if"]).is_valid(instance)
        chosen = sub.get("then" if applies else "else")
        if isinstance(chosen, Mapping):
            _key_space(chosen, instance, root, space)
        if not applies and isinstance(sub.get("then"), Mapping):
            for key in sub["then"].get("properties", {}):
                space.elsewhere.setdefault(key, str(sub.get(BRANCH_KEY, "another branch applies")))


def _list_keys(space: _KeySpace) -> str:
    keys = sorted(space.keys)
    text = ", ".join(keys[:_LISTED_KEYS])
    if len(keys) > _LISTED_KEYS:
        text += f" and {len(keys) - _LISTED_KEYS} more"
    if space.patterns:
        shown = (p.removeprefix("^").removesuffix("$") for p in space.patterns)
        text += (" or " if keys else "") + "a key like " + " or ".join(shown)
    return text or "no keys"


class ErrorTranslator:
    """Translates one validation run's errors; knows the assembled schema and the plugins."""

    def __init__(self, root: Mapping[str, Any], registry: Registry, locations: Locations) -> None:
        self.root = root
        self.registry = registry
        self.locations = locations
        self.unselected: set[KeyPath] = set()

    def problems(self, errors: Iterable[ValidationError]) -> list[Problem]:
        errors = list(errors)
        specific = {tuple(e.absolute_path) for e in errors if e.validator not in _UNKNOWN_KEY_VALIDATORS}
        # Where the plugin selector itself is wrong, the plugin's keys are
        # unknowable: calling them "unknown keys" would only be noise.
        self.unselected = {
            tuple(e.absolute_path)[:-1]
            for e in errors
            if e.validator == "enum" and isinstance(e.schema, Mapping) and KIND_KEY in e.schema
        }
        # A value of the wrong type fails its other keywords too (enum, ...);
        # the type error alone says what to fix.
        mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
        found: list[Problem] = []
        for error in errors:
            if error.validator != "type" and tuple(error.absolute_path) in mistyped:
                continue
            found.extend(self._translate(error, specific))
        unique = {(p.path, p.message): p for p in found}
        return sorted(unique.values(), key=lambda p: (p.line or 0, format_path(p.path)))

    def _problem(self, path: KeyPath, message: str) -> Problem:
        return Problem(path, message, self.locations.line_of(path))

    def _translate(self, error: ValidationError, specific: set[KeyPath]) -> list[Problem]:
        path: KeyPath = tuple(error.absolute_path)
        kind = error.validator
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        instance = error.instance
        expected: Any = error.validator_value
        if kind in _UNKNOWN_KEY_VALIDATORS:
            return self._unknown_keys(path, schema, instance, specific)
        if kind == "required":
            return [
                self._problem((*path, key), "expected a value (this key is required), found nothing")
                for key in expected
                if isinstance(instance, Mapping) and key not in instance
            ]
        if kind == "type":
            message = self._type_message(expected, instance)
            if HINT_KEY in schema:
                message += f"; {schema[HINT_KEY]}"
            return [self._problem(path, message)]
        if kind == "enum":
            return [self._problem(path, self._enum_message(schema, expected, instance))]
        if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return [self._problem(path, f"expected {_range_text(schema)}, found {describe(instance)}")]
        if kind == "minLength":
            return [self._problem(path, f"expected a non-empty string, found {describe(instance)}")]
        if kind == "minItems":
            n = expected
            entries = "entry" if n == 1 else "entries"
            return [self._problem(path, f"expected at least {n} {entries}, found {describe(instance)}")]
        if kind == "pattern":
            expected = schema.get(EXPECTED_KEY) or f"text matching {expected}"
            return [self._problem(path, f"expected {expected}, found {shown(instance)}")]
        if EXPECTED_KEY in schema:
            return [self._problem(path, f"expected {schema[EXPECTED_KEY]}, found {describe(instance)}")]
        return [self._problem(path, error.message)]

    def _unknown_keys(
        self, path: KeyPath, schema: Mapping[str, Any], instance: Any, specific: set[KeyPath]
    ) -> list[Problem]:
        if not isinstance(instance, Mapping) or path in self.unselected:
            return []
        space = _KeySpace(set(), [], {})
        _key_space(schema, instance, self.root, space)
        candidates = set(space.keys)
        for pattern in space.patterns:
            candidates.update(_expand_alternations(pattern) or ())
        problems = []
        for key in instance:
            if key in space.keys or any(re.search(p, key) for p in space.patterns):
                continue
            key_path = (*path, key)
            # The key is known but its value failed inside its branch: that
            # error says more, and jsonschema then also calls the key unevaluated.
            if any(other[: len(key_path)] == key_path for other in specific):
                continue
            if key in space.elsewhere:
                hint = f" (it only applies when {space.elsewhere[key]})"
            else:
                hint = suggest(key, candidates)
            problems.append(
                self._problem(
                    key_path, f"expected one of the keys {_list_keys(space)}, found unknown key '{key}'{hint}"
                )
            )
        return problems

    @staticmethod
    def _type_message(expected: Any, instance: Any) -> str:
        types = [expected] if isinstance(expected, str) else list(expected)
        text = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        message = f"expected {text}, found {describe(instance)}"
        if "boolean" in types and isinstance(instance, str) and instance.lower() in _YAML11_BOOLEANS:
            message += " (only true and false are booleans in vger's YAML; yes/no/on/off are text)"
        return message

    def _enum_message(self, schema: Mapping[str, Any], allowed: Sequence[Any], instance: Any) -> str:
        names = [str(a) for a in allowed]
        hint = suggest(instance, names) if isinstance(instance, str) else ""
        kind = schema.get(KIND_KEY)
        if not isinstance(kind, str):
            return f"expected one of {', '.join(names)}, found {shown(instance)}{hint}"
        installed = ", ".join(names) if names else "none installed"
        message = f"expected the name of an installed {kind} plugin ({installed}), found {shown(instance)}"
        if isinstance(instance, str):
            message += f"{hint}; no {kind} plugin named '{instance}' is installed"
            install = INSTALL_HINTS.get((kind, instance))
            if install:
                message += f"; install it with: {install}"
        if self.registry.failures:
            message += "; plugins that failed to load: " + "; ".join(
                f.describe() for f in self.registry.failures
            )
        if self.registry.disabled:
            message += "; disabled plugins: " + ", ".join(sorted(self.registry.disabled))
        return message


_UNKNOWN_KEY_VALIDATORS = ("additionalProperties", "unevaluatedProperties")


def _range_text(schema: Mapping[str, Any]) -> str:
    what = "an integer" if schema.get("type") == "integer" else "a number"
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    parts = []
    if low is not None:
        parts.append(f"at least {low}")
    if xlow is not None:
        parts.append(f"more than {xlow}")
    if high is not None:
        parts.append(f"at most {high}")
    if xhigh is not None:
        parts.append(f"less than {xhigh}")
    return f"{what} " + " and ".join(parts)
