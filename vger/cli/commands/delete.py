"""``vger delete``: forget one snapshot."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option
from vger.errors import SnapshotNotFound
from vger.maintenance.prune import delete_snapshot
from vger.repository.locks import EXCLUSIVE, locked


@click.command("delete")
@click.option("--snapshot", "snapshot_ref", required=True, help="Snapshot id or unique prefix.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@json_option
@click.pass_obj
def command(app: App, snapshot_ref: str, dry_run: bool) -> None:
    """Forget one snapshot (its space comes back with `vger compact`)."""
    with app.step("delete"):
        if snapshot_ref == "latest":
            raise click.UsageError("delete needs an explicit snapshot id, not 'latest'")
        deleted = []
        misses = []
        with app.each_repo() as repos:
            for cfg, repo in repos:
                try:
                    snap = repo.resolve_snapshot(snapshot_ref)
                except SnapshotNotFound as exc:
                    misses.append(str(exc))
                    continue
                if not dry_run:
                    with locked(repo, EXCLUSIVE, "delete"):
                        delete_snapshot(repo, snap)
                deleted.append({"repository": cfg.label, "snapshot": snap.hex_id, "dry_run": dry_run})
                if not app.json and not app.quiet:
                    verb = "would delete" if dry_run else "deleted"
                    click.echo(
                        f"{cfg.label}: {verb} snapshot {snap.short_id} ({snap.source_label}, {snap.time_iso})"
                    )
        if not deleted:
            raise SnapshotNotFound("; ".join(misses) or "no repository selected")
        if app.json:
            emit_json(deleted)
