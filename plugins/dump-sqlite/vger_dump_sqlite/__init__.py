"""SQLite online copies through the backup API.

Work in progress: registers nothing yet."""
