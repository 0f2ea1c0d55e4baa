"""Chunk ids: keyed BLAKE2b-256, so the id reveals nothing without the key."""

from __future__ import annotations

from vger.crypto.blake2 import blake2b_256
from vger.crypto.keys import CHUNK_ID_KEYED, CHUNK_ID_PLAIN
from vger.interfaces import Buffer

ID_SIZE = 32


class ChunkIdHasher:
    """Computes chunk ids; the hash releases the GIL (vger.crypto.blake2), so workers hash in parallel."""

    def __init__(self, scheme: str, key: bytes | None) -> None:
        if scheme == CHUNK_ID_KEYED:
            if not key:
                raise ValueError("keyed chunk ids need a key")
            self._key = key
        elif scheme == CHUNK_ID_PLAIN:
            self._key = b""
        else:
            raise ValueError(f"unknown chunk id scheme {scheme!r}")
        self.scheme = scheme

    def __call__(self, data: Buffer) -> bytes:
        return blake2b_256(data, self._key)
