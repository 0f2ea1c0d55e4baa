"""MongoDB dumps with mongodump --archive.

Work in progress: registers nothing yet."""
