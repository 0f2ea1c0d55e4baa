"""Allows ``python -m vger``."""

from vger.cli.main import main

if __name__ == "__main__":
    main()
