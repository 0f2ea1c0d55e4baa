"""The command list: built-ins found by name without importing them all, plugin commands on demand."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap

import click

from tests.conftest import Vger
from vger.cli import commands
from vger.cli.main import BUILTIN_COMMANDS

# A plugin that adds `hello` and tries to take `backup`, loaded in the CLI's
# subprocess as if it were installed (load_plugins gets it as an extra plugin).
_PLUGIN_PRELUDE = textwrap.dedent(
    """
    import click
    import vger.pluginmanager as pm
    from vger import hookimpl

    class Plugin:
        @hookimpl
        def vger_register_commands(self):
            @click.command("hello")
            def hello():
                click.echo("hello from a plugin")

            @click.command("backup")
            def backup():
                click.echo("the plugin's backup ran")

            return [hello, backup]

    real = pm.load_plugins

    def load_plugins(disable=(), extra_plugins=()):
        source = pm.PluginSource("greeter", "vger-greeter", "1.0")
        return real(disable, [*extra_plugins, (source, Plugin())])

    pm.load_plugins = load_plugins
    """
)


def test_every_command_module_is_listed_under_its_command_name() -> None:
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            assert command.name is not None
            found[command.name] = info.name
    assert found == BUILTIN_COMMANDS


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from vger.cli.main import main\n"
        "sys.argv = ['vger', 'init', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('vger.cli.commands.')))\n"
        "print(any(m.startswith('vger_') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[-2] == "['vger.cli.commands.init']"
    assert lines[-1] == "False"  # no plugin was loaded just to build the command line


def test_plugin_command_runs_and_cannot_take_a_builtin_name(vger: Vger) -> None:
    hello = vger.run_patched(_PLUGIN_PRELUDE, "hello")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello from a plugin"
    assert "clashes with vger itself" in hello.stderr

    listing = vger.run_patched(_PLUGIN_PRELUDE, "--help")
    assert "hello" in listing.stdout and "restore-dump" in listing.stdout

    backup_help = vger.run_patched(_PLUGIN_PRELUDE, "backup", "--help")
    assert "Back up every source" in backup_help.stdout
    assert "plugin's backup" not in backup_help.stdout


def test_unknown_command_is_one_line_with_the_usage(vger: Vger) -> None:
    proc = vger.run("bakcup", check=False)
    assert proc.returncode == 2
    assert "No such command 'bakcup'" in proc.stderr
    assert "Traceback" not in proc.stderr
