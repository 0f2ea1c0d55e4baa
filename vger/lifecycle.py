"""Broadcasting lifecycle events (before / after / failed / finally) to plugins.

Each implementation is called on its own: one failing monitor or hook must not
skip the others or change a command's outcome. The one exception is
``vger_before``: a :class:`VgerError` raised there aborts the step (that is how
a failing ``before`` shell hook stops a backup), and ``failed`` and ``finally``
still run.

Steps nest: a command surrounds one step per repository, which surrounds one
step per source (``vger backup``). Each step's context points at the step it
runs in (``parent``), so a command that only ends with an exit code can still
tell its ``failed`` hooks what went wrong inside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from vger.errors import EXIT_PARTIAL, VgerError

log = logging.getLogger("vger.lifecycle")


@dataclass(eq=False)
class CommandContext:
    """What a lifecycle hook learns about the step it surrounds.

    ``command`` is the command name (``backup``, ``prune``, ...; ``cycle`` for
    ``vger`` without a command, whose steps are the commands it runs).
    ``repository`` is the repository's label for a repository or source step,
    None for the command itself; ``source_label`` and ``source_paths`` are set
    for a source step only.
    """

    command: str
    config: Any = None
    repository: str | None = None
    source_label: str | None = None
    source_paths: tuple[str, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    parent: CommandContext | None = None
    #: messages of the steps directly inside this one that failed, in order
    inner_errors: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        """``command``, ``repository`` or ``source``: which hooks of the config apply."""
        if self.source_label is not None:
            return "source"
        return "repository" if self.repository is not None else "command"

    @property
    def error_message(self) -> str:
        """One line saying why the step failed ("" while it has not)."""
        if self.error is None:
            return ""
        code = exit_code_of(self.error)
        if code is not None:
            if self.inner_errors:
                return "; ".join(self.inner_errors)
            if code == EXIT_PARTIAL:
                return f"some files could not be read (exit code {code})"
            return f"exit code {code}"
        return describe_error(self.error)


def exit_code_of(error: BaseException) -> int | None:
    """The code of a ``click`` exit (the commands end with one), else None."""
    code = getattr(error, "exit_code", None)
    if isinstance(code, int) and not isinstance(error, VgerError):
        return code
    return None


def describe_error(error: BaseException) -> str:
    """The one-line text of an error, as the user would see it on stderr."""
    if isinstance(error, VgerError):
        return " ".join(str(error).split("\n"))
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    code = exit_code_of(error)
    if code is not None:
        return f"exit code {code}"
    return f"{type(error).__name__}: {error}"


def _call_each(pm: pluggy.PluginManager, hook_name: str, abort_on_error: bool, **kwargs: Any) -> None:
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):  # pluggy's own call order (LIFO registration)
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except VgerError:
            if abort_on_error:
                raise
            log.warning("%s hook of plugin %s failed", hook_name, impl.plugin_name, exc_info=True)
        except Exception:
            if abort_on_error:
                raise VgerError(f"{hook_name} of plugin '{impl.plugin_name}' failed") from None
            log.warning("%s hook of plugin %s failed", hook_name, impl.plugin_name, exc_info=True)


def _succeeded(error: BaseException) -> bool:
    # ``ctx.exit(0)`` and a consumer that stops iterating early (GeneratorExit
    # in a per-repository step) end a step normally, whatever Python calls them.
    return isinstance(error, GeneratorExit) or exit_code_of(error) == 0


@contextmanager
def lifecycle(pm: pluggy.PluginManager, ctx: CommandContext) -> Iterator[CommandContext]:
    """Run ``before``, the body, then ``after`` or ``failed``, then ``finally``."""
    try:
        _call_each(pm, "vger_before", True, ctx=ctx)
        yield ctx
    except BaseException as exc:
        if _succeeded(exc):
            _call_each(pm, "vger_after", False, ctx=ctx)
            raise
        ctx.error = exc
        message = ctx.error_message
        if ctx.parent is not None:
            # Relative to the parent: a repository step names its repository,
            # a source step (inside one) its source.
            where = f"source {ctx.source_label}" if ctx.level == "source" else ctx.repository
            ctx.parent.inner_errors.append(f"{where}: {message}" if where else message)
        _call_each(pm, "vger_failed", False, ctx=ctx, error=exc)
        raise
    else:
        _call_each(pm, "vger_after", False, ctx=ctx)
    finally:
        _call_each(pm, "vger_finally", False, ctx=ctx)
