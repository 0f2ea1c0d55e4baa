"""``vger find``: where a path pattern appears across snapshots, with its change timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, human_size, json_option, table
from vger.maintenance.find import compile_pattern, find
from vger.maintenance.find import to_json as timeline_json
from vger.repository.items import display_path


def _local(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@click.command("find")
@click.argument("pattern")
@click.option("-S", "--source", "source_label", help="Only snapshots of this source label.")
@json_option
@click.pass_obj
def command(app: App, pattern: str, source_label: str | None) -> None:
    """Paths matching PATTERN in every snapshot (oldest first), with when each was added, modified, removed.

    PATTERN is a glob (* ? [...]); without '/' it matches base names ('*.conf'), with '/' whole
    paths, with or without the leading slash ('/etc/*.conf', 'home/*/notes.txt').
    """
    with app.step("find"):
        match = compile_pattern(pattern)
        docs: list[dict[str, Any]] = []
        several = len(app.repositories()) > 1
        with app.each_repo() as repos:
            for cfg, repo in repos:
                snaps = repo.snapshots()
                if source_label:
                    snaps = [s for s in snaps if s.source_label == source_label]
                found = find(snaps, repo.iter_items, match)
                if app.json:
                    docs.extend({"repository": cfg.label, **timeline_json(p, t)} for p, t in found)
                    continue
                if several:
                    click.echo(f"{cfg.label}:")
                for path, timeline in found:
                    click.echo(display_path(path))
                    rows = [
                        (
                            a.snapshot.short_id,
                            _local(a.snapshot.time_start),
                            a.snapshot.source_label,
                            a.status,
                            human_size(a.size) if a.size is not None else "",
                            _local(a.mtime / 1e9) if a.mtime is not None else "",
                        )
                        for a in timeline
                    ]
                    body = table(("SNAPSHOT", "TIME", "SOURCE", "STATUS", "SIZE", "MTIME"), rows, right=(4,))
                    for line in body.splitlines():
                        click.echo(f"  {line}")
                paths = len(found)
                click.echo(
                    f"{paths} path{'s' if paths != 1 else ''} matching {pattern!r} in {len(snaps)} snapshots"
                )
        if app.json:
            emit_json(docs)
