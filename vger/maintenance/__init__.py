"""Maintenance operations on a repository: check (and later prune, compact, repair)."""
