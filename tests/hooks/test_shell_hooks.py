"""Shell hooks through the real CLI: order, aborting, failed/finally, placeholders, injection.

Every hook appends a line to ``hooks.log`` in the test's folder, so each test
reads back exactly what ran, in which order, with which values.
"""

from __future__ import annotations

import json
from typing import Any

from conftest import Vger, write_file

#: Everything a shell would love to execute, in one string; no "${" because
#: that is the config's own ${VAR} expansion.
HOSTILE = "it's \"q\" $(touch pwned1) `touch pwned2`; touch pwned3 && touch 'pwned4' | \\ *"


def log_hook(text: str) -> str:
    """A hook appending ``text`` (with its placeholders) as one line to hooks.log."""
    return f"printf '%s\\n' \"{text}\" >> hooks.log"


def read_log(vger: Vger) -> list[str]:
    path = vger.tmp / "hooks.log"
    return path.read_text().splitlines() if path.exists() else []


def setup(vger: Vger, doc: dict[str, Any], sources: tuple[str, ...] = ("s1",)) -> None:
    """Init the repository with a hook-free config (init runs hooks too), then install ``doc``."""
    for label in sources:
        write_file(vger.tmp / label / "file.txt", label.encode())
    vger.run("init")
    vger.write_config(doc)


def base(vger: Vger, sources: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "repositories": [{"url": str(vger.tmp / "repo"), "label": "main", **extra.pop("repo", {})}],
        "sources": sources,
        **extra,
    }


def snapshots(vger: Vger) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(vger.run("list", "--json").stdout)
    return result


def test_hooks_run_outermost_first_on_the_way_in_and_last_on_the_way_out(vger: Vger) -> None:
    sources = [
        {
            "path": str(vger.tmp / label),
            "label": label,
            "hooks": {
                kind: log_hook(f"source {kind} {{source_label}} {{source_path}}")
                for kind in ("before", "after", "failed", "finally")
            },
        }
        for label in ("s1", "s2")
    ]
    doc = base(
        vger,
        sources,
        repo={
            "hooks": {
                "before": log_hook("repo before {label} {repository} {command}"),
                "after_backup": log_hook("repo after_backup"),
                "after": log_hook("repo after"),
                "failed": log_hook("repo failed"),
                "finally": log_hook("repo finally"),
            }
        },
        hooks={
            "before": log_hook("before {command} [{label}] [{source_label}]"),
            "before_backup": [log_hook("before_backup 1"), log_hook("before_backup 2")],
            "after_backup": log_hook("after_backup"),
            "after": log_hook("after"),
            "failed": log_hook("failed"),
            "finally_backup": log_hook("finally_backup"),
            "finally": log_hook("finally"),
            "before_prune": log_hook("before_prune"),
        },
    )
    setup(vger, doc, ("s1", "s2"))
    vger.run("backup")
    repo, s1, s2 = vger.tmp / "repo", vger.tmp / "s1", vger.tmp / "s2"
    assert read_log(vger) == [
        "before backup [] []",
        "before_backup 1",
        "before_backup 2",
        f"repo before main {repo} backup",
        f"source before s1 {s1}",
        f"source after s1 {s1}",
        f"source finally s1 {s1}",
        f"source before s2 {s2}",
        f"source after s2 {s2}",
        f"source finally s2 {s2}",
        "repo after_backup",
        "repo after",
        "repo finally",
        "after_backup",
        "after",
        "finally_backup",
        "finally",
    ]
    assert len(snapshots(vger)) == 2


def test_a_failing_before_hook_aborts_the_backup_and_runs_failed_and_finally(vger: Vger) -> None:
    doc = base(
        vger,
        [{"path": str(vger.tmp / "s1"), "label": "s1", "hooks": {"before": log_hook("source before")}}],
        hooks={
            "before_backup": [
                log_hook("before_backup"),
                "echo 'mount failed' >&2; exit 3",
                log_hook("never"),
            ],
            "after": log_hook("after"),
            "failed": log_hook("failed: {error}"),
            "finally": log_hook("finally {command}"),
        },
    )
    setup(vger, doc)
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1  # EXIT_ERROR
    message = (
        "before_backup hook failed (exit code 3), so backup did not run: "
        "echo 'mount failed' >&2; exit 3 (last output: mount failed)"
    )
    assert proc.stderr.splitlines() == [f"vger: error: {message}"]  # the reason, without -v
    assert read_log(vger) == ["before_backup", f"failed: {message}", "finally backup"]
    assert snapshots(vger) == []


def test_a_failing_source_hook_skips_only_that_source(vger: Vger) -> None:
    doc = base(
        vger,
        [
            {
                "path": str(vger.tmp / "s1"),
                "label": "s1",
                "hooks": {
                    "before": "exit 4",
                    "failed": log_hook("s1 failed: {error}"),
                    "finally": log_hook("s1 finally"),
                },
            },
            {"path": str(vger.tmp / "s2"), "label": "s2", "hooks": {"after": log_hook("s2 after")}},
        ],
        repo={"hooks": {"failed": log_hook("repo failed: {error}"), "after": log_hook("repo after")}},
        hooks={"failed_backup": log_hook("failed_backup: {error}"), "after": log_hook("after")},
    )
    setup(vger, doc, ("s1", "s2"))
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1
    aborted = "before hook failed (exit code 4), so this source was not backed up: exit 4"
    assert f"vger: error: main: source s1: {aborted}" in proc.stderr.splitlines()
    assert read_log(vger) == [
        f"s1 failed: {aborted}",
        "s1 finally",
        "s2 after",
        f"repo failed: source s1: {aborted}",
        f"failed_backup: main: source s1: {aborted}",
    ]
    assert [s["source_label"] for s in snapshots(vger)] == ["s2"]


def test_hooks_of_other_commands_and_repository_hooks_around_each_repository(vger: Vger) -> None:
    doc = base(
        vger,
        [str(vger.tmp / "s1")],
        repo={
            "hooks": {
                "before_check": log_hook("repo before_check {label}"),
                "finally": log_hook("repo finally {command}"),
            }
        },
        hooks={
            "before": log_hook("before {command}"),
            "after_check": log_hook("after_check"),
            "before_backup": log_hook("not for check"),
        },
    )
    doc["repositories"].append(
        {
            "url": str(vger.tmp / "missing"),
            "label": "gone",
            "hooks": {"failed": log_hook("gone failed: {error}")},
        }
    )
    setup(vger, {**doc, "repositories": doc["repositories"][:1]})
    vger.write_config(doc)
    proc = vger.run("check", check=False)
    assert proc.returncode == 1  # the second repository does not exist
    lines = read_log(vger)
    assert lines[:4] == ["before check", "repo before_check main", "repo finally check", lines[3]]
    assert lines[3].startswith("gone failed: ") and "vger init" in lines[3]
    assert len(lines) == 4  # after_check does not run: check failed


#: The user's quoting around a placeholder must not matter: bare, inside double
#: quotes, inside single quotes, inside $( ) inside double quotes, and the
#: environment variable itself.
TEMPLATES = {
    "bare": "printf '%s' {value}",
    "double-quoted": "printf '%s' \"{value}\"",
    "single-quoted": "printf '%s' '{value}'",
    "in-command-substitution": "printf '%s' \"$(printf '%s' {value})\"",
    "environment": "printf '%s' \"$VGER_VALUE\"",
}


def writers(placeholder: str, variable: str) -> list[str]:
    return [
        template.replace("{value}", "{" + placeholder + "}").replace("VGER_VALUE", variable)
        + f" > {placeholder}.{name}.out"
        for name, template in TEMPLATES.items()
    ]


def test_placeholder_values_never_run_as_shell(vger: Vger) -> None:
    """An error text, a label and a path full of shell syntax arrive verbatim and run nothing."""
    missing = vger.tmp / HOSTILE
    label = "lbl " + HOSTILE
    hooks = {
        "failed": writers("error", "VGER_ERROR"),
        "finally": writers("source_label", "VGER_SOURCE_LABEL") + writers("source_path", "VGER_SOURCE_PATH"),
    }
    vger.run("init")
    vger.write_config(base(vger, [{"path": str(missing), "label": label, "hooks": hooks}]))
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1
    expected = {
        "error": f"source path {missing} does not exist",
        "source_label": label,
        "source_path": str(missing),
    }
    for placeholder, value in expected.items():
        for name in TEMPLATES:
            written = (vger.tmp / f"{placeholder}.{name}.out").read_text()
            assert written == value, f"{{{placeholder}}} {name}"
    assert sorted(p.name for p in vger.tmp.iterdir() if p.name.startswith("pwned")) == []


def test_a_hostile_repository_label_and_url_stay_data(vger: Vger) -> None:
    repo = vger.tmp / ("repo " + HOSTILE)
    label = "main'; touch pwned5; '"
    doc: dict[str, Any] = {
        "repositories": [{"url": str(repo), "label": label}],
        "sources": [str(vger.tmp / "s1")],
    }
    write_file(vger.tmp / "s1" / "a", b"a")
    vger.write_config(doc)
    vger.run("init")
    doc["repositories"][0]["hooks"] = {"after": "printf '%s|%s' '{label}' \"{repository}\" > repo.out"}
    vger.write_config(doc)
    vger.run("backup")
    assert (vger.tmp / "repo.out").read_text() == f"{label}|{repo}"
    assert not any(p.name.startswith("pwned") for p in vger.tmp.iterdir())


def test_templates_that_cannot_be_made_safe_are_refused_at_load(vger: Vger) -> None:
    hooks = {
        "before": "touch ran",
        "after_backup": ["true", "echo `basename {source_path}`"],
        "failed": "echo $(( {error} + 1 ))",
        "finally": "echo '{label}",
    }
    vger.write_config(base(vger, [str(vger.tmp / "s1")], hooks=hooks))
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1
    config = vger.config
    assert proc.stderr.splitlines() == [
        f"vger: error: {config}: hooks.after_backup[1]: {{source_path}} inside `backticks` cannot be quoted "
        "safely; use $( ) instead",
        f"vger: error: {config}: hooks.failed[0]: {{error}} inside $(( )) would be evaluated as arithmetic; "
        "use $VGER_ERROR in the shell code instead if you mean it",
        f"vger: error: {config}: hooks.finally[0]: unclosed ' quote in a hook that uses placeholders",
    ]
    assert not (vger.tmp / "ran").exists()  # refused before anything ran


def test_hook_output_goes_to_the_log(vger: Vger) -> None:
    doc = base(
        vger,
        [str(vger.tmp / "s1")],
        hooks={"before": "echo out-line; echo err-line >&2", "after": "echo broken-after; exit 2"},
    )
    setup(vger, doc)
    quiet = vger.run("backup")
    assert "out-line" not in quiet.stderr + quiet.stdout  # INFO: shown with -v
    # a warning, with the hook's last words
    assert (
        "after hook failed (exit code 2): echo broken-after; exit 2 (last output: broken-after)"
        in quiet.stderr
    )
    verbose = vger.run("-v", "backup")
    assert "vger: hook before: out-line" in verbose.stderr
    assert "vger: hook before: err-line" in verbose.stderr
    assert "vger: hook after: broken-after" in verbose.stderr
    assert "out-line" not in verbose.stdout
    assert len(snapshots(vger)) == 2  # a failing after hook changes nothing


def test_the_cycle_runs_each_commands_hooks(vger: Vger) -> None:
    doc = base(
        vger,
        [str(vger.tmp / "s1")],
        hooks={
            "before": log_hook("before {command}"),
            "after_check": log_hook("after_check"),
            "finally": log_hook("finally {command}"),
        },
    )
    setup(vger, doc)
    vger.run()
    assert read_log(vger) == [
        "before backup",
        "finally backup",
        "before compact",
        "finally compact",
        "before check",
        "after_check",
        "finally check",
    ]


def test_env_variables_carry_the_same_values(vger: Vger) -> None:
    script = "; ".join(
        f"printf '%s\\n' \"${name}\" >> env.out"
        for name in (
            "VGER_COMMAND",
            "VGER_LABEL",
            "VGER_REPOSITORY",
            "VGER_SOURCE_LABEL",
            "VGER_SOURCE_PATH",
            "VGER_ERROR",
        )
    )
    doc = base(vger, [{"path": str(vger.tmp / "s1"), "label": "s1", "hooks": {"after": script}}])
    setup(vger, doc)
    vger.run("backup")
    assert (vger.tmp / "env.out").read_text().splitlines() == [
        "backup",
        "main",
        str(vger.tmp / "repo"),
        "s1",
        str(vger.tmp / "s1"),
        "",
    ]
