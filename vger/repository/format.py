"""Constants and the clear ``config`` object of a repository."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgpack

from vger.errors import CorruptData

FORMAT_VERSION = 1
CONFIG_KEY = "config"
KEY_FILE_KEY = "keys/repokey"
SNAPSHOTS_PREFIX = "snapshots/"
INDEX_PREFIX = "index/"
PACKS_PREFIX = "packs/"
LOCKS_PREFIX = "locks/"

PACK_MAGIC = b"VGERPACK"
PACK_VERSION = 1
PACK_PREAMBLE = PACK_MAGIC + bytes((PACK_VERSION,))

# Blob types inside packs (pack header, index entries).
BLOB_DATA = 0
BLOB_ITEMS = 1

# Limits applied when decoding objects that a hostile repository could forge.
MAX_PACK_HEADER = 64 * 1024 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
MAX_OBJECT_ITEMS = 10_000_000


@dataclass(frozen=True)
class RepoConfig:
    """What an un-keyed reader needs to know before opening the key."""

    version: int
    repo_id: bytes
    cipher: str
    chunk_id_scheme: str
    created: float
    encrypted: bool

    def to_bytes(self) -> bytes:
        return msgpack.packb(
            {
                "format": "vger",
                "version": self.version,
                "id": self.repo_id,
                "cipher": self.cipher,
                "chunk_id": self.chunk_id_scheme,
                "created": self.created,
                "encrypted": self.encrypted,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RepoConfig:
        try:
            doc: dict[str, Any] = msgpack.unpackb(data, max_bin_len=1024, max_str_len=1024, max_map_len=64)
        except Exception as exc:
            raise CorruptData(f"repository config is not valid msgpack: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != "vger":
            raise CorruptData("this is not a vger repository (config has no vger marker)")
        version = doc.get("version")
        if version != FORMAT_VERSION:
            raise CorruptData(
                f"repository format version {version} is not supported by this vger "
                f"(supports {FORMAT_VERSION}); upgrade vger"
            )
        try:
            return cls(
                version=int(version),
                repo_id=bytes(doc["id"]),
                cipher=str(doc["cipher"]),
                chunk_id_scheme=str(doc["chunk_id"]),
                created=float(doc["created"]),
                encrypted=bool(doc["encrypted"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptData(f"repository config is missing a field: {exc}") from exc

    @classmethod
    def new(cls, repo_id: bytes, cipher: str, chunk_id_scheme: str, encrypted: bool) -> RepoConfig:
        return cls(FORMAT_VERSION, repo_id, cipher, chunk_id_scheme, time.time(), encrypted)


def pack_key(pack_id: bytes) -> str:
    hexid = pack_id.hex()
    return f"{PACKS_PREFIX}{hexid[:2]}/{hexid}"
