"""ntfy notifications.

Work in progress: registers nothing yet."""
