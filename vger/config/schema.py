"""The core JSON Schema plus the option schemas of installed plugins.

The core schema (``schemas/config.schema.json``) knows every core key but no
plugin: its ``compression``, ``chunker``, ``encryption``, ``repository``,
``dump`` and ``monitor`` definitions hold only the selector key. Here each
installed component adds one ``if <selector is my name> then <my options>``
branch, and the selector gets an ``enum`` of installed names. Those objects use
``unevaluatedProperties: false``: unlike ``additionalProperties`` it sees the
keys a matching ``then`` branch declared, so plugin options are accepted for the
selected plugin and rejected (as unknown) for every other one.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vger.config.memo import ValidationMemo, digest
from vger.errors import ConfigError
from vger.pluginmanager import Component, Registry

# schemas/ at the top of the source tree is linked into the package as
# vger/schemas (a symlink the wheel build resolves), so editable and wheel
# installs find the core schema at the same place.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
CORE_SCHEMA_FILE = SCHEMA_DIR / "config.schema.json"

#: Keywords that mark our own annotations in the schema (ignored by validators).
BRANCH_KEY = "x-vger-branch"
KIND_KEY = "x-vger-plugin-kind"
EXPECTED_KEY = "x-expected"
HINT_KEY = "x-hint"

#: Backend options config.md allows for schemes whose plugin is not installed,
#: so a typo is still caught while the CLI reports the missing plugin.
KNOWN_BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "s3": {
        "region": {"type": "string", "default": "us-east-1", "description": "S3 region."},
        "access_key_id": {"type": "string", "description": "S3 access key id."},
        "secret_access_key": {"type": "string", "description": "S3 secret access key."},
        "endpoint": {"type": "string", "description": "S3-compatible endpoint url (MinIO, Wasabi, ...)."},
    },
    "sftp": {
        "sftp_key": {
            "type": "string",
            "description": "Private key file (default ~/.ssh/id_rsa, then the agent).",
        },
        "known_hosts": {"type": "string", "description": "known_hosts file to check the server key against."},
    },
    "http": {"rest_token": {"type": "string", "description": "Bearer token for the vger REST server."}},
    "https": {"rest_token": {"type": "string", "description": "Bearer token for the vger REST server."}},
}

# A url without "scheme://" is a path, served by whatever plugin claims "file".
_NO_SCHEME = "(?![A-Za-z][A-Za-z0-9+.-]*://)"


@functools.lru_cache(maxsize=1)
def _load_core() -> dict[str, Any]:
    try:
        with CORE_SCHEMA_FILE.open(encoding="utf-8") as handle:
            schema: dict[str, Any] = json.load(handle)
    except OSError as exc:
        # Only a broken installation gets here; say so instead of a traceback.
        raise ConfigError(f"vger is installed without its config schema ({CORE_SCHEMA_FILE}): {exc}") from exc
    return schema


def core_schema() -> dict[str, Any]:
    """A fresh copy of the core schema (callers may modify it)."""
    return copy.deepcopy(_load_core())


def defaults_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of each top-level property: how omitted keys are filled.

    Defaults live in the schemas (core and plugin) so documentation, the
    starter file and the model cannot disagree.
    """
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        return {}
    return {
        key: copy.deepcopy(sub["default"])
        for key, sub in properties.items()
        if isinstance(sub, Mapping) and "default" in sub
    }


def options_schema(component: Component) -> Mapping[str, Any]:
    """A component's declared options schema (an empty object schema if it declares none)."""
    declared = getattr(component.cls, "options_schema", None)
    return declared if isinstance(declared, Mapping) else {"type": "object", "properties": {}}


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_json: str) -> str | None:
    """Why a schema is not valid Draft 2020-12, or None; cached because the check is slow
    (a metaschema walk) and the same plugin schemas are checked on every load."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        return exc.message
    return None


def _plugin_branch_schema(component: Component, memo: ValidationMemo | None = None) -> dict[str, Any]:
    """The plugin schema as a ``then`` branch, or a branch that fails with a clear reason.

    A broken plugin schema must not break every config, only configs that
    select that plugin. ``memo`` skips the metaschema check of schemas that
    passed it in an earlier run.
    """
    schema = copy.deepcopy(dict(options_schema(component)))
    schema_json = json.dumps(schema, sort_keys=True, default=repr)
    key = digest("plugin-schema", schema_json)
    if memo is not None and key in memo:
        problem = None
    else:
        problem = _schema_problem(schema_json)
        if problem is None and memo is not None:
            memo.add(key)
    if problem is not None:
        return {
            "not": {},
            EXPECTED_KEY: (
                f"options for {component.kind} '{component.name}', but {component.source.describe()} "
                f"declares an invalid options_schema ({problem}); report it to its author"
            ),
        }
    # The core already rejects unknown keys; a plugin's own
    # additionalProperties: false would also reject the selector key.
    for key in ("additionalProperties", "unevaluatedProperties", "$schema"):
        schema.pop(key, None)
    # Its own $id makes "#/$defs/..." inside the plugin schema resolve against
    # the plugin schema, not against the assembled document.
    schema.setdefault("$id", f"urn:vger:plugin:{component.kind}:{component.name}")
    return schema


def _add_selector_branches(
    target: dict[str, Any],
    selector: str,
    kind: str,
    components: Iterable[Component],
    extra_names: Iterable[str] = (),
    memo: ValidationMemo | None = None,
) -> None:
    default = target["properties"][selector].get("default")
    names = list(extra_names)
    branches: list[dict[str, Any]] = []
    for component in components:
        names.append(component.name)
        # "type": "object" keeps a mistyped block (a string, null) out of every
        # branch, so it gets one type error instead of one per plugin.
        condition: dict[str, Any] = {"type": "object", "properties": {selector: {"const": component.name}}}
        if component.name != default:
            # Without "required", an absent selector would match every branch;
            # absent means the default, so only the default's branch may match then.
            condition["required"] = [selector]
        branches.append(
            {
                "if": condition,
                "then": _plugin_branch_schema(component, memo),
                BRANCH_KEY: f"{selector} is {component.name}",
            }
        )
    if branches:  # an empty allOf is not a valid schema
        target.setdefault("allOf", []).extend(branches)
    target["properties"][selector]["enum"] = sorted(set(names))
    target["properties"][selector][KIND_KEY] = kind


def _case_insensitive(text: str) -> str:
    out = []
    for char in text:
        if char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        elif char in ".+":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _scheme_pattern(scheme: str) -> str:
    if scheme == "file":
        return f"^(?:{_case_insensitive('file')}://|{_NO_SCHEME})"
    return f"^{_case_insensitive(scheme)}://"


def _url_condition(scheme: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"url": {"pattern": _scheme_pattern(scheme)}},
        "required": ["url"],
    }


def _add_backend_branches(
    repository: dict[str, Any], storages: Iterable[Component], memo: ValidationMemo | None = None
) -> None:
    branches = repository.setdefault("allOf", [])
    claimed: set[str] = set()
    for component in storages:
        for scheme in getattr(component.cls, "schemes", ()):
            scheme = str(scheme).lower()
            if scheme in claimed:
                continue  # a clash; the registry reports it, validation need not
            claimed.add(scheme)
            branches.append(
                {
                    "if": _url_condition(scheme),
                    "then": _plugin_branch_schema(component, memo),
                    BRANCH_KEY: f"the url is a {scheme}:// url"
                    if scheme != "file"
                    else "the url is a local path",
                }
            )
    for scheme, properties in KNOWN_BACKEND_OPTIONS.items():
        if scheme in claimed:
            continue
        branches.append(
            {
                "if": _url_condition(scheme),
                "then": {"type": "object", "properties": copy.deepcopy(properties)},
                BRANCH_KEY: f"the url is a {scheme}:// url",
            }
        )


def assemble_schema(registry: Registry, memo: ValidationMemo | None = None) -> dict[str, Any]:
    """The full config schema for this set of installed plugins (``vger config --schema``)."""
    schema = core_schema()
    defs = schema["$defs"]
    registry_kinds = [
        ("compression", "algorithm", "compressor", ()),
        ("chunker", "algorithm", "chunker", ()),
        ("encryption", "mode", "cipher", ("auto",)),
        ("dump", "type", "dump", ()),
        ("monitor", "type", "monitor", ()),
    ]
    for block, selector, kind, extra in registry_kinds:
        _add_selector_branches(defs[block], selector, kind, registry.of_kind(kind), extra, memo)
    _add_backend_branches(defs["repository"], registry.of_kind("storage"), memo)
    return schema


def branch_for(schema: Mapping[str, Any], selector: str, name: str) -> Mapping[str, Any] | None:
    """The ``then`` schema of the branch selecting ``name`` in an assembled definition."""
    for branch in schema.get("allOf", ()):
        condition = branch.get("if", {}).get("properties", {}).get(selector, {})
        if condition.get("const") == name:
            then: Mapping[str, Any] = branch.get("then", {})
            return then
    return None


def backend_schema_for(repository_schema: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    """The ``then`` schema of the backend branch matching ``url`` (None if no branch does)."""
    for branch in repository_schema.get("allOf", ()):
        condition = branch.get("if", {})
        pattern = condition.get("properties", {}).get("url", {}).get("pattern")
        # The condition is _url_condition's: a pattern searched in the url.
        if isinstance(pattern, str) and re.search(pattern, url):
            then: Mapping[str, Any] = branch.get("then", {})
            return then
    return None
