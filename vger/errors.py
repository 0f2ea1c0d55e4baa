"""One exception tree for everything a user can meet.

Every expected failure is a :class:`VgerError`; the CLI turns it into a one-line
message on stderr and the exit code carried by the exception, never a traceback
(tracebacks only with ``-vv``). Plugins raise these too, so the CLI can speak for
them without knowing them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


class VgerError(Exception):
    """Base of every expected failure. ``str(err)`` is the message shown to the user."""

    exit_code: int = EXIT_ERROR


class ConfigError(VgerError):
    """The configuration file is missing, malformed or invalid."""


class PluginError(VgerError):
    """A plugin could not be loaded, is missing, or clashes with another."""


class PluginNotFound(PluginError):
    """A component named in the config (or needed by a repository) is not installed."""


class PluginConflict(PluginError):
    """Two plugins claim the same name, compressor tag or url scheme."""


class RepositoryError(VgerError):
    """Problems with a repository as a whole."""


class RepositoryNotFound(RepositoryError):
    """No repository at the url: the user must run ``vger init``."""


class RepositoryExists(RepositoryError):
    """``vger init`` found something already there and refused to touch it."""


class WrongPassphrase(RepositoryError):
    """The passphrase does not unwrap the repository key."""


class PassphraseRequired(RepositoryError):
    """No passphrase source and no terminal to ask on."""


class IntegrityError(RepositoryError):
    """Data read back failed authentication or its id does not match: never use it."""


class CorruptData(IntegrityError):
    """An object decoded but is malformed (bad length, bad msgpack, oversized...)."""


class SnapshotNotFound(VgerError):
    """A snapshot id or prefix matched nothing, or more than one snapshot."""


class LockError(RepositoryError):
    """A lock is held by someone else."""


class StorageError(VgerError):
    """Base for storage backend failures; backends map their own errors onto these."""


class ObjectNotFound(StorageError):
    """The key does not exist in the backend."""


class ObjectExists(StorageError):
    """An exclusive create found the key already present."""


class TransientStorageError(StorageError):
    """A failure that may go away when retried (timeouts, 5xx, connection reset)."""


class PermanentStorageError(StorageError):
    """A failure that retrying will not fix (permissions, bad credentials, no space)."""


class RestoreError(VgerError):
    """A restore could not write an entry safely."""
