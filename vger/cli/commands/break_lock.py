"""``vger break-lock``: remove locks left behind by crashed processes."""

from __future__ import annotations

import sys

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option
from vger.errors import ObjectNotFound, VgerError
from vger.repository.locks import read_locks


@click.command("break-lock")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--all", "all_locks", is_flag=True, help="Also remove locks that look alive (dangerous).")
@json_option
@click.pass_obj
def command(app: App, yes: bool, all_locks: bool) -> None:
    """Remove stale locks (dead process on this host, or not refreshed within the TTL)."""
    removed = []
    with app.each_repo() as repos:
        for cfg, repo in repos:
            for info in read_locks(repo):
                reason = info.stale_reason()
                if reason is None and not all_locks:
                    click.echo(
                        f"{cfg.label}: keeping live {info.describe()} (use --all to remove it anyway)",
                        err=True,
                    )
                    continue
                if not yes:
                    if not sys.stdin.isatty():
                        raise VgerError(
                            "break-lock asks for confirmation; run it on a terminal or pass --yes"
                        )
                    click.confirm(f"{cfg.label}: remove {info.describe()} ({reason or 'alive'})?", abort=True)
                try:
                    repo.backend.delete(info.key)
                except ObjectNotFound:
                    pass
                removed.append({"repository": cfg.label, "lock": info.key, "holder": info.describe()})
                if not app.json and not app.quiet:
                    click.echo(f"{cfg.label}: removed {info.describe()}")
    if app.json:
        emit_json(removed)
    elif not removed and not app.quiet:
        click.echo("no stale locks")
