"""The placeholder rewriting of the shell-hook plugin, run through the real /bin/sh (and bash).

The CLI tests in tests/hooks/ show the whole path; these try many more quoting
contexts and hostile values quickly, because each case is one shell process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from vger_lifecycle_shell import PLACEHOLDERS, TemplateError, ordered_keys, render

SHELLS = sorted({shell for shell in ("/bin/sh", shutil.which("bash"), shutil.which("dash")) if shell})

HOSTILE_VALUES = [
    "it's",
    'say "hi"',
    "$(touch pwned)",
    "`touch pwned`",
    "; touch pwned",
    "&& touch pwned ||",
    "a\nb; touch pwned",
    "\\'\\\"",
    "* ? [a]",
    "$HOME ${HOME} $((1+1))",
    "'\"'\"'; touch pwned; '",
    "-n",
    "",
]

#: (template, what printf prints for a value V written as {}; None: only safety is checked)
TEMPLATES = [
    ("printf '%s' {error}", "{}"),
    ("printf '%s' \"{error}\"", "{}"),
    ("printf '%s' '{error}'", "{}"),
    ("printf '%s' \"<{error}>\"", "<{}>"),
    ("printf '%s' '<{error}>'", "<{}>"),
    ("printf '%s' x{error}y", "x{}y"),
    ("printf '%s' \"$(printf '%s' {error})\"", "{}"),
    ("printf '%s' \"$(printf '%s' \"{error}\")\"", "{}"),
    ("printf '%s' \"${HOME:+{error}}\"", "{}"),
    ("printf '%s' {error}{error}", "{}{}"),
    ("# a comment with it's {error}\nprintf '%s' {error}", "{}"),
    ("printf '%s' \\'{error}\\'", "'{}'"),
    ("cat <{error}", None),  # a redirection from a file named by the value: safe, output unknown
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("template", "expected"), TEMPLATES, ids=[t for t, _ in TEMPLATES])
def test_values_arrive_verbatim_and_never_run(
    tmp_path: Path, shell: str, template: str, expected: str | None
) -> None:
    command = render(template)
    for value in HOSTILE_VALUES:
        env = {**os.environ, "VGER_ERROR": value}
        proc = subprocess.run([shell, "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert not (tmp_path / "pwned").exists(), f"{template!r} ran code from {value!r} under {shell}"
        if expected is not None:
            assert proc.stdout == expected.replace("{}", value), f"{template!r} with {value!r} under {shell}"


def test_the_value_is_referred_to_never_pasted() -> None:
    for template, _ in TEMPLATES:
        rendered = render(template)
        assert "VGER_ERROR" in rendered
        # outside the comment, no placeholder is left in the command text
        assert "{error}" not in rendered.replace("# a comment with it's {error}", "")


def test_texts_without_placeholders_are_left_alone() -> None:
    # not even parsed: shell syntax the scanner does not model cannot break them
    for text in ("awk '{print $1}' /etc/fstab", "echo 'unclosed", "case x in x) echo `date`;; esac"):
        assert render(text) == text


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("echo `echo {label}`", "backticks"),
        ("echo $(( {error} ))", "arithmetic"),
        ("echo $(( 1 + ({error}) ))", "arithmetic"),
        ("echo '{label}", "unclosed ' quote"),
        ('echo "{label}', 'unclosed " quote'),
        ("echo $(echo {label}", r"unclosed \$\( or \("),
    ],
)
def test_unsafe_or_broken_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template)


def test_every_placeholder_has_its_variable() -> None:
    for name, variable in PLACEHOLDERS.items():
        assert render("x {" + name + "}") == 'x "${' + variable + '}"'


def test_generic_hooks_surround_the_per_command_ones() -> None:
    assert ordered_keys("before", "backup") == ("before", "before_backup")
    assert ordered_keys("after", "prune") == ("after_prune", "after")
    assert ordered_keys("finally", "check") == ("finally_check", "finally")
