"""A generic JSON webhook.

Work in progress: registers nothing yet."""
