"""Restore: write a snapshot's items under a destination, safely and in parallel."""
