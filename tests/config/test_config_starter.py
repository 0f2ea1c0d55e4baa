"""The starter file validates; the effective config hides secrets and reads back."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from vger.config import (
    Config,
    effective_config_text,
    mask_secrets,
    read_config,
    starter_config,
    validate_config,
)
from vger.pluginmanager import Registry

Load = Callable[..., Config]


def is_commented_code(line: str) -> bool:
    """'#key:' or '#  indented' is code; '# text' (one space) is an explanation."""
    return line.startswith("#") and (line[1:2] not in ("", " ", "#") or line[1:3] == "  ")


def uncomment_everything(text: str) -> str:
    """Enable every commented-out section by deleting the '#' in front of its lines."""
    return "\n".join(line[1:] if is_commented_code(line) else line for line in text.splitlines())


def test_starter_validates_as_written(load: Load) -> None:
    config = load(starter_config())
    assert [r.label for r in config.repositories] == ["local"]
    assert [s.label for s in config.sources] == ["documents"]


def test_starter_has_no_placeholder_outside_comments() -> None:
    for line in starter_config().splitlines():
        if not line.lstrip().startswith("#"):
            assert "${" not in line


def test_starter_validates_with_every_section_enabled(
    load: Load, make_registry: Callable[..., Registry]
) -> None:
    healthchecks = type(
        "Healthchecks",
        (),
        {
            "name": "healthchecks",
            "options_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
        },
    )
    registry = make_registry(("monitor-hc", "vger_register_monitors", [healthchecks]))
    text = uncomment_everything(starter_config())
    assert not [line for line in text.splitlines() if is_commented_code(line)]
    config = load(text, reg=registry)
    assert [r.label for r in config.repositories] == ["local", "offsite"]
    assert [s.label for s in config.sources] == ["documents", "system"]
    assert config.repositories[0].compression.algorithm == "zstd"
    assert config.schedule["every"] == "1d"
    assert config.monitoring[0]["type"] == "healthchecks"


def test_starter_documents_every_top_level_key() -> None:
    text = starter_config()
    for key in (
        "repositories",
        "sources",
        "encryption",
        "compression",
        "chunker",
        "exclude_patterns",
        "exclude_if_present",
        "one_file_system",
        "git_ignore",
        "xattrs",
        "retention",
        "limits",
        "hooks",
        "monitoring",
        "schedule",
        "plugins",
    ):
        assert re.search(rf"^#?{key}:", text, re.MULTILINE), key


SECRETS = """
encryption:
  passphrase: hunter2
  passcommand: pass show vger
repositories:
  - url: s3://bucket/x
    label: s3
    access_key_id: AKIA
    secret_access_key: s3cret
  - url: https://user:pa55@rest.example.com/repo
    label: rest
    rest_token: t0ken
    encryption: {mode: none}
sources:
  - label: db
    path: /var/lib/db
    command_dumps: [{name: db.sql, command: pg_dump}]
"""


def test_effective_config_masks_secrets(load: Load) -> None:
    text = effective_config_text(load(SECRETS))
    for secret in ("hunter2", "s3cret", "t0ken", "pa55"):
        assert secret not in text
    data = yaml.safe_load(text)
    s3, rest = data["repositories"]
    assert s3["encryption"]["passphrase"] == "***"
    assert s3["encryption"]["passcommand"] == "pass show vger"
    assert s3["secret_access_key"] == "***" and s3["access_key_id"] == "AKIA"
    assert rest["rest_token"] == "***"
    assert rest["url"] == "https://user:***@rest.example.com/repo"
    assert s3["region"] == "us-east-1"  # defaults are shown


def test_mask_secrets_by_key_name() -> None:
    masked = mask_secrets(
        {
            "password": "a",
            "db_password": "b",
            "api_token": "c",
            "tokens": ["d"],
            "client_secret": "e",
            "user": "f",
        }
    )
    assert masked == {
        "password": "***",
        "db_password": "***",
        "api_token": "***",
        "tokens": "***",
        "client_secret": "***",
        "user": "f",
    }
    assert mask_secrets({"passphrase": None}) == {"passphrase": None}


def test_effective_config_reads_back_to_the_same_config(
    load: Load, registry: Registry, tmp_path: Path
) -> None:
    text = """
    exclude_patterns: ['*.tmp']
    compression: {algorithm: zstd, zstd_level: 7}
    retention: {keep_within: 2, keep_daily: 7}
    hooks: {before_backup: echo hi}
    schedule: {cron: '0 3 * * *'}
    repositories:
      - url: ./repo
        label: local
        limits: {cpu: {nice: 5}}
    sources:
      - /srv/www
      - {label: etc, paths: [/etc, /usr/local/etc], repos: [local], hooks: {after: [a, b]}}
    """
    first = load(text)
    again_path = tmp_path / "again" / "vger.yaml"
    again_path.parent.mkdir()
    again_path.write_text(effective_config_text(first))
    second = validate_config(read_config(again_path, {}), registry)

    def comparable(config: Config) -> Any:
        return (
            config.repositories,
            config.sources,
            config.chunker,
            config.retention,
            config.hooks,
            dict(config.schedule),
        )

    assert comparable(second) == comparable(first)
