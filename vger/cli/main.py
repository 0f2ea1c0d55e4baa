"""Entry point: global options, error handling, command registration."""

from __future__ import annotations

import gc
import importlib
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

# Built-in commands by name, and the module of vger.cli.commands that defines
# each as ``command``. A module is imported only when its command runs (or
# ``--help`` lists them all): importing every command, and loading every plugin
# to find plugin commands, was a third of a no-change backup's start-up.
BUILTIN_COMMANDS = {
    "backup": "backup",
    "break-lock": "break_lock",
    "check": "check",
    "compact": "compact",
    "config": "config",
    "delete": "delete",
    "diff": "diff",
    "find": "find",
    "info": "info",
    "init": "init",
    "key": "key",
    "list": "listing",
    "plugins": "plugins",
    "prune": "prune",
    "restore": "restore",
    "restore-dump": "restore_dump",
}


class VgerGroup(click.Group):
    """Turns every expected failure into one line on stderr and its exit code.

    Commands are found lazily: built-ins by name from ``BUILTIN_COMMANDS``,
    plugin commands (which need every plugin loaded) only for a name that is
    not built in, or for the command list.
    """

    _plugin_commands_loaded = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted({*BUILTIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module_name = BUILTIN_COMMANDS.get(cmd_name)
            if module_name is not None:
                module = importlib.import_module(f"vger.cli.commands.{module_name}")
                self.add_command(module.command)
            else:
                self._load_plugin_commands()
        return self.commands.get(cmd_name)

    def _load_plugin_commands(self) -> None:
        if not self._plugin_commands_loaded:
            self._plugin_commands_loaded = True
            _add_plugin_commands(self)

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


def _add_plugin_commands(group: click.Group) -> None:
    """Commands from plugins; a name clash names both providers and keeps the built-in."""
    from vger.cli.output import warn
    from vger.pluginmanager import load_plugins, register_commands

    registry = load_plugins()
    providers: dict[str, str] = {}
    for source, command in register_commands(registry):
        name = command.name or ""
        if name in BUILTIN_COMMANDS or name in group.commands:
            owner = providers.get(name, "vger itself")
            warn(f"command '{name}' from {source.describe()} clashes with {owner}; ignored")
            continue
        providers[name] = source.describe()
        group.add_command(command)


def main() -> None:
    # A backup builds hundreds of thousands of small, acyclic objects (items,
    # index tuples, cache entries); the default thresholds would run the cycle
    # collector every 700 of them and rescan everything imported at start-up.
    # Freezing start-up objects and collecting less often saved 8 % of a
    # no-change backup's CPU; memory stays bounded by the pipeline, not by gc.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    limit_malloc_arenas()
    cli(prog_name="vger")
