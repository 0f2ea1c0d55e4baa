"""PostgreSQL dumps with pg_dump / pg_dumpall.

Work in progress: registers nothing yet."""
