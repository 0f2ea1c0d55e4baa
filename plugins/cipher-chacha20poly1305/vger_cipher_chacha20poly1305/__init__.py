"""ChaCha20-Poly1305: fast everywhere, including CPUs without AES instructions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vger import hookimpl
from vger.errors import IntegrityError
from vger.interfaces import Buffer


class ChaCha20Poly1305Cipher:
    """IETF ChaCha20-Poly1305 (RFC 8439), 96-bit random nonces, 128-bit tags."""

    name: ClassVar[str] = "chacha20poly1305"
    encrypts: ClassVar[bool] = True
    key_size: ClassVar[int] = 32
    nonce_size: ClassVar[int] = 12
    tag_size: ClassVar[int] = 16
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, key: bytes) -> None:
        if len(key) != self.key_size:
            raise ValueError("ChaCha20-Poly1305 needs a 32-byte key")
        self._aead = ChaCha20Poly1305(key)

    def encrypt(self, nonce: bytes, plaintext: Buffer, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag as exc:
            raise IntegrityError("authentication failed (ChaCha20-Poly1305 tag mismatch)") from exc


@hookimpl
def vger_register_ciphers() -> list[type[Any]]:
    return [ChaCha20Poly1305Cipher]
