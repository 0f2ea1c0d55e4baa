"""Healthchecks.io pings.

Work in progress: registers nothing yet."""
