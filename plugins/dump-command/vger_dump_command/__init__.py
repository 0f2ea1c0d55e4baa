"""Command dumps: a command's stdout streamed into the snapshot.

Work in progress: registers nothing yet."""
