"""What each kind of plugin component must provide.

A plugin's registration hook returns *classes*; the core picks one by name and
instantiates it. Every component class carries two class attributes:

``name``
    The name users write in the config (``compression: {algorithm: zstd}``).
    Unique within its kind across all installed plugins.
``options_schema``
    A JSON Schema (Draft 2020-12) object schema whose ``properties`` are the extra
    keys this component accepts in its config block. The core merges it into the
    assembled config schema, so typos in plugin options are caught at load time.

Rules are written as MUST; the contract tests in :mod:`vger.testing` check them.
The hot path calls components directly (one call per chunk), never per byte and
never through a pluggy dispatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any, ClassVar, Protocol, runtime_checkable

Buffer = bytes | bytearray | memoryview


@runtime_checkable
class Chunker(Protocol):
    """Content-defined chunking.

    Rules:
    - ``split(buf)`` MUST return chunk lengths that add up to ``len(buf)``; every
      length except the last MUST lie in ``[min_size, max_size]``; the last MAY be
      shorter (the buffer ended).
    - The result MUST depend only on the bytes, so equal content cuts equally.
    - MUST be safe to call from several threads at once (the pipeline chunks files
      in parallel) and SHOULD release the GIL while scanning.
    """

    name: ClassVar[str]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, min_size: int, avg_size: int, max_size: int, options: Mapping[str, Any]) -> None: ...

    def split(self, buf: Buffer) -> list[int]: ...


@runtime_checkable
class Compressor(Protocol):
    """Per-chunk compression.

    Rules:
    - ``tag`` is one byte (0-255) written in front of every compressed blob, so a
      repository can mix algorithms; it MUST never change once published.
    - ``decompress(data, plain_size)`` MUST return exactly ``plain_size`` bytes or
      raise :class:`vger.errors.CorruptData`, and MUST NOT allocate more than
      ``plain_size`` for output (input may come from a hostile repository).
    - ``compress`` and ``decompress`` MUST be safe to call from several threads.
    """

    name: ClassVar[str]
    tag: ClassVar[int]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def compress(self, data: Buffer) -> bytes: ...

    def decompress(self, data: Buffer, plain_size: int) -> bytes: ...


@runtime_checkable
class Cipher(Protocol):
    """Authenticated encryption of one object.

    Rules:
    - ``encrypt(nonce, plaintext, aad)`` returns ciphertext followed by a
      ``tag_size``-byte tag; ``decrypt`` MUST raise
      :class:`vger.errors.IntegrityError` when anything (ciphertext, tag, nonce or
      aad) was altered, and never return unauthenticated bytes.
    - ``encrypts`` is False only for the ``none`` cipher, which still detects
      corruption with a checksum but hides nothing.
    - MUST be safe to call from several threads.
    """

    name: ClassVar[str]
    encrypts: ClassVar[bool]
    key_size: ClassVar[int]
    nonce_size: ClassVar[int]
    tag_size: ClassVar[int]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, key: bytes) -> None: ...

    def encrypt(self, nonce: bytes, plaintext: Buffer, aad: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes: ...


@runtime_checkable
class StorageBackend(Protocol):
    """A flat key/value store holding one repository.

    Keys are relative, ``/``-separated, made of ``[a-z0-9._-]`` segments
    (``packs/ab/ab12...``). Rules:
    - Keys (and ``list`` prefixes) outside that grammar MUST be refused with a
      :class:`vger.errors.StorageError`: :func:`vger.storage.keys.check_key` does it.
    - ``put`` MUST be atomic: a reader sees the whole object or nothing, even if
      the writer dies half-way. Durable when ``put`` returns (fsync on local disk).
    - ``get``/``get_range``/``size``/``delete`` on a missing key MUST raise
      :class:`vger.errors.ObjectNotFound`.
    - ``get_range(key, offset, length)`` MUST return exactly ``length`` bytes or raise.
    - ``list(prefix)`` yields every key under ``prefix`` (recursively), in any order.
    - Failures MUST be mapped onto :class:`vger.errors.TransientStorageError` (retry
      may help) or :class:`vger.errors.PermanentStorageError`, with a one-line
      message naming the location: :func:`vger.storage.errors.storage_errors` maps
      ``OSError`` and friends.
    - MUST be safe to use from several threads.

    A backend does not retry, rate-limit or cap its connections itself: the core
    wraps every backend in those layers (:mod:`vger.storage.wrappers`). Two
    optional class attributes steer them:

    ``is_local: ClassVar[bool]`` (default ``False``)
        ``True`` when the data lives on this machine's disks: ``limits.io.*``
        then applies instead of ``limits.network.*``, and a backup uploads one
        pack at a time instead of four.
    ``connections: ClassVar[int]`` (default 5; 0 = no cap)
        At most this many calls inside the backend at once. A ``connections``
        option in the repository entry wins, if the backend's schema declares it.

    Optional: ``put_parts(key, parts: Sequence[Buffer])``, the same contract as
    ``put`` for an object given as consecutive buffers. The pack writer uses it
    when present, which saves joining every 32 MiB pack in memory.

    Optional: ``remove_incomplete() -> int``, deleting what writers that died
    left half-written (temporary files) and returning the bytes freed. Called
    by ``compact`` under the exclusive lock.
    """

    schemes: ClassVar[tuple[str, ...]]
    name: ClassVar[str]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, url: str, options: Mapping[str, Any]) -> None: ...

    @property
    def location(self) -> str:
        """Human-readable location used in messages (a path or url, no secrets)."""
        ...

    def create(self) -> None:
        """Make the (empty) base location; raise RepositoryExists if it holds anything."""
        ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    def put(self, key: str, data: Buffer) -> None: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class DumpStream(Protocol):
    """One dump a :class:`DumpSource` produces: a name in the snapshot and a byte stream.

    The core calls ``open()``, reads the returned stream to its end (chunking,
    encrypting and storing as it goes, never holding more than a few chunks),
    then calls ``finish()``. If anything fails on either side it calls
    ``abort()`` instead of ``finish()``. Rules:

    - ``name`` is a relative ``/``-separated path without ``.`` or ``..``
      segments (``postgresql/app.dump``); it is where the dump appears inside
      the source's dump folder and what ``vger restore-dump NAME`` takes.
    - ``metadata`` is a JSON-compatible mapping recorded with the dump in the
      snapshot: everything the plugin's ``restorer`` needs (tool, format,
      database, host, port, ...), never a password.
    - ``open()`` MUST stream (a pipe, a socket, pages read on demand), never
      spool to a temporary file or build the dump in memory: dumps can be
      larger than the disk or the RAM that is left.
    - ``finish()`` MUST raise :class:`vger.errors.VgerError` when the dump is not
      complete and good (the tool exited non-zero, timed out, was killed); the
      message should carry the tail of the tool's stderr. The source's snapshot
      is then not committed.
    - ``abort()`` MUST stop the tool and release what ``open()`` took; it may be
      called before ``open()`` or after ``finish()`` and then does nothing.
    """

    name: str

    @property
    def metadata(self) -> Mapping[str, Any]: ...

    def open(self) -> IO[bytes]: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class DumpRestore(Protocol):
    """How one dump goes back into a database (``vger restore-dump``).

    - ``describe()`` returns the command (or action) as a user could type it,
      without secrets: ``--dry-run`` prints it and runs nothing.
    - ``run(data)`` reads the dump's bytes from ``data`` to its end and feeds
      them to the tool; it MUST raise :class:`vger.errors.VgerError` (with the
      tool's stderr tail) when the restore failed.
    """

    def describe(self) -> str: ...

    def run(self, data: IO[bytes]) -> None: ...


@runtime_checkable
class DumpSource(Protocol):
    """A database (or other) dump streamed into a snapshot as files.

    Built with the user's ``dumps:`` entry (``type`` included, schema defaults
    filled). Rules:

    - ``dumps()`` yields one :class:`DumpStream` per file; streams are opened
      one after the other, never two at once. Names MUST be unique within one
      source; the core refuses a source whose dumps share a name.
    - ``restorer(record, overrides)`` plans the restore of a dump this plugin
      made. ``record`` is the ``metadata`` the stream declared, plus ``type``
      and ``name``; ``overrides`` holds only what the user gave on the command
      line (``host``, ``port``, ``username``, ``database``) and wins over the
      record. The instance is built from the current config's entry of the
      same type for the snapshot's source (so a password can come from there),
      or from ``{"type": name}`` when there is none: the constructor MUST NOT
      require options. Return None when the dump cannot be restored by a tool
      (``vger restore`` still restores it as a plain file).
    """

    name: ClassVar[str]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def dumps(self) -> Iterator[DumpStream]: ...

    def restorer(self, record: Mapping[str, Any], overrides: Mapping[str, Any]) -> DumpRestore | None: ...


@runtime_checkable
class Monitor(Protocol):
    """A monitoring service pinged at start, success and failure.

    The core (:mod:`vger.monitoring`) decides when to ping and builds the
    payload; the monitor only knows how to reach its service. Rules:

    - ``__init__(options)`` gets the whole ``monitoring`` entry (``type``,
      ``states``, ``commands``, ``timeout`` and the plugin's own options) and
      MUST NOT touch the network: monitors are built for every command.
    - ``ping(state, payload)``: ``state`` is ``start``, ``finish`` or ``fail``;
      ``payload`` holds ``command``, ``run_id``, ``hostname``,
      ``repositories``, ``snapshots``, size totals, ``duration``, ``error``,
      ``summary`` and ``log_tail`` (docs/monitoring.md). It MUST NOT raise for
      network problems and MUST give up after ``options["timeout"]`` seconds;
      :func:`vger.monitoring.http_send` does both. The core also runs each
      ping in a thread with a deadline and logs what it raises, so a monitor
      can never change a run's outcome.
    """

    name: ClassVar[str]
    options_schema: ClassVar[Mapping[str, Any]]

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def ping(self, state: str, payload: Mapping[str, Any]) -> None: ...
