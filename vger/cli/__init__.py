"""The ``vger`` command line (click)."""
