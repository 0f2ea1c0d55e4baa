"""ChaCha20-Poly1305 must pass the cipher contract."""

import pytest
from vger_cipher_chacha20poly1305 import ChaCha20Poly1305Cipher

from vger.testing import CipherContract


class TestChaCha20Poly1305Contract(CipherContract):
    cipher_class = ChaCha20Poly1305Cipher


def test_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        ChaCha20Poly1305Cipher(bytes(16))
