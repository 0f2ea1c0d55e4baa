"""Shell hooks from the config (before/after/failed/finally).

Work in progress: registers nothing yet."""
