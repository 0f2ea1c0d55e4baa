"""Uptime Kuma push monitors.

Work in progress: registers nothing yet."""
