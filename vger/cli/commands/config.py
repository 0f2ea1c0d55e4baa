"""``vger config``: write a starter file, or validate and show the effective config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from vger.cli.app import App
from vger.cli.output import json_option
from vger.config import assemble_schema, effective_config_text, starter_config
from vger.errors import ConfigError
from vger.pluginmanager import load_plugins


@click.command("config")
@click.option(
    "--dest", type=click.Path(dir_okay=False), help="Where to write the starter file (default ./vger.yaml)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--check", "check_only", is_flag=True, help="Validate the config and print the effective one.")
@click.option("--schema", "print_schema", is_flag=True, help="Print the assembled JSON Schema.")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file to check (same as the global -c, so `vger config --check -c FILE` works).",
)
@json_option
@click.pass_obj
def command(
    app: App, dest: str | None, force: bool, check_only: bool, print_schema: bool, config_path: str | None
) -> None:
    """Write a commented starter config, or check the current one."""
    if config_path:
        app.config_path = config_path
    if print_schema:
        click.echo(json.dumps(assemble_schema(load_plugins()), indent=2))
        return
    if check_only:
        config = app.config
        if app.json:
            click.echo(json.dumps({"path": str(config.path), "valid": True}))
        else:
            click.echo(f"# {config.path}: valid")
            click.echo(effective_config_text(config))
        return
    target = Path(dest or "vger.yaml")
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(starter_config())
    os.replace(tmp, target)
    click.echo(f"wrote {target}; edit it, then run `vger init`")
