"""docs/plugins.md is checked against the code, like datasette's test_docs.py.

Every hook specification must have its own heading (with its arguments), no
heading may name a hook that does not exist, every override of the contract
suites must be explained, and the worked example is not prose: its files are
extracted from the page, the module is loaded as a plugin and its contract test
runs here as if it were part of this suite.
"""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from vger import hookspecs
from vger.pluginmanager import REGISTRATION_HOOKS, PluginSource, load_plugins
from vger.testing import (
    ChunkerContract,
    CipherContract,
    CompressorContract,
    DumpSourceContract,
    MonitorContract,
    StorageBackendContract,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
TEXT = DOCS.read_text(encoding="utf-8")

EXAMPLE_PROJECT = "vger-compressor-zlib"
EXAMPLE_MODULE = "vger_compressor_zlib"


def hook_specs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(function)
        for name, function in vars(hookspecs).items()
        if name.startswith("vger_") and hasattr(function, "vger_spec")
    }


def headings() -> list[str]:
    return [line for line in TEXT.splitlines() if line.startswith("#")]


def example_files() -> dict[str, str]:
    """Fenced blocks whose first line is a comment naming a file of the example project."""
    files = {}
    for match in re.finditer(r"^```\w*\n(.*?)^```", TEXT, re.MULTILINE | re.DOTALL):
        body = match.group(1)
        first, _, rest = body.partition("\n")
        prefix = f"# {EXAMPLE_PROJECT}/"
        if first.startswith(prefix):
            files[first[len(prefix) :].strip()] = rest
    return files


def load_example_module() -> types.ModuleType:
    source = example_files()[f"{EXAMPLE_MODULE}/__init__.py"]
    module = types.ModuleType(EXAMPLE_MODULE)
    module.__file__ = f"{DOCS}:{EXAMPLE_MODULE}/__init__.py"
    # Registered so the documented test module's `from vger_compressor_zlib import ...` works.
    sys.modules[EXAMPLE_MODULE] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def load_example_tests() -> dict[str, Any]:
    load_example_module()
    source = example_files()["tests/test_contract_compressor_zlib.py"]
    namespace: dict[str, Any] = {"__name__": "docs_example_tests"}
    exec(compile(source, f"{DOCS}:tests/test_contract_compressor_zlib.py", "exec"), namespace)
    return namespace


# The documented contract test, collected and run as part of this module.
TestDocumentedZlibContract = load_example_tests()["TestZlibContract"]


# -- hook reference -----------------------------------------------------------------


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_every_hook_has_a_heading_with_its_arguments(hook: str) -> None:
    matching = [line for line in headings() if re.search(rf"`{hook}\(", line)]
    assert matching, f"docs/plugins.md has no heading for {hook}"
    for parameter in hook_specs()[hook].parameters:
        assert re.search(rf"\b{parameter}\b", matching[0]), f"the heading of {hook} misses `{parameter}`"


def test_no_heading_documents_a_hook_that_does_not_exist() -> None:
    documented = {name for line in headings() for name in re.findall(r"`(vger_\w+)\(", line)}
    assert documented - set(hook_specs()) == set()


def test_every_registration_kind_is_in_the_table() -> None:
    for kind, hook in REGISTRATION_HOOKS.items():
        assert re.search(rf"^\| `{kind}` \| `{hook}` \|", TEXT, re.MULTILINE), (
            f"{kind} missing from the table"
        )


@pytest.mark.parametrize(
    "attribute",
    ["name", "options_schema", "tag", "schemes", "encrypts", "key_size", "nonce_size", "tag_size"],
)
def test_component_attributes_are_documented(attribute: str) -> None:
    assert f"`{attribute}`" in TEXT


@pytest.mark.parametrize(
    "suite",
    [
        CompressorContract,
        CipherContract,
        ChunkerContract,
        StorageBackendContract,
        DumpSourceContract,
        MonitorContract,
    ],
    ids=lambda s: s.__name__,
)
def test_every_contract_override_is_documented(suite: type) -> None:
    assert f"`{suite.__name__}`" in TEXT
    for name in vars(suite):
        if name.startswith(("_", "test_")):
            continue
        assert f"`{name}" in TEXT, f"{suite.__name__}.{name} is not mentioned in docs/plugins.md"


def test_relative_links_resolve() -> None:
    for target in re.findall(r"\]\((\.\./[^)#]+)", TEXT):
        assert (DOCS.parent / target).resolve().exists(), f"broken link {target}"


def test_the_disable_mechanisms_are_documented() -> None:
    assert "VGER_DISABLE_PLUGINS" in TEXT and "plugins:\n    disable:" in TEXT


# -- the worked example -----------------------------------------------------------------


def test_example_has_all_its_files() -> None:
    assert set(example_files()) == {
        "pyproject.toml",
        f"{EXAMPLE_MODULE}/__init__.py",
        "tests/test_contract_compressor_zlib.py",
    }


def test_example_pyproject_declares_the_entry_point() -> None:
    project = tomllib.loads(example_files()["pyproject.toml"])
    assert project["project"]["name"] == EXAMPLE_PROJECT
    assert project["project"]["entry-points"]["vger"] == {"compressor-zlib": EXAMPLE_MODULE}
    assert any(dep.startswith("vger") for dep in project["project"]["dependencies"])
    assert "slow" in " ".join(project["tool"]["pytest"]["ini_options"]["markers"])


def example_registry() -> Any:
    module = load_example_module()
    source = PluginSource(plugin="compressor-zlib", distribution=EXAMPLE_PROJECT, version="1.0.0")
    return load_plugins(extra_plugins=[(source, module)])


def test_example_loads_as_a_plugin_without_conflicts() -> None:
    registry = example_registry()
    assert not registry.failures and not registry.conflicts
    cls = registry.get("compressor", "zlib")
    assert registry.compressor_by_tag(cls.tag) is cls
    assert registry.source_of("compressor", "zlib").distribution == EXAMPLE_PROJECT


def test_example_options_are_merged_into_the_config_schema() -> None:
    from vger.config import assemble_schema

    validator = jsonschema.Draft202012Validator(assemble_schema(example_registry()))
    base = {"repositories": [{"url": "/backup/repo"}], "sources": ["/home/user"]}
    assert validator.is_valid({**base, "compression": {"algorithm": "zlib", "zlib_level": 9}})
    # The documented claims: out of range is refused, and the option means
    # nothing (so is refused) when another compressor is selected.
    assert not validator.is_valid({**base, "compression": {"algorithm": "zlib", "zlib_level": 10}})
    assert not validator.is_valid({**base, "compression": {"algorithm": "lz4", "zlib_level": 9}})
