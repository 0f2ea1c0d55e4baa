"""``vger check``: verify repository structure, and with --verify-data every byte."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.output import emit_json, error_line, json_option
from vger.errors import EXIT_ERROR
from vger.maintenance.check import check_repository
from vger.maintenance.repair import repair_repository
from vger.repository.locks import EXCLUSIVE, SHARED, locked


def run_check(app: App, verify_data: bool, repair: bool = False) -> int:
    docs = []
    code = 0
    with app.each_repo() as repos:
        for cfg, repo in repos:
            repair_doc = None
            if repair:
                with locked(repo, EXCLUSIVE, "check --repair"):
                    fixed = repair_repository(repo, app.compressor(cfg), app.chunker_factory(), verify_data)
                repair_doc = {"actions": fixed.actions, "unrecoverable": fixed.unrecoverable}
                if not app.json:
                    for action in fixed.actions:
                        click.echo(f"{cfg.label}: repair: {action}")
                    for problem in fixed.unrecoverable:
                        error_line(f"{cfg.label}: cannot repair: {problem}")
            # Shared: a compact running meanwhile would make packs vanish mid-check.
            with locked(repo, SHARED, "check"):
                report = check_repository(repo, verify_data=verify_data, threads=cfg.limits.max_threads or 2)
            docs.append(
                {
                    "repository": cfg.label,
                    "ok": report.ok,
                    "verify_data": verify_data,
                    "snapshots": report.snapshots,
                    "packs": report.packs,
                    "chunks": report.chunks,
                    "errors": report.errors,
                    "warnings": report.warnings,
                    **({"repair": repair_doc} if repair_doc is not None else {}),
                }
            )
            if not app.json:
                for warning in report.warnings:
                    click.echo(f"vger: warning: {cfg.label}: {warning}", err=True)
                for error in report.errors:
                    error_line(f"{cfg.label}: {error}")
                if not app.quiet:
                    verdict = "OK" if report.ok else f"{len(report.errors)} problems"
                    click.echo(
                        f"{cfg.label}: {verdict}: {report.snapshots} snapshots, {report.packs} packs, "
                        f"{report.chunks} chunks{' (data verified)' if verify_data else ''}"
                    )
            if not report.ok:
                code = EXIT_ERROR
    if app.json:
        emit_json(docs)
    return code


@click.command("check")
@click.option("--verify-data", is_flag=True, help="Read every pack and verify every chunk.")
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild the index from the packs and drop files whose chunks are gone (never deletes readable data).",
)
@json_option
@click.pass_obj
def command(app: App, verify_data: bool, repair: bool) -> None:
    """Check repository structure (and with --verify-data every blob)."""
    with app.step("check"):
        code = run_check(app, verify_data, repair)
        if code:
            raise click.exceptions.Exit(code)
