"""Backup: walk a source, chunk and store file contents, write the item stream, commit."""
