"""The contract every cipher plugin must pass (see :class:`vger.interfaces.Cipher`).

Why these tests: the cipher is the only thing standing between a hostile
storage and the restore path. Whatever it returns is trusted from then on, so
any alteration -- of the ciphertext, the tag, the nonce or the associated data
(which binds a blob to its id and type) -- MUST surface as
:class:`vger.errors.IntegrityError`, never as bytes and never as some other
exception the core would not recognise.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest

from vger.errors import IntegrityError
from vger.interfaces import Cipher
from vger.testing._support import (
    MiB,
    as_buffers,
    check_component_name,
    check_options_schema,
    flip,
    random_bytes,
    run_in_threads,
    sample_positions,
)

#: Recognisable plaintext: if it shows up in the ciphertext, nothing was hidden.
MARKER = b"vger-plaintext-marker:do-not-leak;"

AAD = b"vger-blob:chunk:0123456789abcdef"


class CipherContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``cipher_class`` (required unless you override the ``cipher`` fixture)
        The class your ``vger_register_ciphers`` hook returns.
    ``key`` fixture
        The key to build it with. Default: ``key_size`` random bytes.
    ``cipher`` fixture
        Override it to build the instance yourself.

    The ``none`` cipher (``encrypts = False``) is held to every rule except the
    ones about secrecy: it must still detect each alteration.
    """

    cipher_class: ClassVar[type[Any] | None] = None

    def _class(self) -> type[Any]:
        if self.cipher_class is None:
            raise TypeError(
                f"{type(self).__name__}: set `cipher_class` or override the `key` and `cipher` fixtures"
            )
        return self.cipher_class

    @pytest.fixture
    def key(self) -> bytes:
        return os.urandom(self._class().key_size)

    @pytest.fixture
    def cipher(self, key: bytes) -> Any:
        return self._class()(key)

    def nonce(self, cipher: Any) -> bytes:
        """A fresh nonce; vger draws them at random for every object."""
        return os.urandom(type(cipher).nonce_size)

    # -- identity ---------------------------------------------------------

    def test_satisfies_the_protocol(self, cipher: Any) -> None:
        assert isinstance(cipher, Cipher)
        cls = type(cipher)
        check_component_name(cls.name)
        assert isinstance(cls.encrypts, bool)
        for attribute in ("key_size", "nonce_size", "tag_size"):
            value = getattr(cls, attribute)
            assert isinstance(value, int) and not isinstance(value, bool), f"`{attribute}` must be an int"
        assert cls.key_size > 0 and cls.nonce_size > 0
        # Without a tag nothing could detect an alteration.
        assert cls.tag_size > 0

    def test_options_schema_is_valid(self, cipher: Any) -> None:
        check_options_schema(type(cipher).options_schema)

    # -- round trips ------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, MiB + 7])
    @pytest.mark.parametrize("aad", [b"", AAD], ids=["no-aad", "aad"])
    def test_round_trip(self, cipher: Any, size: int, aad: bytes) -> None:
        plaintext = random_bytes(size, seed=size)
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, plaintext, aad)
        assert isinstance(data, bytes), "encrypt() must return bytes"
        assert len(data) == size + type(cipher).tag_size, "output must be plaintext length + tag_size"
        out = cipher.decrypt(nonce, data, aad)
        assert isinstance(out, bytes), "decrypt() must return bytes"
        assert out == plaintext

    @pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
    def test_accepts_every_buffer_type(self, cipher: Any, kind: str) -> None:
        plaintext = random_bytes(1000, seed=7)
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, dict(as_buffers(plaintext))[kind], AAD)
        assert cipher.decrypt(nonce, dict(as_buffers(data))[kind], AAD) == plaintext

    def test_another_instance_with_the_same_key_decrypts(self, cipher: Any, key: bytes) -> None:
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, b"written by one process, read by another", AAD)
        assert type(cipher)(key).decrypt(nonce, data, AAD) == b"written by one process, read by another"

    # -- secrecy ------------------------------------------------------------

    def test_ciphertext_hides_the_plaintext(self, cipher: Any) -> None:
        if not type(cipher).encrypts:
            pytest.skip("encrypts = False: this cipher stores plaintext on purpose")
        plaintext = MARKER * 64
        data = cipher.encrypt(self.nonce(cipher), plaintext, AAD)
        assert MARKER not in data
        assert data[: len(plaintext)] != plaintext

    def test_different_nonces_give_different_ciphertexts(self, cipher: Any) -> None:
        if not type(cipher).encrypts:
            pytest.skip("encrypts = False: this cipher stores plaintext on purpose")
        plaintext = MARKER * 4
        assert cipher.encrypt(self.nonce(cipher), plaintext, AAD) != cipher.encrypt(
            self.nonce(cipher), plaintext, AAD
        )

    def test_wrong_key_raises(self, cipher: Any, key: bytes) -> None:
        if not type(cipher).encrypts:
            pytest.skip("encrypts = False: there is no secret key to get wrong")
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, MARKER, AAD)
        other_key = bytes(b ^ 0x01 for b in key)
        with pytest.raises(IntegrityError):
            type(cipher)(other_key).decrypt(nonce, data, AAD)

    # -- alterations ----------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 48, 65536])
    def test_altering_any_byte_raises(self, cipher: Any, size: int) -> None:
        plaintext = random_bytes(size, seed=size + 1)
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, plaintext, AAD)
        for position in sample_positions(len(data), 200, seed=size):
            for mask in (0x01, 0x80, 0xFF):
                with pytest.raises(IntegrityError):
                    cipher.decrypt(nonce, flip(data, position, mask), AAD)

    def test_altered_nonce_raises(self, cipher: Any) -> None:
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, MARKER, AAD)
        for position in range(len(nonce)):
            with pytest.raises(IntegrityError):
                cipher.decrypt(flip(nonce, position), data, AAD)

    @pytest.mark.parametrize("size", [0, 100])
    def test_altered_aad_raises(self, cipher: Any, size: int) -> None:
        plaintext = random_bytes(size, seed=9)
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, plaintext, AAD)
        for wrong in (b"", AAD[:-1], AAD + b"\x00", flip(AAD, 0), flip(AAD, len(AAD) - 1)):
            with pytest.raises(IntegrityError):
                cipher.decrypt(nonce, data, wrong)
        empty_aad_data = cipher.encrypt(nonce, plaintext, b"")
        with pytest.raises(IntegrityError):
            cipher.decrypt(nonce, empty_aad_data, b"\x00")

    def test_moving_bytes_between_aad_and_data_raises(self, cipher: Any) -> None:
        # A naive checksum over aad + data cannot tell where one ends.
        nonce = self.nonce(cipher)
        aad, plaintext = b"header", b"body"
        data = cipher.encrypt(nonce, plaintext, aad)
        with pytest.raises(IntegrityError):
            cipher.decrypt(nonce, aad[-1:] + data, aad[:-1])

    def test_truncated_or_extended_data_raises(self, cipher: Any) -> None:
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, MARKER, AAD)
        tag_size = type(cipher).tag_size
        for wrong in (
            b"",
            data[:1],
            data[: tag_size - 1],
            data[:tag_size],
            data[:-1],
            data[1:],
            data + b"\x00",
        ):
            with pytest.raises(IntegrityError):
                cipher.decrypt(nonce, wrong, AAD)

    def test_empty_plaintext_is_still_authenticated(self, cipher: Any) -> None:
        nonce = self.nonce(cipher)
        data = cipher.encrypt(nonce, b"", AAD)
        assert len(data) == type(cipher).tag_size
        assert cipher.decrypt(nonce, data, AAD) == b""
        with pytest.raises(IntegrityError):
            cipher.decrypt(nonce, flip(data, 0), AAD)
        with pytest.raises(IntegrityError):
            cipher.decrypt(nonce, data, b"other")

    @pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 64])
    def test_random_garbage_raises(self, cipher: Any, length: int) -> None:
        with pytest.raises(IntegrityError):
            cipher.decrypt(self.nonce(cipher), random_bytes(length, seed=length + 50), AAD)

    # -- concurrency ------------------------------------------------------

    def test_concurrent_use_from_four_threads(self, cipher: Any) -> None:
        def worker(index: int) -> bool:
            for round_number in range(50):
                plaintext = random_bytes(1000 + 997 * round_number, seed=index * 1000 + round_number)
                nonce = self.nonce(cipher)
                aad = AAD + bytes([index, round_number])
                if cipher.decrypt(nonce, cipher.encrypt(nonce, plaintext, aad), aad) != plaintext:
                    return False
            return True

        assert all(run_in_threads(worker, 4))
