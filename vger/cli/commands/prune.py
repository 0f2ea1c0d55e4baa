"""``vger prune``: apply the retention policy per source label."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option, table
from vger.config.model import RepositoryConfig, RetentionConfig
from vger.errors import ConfigError
from vger.maintenance.prune import delete_snapshot, plan_prune
from vger.repository.locks import EXCLUSIVE, locked


def policy_lookup(app: App, cfg: RepositoryConfig) -> Any:
    """Most specific policy wins: the source's own, else the repository's (which falls back to global)."""
    by_label = {s.label: s for s in app.config.sources}

    def policy_for(label: str) -> RetentionConfig | None:
        source = by_label.get(label)
        if source is not None and source.retention is not None and not source.retention.is_empty:
            return source.retention
        return cfg.retention

    return policy_for


def has_any_policy(app: App, cfg: RepositoryConfig) -> bool:
    policies = [cfg.retention, *(s.retention for s in app.config.sources)]
    return any(p is not None and not p.is_empty for p in policies)


def run_prune(
    app: App, dry_run: bool = False, show_list: bool = False, only_with_policy: bool = False
) -> None:
    """Prune the selected repositories.

    A repository without any retention rule is an error, found before anything
    is touched (so a refusal never leaves one repository pruned and the next
    not); ``only_with_policy`` (the automation cycle) skips such repositories.
    """
    docs: list[dict[str, Any]] = []
    without = [cfg.label for cfg in app.repositories() if not has_any_policy(app, cfg)]
    if without and not only_with_policy:
        raise ConfigError(
            f"{', '.join(without)}: no retention rule is set, so prune would not know what to keep; add a "
            "`retention:` block (globally, per repository or per source)"
        )
    with app.each_repo() as repos:
        for cfg, repo in repos:
            if cfg.label in without:
                continue
            with locked(repo, EXCLUSIVE, "prune") if not dry_run else contextlib.nullcontext():
                entries = plan_prune(repo, policy_lookup(app, cfg))
                doomed = [e for e in entries if not e.keep]
                if not dry_run:
                    for entry in doomed:
                        delete_snapshot(repo, entry.snapshot)
            for entry in entries:
                docs.append(
                    {
                        "repository": cfg.label,
                        "snapshot": entry.snapshot.hex_id,
                        "time": entry.snapshot.time_iso,
                        "source_label": entry.snapshot.source_label,
                        "keep": entry.keep,
                        "reason": entry.reason,
                    }
                )
            if app.json or app.quiet:
                continue
            if show_list or dry_run:
                rows = [
                    (
                        e.snapshot.short_id,
                        dt.datetime.fromtimestamp(e.snapshot.time_start).strftime("%Y-%m-%d %H:%M:%S"),
                        e.snapshot.source_label,
                        e.reason,
                    )
                    for e in entries
                ]
                click.echo(table(("ID", "TIME", "SOURCE", "KEPT BECAUSE"), rows))
            verb = "would prune" if dry_run else "pruned"
            click.echo(
                f"{cfg.label}: {verb} {len(doomed)} of {len(entries)} snapshots"
                + ("" if dry_run or not doomed else "; run `vger compact` to free their space")
            )
    if app.json:
        emit_json(docs)


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="Show what would be pruned; delete nothing.")
@click.option("--list", "show_list", is_flag=True, help="List every snapshot with the rule that keeps it.")
@json_option
@click.pass_obj
def command(app: App, dry_run: bool, show_list: bool) -> None:
    """Apply retention per source label (keep_within / last / hourly / daily / weekly / monthly / yearly)."""
    with app.step("prune"):
        run_prune(app, dry_run, show_list)
