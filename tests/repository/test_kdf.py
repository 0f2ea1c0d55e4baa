"""Argon2id: libsodium's one-lane implementation must be the same function as argon2-cffi's."""

from __future__ import annotations

import msgpack
import pytest
from argon2.low_level import Type, hash_secret_raw

from vger.crypto import keys
from vger.crypto.keys import MasterKey, unwrap_key, wrap_key

SALT = bytes(range(16))


def reference(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=params["time_cost"],
        memory_cost=params["memory_cost"],
        parallelism=params["parallelism"],
        hash_len=32,
        type=Type.ID,
    )


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 1, "memory_cost": 8, "parallelism": 1},
        {"time_cost": 2, "memory_cost": 1024, "parallelism": 1},
        {"time_cost": 3, "memory_cost": 4096, "parallelism": 1},
    ],
)
@pytest.mark.parametrize("passphrase", ["correct horse", "", "pässwörd ✓"])
def test_one_lane_keys_are_the_same_from_libsodium(params: dict[str, int], passphrase: str) -> None:
    pytest.importorskip("nacl._sodium")
    fast = keys._sodium_argon2id(passphrase.encode("utf-8"), SALT, params)
    assert fast is not None  # libsodium really took it
    assert fast == reference(passphrase, SALT, params)
    assert keys._derive(passphrase, SALT, params) == fast


def test_what_libsodium_cannot_do_goes_to_argon2_cffi(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> bytes:
        raise AssertionError("libsodium has one lane and 16-byte salts only")

    monkeypatch.setattr(keys, "_sodium_argon2id", refuse)
    two_lanes = {"time_cost": 1, "memory_cost": 64, "parallelism": 2}
    assert keys._derive("x", SALT, two_lanes) == reference("x", SALT, two_lanes)
    one_lane = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}
    long_salt = bytes(24)
    assert keys._derive("x", long_salt, one_lane) == reference("x", long_salt, one_lane)


def test_new_keys_use_one_lane_and_old_two_lane_keys_still_open() -> None:
    assert keys.DEFAULT_KDF["parallelism"] == 1
    key = MasterKey.generate(b"r" * 32, "aes256gcm")
    cheap_two_lanes = {"time_cost": 1, "memory_cost": 64, "parallelism": 2}
    blob = wrap_key(key, "pw", cheap_two_lanes)  # as repositories made before 2026-11-26
    assert msgpack.unpackb(blob)["parallelism"] == 2
    assert unwrap_key(blob, "pw") == key
