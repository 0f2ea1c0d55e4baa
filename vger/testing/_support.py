"""Helpers shared by the contract suites.

Kept free of vger internals (only :mod:`vger.errors` and :mod:`vger.interfaces`
are imported anywhere in :mod:`vger.testing`) so a third-party plugin's CI does
not break when the core reorganises itself.
"""

from __future__ import annotations

import random
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import jsonschema

KiB = 1024
MiB = 1024 * KiB

T = TypeVar("T")

#: What users may write as a component name in the config. Lower case because
#: YAML users never agree on case; no spaces or slashes because the name also
#: appears in error messages and `plugins.disable` lists.
COMPONENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def random_bytes(size: int, seed: int) -> bytes:
    """Reproducible random data: a failure must replay with the same bytes."""
    return random.Random(seed).randbytes(size)


def compressible_bytes(size: int) -> bytes:
    """Text-like data every real compressor shrinks a lot (think log files)."""
    line = b"2024-05-01T12:00:00Z INFO vger: backed up /home/user/documents/report.txt\n"
    return (line * (size // len(line) + 1))[:size]


def run_in_threads(worker: Callable[[int], T], threads: int) -> list[T]:
    """Run ``worker(i)`` on ``threads`` threads released at the same instant.

    The barrier makes the calls overlap for real; without it the first thread
    often finishes before the last one starts and races go unseen.
    """
    barrier = threading.Barrier(threads)

    def start(index: int) -> T:
        barrier.wait(timeout=60)
        return worker(index)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(start, range(threads)))


def check_component_name(name: object) -> None:
    assert isinstance(name, str), f"`name` must be a str, not {type(name).__name__}"
    assert COMPONENT_NAME.match(name), (
        f"`name` {name!r} must match {COMPONENT_NAME.pattern}: users type it in YAML and in plugins.disable"
    )


def check_options_schema(schema: object) -> None:
    """The schema is merged into the config schema, so a broken one breaks every config."""
    assert isinstance(schema, Mapping), "`options_schema` must be a mapping (a JSON Schema object)"
    jsonschema.Draft202012Validator.check_schema(dict(schema))
    assert schema.get("type") == "object", "`options_schema` must describe an object (`type: object`)"
    properties = schema.get("properties", {})
    assert isinstance(properties, Mapping), "`properties` must be a mapping"
    for key, subschema in properties.items():
        # A default that its own schema rejects would make the starter config invalid.
        if isinstance(subschema, Mapping) and "default" in subschema:
            errors = list(jsonschema.Draft202012Validator(dict(subschema)).iter_errors(subschema["default"]))
            assert not errors, (
                f"default of option {key!r} does not satisfy its own schema: {errors[0].message}"
            )


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The options a user gets by writing nothing: every declared default."""
    properties = schema.get("properties", {})
    return {
        key: sub["default"]
        for key, sub in properties.items()
        if isinstance(sub, Mapping) and "default" in sub
    }


@dataclass
class Measured:
    """Outcome of one call under :func:`measure`: its result or exception, and its cost."""

    result: Any
    error: BaseException | None
    peak_bytes: int
    seconds: float


def measure(call: Callable[[], Any]) -> Measured:
    """Run ``call`` and record the peak memory it allocated through Python's allocators.

    tracemalloc sees ``bytes`` objects and ``PyMem_*`` buffers, which is where
    C extensions put their output; memory a library grabs with plain ``malloc``
    is invisible, which is why the suites also bound the time.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        result: Any = None
        error: BaseException | None = None
        try:
            result = call()
        except Exception as exc:
            error = exc
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return Measured(result, error, peak, seconds)


def sample_positions(length: int, count: int, seed: int) -> list[int]:
    """Every position of a short blob, else the edges plus a random sample.

    Headers and trailers (tags, checksums, frame headers) are where formats
    differ most, so the first and last 32 bytes are always included.
    """
    if length <= count:
        return list(range(length))
    edges = set(range(min(32, length))) | set(range(max(0, length - 32), length))
    rest = [i for i in range(length) if i not in edges]
    picked = random.Random(seed).sample(rest, max(0, count - len(edges)))
    return sorted(edges | set(picked))


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[position] ^= mask
    return bytes(out)


def unique(items: Iterable[T]) -> list[T]:
    seen: list[T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def as_buffers(data: bytes) -> Sequence[tuple[str, Any]]:
    """The buffer types the pipeline hands to components (see ``vger.interfaces.Buffer``)."""
    return (("bytes", data), ("bytearray", bytearray(data)), ("memoryview", memoryview(data)))
