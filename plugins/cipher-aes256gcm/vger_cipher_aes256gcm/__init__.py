"""AES-256-GCM: the fastest choice on CPUs with AES-NI and CLMUL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vger import hookimpl
from vger.errors import IntegrityError
from vger.interfaces import Buffer


class Aes256GcmCipher:
    """AES-256 in Galois/Counter mode, 96-bit random nonces, 128-bit tags."""

    name: ClassVar[str] = "aes256gcm"
    encrypts: ClassVar[bool] = True
    key_size: ClassVar[int] = 32
    nonce_size: ClassVar[int] = 12
    tag_size: ClassVar[int] = 16
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, key: bytes) -> None:
        if len(key) != self.key_size:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def encrypt(self, nonce: bytes, plaintext: Buffer, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag as exc:
            raise IntegrityError("authentication failed (AES-256-GCM tag mismatch)") from exc


@hookimpl
def vger_register_ciphers() -> list[type[Any]]:
    return [Aes256GcmCipher]
