"""The `none` cipher hides nothing, but must still pass every integrity rule of the contract."""

from vger_cipher_none import NoCipher

from vger.testing import CipherContract


class TestNoCipherContract(CipherContract):
    cipher_class = NoCipher


def test_stores_the_plaintext_in_clear() -> None:
    # The reason to choose it (readable with a hex editor) is also what the
    # contract lets it skip; pin it so nobody "fixes" it into a real cipher.
    data = NoCipher(bytes(32)).encrypt(bytes(12), b"visible", b"aad")
    assert data.startswith(b"visible")
