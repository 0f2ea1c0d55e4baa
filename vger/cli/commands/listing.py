"""``vger list``: snapshots, or the entries of one snapshot."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterable
from typing import Any

import click

from vger.backup.dumps import dump_items
from vger.cli.app import App
from vger.cli.output import emit_json, human_size, json_option, table
from vger.config.model import RepositoryConfig
from vger.errors import SnapshotNotFound
from vger.repository.items import Item, describe, display_path
from vger.repository.snapshot import Snapshot


def snapshot_doc(cfg: RepositoryConfig, snap: Snapshot) -> dict[str, Any]:
    return {
        "id": snap.hex_id,
        "short_id": snap.short_id,
        "time": snap.time_iso,
        "time_end": dt.datetime.fromtimestamp(snap.time_end, dt.UTC).isoformat().replace("+00:00", "Z"),
        "source_label": snap.source_label,
        "label": snap.label,
        "hostname": snap.hostname,
        "username": snap.username,
        "source_paths": snap.source_paths,
        "repository": cfg.label,
        "stats": {
            "files": snap.stats.files,
            "original_size": snap.stats.original_size,
            "compressed_size": snap.stats.compressed_size,
            "deduplicated_size": snap.stats.deduplicated_size,
            "errors": snap.stats.errors,
        },
    }


@click.command("list")
@click.option("-S", "--source", "source_label", help="Only snapshots of this source label.")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N snapshots.")
@click.option(
    "--snapshot", "snapshot_ref", help="List the entries inside this snapshot (id, prefix or latest)."
)
@click.option("--dumps", "only_dumps", is_flag=True, help="With --snapshot: list the dumps it holds.")
@click.argument("path", required=False)
@json_option
@click.pass_obj
def command(
    app: App,
    source_label: str | None,
    last: int | None,
    snapshot_ref: str | None,
    only_dumps: bool,
    path: str | None,
) -> None:
    """List snapshots, or with --snapshot the entries inside one (optionally below PATH)."""
    with app.step("list"):
        if path and not snapshot_ref:
            raise click.UsageError("PATH needs --snapshot")
        if only_dumps and not snapshot_ref:
            raise click.UsageError("--dumps needs --snapshot")
        docs: list[dict[str, Any]] = []
        misses: list[str] = []
        found = False
        with app.each_repo() as repos:
            for cfg, repo in repos:
                if snapshot_ref:
                    try:
                        snap = repo.resolve_snapshot(snapshot_ref, source_label)
                    except SnapshotNotFound as exc:
                        misses.append(str(exc))
                        continue
                    found = True
                    if only_dumps:
                        _list_dumps(app, cfg, repo.iter_items(snap), snap, docs)
                        break
                    prefix = path.strip("/").encode() if path else b""
                    for item in repo.iter_items(snap):
                        p = item["path"]
                        if prefix and not (p == prefix or p.startswith(prefix + b"/")):
                            continue
                        if app.json:
                            docs.append({**describe(item), "repository": cfg.label, "snapshot": snap.hex_id})
                        else:
                            _print_item(item)
                    break  # the first repository holding the snapshot, as restore does

                snaps = repo.snapshots()
                if source_label:
                    snaps = [s for s in snaps if s.source_label == source_label]
                if last:
                    snaps = snaps[-last:]
                if app.json:
                    docs.extend(snapshot_doc(cfg, s) for s in snaps)
                    continue
                if len(app.repositories()) > 1:
                    click.echo(f"{cfg.label}:")
                rows = [
                    (
                        s.short_id,
                        dt.datetime.fromtimestamp(s.time_start).strftime("%Y-%m-%d %H:%M:%S"),
                        s.source_label,
                        s.label,
                        s.hostname,
                        s.stats.files,
                        human_size(s.stats.original_size),
                    )
                    for s in snaps
                ]
                click.echo(
                    table(("ID", "TIME", "SOURCE", "LABEL", "HOST", "FILES", "SIZE"), rows, right=(5, 6))
                )
        if snapshot_ref and not found:
            raise SnapshotNotFound("; ".join(misses) or "no repository selected")
        if app.json:
            emit_json(docs)


def _print_item(item: dict[str, Any]) -> None:
    # .get everywhere: a damaged or hostile item must not crash the listing.
    try:
        mtime = dt.datetime.fromtimestamp(int(item.get("mtime", 0)) / 1e9).strftime("%Y-%m-%d %H:%M:%S")
        mode = stat.filemode(int(item.get("mode", 0)))
    except (TypeError, ValueError, OverflowError, OSError):
        mtime, mode = "?", "?"
    owner = f"{item.get('user', item.get('uid', '?'))}:{item.get('group', item.get('gid', '?'))}"
    line = f"{mode} {owner:<16} {item.get('size', 0):>12} {mtime}  {display_path(item['path'])}"
    target = item.get("target")
    if isinstance(target, bytes):
        arrow = " => " if item.get("type") == "hardlink" else " -> "
        line += arrow + display_path(target)
    click.echo(line)


#: Record keys shown as columns by ``list --dumps`` (the rest is in ``--json``).
_DUMP_COLUMNS = ("database", "host", "port", "format")


def _list_dumps(
    app: App, cfg: RepositoryConfig, items: Iterable[Item], snap: Snapshot, docs: list[dict[str, Any]]
) -> None:
    rows = []
    for item in dump_items(items):
        record = item["dump"]
        if app.json:
            docs.append(
                {
                    "repository": cfg.label,
                    "snapshot": snap.hex_id,
                    "name": record.get("name"),
                    "type": record.get("type"),
                    "path": display_path(item["path"]),
                    "size": item.get("size", 0),
                    "record": record,
                }
            )
            continue
        rows.append(
            (
                record.get("name"),
                record.get("type"),
                *("" if record.get(key) is None else record.get(key) for key in _DUMP_COLUMNS),
                human_size(int(item.get("size", 0))),
            )
        )
    if not app.json:
        click.echo(table(("NAME", "TYPE", "DATABASE", "HOST", "PORT", "FORMAT", "SIZE"), rows, right=(4, 6)))
