"""Entry point: global options, error handling, command registration."""

from __future__ import annotations

import gc
import logging
import sys
import traceback
from typing import Any

import click

from vger import __version__
from vger.cli.app import App
from vger.cli.output import error_line
from vger.errors import EXIT_ERROR, VgerError
from vger.memory import limit_malloc_arenas


class VgerGroup(click.Group):
    """Turns every expected failure into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VgerError as exc:
            app = ctx.find_object(App)
            if app is not None and app.verbose >= 2:
                traceback.print_exc()
            # One line per problem (a config can have several), each a complete message.
            for line in str(exc).splitlines() or [""]:
                error_line(line)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            error_line("interrupted; committed snapshots are intact")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: say so, with the traceback only on request
            app = ctx.find_object(App)
            if app is not None and app.verbose >= 2:
                traceback.print_exc()
            error_line(f"unexpected {type(exc).__name__}: {exc} (run with -vv for details and report it)")
            ctx.exit(EXIT_ERROR)


@click.group(
    cls=VgerGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Config file to use.")
@click.option("-R", "--repo", "repo_selector", help="Limit to one repository (label or url).")
@click.option("-v", "--verbose", count=True, help="More output; -vv shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--json", "json_out", is_flag=True, help="Machine-readable output on stdout.")
@click.version_option(__version__, prog_name="vger")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    repo_selector: str | None,
    verbose: int,
    quiet: bool,
    json_out: bool,
) -> None:
    """vger: fast, encrypted, deduplicated backups from one YAML file.

    Without a command, runs the cycle for automation: backup, prune (when a
    retention rule is set), compact, check.
    """
    level = logging.WARNING if not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="vger: %(message)s", stream=sys.stderr)
    app = App(
        config_path=config_path, repo_selector=repo_selector, verbose=verbose, quiet=quiet, json=json_out
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    if ctx.invoked_subcommand is None:
        from vger.cli.commands.cycle import run_cycle

        run_cycle(ctx)


def _register() -> None:
    """Every module in vger.cli.commands that defines ``command`` is a command."""
    import importlib
    import pkgutil

    from vger.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            cli.add_command(command)


def _add_plugin_commands() -> None:
    """Commands from plugins; a name clash names both providers and keeps the built-in."""
    from vger.cli.output import warn
    from vger.pluginmanager import load_plugins, register_commands

    registry = load_plugins()
    providers: dict[str, str] = {}
    for source, command in register_commands(registry):
        name = command.name or ""
        if name in cli.commands:
            owner = providers.get(name, "vger itself")
            warn(f"command '{name}' from {source.describe()} clashes with {owner}; ignored")
            continue
        providers[name] = source.describe()
        cli.add_command(command)


_register()


def main() -> None:
    # A backup builds hundreds of thousands of small, acyclic objects (items,
    # index tuples, cache entries); the default thresholds would run the cycle
    # collector every 700 of them and rescan everything imported at start-up.
    # Freezing start-up objects and collecting less often saved 8 % of a
    # no-change backup's CPU; memory stays bounded by the pipeline, not by gc.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    limit_malloc_arenas()
    _add_plugin_commands()
    cli(prog_name="vger")
