"""Chunk and pack ids must be the spec's BLAKE2b-256 whichever library computes them."""

import hashlib
import mmap
import os
import subprocess
import sys
import time

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


def _implementation(env: dict[str, str]) -> tuple[str, str]:
    probe = (
        "from vger.crypto import blake2\n"
        "print(blake2.IMPLEMENTATION, blake2.blake2b_256(b'vger' * 1000, b'k' * 32).hex())\n"
    )
    run_env = {k: v for k, v in os.environ.items() if k != "VGER_BLAKE2"} | env
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=run_env
    )
    name, digest = out.stdout.split()
    return name, digest


@pytest.mark.parametrize("forced", ["libsodium", "hashlib"])
def test_forced_implementation_gives_the_same_ids(forced: str) -> None:
    # pynacl is a dependency: the race needs both contestants to be loadable
    pytest.importorskip("nacl._sodium")
    assert _implementation({"VGER_BLAKE2": forced}) == (
        forced,
        hashlib.blake2b(b"vger" * 1000, digest_size=32, key=b"k" * 32).hexdigest(),
    )


def test_the_faster_implementation_wins_the_race() -> None:
    # which one is faster depends on the CPU (libsodium on a Xeon, hashlib on a Zen 5),
    # so the race is checked with contestants of known speed
    def slow(data: object, key: bytes) -> bytes:
        time.sleep(0.002)
        return b""

    def quick(data: object, key: bytes) -> bytes:
        return b""

    assert blake2._fastest({"libsodium": slow, "hashlib": quick}) == "hashlib"
    assert blake2._fastest({"libsodium": quick, "hashlib": slow}) == "libsodium"


def test_the_race_keeps_the_faster_of_the_real_ones() -> None:
    pytest.importorskip("nacl._sodium")
    data = os.urandom(4 << 20)
    timings = {}
    for name, fn in (("libsodium", blake2._sodium_oneshot), ("hashlib", blake2._hashlib_oneshot)):
        if name == "libsodium" and blake2._lib is None:
            blake2._load_sodium()
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            fn(data, b"")
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    slower, faster = sorted(timings, key=timings.__getitem__, reverse=True)
    if timings[slower] < 1.25 * timings[faster]:
        pytest.skip(f"the two run at about the same speed on this CPU: {timings}")
    assert _implementation({})[0] == faster


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
