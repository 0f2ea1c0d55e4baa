"""Validated document -> frozen :class:`~vger.config.model.Config`.

Inheritance rules (kept here, in one place, so every command agrees):

- ``compression``, ``retention``, ``limits``: a repository's block replaces the
  top-level one whole. Merging would mix options of different algorithms.
- ``encryption``: a repository's block replaces the top-level one, except that
  a top-level ``passphrase``/``passcommand`` is inherited when the repository
  block sets neither (a repository choosing its own cipher should not have to
  repeat the secret).
- sources inherit ``exclude_if_present``, ``one_file_system``, ``git_ignore``
  and ``xattrs`` unless they set their own; ``exclude`` is added to the
  top-level ``exclude_patterns``.
- plugin options get the defaults their plugin's schema declares.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vger.config.model import (
    ChunkerConfig,
    CompressionConfig,
    Config,
    EncryptionConfig,
    LimitsConfig,
    RepositoryConfig,
    RetentionConfig,
    SourceConfig,
    freeze,
    repository_scheme,
)
from vger.config.schema import backend_schema_for, branch_for, defaults_of
from vger.config.semantics import repository_label, source_label

Data = Mapping[str, Any]
_RETENTION_COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


class Builder:
    """Builds the model from a document valid against ``schema`` (the assembled one)."""

    def __init__(self, path: Path, data: Data, schema: Mapping[str, Any]) -> None:
        self.path = path
        # Relative paths in the file mean "next to this file", whatever the cwd.
        self.base = path.absolute().parent
        self.data = data
        self.defs: Mapping[str, Any] = schema["$defs"]

    # -- pieces ------------------------------------------------------------
    def _with_plugin_defaults(self, definition: str, selector: str, block: Data) -> dict[str, Any]:
        merged = defaults_of(self.defs[definition])
        name = block.get(selector, merged.get(selector))
        plugin = branch_for(self.defs[definition], selector, str(name))
        if plugin is not None:
            merged.update(defaults_of(plugin))
        merged.update(block)
        return merged

    def compression(self, block: Data | None) -> CompressionConfig:
        options = self._with_plugin_defaults("compression", "algorithm", block or {})
        return CompressionConfig(algorithm=str(options["algorithm"]), options=freeze(options))

    def chunker(self, block: Data | None) -> ChunkerConfig:
        options = self._with_plugin_defaults("chunker", "algorithm", block or {})
        return ChunkerConfig(
            algorithm=str(options["algorithm"]),
            min_size=int(options["min_size"]),
            avg_size=int(options["avg_size"]),
            max_size=int(options["max_size"]),
            options=freeze(options),
        )

    def encryption(self, block: Data | None, inherited: Data | None = None) -> EncryptionConfig:
        block = dict(block or {})
        if inherited and "passphrase" not in block and "passcommand" not in block:
            for key in ("passphrase", "passcommand"):
                if key in inherited:
                    block[key] = inherited[key]
        options = self._with_plugin_defaults("encryption", "mode", block)
        mode = str(options.pop("mode"))
        passphrase = options.pop("passphrase", None)
        passcommand = options.pop("passcommand", None)
        return EncryptionConfig(
            mode=mode, passphrase=passphrase, passcommand=passcommand, options=freeze(options)
        )

    @staticmethod
    def retention(block: Data | None) -> RetentionConfig | None:
        if block is None:
            return None
        within = block.get("keep_within")
        if within is not None:
            within = str(within)
            if within[-1].isdigit():  # a bare number means days (config.md)
                within += "d"
        counts = {key: int(block[key]) for key in _RETENTION_COUNTS if key in block}
        return RetentionConfig(keep_within=within, **counts)

    @staticmethod
    def limits(block: Data | None) -> LimitsConfig:
        block = block or {}
        cpu, io, net = block.get("cpu", {}), block.get("io", {}), block.get("network", {})
        return LimitsConfig(
            max_threads=int(cpu.get("max_threads", 0)),
            nice=int(cpu.get("nice", 0)),
            io_read_mib_per_sec=float(io.get("read_mib_per_sec", 0)),
            io_write_mib_per_sec=float(io.get("write_mib_per_sec", 0)),
            net_read_mib_per_sec=float(net.get("read_mib_per_sec", 0)),
            net_write_mib_per_sec=float(net.get("write_mib_per_sec", 0)),
        )

    @staticmethod
    def hooks(block: Data | None) -> Mapping[str, tuple[str, ...]]:
        """Hook values as tuples: the runner never has to ask "string or list?"."""
        block = block or {}
        return freeze(
            {key: (value,) if isinstance(value, str) else tuple(value) for key, value in block.items()}
        )

    def local_path(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.base, os.path.expanduser(path)))

    # -- entries -------------------------------------------------------------
    def repository(self, entry: Data) -> RepositoryConfig:
        url = str(entry["url"])
        if repository_scheme(url) == "file" and not url.lower().startswith("file://"):
            url = self.local_path(url)
        backend = backend_schema_for(self.defs["repository"], str(entry["url"]))
        options = defaults_of(backend) if backend is not None else {}
        core_keys = set(self.defs["repository"]["properties"])
        options.update({key: value for key, value in entry.items() if key not in core_keys})
        pack_defaults = defaults_of(self.defs["repository"])
        top = self.data
        return RepositoryConfig(
            url=url,
            label=repository_label(entry),
            options=freeze(options),
            min_pack_size=int(entry.get("min_pack_size", pack_defaults["min_pack_size"])),
            max_pack_size=int(entry.get("max_pack_size", pack_defaults["max_pack_size"])),
            encryption=(
                self.encryption(entry["encryption"], inherited=top.get("encryption"))
                if "encryption" in entry
                else self.encryption(top.get("encryption"))
            ),
            compression=self.compression(entry.get("compression", top.get("compression"))),
            retention=self.retention(entry.get("retention", top.get("retention"))),
            limits=self.limits(entry.get("limits", top.get("limits"))),
            hooks=self.hooks(entry.get("hooks")),
        )

    def source(self, entry: Any) -> SourceConfig:
        top = self.data
        label = source_label(entry)
        assert label is not None  # semantics guarantee it for a valid document
        common_exclude = tuple(top.get("exclude_patterns", ()))
        exclude_if_present = tuple(top.get("exclude_if_present", ()))
        one_file_system = bool(top.get("one_file_system", True))
        git_ignore = bool(top.get("git_ignore", False))
        xattrs = _xattrs_enabled(top.get("xattrs", True))
        if isinstance(entry, str):
            return SourceConfig(
                label=label,
                paths=(self.local_path(entry),),
                exclude=common_exclude,
                exclude_if_present=exclude_if_present,
                one_file_system=one_file_system,
                git_ignore=git_ignore,
                xattrs=xattrs,
            )
        paths = [entry["path"]] if "path" in entry else list(entry.get("paths", ()))
        return SourceConfig(
            label=label,
            paths=tuple(self.local_path(p) for p in paths),
            exclude=common_exclude + tuple(entry.get("exclude", ())),
            exclude_if_present=tuple(entry.get("exclude_if_present", exclude_if_present)),
            one_file_system=bool(entry.get("one_file_system", one_file_system)),
            git_ignore=bool(entry.get("git_ignore", git_ignore)),
            xattrs=_xattrs_enabled(entry["xattrs"]) if "xattrs" in entry else xattrs,
            repos=tuple(entry["repos"]) if "repos" in entry else None,
            retention=self.retention(entry.get("retention")),
            hooks=self.hooks(entry.get("hooks")),
            command_dumps=tuple(freeze(d) for d in entry.get("command_dumps", ())),
            dumps=tuple(
                freeze(self._with_plugin_defaults("dump", "type", d)) for d in entry.get("dumps", ())
            ),
        )

    def schedule(self) -> dict[str, Any]:
        given = self.data.get("schedule")
        schedule: dict[str, Any] = {"enabled": given is not None, "every": None, "cron": None}
        schedule.update(defaults_of(self.defs["schedule"]))
        schedule.update(given or {})
        if schedule["every"] is None and schedule["cron"] is None:
            schedule["every"] = "1d"
        return schedule

    def build(self) -> Config:
        data = self.data
        plugins = data.get("plugins", {})
        return Config(
            path=self.path,
            repositories=tuple(self.repository(entry) for entry in data["repositories"]),
            sources=tuple(self.source(entry) for entry in data["sources"]),
            chunker=self.chunker(data.get("chunker")),
            retention=self.retention(data.get("retention")),
            hooks=self.hooks(data.get("hooks")),
            monitoring=tuple(
                freeze(self._with_plugin_defaults("monitor", "type", m)) for m in data.get("monitoring", ())
            ),
            schedule=freeze(self.schedule()),
            plugins_disable=tuple(plugins.get("disable", ())),
            data=freeze(data),
        )


def _xattrs_enabled(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value.get("enabled", True))
    return bool(value)
