"""The authenticated envelope every stored object (except ``config``) is wrapped in."""

from __future__ import annotations

import enum
import os
import threading

from vger.errors import CorruptData, IntegrityError
from vger.interfaces import Buffer, Cipher

NONCE_SIZE = 12


class ObjectType(enum.IntEnum):
    """First byte of every envelope; fed to the AEAD as associated data."""

    MANIFEST = 0x01
    SNAPSHOT = 0x02
    CHUNK = 0x03
    INDEX = 0x04
    PACK_HEADER = 0x05
    KEY = 0x06
    ITEMS = 0x07  # a chunk of a snapshot's item stream (file metadata)
    LOCK = 0x08


_VALID_TYPES = {t.value for t in ObjectType}


class _NoncePool(threading.local):
    """Random nonces from the kernel, fetched 512 at a time per thread.

    One ``getrandom`` call per blob cost 6 % of a backup of small files; the
    bytes are the same kernel randomness either way. A forked child (hooks,
    dump tools) must never reuse its parent's pool: a fork bumps
    ``_fork_generation`` and every pool refills when it sees that.
    """

    def __init__(self) -> None:
        self._generation = -1
        self._pool = b""
        self._pos = 0

    def take(self) -> bytes:
        if self._pos >= len(self._pool) or self._generation != _fork_generation:
            self._pool = os.urandom(NONCE_SIZE * 512)
            self._pos = 0
            self._generation = _fork_generation
        nonce = self._pool[self._pos : self._pos + NONCE_SIZE]
        self._pos += NONCE_SIZE
        return nonce


_fork_generation = 0


def _forked() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_forked)


_nonces = _NoncePool()


def seal(cipher: Cipher, obj_type: ObjectType, plaintext: Buffer, extra_aad: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` as an object of ``obj_type``.

    ``extra_aad`` binds the object to its name (a chunk id, a snapshot id), so a
    blob cannot be swapped for another one of the same type without detection.
    """
    type_byte = bytes((obj_type,))
    # Random 96-bit nonces: at most 2**32 objects per key keep the collision
    # risk under 2**-32 (NIST SP 800-38D 8.3); with multi-MiB chunks that is
    # petabytes per repository key.
    nonce = _nonces.take()
    return type_byte + nonce + cipher.encrypt(nonce, plaintext, type_byte + extra_aad)


def envelope_type(data: Buffer) -> int:
    if len(data) < 1 + NONCE_SIZE:
        raise CorruptData("object too short to be an envelope")
    return data[0]


def unseal(
    cipher: Cipher, expected: ObjectType, data: Buffer, extra_aad: bytes = b"", what: str = ""
) -> bytes:
    """Authenticate and decrypt; raise IntegrityError/CorruptData naming ``what`` otherwise."""
    label = what or expected.name.lower()
    if len(data) < 1 + NONCE_SIZE + cipher.tag_size:
        raise CorruptData(f"{label}: object is truncated ({len(data)} bytes)")
    found = data[0]
    if found != expected:
        name = ObjectType(found).name.lower() if found in _VALID_TYPES else f"unknown type {found}"
        raise CorruptData(f"{label}: expected a {expected.name.lower()} object, found {name}")
    view = memoryview(data)
    nonce = bytes(view[1 : 1 + NONCE_SIZE])
    try:
        return cipher.decrypt(nonce, view[1 + NONCE_SIZE :], bytes(view[:1]) + extra_aad)
    except IntegrityError as exc:
        raise IntegrityError(f"{label}: {exc}") from exc
