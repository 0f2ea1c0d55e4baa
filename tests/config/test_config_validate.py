"""Validation against the assembled schema and the cross-key rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vger.config import Config, ConfigValidationError, load_config
from vger.config.problems import format_path
from vger.pluginmanager import Registry, load_plugins

Load = Callable[..., Config]
Problems = Callable[..., ConfigValidationError]

MINIMAL = """
repositories:
  - url: /backup/repo
sources:
  - /home/user/documents
"""


def only(error: ConfigValidationError) -> tuple[str, str]:
    """(dotted key path, message) of the single problem."""
    assert len(error.problems) == 1, str(error)
    problem = error.problems[0]
    return format_path(problem.path), problem.message


def test_minimal_file_validates(load: Load) -> None:
    config = load(MINIMAL)
    assert [r.url for r in config.repositories] == ["/backup/repo"]
    assert [s.label for s in config.sources] == ["documents"]


def test_message_format_is_file_line_path_expected_found(
    write: Callable[..., Any], problems: Problems
) -> None:
    error = problems(
        """
        repositories:
          - url: /backup/repo
            compression:
              algorithm: zstd
              zstd_levle: 5
        sources: [/home/user/documents]
        """
    )
    path = error.path
    assert str(error) == (
        f"{path}:5: repositories[0].compression.zstd_levle: expected one of the keys algorithm, zstd_level, "
        "found unknown key 'zstd_levle' (did you mean 'zstd_level'?)"
    )


@pytest.mark.parametrize(
    ("extra", "dotted", "line"),
    [
        ("colour: blue\n", "colour", 5),
        ("limits:\n  cpu:\n    max_thread: 2\n", "limits.cpu.max_thread", 7),
        ("retention:\n  keep_dayly: 3\n", "retention.keep_dayly", 6),
        ("hooks:\n  before_bakup: echo\n", "hooks.before_bakup", 6),
        ("schedule:\n  evry: 1d\n", "schedule.evry", 6),
        ("plugins:\n  disabled: [x]\n", "plugins.disabled", 6),
        ("xattrs:\n  enable: true\n", "xattrs.enable", 6),
        ("chunker:\n  avg: 4096\n", "chunker.avg", 6),
        ("encryption:\n  passfrase: x\n", "encryption.passfrase", 6),
    ],
)
def test_unknown_top_level_and_nested_keys(problems: Problems, extra: str, dotted: str, line: int) -> None:
    error = problems(MINIMAL.lstrip("\n") + extra)
    path, message = only(error)
    assert path == dotted
    assert error.problems[0].line == line
    assert f"found unknown key '{dotted.rsplit('.', 1)[-1]}'" in message


@pytest.mark.parametrize(
    ("text", "dotted", "suggestion"),
    [
        (
            """
            repositories:
              - url: /r
                lable: main
            sources: [/s]
            """,
            "repositories[0].lable",
            "label",
        ),
        (
            """
            repositories: [{url: /r}]
            sources:
              - path: /s
                exlude: ['*.o']
            """,
            "sources[0].exlude",
            "exclude",
        ),
        (
            """
            repositories: [{url: /r}]
            sources:
              - path: /s
                hooks:
                  before_backup: echo
            """,
            "sources[0].hooks.before_backup",
            None,
        ),
        (
            """
            repositories: [{url: /r}]
            sources:
              - path: /s
                command_dumps:
                  - name: a
                    command: b
                    timout: 3
            """,
            "sources[0].command_dumps[0].timout",
            "timeout",
        ),
        (
            """
            repositories:
              - url: /r
                limits:
                  network: {read_mib_per_sec: 1, write_mib_persec: 2}
            sources: [/s]
            """,
            "repositories[0].limits.network.write_mib_persec",
            "write_mib_per_sec",
        ),
        (
            """
            repositories:
              - url: /r
                encryption: {mode: none, pass: x}
            sources: [/s]
            """,
            "repositories[0].encryption.pass",
            None,
        ),
    ],
)
def test_unknown_keys_deep_down_end_the_path(
    problems: Problems, text: str, dotted: str, suggestion: str | None
) -> None:
    path, message = only(problems(text))
    assert path == dotted
    if suggestion:
        assert f"did you mean '{suggestion}'?" in message


def test_zstd_level_range(problems: Problems, load: Load) -> None:
    for bad in (0, 23, 30):
        path, message = only(problems(MINIMAL + f"compression: {{algorithm: zstd, zstd_level: {bad}}}\n"))
        assert path == "compression.zstd_level"
        assert message == f"expected an integer from 1 to 22, found {bad}"
    config = load(MINIMAL + "compression: {algorithm: zstd, zstd_level: 22}\n")
    assert config.repositories[0].compression.options["zstd_level"] == 22


def test_plugin_option_on_the_wrong_algorithm_is_rejected(problems: Problems) -> None:
    path, message = only(problems(MINIMAL + "compression: {algorithm: lz4, zstd_level: 3}\n"))
    assert path == "compression.zstd_level"
    assert "only applies when algorithm is zstd" in message
    # Absent algorithm means the default, lz4: zstd options do not apply either.
    path, _ = only(problems(MINIMAL + "compression: {zstd_level: 3}\n"))
    assert path == "compression.zstd_level"


def test_unknown_compressor_lists_installed_ones(problems: Problems) -> None:
    path, message = only(problems(MINIMAL + "compression: {algorithm: zstandard}\n"))
    assert path == "compression.algorithm"
    assert "lz4, none, zstd" in message and "'zstandard'" in message


def test_boolean_trap(problems: Problems, load: Load) -> None:
    config = load(
        """
        repositories:
          - url: /r
            label: no
        sources:
          - path: /s
            label: off
            repos: [no]
        """
    )
    assert config.repositories[0].label == "no"
    assert config.sources[0].label == "off"
    path, message = only(problems(MINIMAL + "one_file_system: yes\n"))
    assert path == "one_file_system"
    assert "expected true or false, found the string 'yes'" in message


def test_type_errors_say_what_was_found(problems: Problems) -> None:
    path, message = only(problems(MINIMAL + "exclude_patterns: '*.o'\n"))
    assert (path, message) == ("exclude_patterns", "expected a list, found the string '*.o'")
    path, message = only(problems("repositories: {url: /r}\nsources: [/s]\n"))
    assert (path, message) == ("repositories", "expected a list, found a mapping")


def test_required_keys(problems: Problems) -> None:
    error = problems("sources: [/s]\n")
    assert only(error)[0] == "repositories"
    path, message = only(problems("repositories: [{label: x}]\nsources: [/s]\n"))
    assert path == "repositories[0].url"
    assert "required" in message
    path, message = only(problems("repositories: []\nsources: [/s]\n"))
    assert (path, message) == ("repositories", "expected at least 1 entry, found an empty list")


def test_path_xor_paths(problems: Problems) -> None:
    base = "repositories: [{url: /r}]\nsources:\n"
    path, message = only(problems(base + "  - {path: /a, paths: [/b], label: x}\n"))
    assert path == "sources[0].paths" and "found both" in message
    path, message = only(problems(base + "  - {label: x}\n"))
    assert path == "sources[0].path" and "found neither" in message
    path, message = only(problems(base + "  - {paths: [/a, /b]}\n"))
    assert path == "sources[0].label" and "required with `paths`" in message


def test_duplicate_labels(problems: Problems) -> None:
    error = problems("repositories: [{url: /r}]\nsources: [/a/docs, /b/docs]\n")
    path, message = only(error)
    assert path == "sources[1]" and "'docs' again" in message
    error = problems("repositories: [{url: /r}]\nsources: [/a, {path: /b, label: a}]\n")
    assert only(error)[0] == "sources[1].label"
    error = problems("repositories: [{url: /r, label: x}, {url: /q, label: x}]\nsources: [/s]\n")
    assert only(error)[0] == "repositories[1].label"
    # a missing label defaults to the url, so the same url twice clashes too
    error = problems("repositories: [{url: /r}, {url: /r}]\nsources: [/s]\n")
    assert only(error)[0] == "repositories[1].url"


def test_repos_must_name_configured_repositories(problems: Problems) -> None:
    path, message = only(
        problems("repositories: [{url: /r, label: local}]\nsources: [{path: /s, repos: [locale]}]\n")
    )
    assert path == "sources[0].repos[0]"
    assert "did you mean 'local'?" in message


def test_schedule_every_and_cron_are_exclusive(problems: Problems, load: Load) -> None:
    path, _ = only(problems(MINIMAL + "schedule: {every: 6h, cron: '0 3 * * *'}\n"))
    assert path == "schedule.cron"
    assert load(MINIMAL + "schedule: {cron: '0 3 * * *'}\n").schedule["cron"] == "0 3 * * *"
    path, message = only(problems(MINIMAL + "schedule: {cron: '0 3 * *'}\n"))
    assert path == "schedule.cron" and "5 fields" in message
    path, message = only(problems(MINIMAL + "schedule: {every: daily}\n"))
    assert path == "schedule.every" and "30m" in message


@pytest.mark.parametrize("value", ["48h", "2d", "1w", "6m", "1y", "7", 7])
def test_keep_within_accepts(load: Load, value: Any) -> None:
    load(MINIMAL + f"retention: {{keep_within: {value!r}}}\n".replace("'", '"'))


@pytest.mark.parametrize("value", ["2x", "d", "1.5d", "-1d"])
def test_keep_within_rejects(problems: Problems, value: str) -> None:
    path, message = only(problems(MINIMAL + f'retention: {{keep_within: "{value}"}}\n'))
    assert path == "retention.keep_within"
    assert "48h" in message


def test_chunker_sizes_must_be_ordered(problems: Problems, load: Load) -> None:
    path, message = only(problems(MINIMAL + "chunker: {min_size: 4096, avg_size: 2048, max_size: 8192}\n"))
    assert path == "chunker.min_size"
    assert "min_size <= avg_size <= max_size" in message
    # defaults fill the sizes not given
    path, _ = only(problems(MINIMAL + "chunker: {max_size: 1048576}\n"))
    assert path == "chunker.max_size"
    path, message = only(problems(MINIMAL + "chunker: {min_size: 32}\n"))
    assert message == "expected an integer at least 64, found 32"
    load(MINIMAL + "chunker: {min_size: 65536, avg_size: 65536, max_size: 65536}\n")


def test_pack_sizes_must_be_ordered(problems: Problems) -> None:
    path, _ = only(
        problems("repositories: [{url: /r, min_pack_size: 1000, max_pack_size: 10}]\nsources: [/s]\n")
    )
    assert path == "repositories[0].min_pack_size"


def test_limits_shape(problems: Problems, load: Load) -> None:
    config = load(
        MINIMAL
        + "limits: {cpu: {max_threads: 2, nice: 10}, io: {read_mib_per_sec: 1.5}, network: {write_mib_per_sec: 3}}\n"
    )
    limits = config.repositories[0].limits
    assert (limits.max_threads, limits.nice, limits.io_read_mib_per_sec, limits.net_write_mib_per_sec) == (
        2,
        10,
        1.5,
        3.0,
    )
    path, _ = only(problems(MINIMAL + "limits: {cpu: {nice: 20}}\n"))
    assert path == "limits.cpu.nice"
    path, _ = only(problems(MINIMAL + "limits: {max_threads: 2}\n"))
    assert path == "limits.max_threads"
    path, _ = only(problems(MINIMAL + "limits: {io: {read_mib_per_sec: -1}}\n"))
    assert path == "limits.io.read_mib_per_sec"


def test_hooks(load: Load, problems: Problems) -> None:
    config = load(
        MINIMAL
        + "hooks:\n  before: echo a\n  after_prune: [echo b, echo c]\n  finally_mount: x\n  failed_check: y\n"
    )
    assert config.hooks["before"] == ("echo a",)
    assert config.hooks["after_prune"] == ("echo b", "echo c")
    path, message = only(problems(MINIMAL + "hooks: {before: [echo, 3]}\n"))
    assert (path, message) == ("hooks.before[1]", "expected a string, found 3")
    path, _ = only(problems(MINIMAL + "hooks: {during_backup: x}\n"))
    assert path == "hooks.during_backup"
    # source hooks: only the four kinds
    error = problems("repositories: [{url: /r}]\nsources: [{path: /s, hooks: {before_backup: x}}]\n")
    assert only(error)[0] == "sources[0].hooks.before_backup"


def test_command_dumps(load: Load, problems: Problems) -> None:
    text = "repositories: [{url: /r}]\nsources:\n  - path: /s\n    command_dumps:\n"
    config = load(text + "      - {name: db.sql, command: pg_dump db, timeout: 30}\n")
    assert config.sources[0].command_dumps[0]["name"] == "db.sql"
    path, _ = only(problems(text + "      - {name: db.sql}\n"))
    assert path == "sources[0].command_dumps[0].command"
    path, message = only(problems(text + "      - {name: ../x, command: c}\n"))
    assert path == "sources[0].command_dumps[0].name" and "'..'" in message
    path, _ = only(problems(text + "      - {name: a, command: c}\n      - {name: a, command: d}\n"))
    assert path == "sources[0].command_dumps[1].name"


def test_dumps_and_monitoring_without_plugins_name_the_type(problems: Problems, registry: Any) -> None:
    assert "nosuchdb" not in registry.names("dump") and "nosuchping" not in registry.names("monitor")
    path, message = only(problems(MINIMAL + "monitoring: [{type: nosuchping, url: x}]\n"))
    assert path == "monitoring[0].type"
    assert "no monitor plugin named 'nosuchping' is installed" in message
    assert "healthchecks" in message  # what is installed
    error = problems("repositories: [{url: /r}]\nsources: [{path: /s, dumps: [{type: nosuchdb}]}]\n")
    path, message = only(error)
    assert path == "sources[0].dumps[0].type"
    assert "'nosuchdb'" in message and "dump plugin" in message


def test_storage_options_for_schemes_without_plugins(load: Load, problems: Problems) -> None:
    config = load(
        """
        repositories:
          - url: s3://bucket/prefix
            label: s3
            region: eu-west-1
            access_key_id: AK
            secret_access_key: SK
            endpoint: https://minio.local
          - url: sftp://me@host/backups
            label: sftp
            sftp_key: ~/.ssh/other
            known_hosts: ~/.ssh/known_hosts
          - url: https://vger.example.com/repo
            label: rest
            rest_token: abc
          - url: gs://bucket/x
            label: gs
        sources: [/s]
        """
    )
    s3 = config.repository("s3")
    assert s3.options["region"] == "eu-west-1" and s3.scheme == "s3"
    assert config.repository("rest").options == {"rest_token": "abc"}
    # defaults of the backend options are filled
    assert load("repositories: [{url: 's3://b/p'}]\nsources: [/s]\n").repositories[0].options == {
        "region": "us-east-1"
    }
    path, message = only(problems("repositories: [{url: 's3://b/p', regoin: x}]\nsources: [/s]\n"))
    assert path == "repositories[0].regoin" and "did you mean 'region'?" in message
    # an option of another backend
    path, message = only(problems("repositories: [{url: 'sftp://h/p', region: x}]\nsources: [/s]\n"))
    assert path == "repositories[0].region" and "s3://" in message
    # a local repository takes no backend options (the file plugin declares none)
    path, _ = only(problems("repositories: [{url: /r, rest_token: x}]\nsources: [/s]\n"))
    assert path == "repositories[0].rest_token"
    path, _ = only(problems("repositories: [{url: 'gs://b', region: x}]\nsources: [/s]\n"))
    assert path == "repositories[0].region"


def test_encryption_modes(load: Load, problems: Problems) -> None:
    for mode in ("auto", "aes256gcm", "chacha20poly1305", "none"):
        assert load(MINIMAL + f"encryption: {{mode: {mode}}}\n").repositories[0].encryption.mode == mode
    path, message = only(problems(MINIMAL + "encryption: {mode: aes}\n"))
    assert path == "encryption.mode"
    assert "auto" in message and "aes256gcm" in message


def test_errors_are_collected_and_sorted_by_line(problems: Problems) -> None:
    error = problems(
        """
        repositories:
          - url: /r
            colour: x
        sources: [/s]
        one_file_system: no
        extra: 1
        """
    )
    assert [format_path(p.path) for p in error.problems] == [
        "repositories[0].colour",
        "one_file_system",
        "extra",
    ]
    assert len(str(error).splitlines()) == 3


def test_plugins_disable_list(load: Load) -> None:
    assert load(MINIMAL + "plugins: {disable: [monitor-x]}\n").plugins_disable == ("monitor-x",)


def test_xattrs_forms(load: Load) -> None:
    assert load(MINIMAL + "xattrs: {enabled: false}\n").sources[0].xattrs is False
    assert load(MINIMAL + "xattrs: false\n").sources[0].xattrs is False
    assert load(MINIMAL).sources[0].xattrs is True


def test_load_config_builds_the_registry_without_disabled_plugins(write: Callable[..., Any]) -> None:
    path = write(MINIMAL + "plugins: {disable: [compressor-zstd]}\n")
    asked: list[list[str]] = []

    def factory(disabled: list[str]) -> Registry:
        asked.append(disabled)
        return load_plugins(disable=disabled)

    config, registry = load_config(str(path), factory)
    assert asked == [["compressor-zstd"]]
    assert "zstd" not in registry.names("compressor")
    assert config.path == path
