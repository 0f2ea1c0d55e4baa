"""``vger`` with no command: the cycle for automation."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.commands.backup import run_backup
from vger.cli.commands.check import run_check
from vger.cli.commands.compact import run_compact_command
from vger.cli.commands.prune import has_any_policy, run_prune
from vger.cli.output import emit_json
from vger.errors import EXIT_OK, EXIT_PARTIAL, VgerError


def run_cycle(ctx: click.Context) -> None:
    """backup, prune (when a retention rule is set), compact, check.

    Stops at the first failure with that step's exit code; a backup that
    committed with unreadable files (exit 3) still lets the cycle go on, and
    the 3 is reported at the end.
    """
    app: App = ctx.obj
    if app.json:
        app.json_parts = {}
    # The whole cycle is one step ("cycle": monitors see one run), and each
    # command in it is a step of its own (its hooks run as for that command).
    with app.step("cycle"):
        try:
            app.json_step = "backup"
            code = EXIT_OK
            try:
                with app.step("backup"):
                    code = run_backup(app)
                    if code:
                        raise click.exceptions.Exit(code)
            except click.exceptions.Exit as exc:
                if exc.exit_code != EXIT_PARTIAL:
                    raise
            if any(has_any_policy(app, cfg) for cfg in app.repositories()):
                app.json_step = "prune"
                with app.step("prune"):
                    # only the repositories that have a rule; the others keep everything
                    run_prune(app, only_with_policy=True)
            app.json_step = "compact"
            with app.step("compact"):
                run_compact_command(app)
            app.json_step = "check"
            with app.step("check"):
                if run_check(app, verify_data=False):
                    raise VgerError(
                        "check found problems (see above); run `vger check --verify-data` for details"
                    )
        finally:
            parts, app.json_parts = app.json_parts, None
            if parts is not None:
                emit_json(parts)  # one document, even when a step failed half-way
        if code:
            ctx.exit(code)
