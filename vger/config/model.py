"""The validated configuration as frozen, defaults-filled objects.

Everything downstream (backup, prune, the daemon, the CLI) reads these instead
of the YAML dict, so nothing downstream needs to know about defaults,
inheritance (top-level settings a repository or source overrides) or relative
paths: each object already carries the *effective* values. Collections are
tuples and read-only mappings, so a command cannot change the config another
part of the same run sees.

Mapping fields are excluded from hashing (they are not hashable) but still take
part in equality.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vger.errors import ConfigError


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def repository_scheme(url: str) -> str:
    """The storage scheme a repository url routes to: a bare path means ``file``.

    Schemes are case-insensitive (RFC 3986), so the result is lower case.
    """
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else "file"


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for YAML/JSON output and for code that wants to mutate a copy."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class EncryptionConfig:
    """How a repository is encrypted.

    ``mode`` is ``auto`` or a cipher plugin name; it only matters at ``init``,
    after which the cipher recorded in the repository wins. ``options`` holds
    the cipher plugin's own options (defaults filled), never the passphrase.
    """

    mode: str = "auto"
    passphrase: str | None = field(default=None, repr=False)
    passcommand: str | None = None
    options: Mapping[str, Any] = field(default_factory=_empty, hash=False)


@dataclass(frozen=True)
class CompressionConfig:
    """``options`` is the whole block with defaults, e.g. ``{'algorithm': 'zstd', 'zstd_level': 3}``.

    The whole block (not just the extras) is what a compressor's constructor
    takes, so the pipeline can pass it on unchanged.
    """

    algorithm: str = "lz4"
    options: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"algorithm": "lz4"}), hash=False
    )


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunk size bounds (min <= avg <= max, checked) and the whole block as ``options``."""

    algorithm: str = "fastcdc"
    min_size: int = 524288
    avg_size: int = 2097152
    max_size: int = 8388608
    options: Mapping[str, Any] = field(default_factory=_empty, hash=False)


@dataclass(frozen=True)
class RetentionConfig:
    """Prune rules; they add up. ``keep_within`` always carries a unit (a bare ``7`` is stored as ``7d``)."""

    keep_within: str | None = None
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None

    @property
    def is_empty(self) -> bool:
        """True when no rule would keep anything: ``prune`` must refuse rather than delete everything.

        A count of 0 keeps nothing, so it counts as no rule.
        """
        counts = (
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        )
        within = self.keep_within is not None and int(self.keep_within.rstrip("hdwmy") or 0) > 0
        return not within and not any(counts)


@dataclass(frozen=True)
class LimitsConfig:
    """Resource limits; 0 means unlimited (threads: one per CPU; nice: leave as is)."""

    max_threads: int = 0
    nice: int = 0
    io_read_mib_per_sec: float = 0.0
    io_write_mib_per_sec: float = 0.0
    net_read_mib_per_sec: float = 0.0
    net_write_mib_per_sec: float = 0.0


@dataclass(frozen=True)
class RepositoryConfig:
    """One repository with its effective settings (its own override, else the top level).

    ``url`` is absolute for local paths (relative ones are resolved against the
    config file's folder, so cron and the daemon see the same repository as an
    interactive shell). ``options`` are the storage backend's options with the
    backend schema's defaults. ``hooks`` are this repository's own hooks only;
    the global ones are in :attr:`Config.hooks`. Hook values are tuples of commands.
    """

    url: str
    label: str
    options: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    min_pack_size: int = 32 * 1024 * 1024
    max_pack_size: int = 512 * 1024 * 1024
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    retention: RetentionConfig | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty, hash=False)

    @property
    def scheme(self) -> str:
        """Which storage plugin serves this url (``file`` for a path)."""
        return repository_scheme(self.url)


@dataclass(frozen=True)
class SourceConfig:
    """One source: what to back up, with top-level settings already inherited.

    ``paths`` are absolute (``~`` expanded; relative ones resolved against the
    config file's folder). ``exclude`` is the top-level ``exclude_patterns``
    followed by the source's own ``exclude``. ``repos`` is None for "every
    repository". ``retention`` is the source's own override or None (then the
    repository's applies). ``hooks`` values are tuples of commands.
    ``command_dumps`` and ``dumps`` entries are read-only mappings; dumps carry
    their plugin's defaults.
    """

    label: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    exclude_if_present: tuple[str, ...] = ()
    one_file_system: bool = True
    git_ignore: bool = False
    xattrs: bool = True
    repos: tuple[str, ...] | None = None
    retention: RetentionConfig | None = None
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty, hash=False)
    command_dumps: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    dumps: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration.

    ``data`` is the validated document as written (after ``${VAR}``
    expansion, without defaults), read-only. ``schedule`` has its defaults
    filled (``enabled``, ``every`` or ``cron``, ``on_startup``, ``jitter_seconds``).
    ``monitoring`` entries carry their plugin's defaults.
    """

    path: Path
    repositories: tuple[RepositoryConfig, ...]
    sources: tuple[SourceConfig, ...]
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    retention: RetentionConfig | None = None
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty, hash=False)
    monitoring: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    schedule: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    plugins_disable: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=_empty, hash=False)

    def repository(self, label_or_url: str) -> RepositoryConfig:
        """The repository a ``--repo`` value names: its label, its url, or a path resolving to it."""
        for repo in self.repositories:
            if label_or_url in (repo.label, repo.url):
                return repo
        if repository_scheme(label_or_url) == "file" and not label_or_url.startswith("file://"):
            wanted = os.path.abspath(os.path.expanduser(label_or_url))
            for repo in self.repositories:
                if repo.url == wanted:
                    return repo
        known = ", ".join(repo.label for repo in self.repositories)
        raise ConfigError(
            f"{self.path}: no repository labelled '{label_or_url}'; known repositories: {known}"
        )

    def source(self, label: str) -> SourceConfig:
        """The source a ``--source/-S`` value names."""
        for source in self.sources:
            if source.label == label:
                return source
        known = ", ".join(source.label for source in self.sources)
        raise ConfigError(f"{self.path}: no source labelled '{label}'; known sources: {known}")

    def sources_for(self, repo: RepositoryConfig | str) -> tuple[SourceConfig, ...]:
        """Sources sent to ``repo`` (config, label or url): those without ``repos`` or naming it."""
        target = repo if isinstance(repo, RepositoryConfig) else self.repository(repo)
        return tuple(s for s in self.sources if s.repos is None or target.label in s.repos)

    def plugin_names_used(self) -> dict[str, set[str]]:
        """Component names this config selects, by kind, for ``vger plugins``.

        Storage is given as url schemes (kind ``scheme``) because which plugin
        serves a scheme is the registry's business.
        """
        return {
            "chunker": {self.chunker.algorithm},
            "compressor": {repo.compression.algorithm for repo in self.repositories},
            "cipher": {repo.encryption.mode for repo in self.repositories},
            "scheme": {repo.scheme for repo in self.repositories},
            "dump": {str(d["type"]) for s in self.sources for d in s.dumps},
            "monitor": {str(m["type"]) for m in self.monitoring},
        }
