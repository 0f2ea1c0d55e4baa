"""Find, load and register plugins.

We walk the ``vger`` entry-point group ourselves instead of calling pluggy's
``load_setuptools_entrypoints``: that call hides two plugins with one name and
lets one broken plugin break every command. Here a plugin that fails to import
is recorded (with its distribution and the reason) and only a command that
needs something it might have provided fails.

A fresh :class:`pluggy.PluginManager` is made per run (never a module global) so
tests and embedders can load different plugin sets side by side.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from vger import PROJECT_NAME, entrypoints, hookspecs
from vger.cachedir import cache_root
from vger.entrypoints import FoundEntryPoint
from vger.errors import PluginConflict, PluginError, PluginNotFound

ENTRY_POINT_GROUP = "vger"
DISABLE_ENV = "VGER_DISABLE_PLUGINS"

#: kind -> registration hook name
REGISTRATION_HOOKS: dict[str, str] = {
    "chunker": "vger_register_chunkers",
    "compressor": "vger_register_compressors",
    "cipher": "vger_register_ciphers",
    "storage": "vger_register_storage_backends",
    "dump": "vger_register_dump_sources",
    "monitor": "vger_register_monitors",
}

#: Where a component that is named in a config but not installed usually comes from.
INSTALL_HINTS: dict[tuple[str, str], str] = {
    ("monitor", "apprise"): "pip install apprise",
}


@dataclass(frozen=True)
class PluginSource:
    """Who provided something: the entry point and its distribution."""

    plugin: str
    distribution: str
    version: str

    def describe(self) -> str:
        return f"plugin '{self.plugin}' from {self.distribution} {self.version}"


@dataclass(frozen=True)
class Component:
    """One registered component class and where it came from."""

    kind: str
    name: str
    cls: type[Any]
    source: PluginSource


@dataclass(frozen=True)
class LoadFailure:
    """A plugin whose module could not be imported or whose registration raised."""

    source: PluginSource
    reason: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.source.describe()} failed to load: {self.reason}"


@dataclass
class Registry:
    """(kind, name) -> component, plus what failed to load.

    Built by :func:`load_plugins`. ``pm`` is the pluggy manager for lifecycle hooks.
    """

    pm: pluggy.PluginManager
    plugins: dict[str, PluginSource] = field(default_factory=dict)
    components: dict[tuple[str, str], Component] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    conflicts: list[str] = field(default_factory=list)

    # -- lookups ---------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(name for (k, name) in self.components if k == kind)

    def of_kind(self, kind: str) -> list[Component]:
        return [c for (k, _), c in sorted(self.components.items()) if k == kind]

    def get(self, kind: str, name: str) -> type[Any]:
        """The component class, or :class:`PluginNotFound` saying what to install."""
        self.raise_conflicts()
        comp = self.components.get((kind, name))
        if comp is not None:
            return comp.cls
        raise PluginNotFound(self._not_found_message(kind, f"{kind} '{name}'", name))

    def compressor_by_tag(self, tag: int) -> type[Any]:
        # A tag clash must stop reads too: silently picking one of the two
        # classes would decompress a blob with the wrong algorithm.
        self.raise_conflicts()
        for comp in self.of_kind("compressor"):
            if comp.cls.tag == tag:
                return comp.cls
        raise PluginNotFound(self._not_found_message("compressor", f"compressor with tag {tag}", None))

    def storage_for_scheme(self, scheme: str) -> type[Any]:
        self.raise_conflicts()
        for comp in self.of_kind("storage"):
            if scheme in comp.cls.schemes:
                return comp.cls
        raise PluginNotFound(
            self._not_found_message("storage", f"storage backend for '{scheme}://' urls", scheme)
        )

    def source_of(self, kind: str, name: str) -> PluginSource | None:
        comp = self.components.get((kind, name))
        return comp.source if comp else None

    def raise_conflicts(self) -> None:
        if self.conflicts:
            raise PluginConflict(self.conflicts[0])

    def _not_found_message(self, kind: str, what: str, name: str | None) -> str:
        parts = [f"no {what} is installed"]
        if name is not None and (kind, name) in INSTALL_HINTS:
            parts.append(f"install it with: {INSTALL_HINTS[(kind, name)]}")
        available = self.names(kind)
        if available:
            parts.append("available: " + ", ".join(available))
        if self.failures:
            parts.append(
                "plugins that failed to load (one may provide it): "
                + "; ".join(f.describe() for f in self.failures)
            )
        disabled = sorted(self.disabled)
        if disabled:
            parts.append("disabled plugins: " + ", ".join(disabled))
        return "; ".join(parts)


def _disabled_from_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


@functools.cache
def _entry_points() -> tuple[tuple[FoundEntryPoint, PluginSource], ...]:
    """Installed entry points and where each comes from, found once per process.

    The CLI can load plugins twice (for a plugin's command, then for the
    config's selection); across runs, :mod:`vger.entrypoints` remembers them.
    """
    found = entrypoints.find(ENTRY_POINT_GROUP, cache_root())
    return tuple((ep, PluginSource(ep.name, ep.distribution, ep.version)) for ep in found)


def load_plugins(
    disable: Iterable[str] = (),
    extra_plugins: Iterable[tuple[PluginSource, ModuleType | object]] = (),
) -> Registry:
    """Load every installed plugin and collect what each registers.

    ``disable`` (from ``plugins.disable``) plus ``VGER_DISABLE_PLUGINS`` name
    entry points to skip. ``extra_plugins`` lets tests and embedders register
    in-process plugin objects without packaging them.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    disabled = set(disable) | _disabled_from_env()
    registry = Registry(pm=pm, disabled=disabled)

    loaded: list[tuple[PluginSource, object]] = []
    by_name: dict[str, PluginSource] = {}
    for ep, source in _entry_points():
        if ep.name in disabled:
            continue
        if ep.name in by_name:
            registry.conflicts.append(
                f"two plugins are named '{ep.name}': {by_name[ep.name].distribution} and "
                f"{source.distribution}; uninstall one or disable it with plugins.disable"
            )
            continue
        try:
            module = ep.load()
        except Exception as exc:  # any import-time failure of third-party code
            registry.failures.append(
                LoadFailure(source, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            )
            continue
        by_name[ep.name] = source
        loaded.append((source, module))
    for source, module in extra_plugins:
        by_name[source.plugin] = source
        loaded.append((source, module))

    for source, module in loaded:
        try:
            pm.register(module, name=source.plugin)
        except Exception as exc:
            registry.failures.append(LoadFailure(source, f"{type(exc).__name__}: {exc}"))
            continue
        registry.plugins[source.plugin] = source
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # A misspelled hook name would otherwise be silently ignored.
        raise PluginError(f"a plugin implements an unknown hook: {exc}") from exc

    for kind, hook_name in REGISTRATION_HOOKS.items():
        _collect(registry, kind, hook_name)
    return registry


def _collect(registry: Registry, kind: str, hook_name: str) -> None:
    """Call each plugin's registration hook on its own so we know who provided what."""
    hook = getattr(registry.pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        source = registry.plugins[impl.plugin_name]
        try:
            classes = impl.function() or []
        except Exception as exc:
            registry.failures.append(LoadFailure(source, f"{hook_name} raised {type(exc).__name__}: {exc}"))
            continue
        for cls in classes:
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                registry.failures.append(LoadFailure(source, f"{kind} class {cls!r} has no name"))
                continue
            key = (kind, name)
            other = registry.components.get(key)
            if other is not None:
                registry.conflicts.append(
                    f"{kind} '{name}' is provided by both {other.source.describe()} and "
                    f"{source.describe()}; disable one with plugins.disable"
                )
                continue
            clash = _attribute_clash(registry, kind, cls, source)
            if clash:
                registry.conflicts.append(clash)
                continue
            registry.components[key] = Component(kind, name, cls, source)


def _attribute_clash(registry: Registry, kind: str, cls: type[Any], source: PluginSource) -> str | None:
    if kind == "compressor":
        for comp in registry.of_kind("compressor"):
            if comp.cls.tag == cls.tag:
                return (
                    f"compressor tag {cls.tag} is claimed by both '{comp.name}' ({comp.source.describe()}) "
                    f"and '{cls.name}' ({source.describe()})"
                )
    if kind == "storage":
        for comp in registry.of_kind("storage"):
            shared = set(comp.cls.schemes) & set(cls.schemes)
            if shared:
                return (
                    f"url scheme '{sorted(shared)[0]}://' is claimed by both '{comp.name}' "
                    f"({comp.source.describe()}) and '{cls.name}' ({source.describe()})"
                )
    return None


def register_commands(registry: Registry) -> list[tuple[PluginSource, Any]]:
    """Commands contributed by plugins, each with its provider."""
    result: list[tuple[PluginSource, Any]] = []
    for impl in registry.pm.hook.vger_register_commands.get_hookimpls():
        source = registry.plugins[impl.plugin_name]
        try:
            returned: Any = impl.function()
            commands: list[Any] = list(returned or [])
        except Exception as exc:
            registry.failures.append(LoadFailure(source, f"vger_register_commands raised {exc}"))
            continue
        result.extend((source, cmd) for cmd in commands)
    return result
