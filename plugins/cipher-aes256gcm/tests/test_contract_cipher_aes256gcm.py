"""AES-256-GCM must pass the cipher contract."""

import pytest
from vger_cipher_aes256gcm import Aes256GcmCipher

from vger.testing import CipherContract


class TestAes256GcmContract(CipherContract):
    cipher_class = Aes256GcmCipher


def test_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        Aes256GcmCipher(bytes(16))
