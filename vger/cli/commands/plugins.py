"""``vger plugins``: what is installed, from which distribution, and what the config uses."""

from __future__ import annotations

from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option, table, warn
from vger.config.model import Config
from vger.errors import ConfigError
from vger.pluginmanager import load_plugins


def _used(config: Config | None) -> set[tuple[str, str]]:
    if config is None:
        return set()
    from vger.storage import url_scheme

    used = {("chunker", config.chunker.algorithm)}
    for repo in config.repositories:
        used.add(("compressor", repo.compression.algorithm))
        if repo.encryption.mode != "auto":
            used.add(("cipher", repo.encryption.mode))
        used.add(("scheme", url_scheme(repo.url)))
    for source in config.sources:
        for dump in source.dumps:
            used.add(("dump", str(dump.get("type"))))
        if source.command_dumps:
            used.add(("dump", "command"))
    for monitor in config.monitoring:
        used.add(("monitor", str(monitor.get("type"))))
    return used


_LIFECYCLE_HOOKS = {"vger_configure", "vger_before", "vger_after", "vger_failed", "vger_finally"}


def _lifecycle_rows(registry: Any, config: Config | None) -> list[dict[str, Any]]:
    """Plugins that provide no component but take part in every command (the shell hooks)."""
    providers = {comp.source.plugin for comp in registry.components.values()}
    rows = []
    for name, source in sorted(registry.plugins.items()):
        plugin = registry.pm.get_plugin(name)
        if name in providers or plugin is None:
            continue
        hooks = {caller.name for caller in registry.pm.get_hookcallers(plugin) or []}
        if not hooks & _LIFECYCLE_HOOKS:
            continue
        rows.append(
            {
                "kind": "lifecycle",
                "name": name.removeprefix("lifecycle-"),
                "plugin": name,
                "distribution": source.distribution,
                "version": source.version,
                "used": True if config is not None else None,  # lifecycle plugins are always on
            }
        )
    return rows


@click.command("plugins")
@json_option
@click.pass_obj
def command(app: App) -> None:
    """List installed plugins by kind, with distribution, version and whether the config uses them."""
    config: Config | None
    try:
        config = app.config
        registry = app.registry
    except ConfigError:
        config = None  # listing plugins must work before any config exists
        registry = load_plugins()
    used = _used(config)
    rows: list[dict[str, Any]] = []
    for (kind, name), comp in sorted(registry.components.items()):
        in_use = (kind, name) in used or (
            kind == "storage" and any(("scheme", s) in used for s in comp.cls.schemes)
        )
        rows.append(
            {
                "kind": kind,
                "name": name,
                "plugin": comp.source.plugin,
                "distribution": comp.source.distribution,
                "version": comp.source.version,
                "used": in_use if config is not None else None,
            }
        )
    rows.extend(_lifecycle_rows(registry, config))
    rows.sort(key=lambda r: (r["kind"], r["name"]))
    failures = [
        {
            "plugin": f.source.plugin,
            "distribution": f.source.distribution,
            "version": f.source.version,
            "reason": f.reason,
        }
        for f in registry.failures
    ]
    if app.json:
        emit_json({"plugins": rows, "failures": failures, "conflicts": registry.conflicts})
        return
    click.echo(
        table(
            ("KIND", "NAME", "DISTRIBUTION", "VERSION", "USED"),
            [
                (
                    r["kind"],
                    r["name"],
                    r["distribution"],
                    r["version"],
                    "-" if r["used"] is None else ("yes" if r["used"] else ""),
                )
                for r in rows
            ],
        )
    )
    for f in failures:
        warn(f"plugin '{f['plugin']}' from {f['distribution']} {f['version']} failed to load: {f['reason']}")
    for conflict in registry.conflicts:
        warn(conflict)
