"""Broadcasting lifecycle events (before / after / failed / finally) to plugins.

Each implementation is called on its own: one failing monitor or hook must not
skip the others or change a command's outcome. The one exception is
``vger_before``: a :class:`VgerError` raised there aborts the step (that is how
a failing ``before`` shell hook stops a backup), and ``failed`` and ``finally``
still run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from vger.errors import VgerError

log = logging.getLogger("vger.lifecycle")


@dataclass
class CommandContext:
    """What a lifecycle hook learns about the step it surrounds."""

    command: str
    config: Any = None
    repository: str | None = None
    source_label: str | None = None
    source_paths: tuple[str, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


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


@contextmanager
def lifecycle(pm: pluggy.PluginManager, ctx: CommandContext) -> Iterator[CommandContext]:
    """Run ``before``, the body, then ``after`` or ``failed``, then ``finally``."""
    try:
        _call_each(pm, "vger_before", True, ctx=ctx)
        yield ctx
    except BaseException as exc:
        ctx.error = exc
        _call_each(pm, "vger_failed", False, ctx=ctx, error=exc)
        raise
    else:
        _call_each(pm, "vger_after", False, ctx=ctx)
    finally:
        _call_each(pm, "vger_finally", False, ctx=ctx)
