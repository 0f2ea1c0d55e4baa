"""The frozen model: defaults, inheritance, path resolution, lookups."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from vger.config import Config, RetentionConfig
from vger.errors import ConfigError

Load = Callable[..., Config]


def test_defaults_match_the_spec(load: Load) -> None:
    config = load("repositories: [{url: /backup/repo}]\nsources: [/home/user/documents]\n")
    repo = config.repositories[0]
    assert repo.label == "/backup/repo"
    assert (repo.min_pack_size, repo.max_pack_size) == (32 * 1024 * 1024, 512 * 1024 * 1024)
    assert repo.encryption.mode == "auto" and repo.encryption.passphrase is None
    assert repo.compression.algorithm == "lz4"
    assert dict(repo.compression.options) == {"algorithm": "lz4"}
    assert repo.retention is None
    assert repo.limits.max_threads == 0 and repo.limits.net_write_mib_per_sec == 0.0
    chunker = config.chunker
    assert (chunker.algorithm, chunker.min_size, chunker.avg_size, chunker.max_size) == (
        "fastcdc",
        524288,
        2097152,
        8388608,
    )
    assert chunker.options["normalized_chunking"] == 1  # the plugin's own default
    source = config.sources[0]
    assert (source.label, source.paths) == ("documents", ("/home/user/documents",))
    assert (source.one_file_system, source.git_ignore, source.xattrs, source.repos) == (
        True,
        False,
        True,
        None,
    )
    assert config.schedule["enabled"] is False
    assert config.monitoring == () and config.plugins_disable == ()


def test_plugin_defaults_fill_the_compression_block(load: Load) -> None:
    config = load("repositories: [{url: /r}]\nsources: [/s]\ncompression: {algorithm: zstd}\n")
    assert dict(config.repositories[0].compression.options) == {"algorithm": "zstd", "zstd_level": 3}


def test_repository_overrides_replace_top_level_blocks(load: Load) -> None:
    config = load(
        """
        encryption: {mode: aes256gcm, passphrase: top-secret}
        compression: {algorithm: zstd, zstd_level: 9}
        retention: {keep_daily: 7}
        limits: {cpu: {max_threads: 2}, io: {read_mib_per_sec: 10}}
        repositories:
          - url: /a
            label: a
          - url: /b
            label: b
            encryption: {mode: chacha20poly1305}
            compression: {algorithm: lz4}
            retention: {keep_last: 3}
            limits: {network: {write_mib_per_sec: 5}}
            hooks: {before: echo b}
          - url: /c
            label: c
            encryption: {passcommand: pass show c}
        sources: [/s]
        """
    )
    a, b, c = config.repositories
    assert (a.encryption.mode, a.encryption.passphrase) == ("aes256gcm", "top-secret")
    assert a.compression.options["zstd_level"] == 9
    assert a.retention == RetentionConfig(keep_daily=7)
    assert (a.limits.max_threads, a.limits.io_read_mib_per_sec) == (2, 10.0)
    # the top-level passphrase is inherited by a repository choosing its own cipher
    assert (b.encryption.mode, b.encryption.passphrase) == ("chacha20poly1305", "top-secret")
    assert dict(b.compression.options) == {"algorithm": "lz4"}
    assert b.retention == RetentionConfig(keep_last=3)
    # limits are replaced whole, not merged
    assert (b.limits.max_threads, b.limits.io_read_mib_per_sec, b.limits.net_write_mib_per_sec) == (
        0,
        0.0,
        5.0,
    )
    assert b.hooks == {"before": ("echo b",)} and a.hooks == {}
    # setting a passcommand means the top-level passphrase is not used
    assert (c.encryption.mode, c.encryption.passphrase, c.encryption.passcommand) == (
        "auto",
        None,
        "pass show c",
    )


def test_relative_paths_resolve_against_the_config_folder(
    load: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("HOME", "/home/tester")
    config = load(
        """
        repositories:
          - url: ./repo
          - url: other/repo
          - url: ~/repo
          - url: file:///srv/repo
          - url: s3://bucket/x
        sources: [./data, ~/docs, /abs/path/]
        """
    )
    urls = [r.url for r in config.repositories]
    assert urls == [
        str(tmp_path / "repo"),
        str(tmp_path / "other" / "repo"),
        "/home/tester/repo",
        "file:///srv/repo",
        "s3://bucket/x",
    ]
    # labels default to the url as written: it is what users type after -R
    assert config.repositories[0].label == "./repo"
    assert [s.paths[0] for s in config.sources] == [str(tmp_path / "data"), "/home/tester/docs", "/abs/path"]
    assert [s.label for s in config.sources] == ["data", "docs", "path"]


def test_sources_inherit_top_level_settings(load: Load) -> None:
    config = load(
        """
        exclude_patterns: ['*.tmp']
        exclude_if_present: [.nobackup]
        one_file_system: false
        git_ignore: true
        xattrs: {enabled: false}
        repositories: [{url: /r, label: r}]
        sources:
          - /plain
          - path: /rich
            exclude: ['*.o']
          - label: own
            paths: [/x, /y]
            exclude_if_present: [CACHEDIR.TAG]
            one_file_system: true
            git_ignore: false
            xattrs: {enabled: true}
            repos: [r]
            retention: {keep_within: 3}
        """
    )
    plain, rich, own = config.sources
    assert plain.exclude == ("*.tmp",) and plain.exclude_if_present == (".nobackup",)
    assert (plain.one_file_system, plain.git_ignore, plain.xattrs) == (False, True, False)
    assert rich.exclude == ("*.tmp", "*.o")
    assert (rich.label, rich.one_file_system) == ("rich", False)
    assert own.paths == ("/x", "/y")
    assert own.exclude_if_present == ("CACHEDIR.TAG",)
    assert (own.one_file_system, own.git_ignore, own.xattrs, own.repos) == (True, False, True, ("r",))
    assert own.retention == RetentionConfig(keep_within="3d")  # a bare number means days


def test_lookups(load: Load, tmp_path: Path) -> None:
    config = load(
        """
        repositories:
          - {url: /a, label: a}
          - {url: ./b}
        sources:
          - /s1
          - {path: /s2, repos: [a]}
        """
    )
    assert config.repository("a").url == "/a"
    assert config.repository("/a").label == "a"
    assert config.repository("./b").url == str(tmp_path / "b")
    assert config.repository(str(tmp_path / "b")).label == "./b"
    with pytest.raises(ConfigError, match=r"known repositories: a, \./b"):
        config.repository("c")
    assert [s.label for s in config.sources_for("a")] == ["s1", "s2"]
    assert [s.label for s in config.sources_for(config.repositories[1])] == ["s1"]
    assert config.source("s2").repos == ("a",)
    with pytest.raises(ConfigError, match="known sources: s1, s2"):
        config.source("s3")


def test_model_is_read_only(load: Load) -> None:
    config = load(
        "repositories: [{url: /r}]\nsources: [{path: /s, command_dumps: [{name: a, command: b}]}]\n"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.repositories[0].url = "/x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.sources[0].command_dumps[0]["name"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.data["sources"] = ()  # type: ignore[index]
    assert isinstance(config.repositories, tuple) and isinstance(config.data["repositories"], tuple)
    hash(config.repositories[0])  # usable as a dict key


def test_passphrase_is_not_in_repr(load: Load) -> None:
    config = load("repositories: [{url: /r}]\nsources: [/s]\nencryption: {passphrase: hunter2}\n")
    assert "hunter2" not in repr(config.repositories[0])


@pytest.mark.parametrize(
    ("retention", "empty"),
    [
        (RetentionConfig(), True),
        (RetentionConfig(keep_daily=0), True),
        (RetentionConfig(keep_within="0d"), True),
        (RetentionConfig(keep_within="2d"), False),
        (RetentionConfig(keep_within="2"), False),
        (RetentionConfig(keep_last=1), False),
    ],
)
def test_retention_is_empty(retention: RetentionConfig, empty: bool) -> None:
    assert retention.is_empty is empty


def test_schedule_defaults(load: Load) -> None:
    base = "repositories: [{url: /r}]\nsources: [/s]\n"
    schedule = load(base + "schedule: {on_startup: true}\n").schedule
    assert dict(schedule) == {
        "enabled": True,
        "every": "1d",
        "cron": None,
        "on_startup": True,
        "jitter_seconds": 0,
    }
    assert load(base + "schedule: {enabled: false, every: 6h}\n").schedule["enabled"] is False


def test_plugin_names_used(load: Load) -> None:
    config = load(
        "repositories: [{url: /r, compression: {algorithm: zstd}}, {url: 's3://b/x'}]\n"
        "sources: [/s]\nencryption: {mode: none}\n"
    )
    used = config.plugin_names_used()
    assert used["compressor"] == {"zstd", "lz4"}
    assert used["cipher"] == {"none"}
    assert used["scheme"] == {"file", "s3"}
    assert used["chunker"] == {"fastcdc"}
