"""``vger key``: change the passphrase, export and import the repository key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option
from vger.crypto.passphrase import get_passphrase
from vger.errors import VgerError
from vger.repository.repository import export_key_text, import_key_text

NEW_PASSPHRASE_ENV = "VGER_NEW_PASSPHRASE"


def _report(app: App, doc: dict[str, Any], text: str) -> None:
    if app.json:
        emit_json(doc)
    elif not app.quiet:
        click.echo(text)


@click.group("key")
def command() -> None:
    """Key management: change-passphrase, export, import."""


@command.command("change-passphrase")
@json_option
@click.pass_obj
def change_passphrase(app: App) -> None:
    """Rewrap the master key under a new passphrase (data is not touched).

    The new passphrase comes from VGER_NEW_PASSPHRASE or a prompt (twice).
    """
    changed = []
    with app.step("key"), app.each_repo() as repos:
        for cfg, repo in repos:
            new = os.environ.get(NEW_PASSPHRASE_ENV)
            if new is None:
                new = get_passphrase(None, None, confirm=True, what=f"repository {cfg.label} (new)")
            if not new:
                raise VgerError("the new passphrase is empty")
            # One atomic replace of keys/repokey: after a crash either the old
            # or the new passphrase opens the repository.
            repo.rewrap_key(new)
            changed.append(cfg.label)
            if not app.json and not app.quiet:
                click.echo(f"{cfg.label}: passphrase changed")
    if app.json:
        emit_json([{"repository": label, "passphrase_changed": True} for label in changed])


@command.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@click.pass_obj
def export(app: App, file: str) -> None:
    """Write the repository key (still passphrase-protected) to FILE; keep it somewhere safe.

    The export keeps the passphrase the key had when it was exported.
    """
    with app.step("key"), app.each_repo() as repos:
        for cfg, repo in repos:
            target = Path(file)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(export_key_text(repo))
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
            _report(
                app,
                {"repository": cfg.label, "exported_to": str(target)},
                f"{cfg.label}: key exported to {target}",
            )
            break


@command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_obj
def import_(app: App, file: str) -> None:
    """Put a key exported with `vger key export` back into the repository."""
    with app.step("key"):
        for cfg in app.repositories():
            backend = app.backend(cfg)
            try:
                import_key_text(backend, Path(file).read_text(), app.passphrase(cfg))
            finally:
                backend.close()
            _report(app, {"repository": cfg.label, "imported_from": file}, f"{cfg.label}: key imported")
            break
