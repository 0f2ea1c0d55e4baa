"""Apprise notifications (needs the apprise extra).

Work in progress: registers nothing yet."""
