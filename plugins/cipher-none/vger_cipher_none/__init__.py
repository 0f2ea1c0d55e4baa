"""No encryption, chosen explicitly: data is stored in clear but still checksummed.

The checksum (BLAKE2b-128 over the nonce, the associated data and the
plaintext) detects corruption and type confusion; it is not a MAC and protects
nothing against an attacker who can write to the repository. The nonce and the
associated data are length-prefixed so that bytes cannot move unnoticed from
one field to the next (the contract in vger.testing checks both).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.errors import IntegrityError
from vger.interfaces import Buffer


class NoCipher:
    """Plaintext followed by a 16-byte BLAKE2b checksum; the nonce is only checksummed."""

    name: ClassVar[str] = "none"
    encrypts: ClassVar[bool] = False
    key_size: ClassVar[int] = 32
    nonce_size: ClassVar[int] = 12
    tag_size: ClassVar[int] = 16
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, key: bytes) -> None:
        self.key = key

    def _checksum(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes:
        h = hashlib.blake2b(digest_size=self.tag_size)
        for field in (nonce, aad):
            h.update(len(field).to_bytes(8, "little"))
            h.update(field)
        h.update(data)
        return h.digest()

    def encrypt(self, nonce: bytes, plaintext: Buffer, aad: bytes) -> bytes:
        return bytes(plaintext) + self._checksum(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes:
        if len(data) < self.tag_size:
            raise IntegrityError("object too short for its checksum")
        view = memoryview(data)
        body, tag = view[: -self.tag_size], view[-self.tag_size :]
        if not hmac.compare_digest(self._checksum(nonce, body, aad), tag):
            raise IntegrityError("checksum mismatch (object is corrupt)")
        return bytes(body)


@hookimpl
def vger_register_ciphers() -> list[type[Any]]:
    return [NoCipher]
