"""Opening, creating and reading a repository."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from vger.crypto.chunkid import ChunkIdHasher
from vger.crypto.envelope import ObjectType, seal, unseal
from vger.crypto.keys import CHUNK_ID_KEYED, CHUNK_ID_PLAIN, MasterKey, unwrap_key, wrap_key
from vger.errors import (
    CorruptData,
    IntegrityError,
    ObjectNotFound,
    RepositoryError,
    RepositoryExists,
    RepositoryNotFound,
    SnapshotNotFound,
    StorageError,
)
from vger.interfaces import Buffer, Cipher, Compressor, StorageBackend
from vger.pluginmanager import Registry
from vger.repository import format as fmt
from vger.repository.index import ChunkIndex, IndexEntry, decode_segment, encode_segment
from vger.repository.items import Item, iter_items
from vger.repository.snapshot import Snapshot

PassphraseFn = Callable[[], str]

# Snapshot and index objects are small; refuse absurd sizes from a hostile store.
_MAX_SNAPSHOT_OBJECT = 256 * 1024 * 1024


class Repository:
    """An opened repository: its config, keys, cipher and (lazily) its index."""

    def __init__(
        self,
        backend: StorageBackend,
        registry: Registry,
        config: fmt.RepoConfig,
        key: MasterKey | None,
        label: str = "",
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.config = config
        self.key = key
        self.label = label or backend.location
        cipher_cls = registry.get("cipher", config.cipher)
        self.cipher: Cipher = cipher_cls(key.enc_key if key else bytes(32))
        self.hasher = ChunkIdHasher(config.chunk_id_scheme, key.id_key if key else None)
        self._index: ChunkIndex | None = None
        self._index_lock = threading.Lock()
        self._decompressors: dict[int, Compressor] = {}

    # -- creation and opening ---------------------------------------------
    @classmethod
    def init(
        cls,
        backend: StorageBackend,
        registry: Registry,
        cipher_name: str,
        passphrase: PassphraseFn,
        label: str = "",
    ) -> Repository:
        """Create a new repository. Refuses (touching nothing) if one is there."""
        cipher_cls = registry.get("cipher", cipher_name)
        if backend.exists(fmt.CONFIG_KEY):
            raise RepositoryExists(f"a repository already exists at {backend.location}; nothing was touched")
        # Ask before creating anything: a missing passphrase must not leave an empty folder behind.
        secret = passphrase() if cipher_cls.encrypts else None
        backend.create()
        repo_id = os.urandom(32)
        key: MasterKey | None = None
        if secret is not None:
            key = MasterKey.generate(repo_id, cipher_name)
            backend.put(fmt.KEY_FILE_KEY, wrap_key(key, secret))
            scheme = CHUNK_ID_KEYED
        else:
            scheme = CHUNK_ID_PLAIN
        config = fmt.RepoConfig.new(repo_id, cipher_name, scheme, encrypted=key is not None)
        # config last: a repository without config is not a repository, so a
        # crash during init leaves nothing that looks half-made to `open`.
        backend.put(fmt.CONFIG_KEY, config.to_bytes())
        return cls(backend, registry, config, key, label)

    @classmethod
    def open(
        cls,
        backend: StorageBackend,
        registry: Registry,
        passphrase: PassphraseFn,
        *,
        allow_unencrypted: bool,
        label: str = "",
        meanwhile: Callable[[fmt.RepoConfig], None] | None = None,
    ) -> Repository:
        """Open and authenticate; ``allow_unencrypted`` is True only if the user chose mode none.

        ``meanwhile(config)`` runs on this thread while the key is derived on
        another: Argon2id (0.15-0.2 s on purpose) releases the GIL, so work that
        needs the repository's id but not its key (loading the files cache)
        costs no extra time. It must be free of side effects outside vger's
        cache: it has run even if the passphrase then turns out wrong.
        """
        try:
            raw = backend.get(fmt.CONFIG_KEY)
        except ObjectNotFound:
            raise RepositoryNotFound(
                f"no repository at {backend.location}; create one with `vger init`"
            ) from None
        config = fmt.RepoConfig.from_bytes(raw)
        has_key = backend.exists(fmt.KEY_FILE_KEY)
        if not config.encrypted:
            if has_key:
                raise IntegrityError(
                    f"{backend.location}: config says the repository is unencrypted but a key file "
                    "exists: the config was tampered with; refusing to continue"
                )
            if not allow_unencrypted:
                raise RepositoryError(
                    f"{backend.location} is not encrypted, but your config asks for encryption; if you "
                    "created it with `encryption: {mode: none}`, say so in the config (refusing, as this "
                    "could be a downgrade attack)"
                )
            if meanwhile is not None:
                meanwhile(config)
            return cls(backend, registry, config, None, label)
        if not has_key:
            raise RepositoryError(
                f"{backend.location}: the key file keys/repokey is missing; restore it with `vger key import`"
            )
        key_file, secret = backend.get(fmt.KEY_FILE_KEY), passphrase()
        if meanwhile is None:
            key = unwrap_key(key_file, secret)
        else:
            key = _unwrap_meanwhile(key_file, secret, config, meanwhile)
        if (
            key.repo_id != config.repo_id
            or key.cipher != config.cipher
            or key.chunk_id_scheme != config.chunk_id_scheme
        ):
            raise IntegrityError(
                f"{backend.location}: the clear config does not match the authenticated key "
                f"(config says cipher {config.cipher!r}, key says {key.cipher!r}): refusing to continue"
            )
        return cls(backend, registry, config, key, label)

    @property
    def id_hex(self) -> str:
        return self.config.repo_id.hex()

    def rewrap_key(self, passphrase: str) -> None:
        if self.key is None:
            raise RepositoryError("an unencrypted repository has no key")
        self.backend.put(fmt.KEY_FILE_KEY, wrap_key(self.key, passphrase))

    # -- objects --------------------------------------------------------------
    def seal(self, obj_type: ObjectType, plaintext: bytes | memoryview, extra_aad: bytes = b"") -> bytes:
        return seal(self.cipher, obj_type, plaintext, extra_aad)

    def unseal(self, obj_type: ObjectType, data: Buffer, extra_aad: bytes = b"", what: str = "") -> bytes:
        return unseal(self.cipher, obj_type, data, extra_aad, what)

    def put_object(self, key: str, obj_type: ObjectType, doc: Any, extra_aad: bytes = b"") -> None:
        self.backend.put(key, self.seal(obj_type, msgpack.packb(doc), extra_aad))

    # -- index ----------------------------------------------------------------
    @property
    def index(self) -> ChunkIndex:
        with self._index_lock:
            if self._index is None:
                self._index = self._load_index()
            return self._index

    def reset_index(self) -> None:
        """Forget the cached index (after maintenance rewrote the segments)."""
        with self._index_lock:
            self._index = None

    def index_segment_keys(self) -> list[str]:
        return sorted(self.backend.list(fmt.INDEX_PREFIX))

    def _load_index(self) -> ChunkIndex:
        index = ChunkIndex()
        for key in self.index_segment_keys():
            index.add_segment(self.unseal(ObjectType.INDEX, self.backend.get(key), what=key), key)
        return index

    def read_index_segment(self, key: str) -> Iterator[tuple[bytes, bytes, int, int, int, int]]:
        plain = self.unseal(ObjectType.INDEX, self.backend.get(key), what=key)
        return decode_segment(plain, key)

    def write_index_segment(self, packs: dict[bytes, list[tuple[bytes, int, int, int, int]]]) -> str:
        sealed = self.seal(ObjectType.INDEX, encode_segment(packs))
        key = fmt.INDEX_PREFIX + os.urandom(32).hex()
        self.backend.put(key, sealed)
        return key

    # -- blobs ----------------------------------------------------------------
    def decompressor(self, tag: int) -> Compressor:
        comp = self._decompressors.get(tag)
        if comp is None:
            comp = self.registry.compressor_by_tag(tag)({})
            self._decompressors[tag] = comp
        return comp

    def decode_blob(self, chunk_id: bytes, envelope: Buffer, entry: IndexEntry) -> bytes:
        """Authenticate, decompress (bounded by the recorded size) and verify one blob."""
        what = f"chunk {chunk_id.hex()[:16]} in pack {entry.pack_id.hex()[:16]}"
        if entry.plain_size > fmt.MAX_CHUNK_SIZE:
            # pyfastcdc caps chunks at 16 MiB; a larger recorded size is forged or corrupt
            # and would make decompression allocate whatever it claims.
            raise CorruptData(f"{what}: recorded size {entry.plain_size} is larger than any chunk can be")
        obj_type = ObjectType.ITEMS if entry.blob_type == fmt.BLOB_ITEMS else ObjectType.CHUNK
        plain = self.unseal(obj_type, envelope, chunk_id, what=what)
        if not plain:
            raise CorruptData(f"{what}: empty blob")
        data = self.decompressor(plain[0]).decompress(memoryview(plain)[1:], entry.plain_size)
        # With an AEAD the chunk id is bound as associated data, so the
        # authentication above already proves this is the right chunk. The
        # `none` cipher only checksums, so recompute the id there.
        if not self.cipher.encrypts and self.hasher(data) != chunk_id:
            raise IntegrityError(f"{what}: content does not match its id")
        return data

    def read_blob(self, chunk_id: bytes) -> bytes:
        entry = self.index.get(chunk_id)
        if entry is None:
            raise IntegrityError(f"chunk {chunk_id.hex()[:16]} is not in the index (repository damaged?)")
        try:
            envelope = self.backend.get_range(fmt.pack_key(entry.pack_id), entry.offset, entry.length)
        except ObjectNotFound:
            raise IntegrityError(
                f"pack {entry.pack_id.hex()[:16]} holding chunk {chunk_id.hex()[:16]} is missing"
            ) from None
        except StorageError as exc:
            raise IntegrityError(f"cannot read pack {entry.pack_id.hex()[:16]}: {exc}") from exc
        return self.decode_blob(chunk_id, envelope, entry)

    # -- snapshots ------------------------------------------------------------
    def snapshot_ids(self) -> list[bytes]:
        ids = []
        for key in self.backend.list(fmt.SNAPSHOTS_PREFIX):
            name = key[len(fmt.SNAPSHOTS_PREFIX) :]
            try:
                ids.append(bytes.fromhex(name))
            except ValueError:
                continue  # not ours (e.g. a stray file); check reports it
        return ids

    def load_snapshot(self, snap_id: bytes) -> Snapshot:
        key = fmt.SNAPSHOTS_PREFIX + snap_id.hex()
        data = self.backend.get(key)
        if len(data) > _MAX_SNAPSHOT_OBJECT:
            raise CorruptData(f"{key}: implausibly large snapshot object")
        plain = self.unseal(ObjectType.SNAPSHOT, data, snap_id, what=f"snapshot {snap_id.hex()[:8]}")
        try:
            doc = msgpack.unpackb(plain, raw=False)
        except Exception as exc:
            raise CorruptData(f"snapshot {snap_id.hex()[:8]}: not valid msgpack: {exc}") from exc
        return Snapshot.from_dict(doc, snap_id)

    def snapshots(self) -> list[Snapshot]:
        """All snapshots, oldest first."""
        snaps = [self.load_snapshot(i) for i in self.snapshot_ids()]
        snaps.sort(key=lambda s: (s.time_start, s.id))
        return snaps

    def put_snapshot(self, snap: Snapshot) -> None:
        """The commit point of a backup: everything it references is already durable."""
        self.put_object(fmt.SNAPSHOTS_PREFIX + snap.hex_id, ObjectType.SNAPSHOT, snap.to_dict(), snap.id)

    def resolve_snapshot(self, ref: str, source_label: str | None = None) -> Snapshot:
        """``latest``, a full id or a unique prefix of at least 4 hex characters."""
        snaps = self.snapshots()
        if source_label:
            snaps = [s for s in snaps if s.source_label == source_label]
        if ref == "latest":
            if not snaps:
                where = f" for source '{source_label}'" if source_label else ""
                raise SnapshotNotFound(f"no snapshots{where} in {self.label}")
            return snaps[-1]
        ref = ref.lower()
        if len(ref) < 4:
            raise SnapshotNotFound(f"snapshot id prefix '{ref}' is too short: give at least 4 characters")
        matches = [s for s in snaps if s.hex_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise SnapshotNotFound(f"no snapshot '{ref}' in {self.label}; see `vger list`")
        candidates = ", ".join(f"{s.short_id} ({s.source_label}, {s.time_iso})" for s in matches[:10])
        raise SnapshotNotFound(f"snapshot prefix '{ref}' is ambiguous: {candidates}")

    def iter_items(self, snap: Snapshot) -> Iterator[Item]:
        return iter_items(snap.items, self.read_blob)


def export_key_text(repo: Repository) -> str:
    """The wrapped key as text (still protected by the passphrase), for ``vger key export``."""
    import base64
    import textwrap

    blob = repo.backend.get(fmt.KEY_FILE_KEY)
    body = "\n".join(textwrap.wrap(base64.b64encode(blob).decode("ascii"), 76))
    return f"{KEY_EXPORT_HEADER}\nrepository: {repo.id_hex}\n{body}\n"


KEY_EXPORT_HEADER = "VGER KEY v1"


def import_key_text(backend: StorageBackend, text: str, passphrase: PassphraseFn) -> None:
    """Put an exported key back, after checking it belongs here and the passphrase opens it."""
    import base64
    import binascii

    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != KEY_EXPORT_HEADER or not lines[1].startswith("repository: "):
        raise RepositoryError("this file is not a vger key export (expected a 'VGER KEY v1' header)")
    try:
        blob = base64.b64decode("".join(lines[2:]), validate=True)
    except binascii.Error as exc:
        raise RepositoryError(f"the key export is damaged: {exc}") from exc
    try:
        config = fmt.RepoConfig.from_bytes(backend.get(fmt.CONFIG_KEY))
    except ObjectNotFound:
        raise RepositoryNotFound(
            f"no repository at {backend.location}; create one with `vger init`"
        ) from None
    if lines[1].removeprefix("repository: ") != config.repo_id.hex():
        raise RepositoryError(
            f"this key belongs to repository {lines[1].removeprefix('repository: ')[:16]}, "
            f"not to {config.repo_id.hex()[:16]} at {backend.location}"
        )
    key = unwrap_key(blob, passphrase())
    if key.repo_id != config.repo_id or key.cipher != config.cipher:
        raise IntegrityError("the key does not match this repository's config")
    backend.put(fmt.KEY_FILE_KEY, blob)


def _unwrap_meanwhile(
    key_file: bytes, secret: str, config: fmt.RepoConfig, meanwhile: Callable[[fmt.RepoConfig], None]
) -> MasterKey:
    outcome: list[MasterKey | BaseException] = []

    def derive() -> None:
        try:
            outcome.append(unwrap_key(key_file, secret))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=derive, name="vger-key", daemon=True)
    worker.start()
    try:
        meanwhile(config)
    finally:
        worker.join()
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result
