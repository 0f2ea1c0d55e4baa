"""The master key and its passphrase wrapping (``keys/repokey``)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import msgpack
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vger.crypto.envelope import ObjectType
from vger.errors import CorruptData, WrongPassphrase

KEY_FILE_VERSION = 1

# Argon2id cost: OWASP's 2023 guidance lists m=46 MiB,t=1 or m=19 MiB,t=2 as
# minimums; we take 64 MiB and t=3 (RFC 9106's second recommendation). One lane:
# lanes only let the defender use more cores, an attacker pays the same memory
# and passes per guess. With one lane libsodium's vectorised Argon2id can do it:
# 68 ms on one core of the 2026-11-26 AMD EPYC VM, against 80 ms on both cores
# for argon2-cffi with two lanes (126 ms with one). Repositories made with two
# lanes (before 2026-11-26) keep their parameters and argon2-cffi.
DEFAULT_KDF = {"time_cost": 3, "memory_cost": 64 * 1024, "parallelism": 1}
# Upper bounds accepted from a key file, so a hostile repository cannot make us
# allocate many GiB or spin for hours before we even check the passphrase.
_KDF_LIMITS = {"time_cost": 64, "memory_cost": 4 * 1024 * 1024, "parallelism": 64}

CHUNK_ID_KEYED = "blake2b-256-keyed"
CHUNK_ID_PLAIN = "blake2b-256"


@dataclass(frozen=True)
class MasterKey:
    """What the passphrase protects: both secrets plus the settings they are bound to."""

    enc_key: bytes
    id_key: bytes
    repo_id: bytes
    cipher: str
    chunk_id_scheme: str

    @classmethod
    def generate(cls, repo_id: bytes, cipher: str) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32), repo_id, cipher, CHUNK_ID_KEYED)


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    if params["parallelism"] == 1 and len(salt) == 16:
        derived = _sodium_argon2id(passphrase.encode("utf-8"), salt, params)
        if derived is not None:
            return derived
    return hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=params["time_cost"],
        memory_cost=params["memory_cost"],
        parallelism=params["parallelism"],
        hash_len=32,
        type=Type.ID,
    )


def _sodium_argon2id(secret: bytes, salt: bytes, params: dict[str, int]) -> bytes | None:
    """One-lane Argon2id v1.3 from libsodium (the same function as argon2-cffi's), or None.

    libsodium only does one lane and 16-byte salts; the cffi call releases the
    GIL like argon2-cffi's, so the files cache still loads meanwhile.
    """
    try:
        from nacl._sodium import ffi, lib

        if lib.sodium_init() < 0:  # picks the vectorised implementation for this CPU
            return None
    except Exception:  # PyNaCl missing or without its bindings
        return None
    out = ffi.new("unsigned char[]", 32)
    failed = lib.crypto_pwhash(
        out,
        32,
        secret,
        len(secret),
        salt,
        params["time_cost"],
        params["memory_cost"] * 1024,
        lib.crypto_pwhash_alg_argon2id13(),
    )
    return None if failed else bytes(ffi.buffer(out))


def _aad(repo_id: bytes) -> bytes:
    return bytes((ObjectType.KEY,)) + repo_id


def wrap_key(key: MasterKey, passphrase: str, kdf: dict[str, int] | None = None) -> bytes:
    """Serialize ``key`` encrypted under an Argon2id key from ``passphrase``."""
    params = dict(kdf or DEFAULT_KDF)
    salt = os.urandom(16)
    kek = _derive(passphrase, salt, params)
    payload = msgpack.packb(
        {
            "enc_key": key.enc_key,
            "id_key": key.id_key,
            "repo_id": key.repo_id,
            "cipher": key.cipher,
            "chunk_id": key.chunk_id_scheme,
        }
    )
    nonce = os.urandom(12)
    sealed = AESGCM(kek).encrypt(nonce, payload, _aad(key.repo_id))
    return msgpack.packb(
        {
            "type": int(ObjectType.KEY),
            "version": KEY_FILE_VERSION,
            "kdf": "argon2id",
            "salt": salt,
            **params,
            "repo_id": key.repo_id,
            "nonce": nonce,
            "data": sealed,
        }
    )


def _load(blob: bytes) -> dict[str, Any]:
    try:
        doc = msgpack.unpackb(blob, max_bin_len=1 << 16, max_str_len=1 << 10, max_map_len=64)
    except Exception as exc:
        raise CorruptData(f"key file is not valid msgpack: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != ObjectType.KEY or doc.get("kdf") != "argon2id":
        raise CorruptData("key file has an unknown layout")
    if doc.get("version") != KEY_FILE_VERSION:
        raise CorruptData(f"key file version {doc.get('version')} is not supported by this vger")
    for name, limit in _KDF_LIMITS.items():
        value = doc.get(name)
        if not isinstance(value, int) or not 1 <= value <= limit:
            raise CorruptData(f"key file has an out-of-range {name}: {value!r}")
    return doc


def unwrap_key(blob: bytes, passphrase: str) -> MasterKey:
    """Recover the master key; :class:`WrongPassphrase` if the passphrase does not fit."""
    doc = _load(blob)
    params = {name: doc[name] for name in DEFAULT_KDF}
    kek = _derive(passphrase, bytes(doc["salt"]), params)
    try:
        payload = AESGCM(kek).decrypt(bytes(doc["nonce"]), bytes(doc["data"]), _aad(bytes(doc["repo_id"])))
    except InvalidTag as exc:
        raise WrongPassphrase(
            "wrong passphrase for this repository (check VGER_PASSPHRASE, encryption.passphrase "
            "or encryption.passcommand)"
        ) from exc
    inner = msgpack.unpackb(payload)
    return MasterKey(
        enc_key=inner["enc_key"],
        id_key=inner["id_key"],
        repo_id=inner["repo_id"],
        cipher=inner["cipher"],
        chunk_id_scheme=inner["chunk_id"],
    )


def key_fingerprint(key: MasterKey) -> str:
    """Short public fingerprint, safe to print (does not reveal the key)."""
    return hashlib.blake2b(key.enc_key + key.id_key, digest_size=8, person=b"vger-fpr").hexdigest()
