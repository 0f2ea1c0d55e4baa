"""Schema assembly: core schema + each installed plugin's options_schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from vger.config import Config, ConfigValidationError, assemble_schema
from vger.config.schema import backend_schema_for, core_schema
from vger.pluginmanager import Registry, load_plugins

Load = Callable[..., Config]
Problems = Callable[..., ConfigValidationError]
MINIMAL = "repositories: [{url: /r}]\nsources: [/s]\n"


def _properties(schema: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(schema, dict):
        for key, sub in schema.get("properties", {}).items():
            yield f"{path}.{key}", sub
        for key, sub in schema.items():
            if key != "properties":
                yield from _properties(sub, f"{path}/{key}")
        for key, sub in schema.get("properties", {}).items():
            yield from _properties(sub, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _properties(item, f"{path}[{index}]")


def test_core_schema_is_valid_and_documents_every_key() -> None:
    schema = core_schema()
    Draft202012Validator.check_schema(schema)

    def documented(sub: Any) -> bool:
        if "description" in sub:
            return True
        ref = sub.get("$ref", "")
        return ref.startswith("#/$defs/") and "description" in schema["$defs"][ref.removeprefix("#/$defs/")]

    undocumented = sorted(
        {path for path, sub in _properties(schema) if "/if" not in path and not documented(sub)}
    )
    assert undocumented == []


def test_assembled_schema_includes_plugin_options(registry: Registry) -> None:
    schema = assemble_schema(registry)
    Draft202012Validator.check_schema(schema)
    defs = schema["$defs"]
    assert defs["compression"]["properties"]["algorithm"]["enum"] == ["lz4", "none", "zstd"]
    zstd = next(
        b for b in defs["compression"]["allOf"] if b["if"]["properties"]["algorithm"]["const"] == "zstd"
    )
    assert zstd["then"]["properties"]["zstd_level"]["maximum"] == 22
    assert defs["compression"]["unevaluatedProperties"] is False
    assert "additionalProperties" not in defs["compression"]
    assert defs["encryption"]["properties"]["mode"]["enum"] == [
        "aes256gcm",
        "auto",
        "chacha20poly1305",
        "none",
    ]
    fastcdc = defs["chunker"]["allOf"][0]["then"]
    assert "normalized_chunking" in fastcdc["properties"]
    # every known scheme gets a branch, installed or not
    patterns = [b["if"]["properties"]["url"]["pattern"] for b in defs["repository"]["allOf"]]
    assert len(patterns) == 5  # file (installed) + s3, sftp, http, https (known keys)


def test_default_plugin_options_apply_when_the_selector_is_absent(load: Load, problems: Problems) -> None:
    # fastcdc is the default chunker, so its option is valid without `algorithm`.
    config = load(MINIMAL + "chunker: {normalized_chunking: 2}\n")
    assert config.chunker.options["normalized_chunking"] == 2
    error = problems(MINIMAL + "chunker: {normalized_chunking: 9}\n")
    assert "chunker.normalized_chunking: expected an integer from 0 to 3, found 9" in str(error)


def component(name: str, options_schema: dict[str, Any], **attrs: Any) -> type:
    return type(f"Fake_{name}", (), {"name": name, "options_schema": options_schema, **attrs})


def test_third_party_plugins_contribute_their_options(
    load: Load, problems: Problems, make_registry: Callable[..., Registry]
) -> None:
    monitor = component(
        "thirdping",
        {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "description": "Ping url."},
                "states": {
                    "type": "array",
                    "items": {"enum": ["start", "finish", "fail"]},
                    "default": ["start", "finish", "fail"],
                },
            },
            # Plugin authors may write this; the core must still accept `type`.
            "additionalProperties": False,
        },
    )
    dump = component(
        "thirdsql",
        {
            "type": "object",
            "$defs": {"path": {"type": "string", "minLength": 1}},
            "properties": {"path": {"$ref": "#/$defs/path"}},
        },
    )
    storage = component(
        "gcs", {"type": "object", "properties": {"bucket_region": {"type": "string"}}}, schemes=("gs",)
    )
    registry = make_registry(
        ("monitor-hc", "vger_register_monitors", [monitor]),
        ("dump-thirdsql", "vger_register_dump_sources", [dump]),
        ("storage-gcs", "vger_register_storage_backends", [storage]),
    )
    text = (
        "repositories: [{url: /r}, {url: 'gs://b/p', bucket_region: x}]\n"
        "sources: [{path: /s, dumps: [{type: thirdsql, path: /db.sqlite}]}]\n"
        "monitoring: [{type: thirdping, url: 'https://hc/x'}]\n"
    )
    config = load(text, reg=registry)
    assert dict(config.monitoring[0]) == {
        "type": "thirdping",
        "url": "https://hc/x",
        "states": ("start", "finish", "fail"),
        # the core options every monitoring entry takes, with their defaults
        "commands": ("backup", "prune", "compact", "check", "cycle"),
        "timeout": 10,
    }
    assert config.sources[0].dumps[0]["path"] == "/db.sqlite"
    assert config.repositories[1].options == {"bucket_region": "x"}

    error = problems(text.replace("url: 'https://hc/x'", "uri: x"), reg=registry)
    assert sorted(f"{p.path[-1]}" for p in error.problems) == ["uri", "url"]
    error = problems(text.replace("path: /db.sqlite", "path: ''"), reg=registry)
    assert "sources[0].dumps[0].path: expected a non-empty string" in str(error)
    # the plugin's schema is the whole list: another backend's option (s3's region) is refused
    error = problems(text.replace("bucket_region: x", "region: x"), reg=registry)
    assert "repositories[1].region" in str(error)


def test_a_plugin_with_a_broken_schema_only_breaks_configs_using_it(
    load: Load, problems: Problems, make_registry: Callable[..., Registry]
) -> None:
    broken = component(
        "broken", {"type": "object", "properties": {"level": {"type": "no-such-type"}}}, tag=99
    )
    registry = make_registry(("compressor-broken", "vger_register_compressors", [broken]))
    load(MINIMAL, reg=registry)
    error = problems(MINIMAL + "compression: {algorithm: broken}\n", reg=registry)
    assert "declares an invalid options_schema" in str(error)
    assert "compressor-broken-dist" in str(error)


def test_disabled_plugins_disappear_from_the_schema(problems: Problems) -> None:
    registry = load_plugins(disable=["compressor-zstd"])
    error = problems(MINIMAL + "compression: {algorithm: zstd}\n", reg=registry)
    message = str(error)
    assert "compression.algorithm" in message
    assert "no compressor plugin named 'zstd' is installed" in message
    assert "disabled plugins: compressor-zstd" in message


@pytest.mark.parametrize("url", ["/abs", "rel/path", "./rel", "file:///x", "FILE:///x"])
def test_local_urls_route_to_the_file_backend(registry: Registry, url: str) -> None:
    branch = backend_schema_for(assemble_schema(registry)["$defs"]["repository"], url)
    assert branch is not None and branch["$id"].endswith(":storage:file")
