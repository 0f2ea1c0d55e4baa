"""``vger diff``: what changed between two snapshots."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option
from vger.errors import SnapshotNotFound
from vger.maintenance.diff import diff_items, normalize_prefix
from vger.repository.items import display_path


@click.command("diff")
@click.argument("first")
@click.argument("second")
@click.argument("path", required=False)
@click.option("-S", "--source", "source_label", help="With 'latest': the newest snapshot of this source.")
@json_option
@click.pass_obj
def command(app: App, first: str, second: str, path: str | None, source_label: str | None) -> None:
    """Entries added (+), removed (-), modified (M) and with changed metadata (m) from FIRST to SECOND.

    FIRST and SECOND are snapshot ids, unique prefixes or 'latest'; PATH limits the comparison to
    that entry and what is below it. With several repositories the first one holding both
    snapshots is used (pick one with -R).
    """
    with app.step("diff"):
        misses: list[str] = []
        with app.each_repo() as repos:
            for cfg, repo in repos:
                try:
                    old = repo.resolve_snapshot(first, source_label)
                    new = repo.resolve_snapshot(second, source_label)
                except SnapshotNotFound as exc:
                    misses.append(str(exc))
                    continue
                result = diff_items(repo.iter_items(old), repo.iter_items(new), normalize_prefix(path))
                if app.json:
                    emit_json(
                        {
                            "repository": cfg.label,
                            "from": old.hex_id,
                            "to": new.hex_id,
                            "path": path,
                            "added": [display_path(p) for p in result.added],
                            "removed": [display_path(p) for p in result.removed],
                            "modified": [display_path(p) for p in result.modified],
                            "metadata_changed": [
                                {"path": display_path(p), "fields": fields}
                                for p, fields in result.metadata_changed
                            ],
                        }
                    )
                    return
                for entry_path, marker, suffix in result.lines():
                    click.echo(f"{marker} {display_path(entry_path)}{suffix}")
                click.echo(
                    f"{len(result.added)} added, {len(result.removed)} removed, {len(result.modified)} modified, "
                    f"{len(result.metadata_changed)} metadata changed ({old.short_id} -> {new.short_id})"
                )
                return
        raise SnapshotNotFound("; ".join(misses) or "no repository selected")
