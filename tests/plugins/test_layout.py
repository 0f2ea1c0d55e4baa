"""Every folder in plugins/ keeps the shape that makes it a copyable template.

A folder that lost its README or its contract test, or is missing from the
entry points, would still work today and quietly stop being the example the
spec promises third parties.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
FOLDERS = sorted(path for path in PLUGINS.iterdir() if path.is_dir() and not path.name.startswith((".", "_")))
CONTRACTS = {
    "CompressorContract",
    "CipherContract",
    "ChunkerContract",
    "StorageBackendContract",
    "DumpSourceContract",
    "MonitorContract",
}
# Lifecycle plugins have no component to put under contract; their own tests drive the CLI.
WITHOUT_CONTRACT = {"lifecycle"}


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_every_builtin_plugin_folder_is_here() -> None:
    assert len(FOLDERS) == 21


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda path: path.name)
def test_folder_is_registered_under_its_own_name(folder: Path) -> None:
    kind, name = folder.name.split("-", 1)
    module = f"vger_{kind}_{name.replace('-', '_')}"  # monitor-uptime-kuma -> vger_monitor_uptime_kuma
    config = pyproject()
    assert config["project"]["entry-points"]["vger"][folder.name] == module
    assert f"plugins/{folder.name}" in config["tool"]["setuptools"]["packages"]["find"]["where"]
    assert (folder / module / "__init__.py").is_file()


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda path: path.name)
def test_folder_has_a_readme_with_options_and_template_notes(folder: Path) -> None:
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for section in ("## Options", "## Why this one", "## Use this folder as a template"):
        assert section in readme, f"{folder.name}/README.md lacks {section!r}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda path: path.name)
def test_folder_runs_a_contract_suite(folder: Path) -> None:
    kind, name = folder.name.split("-", 1)
    if kind in WITHOUT_CONTRACT:
        assert any((folder / "tests").glob("test_*.py")), f"{folder.name} has no tests"
        return
    test_file = folder / "tests" / f"test_contract_{kind}_{name.replace('-', '_')}.py"
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    bases = {
        base.id
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test")
        for base in node.bases
        if isinstance(base, ast.Name)
    }
    assert bases & CONTRACTS, f"{test_file.name} subclasses no contract suite"
    # No __init__.py: a package named "tests" in every folder would collide.
    assert not (folder / "tests" / "__init__.py").exists()


def test_test_module_names_are_unique_across_the_project() -> None:
    # pytest's default import mode imports rootless test modules by base name.
    names = [path.name for path in PLUGINS.glob("*/tests/test_*.py")]
    assert len(names) == len(set(names))


def test_plugins_readme_lists_every_folder() -> None:
    readme = (PLUGINS / "README.md").read_text(encoding="utf-8")
    for folder in FOLDERS:
        assert f"[`{folder.name}`]({folder.name}/README.md)" in readme
