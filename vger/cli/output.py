"""Human and machine output: aligned tables, sizes, JSON, and the error line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """``--json`` after the command name too (``vger list --json``), same as the global flag."""

    def enable(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_root().obj.json = True

    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=enable,
        help="Machine-readable output.",
    )(func)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PiB"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def emit_json(doc: Any) -> None:
    """The command's one JSON document; on one line when progress lines stream before it."""
    ctx = click.get_current_context(silent=True)
    app = ctx.find_root().obj if ctx is not None else None
    collected = getattr(app, "json_parts", None)
    if collected is not None:
        # The no-command cycle prints one document with every step's part.
        collected[app.json_step] = doc  # type: ignore[union-attr]
        return
    streaming = app is not None and getattr(app, "verbose", 0) >= 1
    click.echo(json.dumps(doc, indent=None if streaming else 2, sort_keys=False, default=str))


def error_line(message: str) -> None:
    first = " ".join(str(message).split("\n"))
    click.echo(f"vger: error: {first}", err=True)


def warn(message: str) -> None:
    click.echo(f"vger: warning: {message}", err=True)


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def parse_size(text: str) -> int:
    """``512M``, ``2G``, ``1.5GiB``, ``1000`` -> bytes (binary units, as everywhere in vger)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise click.BadParameter(f"expected a size like 500M or 2G, found {text!r}")
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[match.group(2)]
    return int(float(match.group(1)) * factor)
