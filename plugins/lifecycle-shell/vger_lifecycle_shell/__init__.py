"""Shell hooks from the config: ``before``/``after``/``failed``/``finally`` around each step.

Glossary:

level
    Where hooks are written, and which step they surround: the top-level
    ``hooks`` surround each command, a repository's ``hooks`` surround that
    repository's part of the command, a source's ``hooks`` surround that
    source's snapshot (``vger backup`` only).
kind
    ``before`` (a failure aborts the step), ``after`` (the step succeeded),
    ``failed`` (it did not), ``finally`` (always, last). The top level and
    repositories also take ``<kind>_<command>`` (``before_backup``), which run
    inside the plain kind: ``before`` then ``before_backup`` on the way in,
    ``after_backup`` then ``after`` on the way out.
placeholder
    ``{repository}`` (url), ``{label}`` (repository label), ``{command}``,
    ``{error}``, ``{source_label}``, ``{source_path}`` in a hook's text.

Why placeholders become environment variables: a value substituted into shell
text is parsed as shell, and an error message or a label is data nobody
controls (a file name in an error can hold ``$(rm -rf ~)``). Quoting the value
is not enough -- the user's own quotes around the placeholder undo it (vykar got
this wrong). So a value never enters the command text: each placeholder is
replaced by a *reference* to its ``VGER_*`` variable, written for the quoting
context it stands in (``"${VGER_ERROR}"`` bare, ``${VGER_ERROR}`` inside double
quotes, ``'"${VGER_ERROR}"'`` inside single quotes), and the value travels in
the environment. The shell never parses the result of an expansion again, so
quotes, ``$(...)``, backticks and ``;`` in a value are just characters. Where a
reference cannot be made safe and exact (inside backticks or ``$(( ))``), the
config is refused at load time with a message saying what to write instead.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from typing import Any

from vger import hookimpl
from vger.errors import ConfigError, VgerError

log = logging.getLogger("vger.hooks")

#: placeholder -> the environment variable that carries its value
PLACEHOLDERS: dict[str, str] = {
    "repository": "VGER_REPOSITORY",
    "label": "VGER_LABEL",
    "command": "VGER_COMMAND",
    "error": "VGER_ERROR",
    "source_label": "VGER_SOURCE_LABEL",
    "source_path": "VGER_SOURCE_PATH",
}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

#: How much of a failing hook's last output line its error message quotes.
LAST_LINE_CHARS = 200

#: POSIX sh, not the user's $SHELL: hooks must behave the same under cron,
#: systemd and an interactive login.
SHELL = "/bin/sh"


class HookFailed(VgerError):
    """A ``before`` hook exited non-zero (or could not start): the step is aborted."""


class TemplateError(ValueError):
    """A hook text vger cannot turn into a safe command; the message says what to write instead."""


# -- rendering ---------------------------------------------------------------------


def render(text: str) -> str:
    """The hook's command text with each placeholder replaced by a quoted variable reference.

    Texts without placeholders are returned unchanged (and not parsed at all,
    so shell syntax this scanner does not model cannot trip them up).
    """
    if not _PLACEHOLDER.search(text):
        return text
    out: list[str] = []
    # Quoting contexts, innermost last: plain, single ('), ansi ($'), double ("),
    # subst ($( or ( inside it), backtick (`), arith ($(( )).
    stack: list[str] = ["plain"]
    i, n = 0, len(text)
    at_word_start = True
    while i < n:
        context = stack[-1]
        match = _PLACEHOLDER.match(text, i)
        if match:
            out.append(_reference(match.group(1), context))
            i = match.end()
            at_word_start = False
            continue
        char = text[i]
        two = text[i : i + 2]
        if context == "single":
            out.append(char)
            if char == "'":
                stack.pop()
            i += 1
            continue
        if context == "ansi":
            if char == "\\":
                out.append(two)
                i += 2
                continue
            out.append(char)
            if char == "'":
                stack.pop()
            i += 1
            continue
        if char == "\\":
            out.append(two)
            i += 2
            at_word_start = False
            continue
        if context in ("arith", "aparen"):
            if context == "arith" and two == "))":
                stack.pop()
                out.append(two)
                i += 2
                continue
            if char == "(":
                stack.append("aparen")
            elif char == ")" and context == "aparen":
                stack.pop()
            out.append(char)
            i += 1
            continue
        if text.startswith("$((", i):
            stack.append("arith")
            out.append("$((")
            i += 3
            continue
        if two == "$(":
            stack.append("subst")
            out.append(two)
            i += 2
            at_word_start = True
            continue
        if char == "`":
            if context == "backtick":
                stack.pop()
            else:
                stack.append("backtick")
            out.append(char)
            i += 1
            continue
        if context == "double":
            out.append(char)
            if char == '"':
                stack.pop()
            i += 1
            continue
        # plain, subst or backtick: shell words
        if char == "#" and at_word_start:
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(text[i:end])
            i = end
            continue
        if two == "$'":
            stack.append("ansi")
            out.append(two)
            i += 2
            at_word_start = False
            continue
        if char == "'":
            stack.append("single")
        elif char == '"':
            stack.append("double")
        elif char == "(" and context == "subst":
            stack.append("subst")
        elif char == ")" and context == "subst":
            stack.pop()
        out.append(char)
        at_word_start = char in " \t\n;&|()"
        i += 1
    if len(stack) > 1:
        raise TemplateError(f"unclosed {_OPENERS[stack[-1]]} in a hook that uses placeholders")
    return "".join(out)


_OPENERS = {
    "single": "' quote",
    "ansi": "$' quote",
    "double": '" quote',
    "subst": "$( or (",
    "backtick": "` backtick",
    "arith": "$((",
    "aparen": "( inside $((",
}


def _reference(name: str, context: str) -> str:
    variable = PLACEHOLDERS[name]
    if context == "double":
        return "${" + variable + "}"
    if context == "single":
        # close the quote, expand inside double quotes, reopen: one word, exact value
        return "'\"${" + variable + "}\"'"
    if context == "ansi":
        return "'\"${" + variable + "}\"$'"
    if context in ("arith", "aparen"):
        raise TemplateError(
            f"{{{name}}} inside $(( )) would be evaluated as arithmetic; "
            f"use ${variable} in the shell code instead if you mean it"
        )
    if context == "backtick":
        raise TemplateError(f"{{{name}}} inside `backticks` cannot be quoted safely; use $( ) instead")
    return '"${' + variable + '}"'


# -- which hooks run where ------------------------------------------------------------


def hooks_for(ctx: Any) -> Mapping[str, tuple[str, ...]]:
    """The hooks of the config level this step belongs to."""
    config = ctx.config
    if config is None or ctx.command == "cycle":
        return {}  # the cycle is not a command: its commands run their own hooks
    if ctx.level == "source":
        return config.source(ctx.source_label).hooks
    if ctx.level == "repository":
        return config.repository(ctx.repository).hooks
    return config.hooks


def ordered_keys(kind: str, command: str) -> tuple[str, str]:
    """The generic kind outside the per-command one: in on the way in, out on the way out."""
    if kind == "before":
        return (kind, f"{kind}_{command}")
    return (f"{kind}_{command}", kind)


def environment(ctx: Any) -> dict[str, str]:
    """The placeholder values, as the ``VGER_*`` variables the rendered commands refer to."""
    repository = ""
    if ctx.repository is not None and ctx.config is not None:
        try:
            repository = ctx.config.repository(ctx.repository).url
        except VgerError:
            repository = str(ctx.repository)
    values = {
        "repository": repository,
        "label": ctx.repository or "",
        "command": ctx.command,
        "error": ctx.error_message if ctx.error is not None else "",
        "source_label": ctx.source_label or "",
        # several paths: one per line, so `while read -r p` takes them apart
        "source_path": "\n".join(ctx.source_paths),
    }
    env = dict(os.environ)
    for name, value in values.items():
        env[PLACEHOLDERS[name]] = value.replace("\0", "")  # the one byte an environment cannot hold
    return env


def run_hooks(ctx: Any, kind: str) -> None:
    """Run this step's hooks of one kind; a failing ``before`` raises :class:`HookFailed`."""
    hooks = hooks_for(ctx)
    if not hooks:
        return
    commands: list[tuple[str, str]] = []
    for key in ordered_keys(kind, ctx.command):
        commands.extend((key, text) for text in hooks.get(key, ()))
    if not commands:
        return
    env = environment(ctx)
    for key, text in commands:
        where = _where(ctx, key)
        problem = _run(where, text, env)
        if problem is None:
            continue
        if kind == "before":
            # Without the step's name: the CLI and the outer steps' {error} put it in front.
            raise HookFailed(f"{key} hook {problem[0]}, so {_aborted(ctx)}: {text}{problem[1]}")
        log.warning("%s hook %s: %s%s", where, problem[0], text, problem[1])


def _where(ctx: Any, key: str) -> str:
    if ctx.level == "source":
        return f"source {ctx.source_label}: {key}"
    if ctx.level == "repository":
        return f"repository {ctx.repository}: {key}"
    return key


def _aborted(ctx: Any) -> str:
    if ctx.level == "source":
        return "this source was not backed up"
    if ctx.level == "repository":
        return f"{ctx.command} skipped repository {ctx.repository}"
    return f"{ctx.command} did not run"


def _run(where: str, text: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """Run one hook, every output line to the log.

    Returns None on success, else what went wrong and the hook's last output
    line (as ``" (last output: ...)"``): a cron mail without ``-v`` then still
    says why the mount failed, not only that it did.
    """
    command = render(text)
    started = time.monotonic()
    log.info("hook %s: running %s", where, text)
    try:
        process = subprocess.Popen(
            [SHELL, "-c", command],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        return f"could not start {SHELL} ({exc.strerror})", ""
    assert process.stdout is not None
    last = ""
    with process.stdout:
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            log.info("hook %s: %s", where, line)
            if line.strip():
                last = line.strip()
    code = process.wait()
    log.debug("hook %s: exit code %d after %.1f s", where, code, time.monotonic() - started)
    if code == 0:
        return None
    if len(last) > LAST_LINE_CHARS:
        last = last[: LAST_LINE_CHARS - 3] + "..."
    return f"failed (exit code {code})", f" (last output: {last})" if last else ""


# -- validation at load time -----------------------------------------------------------


def _all_hooks(config: Any) -> Iterable[tuple[str, str]]:
    for key, texts in config.hooks.items():
        for index, text in enumerate(texts):
            yield f"hooks.{key}[{index}]", text
    for number, repo in enumerate(config.repositories):
        for key, texts in repo.hooks.items():
            for index, text in enumerate(texts):
                yield f"repositories[{number}].hooks.{key}[{index}]", text
    for number, source in enumerate(config.sources):
        for key, texts in source.hooks.items():
            for index, text in enumerate(texts):
                yield f"sources[{number}].hooks.{key}[{index}]", text


# -- the hooks --------------------------------------------------------------------------


@hookimpl
def vger_configure(config: Any) -> None:
    """Refuse, before anything runs, a hook whose placeholders cannot be made safe."""
    problems = []
    for path, text in _all_hooks(config):
        try:
            render(text)
        except TemplateError as exc:
            problems.append(f"{config.path}: {path}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))


@hookimpl
def vger_before(ctx: Any) -> None:
    run_hooks(ctx, "before")


@hookimpl
def vger_after(ctx: Any) -> None:
    run_hooks(ctx, "after")


@hookimpl
def vger_failed(ctx: Any) -> None:
    run_hooks(ctx, "failed")


@hookimpl
def vger_finally(ctx: Any) -> None:
    run_hooks(ctx, "finally")
