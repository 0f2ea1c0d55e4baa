"""Shared helpers: a real plugin registry and a way to write config files."""

from __future__ import annotations

import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from vger import hookimpl
from vger.config import Config, read_config, validate_config
from vger.config.problems import ConfigValidationError
from vger.pluginmanager import PluginSource, Registry, load_plugins


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The installed plugins, loaded once: loading is the slow part."""
    return load_plugins()


def fake_plugin(name: str, hook: str, classes: Iterable[type]) -> tuple[PluginSource, types.ModuleType]:
    """An in-process plugin module whose registration hook returns ``classes``."""
    module = types.ModuleType(name)
    found = list(classes)

    def register() -> list[type]:
        return found

    register.__name__ = hook
    setattr(module, hook, hookimpl(register))
    return PluginSource(plugin=name, distribution=f"{name}-dist", version="1.0"), module


@pytest.fixture
def make_registry() -> Callable[..., Registry]:
    """``make_registry((kind_hook, [classes]), ...)`` -> installed plugins plus these fake ones."""

    def _make(*plugins: tuple[str, str, Iterable[type]]) -> Registry:
        return load_plugins(
            extra_plugins=[fake_plugin(name, hook, classes) for name, hook, classes in plugins]
        )

    return _make


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def _write(text: str, name: str = "vger.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(write: Callable[[str], Path], registry: Registry) -> Callable[..., Config]:
    """Write, read and validate; env is empty unless given."""

    def _load(text: str, env: Mapping[str, str] | None = None, reg: Registry | None = None) -> Config:
        return validate_config(read_config(write(text), env or {}), reg or registry)

    return _load


@pytest.fixture
def problems(load: Callable[..., Config]) -> Callable[..., ConfigValidationError]:
    """Load text that must fail validation; return the error."""

    def _problems(text: str, **kwargs: Any) -> ConfigValidationError:
        with pytest.raises(ConfigValidationError) as info:
            load(text, **kwargs)
        return info.value

    return _problems
