"""Every hook a vger plugin can implement, in one place.

Two kinds of hooks (see docs/plugins.md):

*Registration* hooks are called once per run, right after plugins are loaded.
Each returns a list of component **classes**; the core attributes every class to
the distribution that provided it, checks that no two classes claim one name
(or compressor tag, or url scheme) and then instantiates the one the config
selects. The pipeline calls components directly, so no hook runs per chunk.

*Lifecycle* hooks are broadcast events around every command. Each
implementation is called in isolation: an exception in one is logged and does
not stop the others, and never changes the command's outcome -- except in
``vger_before``, where raising :class:`vger.errors.VgerError` aborts the command
(that is how a failing ``before`` shell hook aborts a backup).

Implement a hook with ``@vger.hookimpl`` on a module-level function of the
module your entry point (group ``vger``) names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vger import hookspec

if TYPE_CHECKING:
    import click

    from vger.lifecycle import CommandContext


# --- registration hooks ---------------------------------------------------


@hookspec
def vger_register_chunkers() -> list[type[Any]]:
    """Return chunker classes (see :class:`vger.interfaces.Chunker`).

    Called once at start-up. Selected by ``chunker.algorithm`` in the config.
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_compressors() -> list[type[Any]]:
    """Return compressor classes (see :class:`vger.interfaces.Compressor`).

    Called once at start-up. Selected by ``compression.algorithm``; on read the
    one-byte ``tag`` in each blob picks the class, so tags must be unique too.
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_ciphers() -> list[type[Any]]:
    """Return cipher classes (see :class:`vger.interfaces.Cipher`).

    Called once at start-up. Selected by ``encryption.mode`` at ``vger init``;
    afterwards the name recorded (and authenticated) in the repository wins.
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_storage_backends() -> list[type[Any]]:
    """Return storage backend classes (see :class:`vger.interfaces.StorageBackend`).

    Called once at start-up. Each class lists the url ``schemes`` it serves; a
    repository url is routed by its scheme (a bare path means ``file``).
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_dump_sources() -> list[type[Any]]:
    """Return dump source classes (see :class:`vger.interfaces.DumpSource`).

    Called once at start-up. Selected by ``sources[].dumps[].type``; the
    ``command_dumps`` entries of a source are served by the class named
    ``command``. At ``vger backup`` each selected class is built with its
    config entry and its ``dumps()`` are streamed into the source's snapshot
    (under ``vger-dumps/<source label>/``, before the source's files); a
    stream whose ``finish()`` raises fails the source and nothing of it is
    committed. At ``vger restore-dump`` the class named in a dump's record is
    built again and its ``restorer()`` streams the dump back, so a third-party
    dump plugin brings its own restore. See docs/dumps.md.
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_monitors() -> list[type[Any]]:
    """Return monitor classes (see :class:`vger.interfaces.Monitor`).

    Selected by ``monitoring[].type``. The core (:mod:`vger.monitoring`) pings
    them at the start, success and failure of ``backup``, ``prune``,
    ``compact``, ``check`` and the no-command cycle.
    """
    raise AssertionError("hook specification")


@hookspec
def vger_register_commands() -> list[click.Command]:
    """Return extra ``click`` commands to add to the ``vger`` command line.

    Called once when the CLI is built. A command name already taken is an error
    naming both plugins.
    """
    raise AssertionError("hook specification")


# --- lifecycle hooks ------------------------------------------------------


@hookspec
def vger_configure(config: Any) -> None:
    """Called once after the configuration was loaded and validated.

    ``config`` is the frozen :class:`vger.config.model.Config`. Use it to read
    your plugin's own settings. Raising :class:`vger.errors.ConfigError` stops
    the run with that message.
    """


@hookspec
def vger_before(ctx: CommandContext) -> None:
    """Called before a command (and before each repository / source step).

    ``ctx`` says which command, repository and source. Steps nest -- the
    command, then one step per repository, then (``vger backup``) one per
    source; ``vger`` without a command is a ``cycle`` step around the commands
    it runs -- and ``ctx.level`` / ``ctx.parent`` tell where this one is.
    Raising :class:`vger.errors.VgerError` aborts the step; ``vger_failed`` and
    ``vger_finally`` still run. The order of shell hooks that follows from the
    nesting is documented in docs/hooks.md.
    """


@hookspec
def vger_after(ctx: CommandContext) -> None:
    """Called after a step succeeded. ``ctx.result`` holds its summary."""


@hookspec
def vger_failed(ctx: CommandContext, error: BaseException) -> None:
    """Called after a step failed, with the error. Exceptions here are logged only."""


@hookspec
def vger_finally(ctx: CommandContext) -> None:
    """Called after every step, success or failure, after ``vger_after``/``vger_failed``."""
