"""``vger compact``: rewrite packs to free the space of unreferenced blobs."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.commands.backup import pack_target
from vger.cli.output import emit_json, human_size, json_option, parse_size
from vger.maintenance.compact import plan_compact, run_compact
from vger.repository.locks import EXCLUSIVE, locked


def run_compact_command(
    app: App, threshold: float = 10.0, max_repack: int = 0, dry_run: bool = False
) -> None:
    docs = []
    with app.each_repo() as repos:
        for cfg, repo in repos:
            with locked(repo, EXCLUSIVE, "compact") as lock:
                plan = plan_compact(repo, threshold, max_repack)
                result = None
                if not dry_run and plan.needed:
                    result = run_compact(
                        repo, plan, pack_size=pack_target(repo, cfg), before_delete=lock.ensure_held
                    )
                # Half-written objects of writers that died; nobody else can be
                # writing while we hold the exclusive lock.
                remove_incomplete = getattr(repo.backend, "remove_incomplete", None)
                leftovers = remove_incomplete() if remove_incomplete and not dry_run else 0
            doc = {
                "repository": cfg.label,
                "dry_run": dry_run,
                "packs_deleted": len(plan.delete) + len(plan.orphans),
                "packs_repacked": len(plan.repack),
                "packs_kept": len(plan.keep),
                "missing_packs": [p.hex() for p in plan.missing],
                "freed_bytes": plan.freed_estimate,
                "repacked_bytes": plan.repack_bytes,
                "packs_written": result.packs_written if result else 0,
                "incomplete_removed_bytes": leftovers,
            }
            docs.append(doc)
            if not app.json and not app.quiet:
                verb = "would free" if dry_run else "freed"
                click.echo(
                    f"{cfg.label}: {verb} {human_size(plan.freed_estimate)}: {len(plan.delete)} unused packs, "
                    f"{len(plan.orphans)} unindexed packs removed, {len(plan.repack)} packs repacked "
                    f"({human_size(plan.repack_bytes)} copied)"
                    + (f", {human_size(leftovers)} of interrupted writes removed" if leftovers else "")
                )
            for pack_id in plan.missing:
                click.echo(
                    f"vger: warning: {cfg.label}: pack {pack_id.hex()} is indexed but missing; "
                    "run `vger check --repair`",
                    err=True,
                )
    if app.json:
        emit_json(docs)


@click.command("compact")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 100),
    default=10.0,
    show_default=True,
    help="Repack packs with at least this percentage of unused bytes.",
)
@click.option("--max-repack-size", help="Copy at most this much live data in one run (e.g. 2G).")
@click.option("--dry-run", is_flag=True, help="Report what would be freed; change nothing.")
@json_option
@click.pass_obj
def command(app: App, threshold: float, max_repack_size: str | None, dry_run: bool) -> None:
    """Free the space of blobs that no snapshot references."""
    with app.step("compact"):
        run_compact_command(app, threshold, parse_size(max_repack_size) if max_repack_size else 0, dry_run)
