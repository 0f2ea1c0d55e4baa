"""Allows ``python -m vger``."""

from vger.cli.launch import main

if __name__ == "__main__":
    main()
