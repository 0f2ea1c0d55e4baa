"""BLAKE2b-256 for chunk ids and pack ids: libsodium's where it loads, else hashlib's.

Why not just hashlib: an initial backup hashes every byte it reads (chunk ids)
and every byte it stores (pack ids), and that was over a third of its CPU.
CPython ships the portable C BLAKE2b; libsodium (bundled in PyNaCl's wheels)
picks a vectorised one for the CPU at run time: 752 vs 515 MB/s on an Intel
Xeon VM. It is not faster everywhere: on an AMD EPYC (Zen 5) VM hashlib's ran
at 1314 MB/s and libsodium's at 718. So each process races the two on 32 KiB
at load (well under a millisecond) and keeps the faster; ``VGER_BLAKE2``
(``libsodium`` or ``hashlib``) overrides the race. The digests are the same
function (format.md: BLAKE2b-256, keyed or not, no salt or personalisation);
a known-answer check against hashlib at load guards that, and any failure to
load falls back to hashlib. The cffi call releases the GIL like hashlib does,
so worker threads still run in parallel, and memoryviews are hashed in place
(PyNaCl's public functions take only ``bytes``, which would mean a copy of
every chunk).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

from vger.interfaces import Buffer

DIGEST_SIZE = 32

_ffi: Any = None
_lib: Any = None


def _load_sodium() -> bool:
    global _ffi, _lib
    try:
        from nacl._sodium import ffi, lib

        if lib.sodium_init() < 0:  # picks the implementation for this CPU
            return False
    except Exception:  # not installed, or a build without these bindings
        return False
    _ffi, _lib = ffi, lib
    probe = bytes(range(251)) * 9
    key = bytes(range(32))
    ok = _sodium_oneshot(probe, key) == hashlib.blake2b(probe, digest_size=32, key=key).digest()
    ok = ok and _sodium_oneshot(probe, b"") == hashlib.blake2b(probe, digest_size=32).digest()
    streamed = _SodiumStream()
    streamed.update(probe[:1000])
    streamed.update(memoryview(probe)[1000:])
    ok = ok and streamed.digest() == hashlib.blake2b(probe, digest_size=32).digest()
    if not ok:
        _ffi = _lib = None
    return ok


def _sodium_oneshot(data: Buffer, key: bytes) -> bytes:
    out = _ffi.new("unsigned char[32]")
    buf = _ffi.from_buffer(data)
    if _lib.crypto_generichash_blake2b_salt_personal(
        out, DIGEST_SIZE, buf, len(buf), key or _ffi.NULL, len(key), _ffi.NULL, _ffi.NULL
    ):
        raise RuntimeError("libsodium's BLAKE2b failed")
    return bytes(_ffi.buffer(out))


class _SodiumStream:
    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _ffi.new("unsigned char[]", _lib.crypto_generichash_statebytes())
        if _lib.crypto_generichash_blake2b_init_salt_personal(
            self._state, _ffi.NULL, 0, DIGEST_SIZE, _ffi.NULL, _ffi.NULL
        ):
            raise RuntimeError("libsodium's BLAKE2b failed")

    def update(self, data: Buffer) -> None:
        buf = _ffi.from_buffer(data)
        _lib.crypto_generichash_blake2b_update(self._state, buf, len(buf))

    def digest(self) -> bytes:
        out = _ffi.new("unsigned char[32]")
        _lib.crypto_generichash_blake2b_final(self._state, out, DIGEST_SIZE)
        return bytes(_ffi.buffer(out))


class _HashlibStream:
    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=DIGEST_SIZE)

    def update(self, data: Buffer) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def _hashlib_oneshot(data: Buffer, key: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, key=key).digest()


def _fastest(candidates: dict[str, Callable[[Buffer, bytes], bytes]]) -> str:
    """The candidate with the shortest best-of-three time on 32 KiB, interleaved so drift hits all alike."""
    probe = bytes(32 * 1024)
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(3):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn(probe, b"")
            best[name] = min(best[name], time.perf_counter() - start)
    return min(best, key=lambda name: best[name])


def _choose() -> str:
    wanted = os.environ.get("VGER_BLAKE2", "")
    if wanted == "hashlib" or not _load_sodium():
        return "hashlib"
    if wanted == "libsodium":
        return "libsodium"
    return _fastest({"libsodium": _sodium_oneshot, "hashlib": _hashlib_oneshot})


#: Which implementation this process uses: "libsodium" or "hashlib".
IMPLEMENTATION = _choose()

_oneshot: Callable[[Buffer, bytes], bytes] = (
    _sodium_oneshot if IMPLEMENTATION == "libsodium" else _hashlib_oneshot
)
_stream: Callable[[], _SodiumStream | _HashlibStream] = (
    _SodiumStream if IMPLEMENTATION == "libsodium" else _HashlibStream
)


def blake2b_256(data: Buffer, key: bytes = b"") -> bytes:
    """BLAKE2b with a 32-byte digest, keyed when ``key`` is given."""
    return _oneshot(data, key)


def blake2b_256_stream() -> _SodiumStream | _HashlibStream:
    """An unkeyed BLAKE2b-256 to feed piece by piece (a pack's parts)."""
    return _stream()
