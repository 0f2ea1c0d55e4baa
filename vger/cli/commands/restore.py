"""``vger restore``: restore all or part of a snapshot."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, human_size, json_option, warn
from vger.cli.progress import make_progress
from vger.errors import EXIT_ERROR, SnapshotNotFound
from vger.repository.locks import SHARED, locked
from vger.restore.restorer import OVERWRITE_MODES, Restorer, Selection


def _xattrs_wanted(app: App, source_label: str) -> bool:
    """``xattrs.enabled`` of the snapshot's source (true when that source is no longer configured)."""
    for source in app.config.sources:
        if source.label == source_label:
            return source.xattrs
    return True


@click.command("restore")
@click.option("--snapshot", "snapshot_ref", required=True, help="Snapshot id, unique prefix, or 'latest'.")
@click.option("-S", "--source", "source_label", help="With 'latest': the newest snapshot of this source.")
@click.option(
    "--dest", default=".", show_default=True, type=click.Path(file_okay=False), help="Destination folder."
)
@click.option(
    "--include", multiple=True, help="Only paths matching this gitignore-style pattern (repeatable)."
)
@click.option("--exclude", multiple=True, help="Skip paths matching this pattern (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what would be restored; write nothing.")
@click.option(
    "--overwrite",
    type=click.Choice(OVERWRITE_MODES),
    default="never",
    show_default=True,
    help="What to do with files that already exist in the destination.",
)
@click.argument("paths", nargs=-1)
@json_option
@click.pass_obj
def command(
    app: App,
    snapshot_ref: str,
    source_label: str | None,
    dest: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    dry_run: bool,
    overwrite: str,
    paths: tuple[str, ...],
) -> None:
    """Restore a snapshot (or PATHS inside it) under --dest; never writes outside it."""
    with app.step("restore"):
        found = None
        misses = []
        with app.each_repo() as repos:
            for cfg, repo in repos:
                try:
                    snap = repo.resolve_snapshot(snapshot_ref, source_label)
                except SnapshotNotFound as exc:
                    misses.append(str(exc))
                    continue
                found = snap
                progress = (
                    None
                    if dry_run
                    else make_progress(app, f"restore {snap.short_id}", snap.stats.original_size)
                )
                display: contextlib.AbstractContextManager[Any] = progress or contextlib.nullcontext()
                restorer = Restorer(
                    repo,
                    dest,
                    selection=Selection(paths, include, exclude),
                    overwrite=overwrite,
                    dry_run=dry_run,
                    progress=progress,
                    threads=cfg.limits.max_threads * 2 if cfg.limits.max_threads else 0,
                    xattrs=_xattrs_wanted(app, snap.source_label),
                )
                # A shared lock: a concurrent compact must not remove packs under us.
                with locked(repo, SHARED, "restore"), display:
                    result = restorer.run(snap)
                if app.json:
                    emit_json(
                        {
                            "repository": cfg.label,
                            "snapshot": snap.hex_id,
                            "dest": restorer.dest,
                            "dry_run": dry_run,
                            "files": result.files,
                            "bytes": result.bytes,
                            "entries": result.entries,
                            "skipped": result.skipped,
                            "errors": [{"path": p, "error": m} for p, m in result.errors],
                            **({"planned": result.planned} if dry_run else {}),
                        }
                    )
                elif dry_run:
                    for path in result.planned:
                        click.echo(path)
                    click.echo(f"would restore {result.entries} entries ({human_size(result.bytes)})")
                elif not app.quiet:
                    click.echo(
                        f"restored {result.files} files, {result.entries} entries "
                        f"({human_size(result.bytes)}) from {snap.short_id} to {restorer.dest}"
                    )
                if result.skipped and not app.json:
                    warn(f"{len(result.skipped)} existing entries left untouched (see --overwrite)")
                for path, message in result.errors:
                    warn(f"{path}: {message}")
                if result.errors:
                    raise click.exceptions.Exit(EXIT_ERROR)
                break  # the first repository that has the snapshot is enough
        if found is None:
            raise SnapshotNotFound("; ".join(misses) or "no repository selected")
