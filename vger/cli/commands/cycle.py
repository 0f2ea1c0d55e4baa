"""``vger`` with no command: the cycle for automation."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.commands.backup import run_backup
from vger.cli.commands.check import run_check
from vger.errors import EXIT_ERROR


def run_cycle(ctx: click.Context) -> None:
    """backup, then check; stops at the first failure with that step's exit code.

    prune and compact join the cycle once retention and compaction exist.
    """
    app: App = ctx.obj
    code = run_backup(app)
    if code == EXIT_ERROR:
        ctx.exit(code)
    check_code = run_check(app, verify_data=False)
    ctx.exit(check_code or code)
