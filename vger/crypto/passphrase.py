"""Where the passphrase comes from: env, config, passcommand, then a prompt.

A run without a terminal and without any passphrase source must fail at once
with a clear message, never hang waiting for input nobody will type.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys

from vger.errors import PassphraseRequired, VgerError

ENV_VAR = "VGER_PASSPHRASE"


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and os.isatty(sys.stderr.fileno())
    except (OSError, ValueError):
        return False


def from_passcommand(command: str) -> str:
    try:
        proc = subprocess.run(command, shell=True, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VgerError(f"encryption.passcommand timed out after 60 s: {command}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise VgerError(f"encryption.passcommand exited with {proc.returncode}: {tail[0]}")
    return proc.stdout.decode("utf-8").rstrip("\n")


def get_passphrase(
    configured: str | None, passcommand: str | None, *, confirm: bool = False, what: str = "repository"
) -> str:
    """Resolve the passphrase in the documented order; ``confirm`` asks twice (init)."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return env
    if configured is not None:
        return configured
    if passcommand:
        return from_passcommand(passcommand)
    if not _interactive():
        raise PassphraseRequired(
            f"a passphrase is needed for the {what} and there is no terminal to ask on: set "
            f"{ENV_VAR}, encryption.passphrase or encryption.passcommand"
        )
    while True:
        first = getpass.getpass(f"Passphrase for {what}: ")
        if not confirm:
            return first
        if not first:
            print("An empty passphrase is not allowed; use encryption mode 'none' instead.", file=sys.stderr)
            continue
        second = getpass.getpass("Repeat passphrase: ")
        if first == second:
            return first
        print("Passphrases do not match, try again.", file=sys.stderr)
