"""SFTP servers (sshfs/asyncssh), through vger.storage.fsspec_backend.

Work in progress: registers nothing yet."""
