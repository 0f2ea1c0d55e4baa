"""The ``vger`` command's entry point: starts the walk ahead, then imports the CLI.

Kept apart from :mod:`vger.cli.main` so that the walk-ahead child
(:mod:`vger.backup.walkahead`) starts before the 60 ms of imports the CLI
needs, on the core those imports leave idle.
"""

from __future__ import annotations

import sys


def main() -> None:
    from vger.backup.walkahead import start_early

    start_early(sys.argv[1:])
    from vger.cli.main import main as cli_main

    cli_main()
