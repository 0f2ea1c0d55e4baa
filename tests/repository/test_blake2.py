"""Chunk and pack ids must be the spec's BLAKE2b-256 whichever library computes them."""

import hashlib
import mmap
import os
import subprocess
import sys

import pytest

from vger.crypto import blake2

SIZES = [0, 1, 127, 128, 129, 4096, 65_537, 3 * 1024 * 1024 + 5]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key", [b"", bytes(range(32))])
def test_digests_match_hashlib(size: int, key: bytes) -> None:
    data = os.urandom(size)
    expected = hashlib.blake2b(data, digest_size=32, key=key).digest()
    assert blake2.blake2b_256(data, key) == expected
    # in place, from a slice of a writable mapping (the backup's read buffers)
    buf = mmap.mmap(-1, size + 16)
    buf[7 : 7 + size] = data
    assert blake2.blake2b_256(memoryview(buf)[7 : 7 + size], key) == expected


def test_stream_matches_one_shot() -> None:
    parts = [os.urandom(n) for n in (5, 0, 4096, 1_000_003, 17)]
    stream = blake2.blake2b_256_stream()
    for part in parts:
        stream.update(memoryview(part))
    assert stream.digest() == hashlib.blake2b(b"".join(parts), digest_size=32).digest()


def test_libsodium_is_used_where_installed() -> None:
    # pynacl is a dependency: losing it would silently cost a third of a backup's speed
    pytest.importorskip("nacl._sodium")
    assert blake2.IMPLEMENTATION == "libsodium"


def test_without_libsodium_hashlib_gives_the_same_ids(tmp_path: object) -> None:
    probe = (
        "import sys; sys.modules['nacl._sodium'] = None\n"
        "from vger.crypto import blake2\n"
        "print(blake2.IMPLEMENTATION, blake2.blake2b_256(b'vger' * 1000, b'k' * 32).hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    name, digest = out.split()
    assert name == "hashlib"
    assert digest == hashlib.blake2b(b"vger" * 1000, digest_size=32, key=b"k" * 32).hexdigest()
