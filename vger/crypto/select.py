"""``encryption.mode: auto``: benchmark the AEADs on this CPU and pick the faster."""

from __future__ import annotations

import os
import time
from typing import Any

CANDIDATES = ("aes256gcm", "chacha20poly1305")
_SAMPLE = 1 << 20  # 1 MiB: large enough to reach steady-state throughput
_ROUNDS = 8


def _throughput(cipher_cls: type[Any]) -> float:
    cipher = cipher_cls(os.urandom(cipher_cls.key_size))
    data = os.urandom(_SAMPLE)
    nonce = os.urandom(cipher_cls.nonce_size)
    cipher.encrypt(nonce, data, b"")  # warm up (lazy init, caches)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(_ROUNDS):
            cipher.encrypt(nonce, data, b"")
        best = min(best, time.perf_counter() - start)
    return _SAMPLE * _ROUNDS / best


def pick_fastest(available: dict[str, type[Any]]) -> tuple[str, dict[str, float]]:
    """Return the fastest candidate cipher name and the measured bytes/second of each."""
    results = {name: _throughput(available[name]) for name in CANDIDATES if name in available}
    if not results:
        raise ValueError("neither aes256gcm nor chacha20poly1305 is installed")
    return max(results, key=lambda n: results[n]), results
