"""``vger restore-dump``: stream database dumps from a snapshot back into databases."""

from __future__ import annotations

from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, error_line, json_option, warn
from vger.errors import EXIT_ERROR, SnapshotNotFound, VgerError
from vger.repository.locks import SHARED, locked
from vger.restore.dumps import open_dump, plan, snapshot_dumps


@click.command("restore-dump")
@click.option("--snapshot", "snapshot_ref", required=True, help="Snapshot id, unique prefix, or 'latest'.")
@click.option("-S", "--source", "source_label", help="With 'latest': the newest snapshot of this source.")
@click.option("--host", help="Restore into this host instead of the recorded one.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Restore into this port instead of the recorded one."
)
@click.option("--username", help="Connect as this user instead of the recorded one.")
@click.option("--database", help="Restore into this database (or SQLite file); needs exactly one NAME.")
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; run nothing.")
@click.argument("names", nargs=-1)
@json_option
@click.pass_obj
def command(
    app: App,
    snapshot_ref: str,
    source_label: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
    database: str | None,
    dry_run: bool,
    names: tuple[str, ...],
) -> None:
    """Restore the dumps NAMES (default: every dump) of a snapshot with their database tools."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("host", host), ("port", port), ("username", username), ("database", database))
        if value is not None
    }
    with app.step("restore-dump"):
        misses: list[str] = []
        with app.each_repo() as repos:
            for cfg, repo in repos:
                try:
                    snap = repo.resolve_snapshot(snapshot_ref, source_label)
                except SnapshotNotFound as exc:
                    misses.append(str(exc))
                    continue
                with locked(repo, SHARED, "restore-dump"):
                    planned = plan(
                        app.config, app.registry, snap, snapshot_dumps(repo, snap), names, overrides
                    )
                    docs: list[dict[str, Any]] = []
                    failed = False
                    for step in planned:
                        doc: dict[str, Any] = {
                            "name": step.name,
                            "type": step.record.get("type"),
                            "command": step.describe(),
                            "status": "planned" if dry_run else "restored",
                        }
                        docs.append(doc)
                        if step.restorer is None:
                            doc["status"] = "skipped"
                            if not app.json:
                                warn(f"{step.name}: {step.describe()}")
                            continue
                        if dry_run:
                            if not app.json:
                                click.echo(f"{step.name}: {step.describe()}")
                            continue
                        try:
                            with open_dump(repo, step.item) as data:
                                step.restorer.run(data)
                        except VgerError as exc:
                            failed = True
                            doc["status"] = "failed"
                            doc["error"] = str(exc)
                            error_line(f"{step.name}: {exc}")
                            continue
                        if not app.json and not app.quiet:
                            click.echo(f"restored {step.name}: {step.describe()}")
                if app.json:
                    emit_json(
                        {
                            "repository": cfg.label,
                            "snapshot": snap.hex_id,
                            "dry_run": dry_run,
                            "dumps": docs,
                        }
                    )
                if failed:
                    raise click.exceptions.Exit(EXIT_ERROR)
                return  # the first repository that has the snapshot is enough
        raise SnapshotNotFound("; ".join(misses) or "no repository selected")
