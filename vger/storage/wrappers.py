"""Retries, rate limits and a connection cap, as layers around any storage backend.

Modelled on restic's ``internal/backend`` (``retry``, ``limiter``, ``sema``):
each concern is a small class with the backend's own interface that forwards
to the backend it wraps, so a backend -- built-in or from a third party -- is
written as if the network never failed and nobody shared it, and still gets
all three. :func:`vger.storage.open_backend` stacks them, outermost first::

    RetryingBackend -> RateLimitedBackend -> ConnectionLimitedBackend -> backend

Why this order: a retry waits *outside* the limiter and the connection cap,
so a sleeping retry neither holds a connection nor burns rate tokens; the
limiter hands bytes over before a connection is taken for the call that
moves them.

Glossary:

transient / permanent
    :class:`~vger.errors.TransientStorageError` is retried;
    :class:`~vger.errors.PermanentStorageError` and
    :class:`~vger.errors.ObjectNotFound` are answers and pass straight through.
token bucket
    Holds up to ``burst`` bytes of credit that refills at ``rate`` bytes per
    second; moving *n* bytes spends *n* tokens, waiting when there are none.
    One bucket per direction is shared by every thread of the process.
connections
    How many calls may be inside the backend at once (a semaphore).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from vger.errors import ConfigError, TransientStorageError
from vger.interfaces import Buffer, StorageBackend

log = logging.getLogger("vger.storage")

T = TypeVar("T")

MiB = 1024 * 1024

#: The backend's optional methods: a wrapper shows them only when the backend
#: it wraps has them, because callers test for them with ``getattr``.
OPTIONAL_METHODS = ("put_parts", "remove_incomplete")


class BackendWrapper:
    """Forwards every call to ``inner``; subclasses override what they change.

    Attributes the wrapper does not define (``name``, ``schemes``,
    ``is_local``, a backend's own extras) are read from ``inner``.
    """

    put_parts: Callable[[str, Sequence[Buffer]], None]
    remove_incomplete: Callable[[], int]

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        if hasattr(inner, "put_parts"):
            self.put_parts = self._put_parts
        if hasattr(inner, "remove_incomplete"):
            self.remove_incomplete = self._remove_incomplete

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not found on the wrapper itself. An optional
        # method the inner backend lacks must stay missing here too.
        if name in OPTIONAL_METHODS or name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def location(self) -> str:
        return self.inner.location

    def unwrap(self) -> StorageBackend:
        """The backend below every wrapper."""
        inner = self.inner
        return inner.unwrap() if isinstance(inner, BackendWrapper) else inner

    def create(self) -> None:
        self.inner.create()

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self.inner.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)

    def _put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        self.inner.put_parts(key, parts)  # type: ignore[attr-defined]

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)

    def _remove_incomplete(self) -> int:
        freed: int = self.inner.remove_incomplete()  # type: ignore[attr-defined]
        return freed

    def close(self) -> None:
        self.inner.close()


# -- retries --------------------------------------------------------------------------


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: expected a number >= {minimum:g}")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """How long a transient failure is retried.

    Delays grow exponentially (``delay``, doubling each attempt, at most
    ``max_delay``) with *full jitter*: each wait is uniform in ``[0, cap]``, so
    many threads or machines failing together do not come back in step.
    Retrying stops after ``attempts`` calls, or before a wait that would end
    more than ``timeout`` seconds after the first call. The defaults ride out a
    server restart or a minute of network trouble (at most ~60 s of waiting in
    8 attempts) without hanging a nightly backup for long.
    """

    attempts: int = 8
    delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 120.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The defaults, overridden by ``VGER_STORAGE_RETRY_ATTEMPTS`` / ``_DELAY`` / ``_TIMEOUT``.

        Tests and impatient users shorten the waits; ``ATTEMPTS=1`` turns retrying off.
        """
        default = cls()
        return cls(
            attempts=int(_env_number("VGER_STORAGE_RETRY_ATTEMPTS", default.attempts, 1)),
            delay=_env_number("VGER_STORAGE_RETRY_DELAY", default.delay, 0),
            max_delay=default.max_delay,
            timeout=_env_number("VGER_STORAGE_RETRY_TIMEOUT", default.timeout, 0),
        )

    def wait(self, failures: int) -> float:
        """The jittered wait after the ``failures``-th failed attempt (1-based)."""
        cap = min(self.max_delay, self.delay * 2 ** (failures - 1))
        return random.uniform(0, cap)


class RetryingBackend(BackendWrapper):
    """Retries calls that fail with :class:`~vger.errors.TransientStorageError`.

    Every operation is safe to repeat: ``put`` is atomic and replaces, ``delete``
    of an object an earlier attempt already removed raises ``ObjectNotFound``,
    which callers that delete treat as done. A retried ``list`` starts again
    and skips the keys it already yielded.
    """

    def __init__(
        self,
        inner: StorageBackend,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy.from_env()
        self._sleep = sleep

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        failures = 0
        while True:
            try:
                result = call()
            except TransientStorageError as exc:
                failures += 1
                self._before_next_attempt(what, exc, failures, started)
                continue
            if failures:
                log.info("%s: %s succeeded after %d failed attempts", self.location, what, failures)
            return result

    def _before_next_attempt(
        self, what: str, exc: TransientStorageError, failures: int, started: float
    ) -> None:
        """Wait before the next attempt, or raise the final error naming the location and reason."""
        policy = self.policy
        wait = policy.wait(failures)
        elapsed = time.monotonic() - started
        if failures >= policy.attempts or elapsed + wait > policy.timeout:
            reason = str(exc)
            if self.location not in reason:
                reason = f"{self.location}: {reason}"
            attempts = "1 attempt" if failures == 1 else f"{failures} attempts"
            raise TransientStorageError(
                f"giving up on {what} after {attempts} in {elapsed:.1f} s: {reason}"
            ) from exc
        log.info(
            "%s: %s failed (%s); attempt %d of %d in %.1f s",
            self.location,
            what,
            exc,
            failures + 1,
            policy.attempts,
            wait,
        )
        self._sleep(wait)

    def create(self) -> None:
        self._retry("create", self.inner.create)

    def get(self, key: str) -> bytes:
        return self._retry(f"get {key}", lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._retry(
            f"get {key} ({length} bytes at {offset})", lambda: self.inner.get_range(key, offset, length)
        )

    def put(self, key: str, data: Buffer) -> None:
        self._retry(f"put {key}", lambda: self.inner.put(key, data))

    def _put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        self._retry(f"put {key}", lambda: self.inner.put_parts(key, parts))  # type: ignore[attr-defined]

    def exists(self, key: str) -> bool:
        return self._retry(f"exists {key}", lambda: self.inner.exists(key))

    def size(self, key: str) -> int:
        return self._retry(f"size {key}", lambda: self.inner.size(key))

    def delete(self, key: str) -> None:
        self._retry(f"delete {key}", lambda: self.inner.delete(key))

    def _remove_incomplete(self) -> int:
        freed: int = self._retry("remove_incomplete", self.inner.remove_incomplete)  # type: ignore[attr-defined]
        return freed

    def list(self, prefix: str) -> Iterator[str]:
        what = f"list {prefix or '(all)'}"
        yielded: set[str] = set()
        started = time.monotonic()
        failures = 0
        while True:
            try:
                for key in self.inner.list(prefix):
                    if key not in yielded:
                        yielded.add(key)
                        yield key
                return
            except TransientStorageError as exc:
                failures += 1
                self._before_next_attempt(what, exc, failures, started)


# -- rate limits ---------------------------------------------------------------------------


class TokenBucket:
    """A rate limit shared by every thread that moves bytes in one direction.

    Each caller *reserves* its bytes under a lock and then sleeps off its own
    debt outside it, like Go's ``rate.Limiter`` reservations restic uses:
    threads are served in arrival order and the long-run rate is exact however
    many there are. ``burst`` is a tenth of a second of traffic (at least
    64 KiB, at most 4 MiB) and requests are cut to that size, so the flow is
    smooth at a 100 ms scale instead of one large object at a time.
    """

    def __init__(
        self,
        bytes_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate = float(bytes_per_second)
        self.burst = int(min(4 * MiB, max(64 * 1024, self.rate / 10)))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._stamp = clock()

    def take(self, count: int) -> None:
        """Wait until ``count`` bytes may move."""
        while count > 0:
            step = min(count, self.burst)
            count -= step
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate) - step
                self._stamp = now
                debt = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if debt > 0:
                self._sleep(debt)


class _PacedParts(Sequence[Buffer]):
    """An object's parts, cut to ``bucket.burst`` slices handed over at the bucket's pace.

    Tokens for a slice are spent the first time it is read, whatever order the
    backend reads in: a backend that first sums the lengths and then writes
    pays once, and one that streams the parts to a socket is paced smoothly.
    """

    def __init__(self, parts: Sequence[Buffer], bucket: TokenBucket) -> None:
        step = bucket.burst
        slices: list[Buffer] = []
        for part in parts:
            length = len(part)
            if length <= step:
                slices.append(part)
                continue
            view = memoryview(part).cast("B")
            slices.extend(view[start : start + step] for start in range(0, length, step))
        self._slices = slices
        self._bucket = bucket
        self._paid = 0  # slices [0, _paid) were paid for
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slices)

    def _pay_through(self, index: int) -> None:
        with self._lock:
            owed = self._slices[self._paid : index + 1]
            self._paid = max(self._paid, index + 1)
        self._bucket.take(sum(len(s) for s in owed))

    @overload
    def __getitem__(self, index: int) -> Buffer: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Buffer]: ...
    def __getitem__(self, index: int | slice) -> Buffer | Sequence[Buffer]:
        if isinstance(index, slice):
            positions = range(len(self._slices))[index]
            if positions:
                self._pay_through(max(positions))
            return self._slices[index]
        if index < 0:
            index += len(self._slices)
        if not 0 <= index < len(self._slices):
            raise IndexError(index)
        self._pay_through(index)
        return self._slices[index]

    def __iter__(self) -> Iterator[Buffer]:
        for index in range(len(self._slices)):
            yield self[index]


class RateLimitedBackend(BackendWrapper):
    """Spends tokens for every byte read (``get``, ``get_range``) or written (``put``, ``put_parts``).

    Writes are handed to the backend as paced parts when it has ``put_parts``,
    so a backend that consumes them as it writes sends a smooth stream; a
    backend with only ``put`` gets each object after its tokens were paid.
    """

    def __init__(self, inner: StorageBackend, read: TokenBucket | None, write: TokenBucket | None) -> None:
        super().__init__(inner)
        self.read_bucket = read
        self.write_bucket = write

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        if self.read_bucket is not None:
            self.read_bucket.take(len(data))
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if self.read_bucket is not None:
            self.read_bucket.take(length)
        return self.inner.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        bucket = self.write_bucket
        if bucket is None:
            self.inner.put(key, data)
        elif hasattr(self.inner, "put_parts"):
            self.inner.put_parts(key, _PacedParts([data], bucket))
        else:
            bucket.take(len(data))
            self.inner.put(key, data)

    def _put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        bucket = self.write_bucket
        paced = parts if bucket is None else _PacedParts(parts, bucket)
        self.inner.put_parts(key, paced)  # type: ignore[attr-defined]


# -- connection cap --------------------------------------------------------------------------


class ConnectionLimitedBackend(BackendWrapper):
    """At most ``connections`` calls inside the backend at once.

    Servers throttle or drop clients that open too many connections, and an
    SFTP server allows only a few sessions per login. ``list`` holds a slot
    only while it fetches the next key, never while the caller works on one,
    so a caller that lists and reads at the same time cannot deadlock itself.
    """

    def __init__(self, inner: StorageBackend, connections: int) -> None:
        super().__init__(inner)
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.connections = connections
        self._slots = threading.BoundedSemaphore(connections)

    def create(self) -> None:
        with self._slots:
            self.inner.create()

    def get(self, key: str) -> bytes:
        with self._slots:
            return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        with self._slots:
            return self.inner.get_range(key, offset, length)

    def put(self, key: str, data: Buffer) -> None:
        with self._slots:
            self.inner.put(key, data)

    def _put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        with self._slots:
            self.inner.put_parts(key, parts)  # type: ignore[attr-defined]

    def exists(self, key: str) -> bool:
        with self._slots:
            return self.inner.exists(key)

    def size(self, key: str) -> int:
        with self._slots:
            return self.inner.size(key)

    def delete(self, key: str) -> None:
        with self._slots:
            self.inner.delete(key)

    def _remove_incomplete(self) -> int:
        with self._slots:
            freed: int = self.inner.remove_incomplete()  # type: ignore[attr-defined]
            return freed

    def list(self, prefix: str) -> Iterator[str]:
        with self._slots:
            keys = iter(self.inner.list(prefix))
        while True:
            with self._slots:
                try:
                    key = next(keys)
                except StopIteration:
                    return
            yield key
