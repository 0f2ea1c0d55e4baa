"""S3-compatible object storage (s3fs), through vger.storage.fsspec_backend.

Work in progress: registers nothing yet."""
