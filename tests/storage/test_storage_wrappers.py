"""Retries, rate limits and the connection cap that every backend gets from ``open_backend``.

The doubles here wrap the real file backend and inject the one fault the
wrapper under test must handle (a transient failure, a slow call); everything
else is the real backend on a temporary folder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from vger_storage_file import FileBackend

from vger import hookimpl
from vger.config.model import LimitsConfig
from vger.errors import (
    ConfigError,
    ObjectNotFound,
    PermanentStorageError,
    TransientStorageError,
)
from vger.interfaces import Buffer, StorageBackend
from vger.pluginmanager import PluginSource, load_plugins
from vger.storage import open_backend, pack_uploads, wrap_backend
from vger.storage.wrappers import (
    ConnectionLimitedBackend,
    RateLimitedBackend,
    RetryingBackend,
    RetryPolicy,
    TokenBucket,
)

MiB = 1024 * 1024
FAST = RetryPolicy(attempts=5, delay=0.001, max_delay=0.004, timeout=10)


class Flaky:
    """A remote-looking backend (no ``is_local``) over a folder, failing on purpose.

    ``failures[op]`` is how many more calls of ``op`` raise ``error(op)``
    before the real file backend answers; ``calls[op]`` counts every call.
    """

    name: ClassVar[str] = "flaky"
    schemes: ClassVar[tuple[str, ...]] = ("flaky",)
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.files = FileBackend(url.removeprefix("flaky://"), {})
        self.failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.error: type[Exception] = TransientStorageError

    @property
    def location(self) -> str:
        return f"flaky://{self.files.root}"

    def _enter(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        if self.failures.get(op, 0) > 0:
            self.failures[op] -= 1
            raise self.error(f"{self.location} ({op}): connection reset by peer")

    def create(self) -> None:
        self._enter("create")
        self.files.create()

    def get(self, key: str) -> bytes:
        self._enter("get")
        return self.files.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._enter("get_range")
        return self.files.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        self._enter("put")
        self.files.put(key, data)

    def exists(self, key: str) -> bool:
        self._enter("exists")
        return self.files.exists(key)

    def size(self, key: str) -> int:
        self._enter("size")
        return self.files.size(key)

    def delete(self, key: str) -> None:
        self._enter("delete")
        self.files.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        self.calls["list"] = self.calls.get("list", 0) + 1
        for count, key in enumerate(sorted(self.files.list(prefix))):
            if count == 2 and self.failures.get("list", 0) > 0:
                self.failures["list"] -= 1
                raise TransientStorageError(f"{self.location}: listing interrupted")
            yield key

    def close(self) -> None:
        self.files.close()


@pytest.fixture
def flaky(tmp_path: Path) -> Flaky:
    backend = Flaky(f"flaky://{tmp_path / 'repo'}", {})
    backend.files.create()
    return backend


# -- retries ------------------------------------------------------------------------------


def test_transient_failures_are_retried_until_success(flaky: Flaky, caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    backend = RetryingBackend(flaky, FAST, sleep=waits.append)
    flaky.failures = {"put": 3, "get": 2, "size": 1}
    with caplog.at_level(logging.INFO, logger="vger.storage"):
        backend.put("config", b"data")
        assert backend.get("config") == b"data"
        assert backend.size("config") == 4
    assert flaky.calls == {"put": 4, "get": 3, "size": 2}
    assert len(waits) == 6
    messages = [r.getMessage() for r in caplog.records]
    retries = [m for m in messages if "; attempt " in m]
    assert len(retries) == 6
    assert "put config failed" in retries[0] and "connection reset by peer" in retries[0]
    assert "attempt 2 of 5" in retries[0]
    assert any("put config succeeded after 3 failed attempts" in m for m in messages)


def test_waits_grow_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, delay=0.5, max_delay=30, timeout=600)
    for failures, cap in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (9, 30.0)):
        waits = [policy.wait(failures) for _ in range(300)]
        assert all(0 <= w <= cap for w in waits)
        # full jitter: spread over the whole range, not bunched at the cap
        assert min(waits) < cap * 0.1 and max(waits) > cap * 0.9


def test_permanent_and_not_found_errors_are_not_retried(flaky: Flaky) -> None:
    waits: list[float] = []
    backend = RetryingBackend(flaky, FAST, sleep=waits.append)
    with pytest.raises(ObjectNotFound):
        backend.get("missing")
    assert flaky.calls["get"] == 1
    flaky.error = PermanentStorageError
    flaky.failures = {"put": 1}
    with pytest.raises(PermanentStorageError, match="connection reset"):
        backend.put("config", b"x")
    assert flaky.calls["put"] == 1
    assert waits == []


def test_retries_are_bounded_and_the_last_error_names_location_and_reason(flaky: Flaky) -> None:
    backend = RetryingBackend(flaky, FAST, sleep=lambda _: None)
    flaky.failures = {"put": 100}
    with pytest.raises(TransientStorageError) as caught:
        backend.put("packs/ab/ab12", b"x")
    assert flaky.calls["put"] == FAST.attempts
    message = str(caught.value)
    assert message.startswith("giving up on put packs/ab/ab12 after 5 attempts")
    assert flaky.location in message and "connection reset by peer" in message
    assert "\n" not in message


def test_retries_stop_at_the_time_limit(flaky: Flaky) -> None:
    policy = RetryPolicy(attempts=1000, delay=0.02, max_delay=0.02, timeout=0.3)
    backend = RetryingBackend(flaky, policy)
    flaky.failures = {"exists": 10_000}
    started = time.monotonic()
    with pytest.raises(TransientStorageError, match="giving up"):
        backend.exists("config")
    assert time.monotonic() - started < 1.5
    assert 3 < flaky.calls["exists"] < 1000


def test_an_interrupted_listing_is_resumed_without_duplicates(flaky: Flaky) -> None:
    keys = [f"index/{i:04d}" for i in range(6)]
    for key in keys:
        flaky.files.put(key, b"i")
    backend = RetryingBackend(flaky, FAST, sleep=lambda _: None)
    flaky.failures = {"list": 2}
    assert list(backend.list("index")) == keys
    assert flaky.calls["list"] == 3


def test_retry_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VGER_STORAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("VGER_STORAGE_RETRY_DELAY", "0.01")
    monkeypatch.setenv("VGER_STORAGE_RETRY_TIMEOUT", "5")
    assert RetryPolicy.from_env() == RetryPolicy(attempts=3, delay=0.01, max_delay=30.0, timeout=5.0)
    monkeypatch.setenv("VGER_STORAGE_RETRY_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="VGER_STORAGE_RETRY_ATTEMPTS='many': expected a number"):
        RetryPolicy.from_env()


# -- what the wrappers show --------------------------------------------------------------


def layers(backend: Any) -> list[type]:
    found = []
    while hasattr(backend, "inner") and not isinstance(backend, FileBackend | Flaky):
        found.append(type(backend))
        backend = backend.inner
    return found


def test_optional_methods_stay_optional_through_the_wrappers(tmp_path: Path, flaky: Flaky) -> None:
    limits = LimitsConfig(io_write_mib_per_sec=100, net_write_mib_per_sec=100)
    files = wrap_backend(FileBackend(str(tmp_path / "files"), {}), limits, connections=2)
    assert layers(files) == [RetryingBackend, RateLimitedBackend, ConnectionLimitedBackend]
    files.create()
    files.put_parts("packs/00/p", [b"ab", bytearray(b"cd"), memoryview(b"ef")])  # type: ignore[attr-defined]
    assert files.get("packs/00/p") == b"abcdef"
    assert files.remove_incomplete() == 0  # type: ignore[attr-defined]
    assert isinstance(files, StorageBackend)
    assert (files.name, files.schemes, files.is_local) == ("file", ("file",), True)  # type: ignore[attr-defined]

    remote = wrap_backend(flaky, limits)
    assert getattr(remote, "put_parts", None) is None
    assert getattr(remote, "remove_incomplete", None) is None
    remote.put("config", b"through put")  # the limiter falls back to put
    assert flaky.files.get("config") == b"through put"


def test_local_backups_without_limits_skip_the_limiter_and_the_cap(tmp_path: Path) -> None:
    backend = wrap_backend(FileBackend(str(tmp_path / "repo"), {}), LimitsConfig(net_write_mib_per_sec=1))
    # network limits do not apply to a local disk; no connection cap by default
    assert layers(backend) == [RetryingBackend]


def test_third_party_backends_get_every_wrapper(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def vger_register_storage_backends(self) -> list[type[Any]]:
            return [Flaky]

    registry = load_plugins(
        extra_plugins=[
            (PluginSource(plugin="storage-flaky", distribution="vger-storage-flaky", version="1.0"), Plugin())
        ]
    )
    limits = LimitsConfig(io_write_mib_per_sec=1, net_read_mib_per_sec=50, net_write_mib_per_sec=40)
    backend: Any = open_backend(f"flaky://{tmp_path / 'repo'}", {}, registry, limits)
    assert layers(backend) == [RetryingBackend, RateLimitedBackend, ConnectionLimitedBackend]
    limited = backend.inner
    assert limited.write_bucket.rate == 40 * MiB and limited.read_bucket.rate == 50 * MiB
    assert backend.inner.inner.connections == 5
    assert pack_uploads(backend, 32 * MiB) == 4

    flaky: Flaky = backend.unwrap()
    flaky.files.create()
    flaky.failures = {"put": 2, "get": 1}
    backend.policy = FAST
    backend.put("config", b"survives two resets")
    assert backend.get("config") == b"survives two resets"
    assert flaky.calls["put"] == 3


def test_a_connections_option_overrides_the_default(tmp_path: Path) -> None:
    registry = load_plugins()
    backend: Any = open_backend(str(tmp_path / "repo"), {"connections": 3}, registry)
    assert backend.inner.connections == 3
    assert pack_uploads(backend, 32 * MiB) == 1  # local: one upload whatever the cap


def test_pack_uploads_follow_the_backend(flaky: Flaky, tmp_path: Path) -> None:
    assert pack_uploads(wrap_backend(FileBackend(str(tmp_path / "r"), {})), 32 * MiB) == 1
    assert pack_uploads(wrap_backend(flaky), 32 * MiB) == 4
    assert pack_uploads(wrap_backend(flaky, connections=2), 32 * MiB) == 1
    assert pack_uploads(wrap_backend(flaky, connections=0), 32 * MiB) == 4
    # memory: at most 256 MiB of finished packs in flight
    assert pack_uploads(wrap_backend(flaky), 128 * MiB) == 2
    assert pack_uploads(wrap_backend(flaky), 512 * MiB) == 1


# -- rate limits ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_rate_and_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10 * MiB, clock=clock, sleep=clock.sleep)
    assert bucket.burst == MiB  # a tenth of a second
    bucket.take(100 * MiB)
    # the first burst was free, the rest at exactly 10 MiB/s, in 100 ms steps
    assert clock.now - 100.0 == pytest.approx(9.9)
    assert max(clock.slept) == pytest.approx(0.1)
    clock.now += 5  # idle time refills at most one burst
    before = clock.now
    bucket.take(3 * MiB)
    assert clock.now - before == pytest.approx(0.2)


def test_token_bucket_is_shared_fairly_by_threads() -> None:
    bucket = TokenBucket(16 * MiB)
    bucket.take(bucket.burst)  # spend the initial burst: from here on, only the rate counts
    done: dict[int, float] = {}
    barrier = threading.Barrier(4)

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(8):
            bucket.take(MiB // 4)
        done[index] = time.monotonic() - started

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 0.7  # 8 MiB at 16 MiB/s
    # served in arrival order: every thread finishes near the end, none starves
    assert max(done.values()) - min(done.values()) < 0.1, f"uneven shares: {done}"


def test_writes_are_paced_smoothly(tmp_path: Path) -> None:
    """The file backend consumes paced parts as it writes: no slice above a burst, no early bytes."""
    arrivals: list[tuple[float, int]] = []

    class Recording(FileBackend):
        def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
            def watched() -> Iterator[Buffer]:
                for part in parts:
                    arrivals.append((time.monotonic(), len(part)))
                    yield part

            # a generator: the file backend writes each part as it comes
            super().put_parts(key, watched())

    backend = wrap_backend(Recording(str(tmp_path / "repo"), {}), LimitsConfig(io_write_mib_per_sec=16))
    backend.create()
    data = b"x" * (8 * MiB)
    started = time.monotonic()
    backend.put_parts("packs/00/big", [data[: 5 * MiB], data[5 * MiB :]])  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    assert backend.get("packs/00/big") == data
    assert 0.35 < elapsed < 0.8  # (8 - 1.6 burst) MiB at 16 MiB/s = 0.4 s
    burst = int(1.6 * MiB)
    assert max(size for _, size in arrivals) <= burst
    for at, _ in arrivals:
        sent = sum(size for when, size in arrivals if when <= at)
        assert sent <= burst + (at - started) * 16 * MiB * 1.05, "bytes arrived ahead of the rate"


def test_parts_read_twice_are_paid_for_once(tmp_path: Path) -> None:
    """A backend that sums the lengths before writing must not halve the rate."""
    clock = FakeClock()
    bucket = TokenBucket(8 * MiB, clock=clock, sleep=clock.sleep)

    class TwoPass(FileBackend):
        def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
            assert sum(len(p) for p in parts) == 4 * MiB
            super().put_parts(key, parts)

    inner = TwoPass(str(tmp_path / "repo"), {})
    inner.create()
    backend = RateLimitedBackend(inner, read=None, write=bucket)
    backend.put_parts("packs/00/p", [b"a" * MiB, b"b" * (3 * MiB)])
    assert inner.get("packs/00/p") == b"a" * MiB + b"b" * (3 * MiB)
    # (4 MiB - one 0.8 MiB burst) at 8 MiB/s, once
    assert clock.now - 100.0 == pytest.approx(0.4)


def test_reads_are_limited(tmp_path: Path) -> None:
    backend = wrap_backend(FileBackend(str(tmp_path / "repo"), {}), LimitsConfig(io_read_mib_per_sec=20))
    backend.create()
    backend.put("packs/00/p", b"r" * (4 * MiB))  # writes are not limited
    started = time.monotonic()
    assert len(backend.get("packs/00/p")) == 4 * MiB
    for offset in range(0, 4 * MiB, MiB):
        backend.get_range("packs/00/p", offset, MiB)
    elapsed = time.monotonic() - started
    assert 0.28 < elapsed < 0.6  # (8 - 2) MiB at 20 MiB/s = 0.3 s


# -- connection cap ---------------------------------------------------------------------------


def test_at_most_connections_calls_run_at_once(flaky: Flaky) -> None:
    flaky.files.put("config", b"c")
    inside = 0
    most = 0
    lock = threading.Lock()

    class Slow(Flaky):
        def get(self, key: str) -> bytes:
            nonlocal inside, most
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1
            return super().get(key)

    slow = Slow(f"flaky://{flaky.files.root}", {})
    backend = wrap_backend(slow, connections=3)

    def worker() -> None:
        for _ in range(5):
            backend.get("config")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 3


def test_listing_holds_no_connection_between_keys(flaky: Flaky) -> None:
    for i in range(4):
        flaky.files.put(f"locks/{i}", b"l")
    backend = wrap_backend(flaky, connections=1)
    seen = {}
    done = threading.Event()

    def read_while_listing() -> None:
        for key in backend.list("locks"):
            seen[key] = backend.get(key)  # would deadlock if list held the only slot
        done.set()

    thread = threading.Thread(target=read_while_listing, daemon=True)
    thread.start()
    assert done.wait(10), "listing and reading with one connection deadlocked"
    assert sorted(seen) == [f"locks/{i}" for i in range(4)]
