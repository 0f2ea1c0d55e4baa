"""``vger init``: create each configured repository."""

from __future__ import annotations

import click

from vger.cli.app import App
from vger.cli.output import emit_json, json_option
from vger.crypto.select import pick_fastest
from vger.repository.repository import Repository


@click.command("init")
@json_option
@click.pass_obj
def command(app: App) -> None:
    """Create the repository at each configured url (asks the passphrase twice)."""
    with app.step("init"):
        created = []
        for cfg in app.repositories():
            mode = cfg.encryption.mode
            if mode == "auto":
                available = {c.name: c.cls for c in app.registry.of_kind("cipher")}
                mode, speeds = pick_fastest(available)
                detail = ", ".join(f"{name} {rate / 1e9:.2f} GB/s" for name, rate in speeds.items())
            else:
                detail = "chosen in config"
            backend = app.backend(cfg)
            repo = Repository.init(
                backend, app.registry, mode, app.passphrase(cfg, confirm=True), label=cfg.label
            )
            backend.close()
            created.append({"repository": cfg.label, "url": cfg.url, "cipher": mode, "id": repo.id_hex})
            if not app.json and not app.quiet:
                click.echo(f"initialized {cfg.label}: cipher {mode} ({detail})")
        if app.json:
            emit_json(created)
