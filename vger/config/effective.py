"""The effective configuration as YAML, secrets masked (``vger config --check``).

It is rendered from the model, not from the file, so it shows what vger will
actually do: defaults filled, top-level settings folded into each repository
and source, relative paths made absolute. The output is itself a valid config
file with the same meaning (apart from the masked secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vger.config.model import (
    Config,
    EncryptionConfig,
    LimitsConfig,
    RepositoryConfig,
    RetentionConfig,
    SourceConfig,
    thaw,
)

MASK = "***"
_SECRET_KEYS = {"passphrase", "passwords", "secret_access_key", "rest_token", "tokens"}
_SECRET_PARTS = ("password", "secret", "token")
# scheme://user:password@host -> keep the user, hide the password.
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+(?P<tail>@.*)$")


def is_secret_key(key: str) -> bool:
    """Whether a key's value must never be printed."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(part in lowered for part in _SECRET_PARTS)


def mask_secrets(value: Any) -> Any:
    """A plain copy of ``value`` with secret values and url passwords replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            key: (MASK if item is not None else None)
            if isinstance(key, str) and is_secret_key(key)
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", value)
    return value


def _retention(retention: RetentionConfig | None) -> dict[str, Any] | None:
    if retention is None:
        return None
    return {
        key: getattr(retention, key)
        for key in (
            "keep_within",
            "keep_last",
            "keep_hourly",
            "keep_daily",
            "keep_weekly",
            "keep_monthly",
            "keep_yearly",
        )
        if getattr(retention, key) is not None
    }


def _limits(limits: LimitsConfig) -> dict[str, Any]:
    return {
        "cpu": {"max_threads": limits.max_threads, "nice": limits.nice},
        "io": {
            "read_mib_per_sec": limits.io_read_mib_per_sec,
            "write_mib_per_sec": limits.io_write_mib_per_sec,
        },
        "network": {
            "read_mib_per_sec": limits.net_read_mib_per_sec,
            "write_mib_per_sec": limits.net_write_mib_per_sec,
        },
    }


def _encryption(encryption: EncryptionConfig) -> dict[str, Any]:
    block: dict[str, Any] = {"mode": encryption.mode}
    if encryption.passphrase is not None:
        block["passphrase"] = encryption.passphrase
    if encryption.passcommand is not None:
        block["passcommand"] = encryption.passcommand
    block.update(thaw(encryption.options))
    return block


def _hooks(hooks: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    return {key: list(commands) for key, commands in hooks.items()}


def _repository(repo: RepositoryConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": repo.url, "label": repo.label}
    entry.update(thaw(repo.options))
    entry.update(
        {
            "min_pack_size": repo.min_pack_size,
            "max_pack_size": repo.max_pack_size,
            "encryption": _encryption(repo.encryption),
            "compression": thaw(repo.compression.options),
        }
    )
    retention = _retention(repo.retention)
    if retention is not None:
        entry["retention"] = retention
    entry["limits"] = _limits(repo.limits)
    if repo.hooks:
        entry["hooks"] = _hooks(repo.hooks)
    return entry


def _source(source: SourceConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": source.label}
    if len(source.paths) == 1:
        entry["path"] = source.paths[0]
    else:
        entry["paths"] = list(source.paths)
    entry.update(
        {
            "exclude": list(source.exclude),
            "exclude_if_present": list(source.exclude_if_present),
            "one_file_system": source.one_file_system,
            "git_ignore": source.git_ignore,
            "xattrs": {"enabled": source.xattrs},
        }
    )
    if source.repos is not None:
        entry["repos"] = list(source.repos)
    retention = _retention(source.retention)
    if retention is not None:
        entry["retention"] = retention
    if source.hooks:
        entry["hooks"] = _hooks(source.hooks)
    if source.command_dumps:
        entry["command_dumps"] = thaw(source.command_dumps)
    if source.dumps:
        entry["dumps"] = thaw(source.dumps)
    return entry


def effective_document(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets still in it (callers mask)."""
    document: dict[str, Any] = {
        "repositories": [_repository(repo) for repo in config.repositories],
        "sources": [_source(source) for source in config.sources],
        "chunker": thaw(config.chunker.options),
    }
    retention = _retention(config.retention)
    if retention is not None:
        document["retention"] = retention
    if config.hooks:
        document["hooks"] = _hooks(config.hooks)
    if config.monitoring:
        document["monitoring"] = thaw(config.monitoring)
    schedule = {key: value for key, value in thaw(config.schedule).items() if value is not None}
    document["schedule"] = schedule
    document["plugins"] = {"disable": list(config.plugins_disable)}
    return document


def effective_config_text(config: Config) -> str:
    """YAML of the effective config, secrets shown as ``***``."""
    header = f"# Effective configuration from {config.path} (defaults filled in, secrets masked).\n"
    from vger.config.yamlload import dump_yaml  # PyYAML only when a config is printed

    return header + dump_yaml(mask_secrets(effective_document(config)))
