"""From a repository url to a storage backend instance, with retries, limits and a connection cap.

Every command gets its backend from :func:`open_backend`, which wraps the
plugin's instance in the layers of :mod:`vger.storage.wrappers` (see
docs/architecture.md, "Storage wrappers"). Two optional class attributes of
a backend steer them:

``is_local`` (default ``False``)
    ``True`` for a backend on this machine's disks: ``limits.io.*`` applies to
    it instead of ``limits.network.*``, and backups upload one pack at a time.
    A third-party backend that says nothing counts as remote.
``connections`` (default 5 for remote backends, 0 = no cap, for local ones)
    At most this many calls inside the backend at once. A repository option
    ``connections``, when the backend's options schema declares one, wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlparse

from vger.config.model import LimitsConfig
from vger.interfaces import StorageBackend
from vger.pluginmanager import Registry
from vger.storage.wrappers import (
    ConnectionLimitedBackend,
    RateLimitedBackend,
    RetryingBackend,
    RetryPolicy,
    TokenBucket,
)

MiB = 1024 * 1024

#: restic's default for its remote backends: enough parallel requests to fill a
#: fast uplink, few enough that object stores do not start throttling.
REMOTE_CONNECTIONS = 5
#: Concurrent pack uploads to a remote backend. More hide the latency of each
#: request (a 32 MiB PUT spends a good part of its time waiting); on a local
#: disk one thread keeps up with the pipeline (measured, docs/performance.md).
REMOTE_UPLOADS = 4
#: Finished packs waiting for or being uploaded must fit in this much memory.
UPLOAD_MEMORY = 256 * MiB


def url_scheme(url: str) -> str:
    """``/path``, ``./path`` and ``file:///path`` are local files; otherwise the url scheme."""
    if "://" not in url:
        return "file"
    return urlparse(url).scheme.lower()


def is_local(backend: StorageBackend) -> bool:
    return bool(getattr(backend, "is_local", False))


def wrap_backend(
    backend: StorageBackend,
    limits: LimitsConfig | None = None,
    connections: int | None = None,
    retry: RetryPolicy | None = None,
) -> StorageBackend:
    """``backend`` inside the retry, rate-limit and connection-cap layers that apply to it.

    Layers with nothing to do are left out, so a local backup without limits
    pays for one ``try`` per call and nothing else.
    """
    local = is_local(backend)
    if connections is None:
        connections = int(getattr(backend, "connections", 0 if local else REMOTE_CONNECTIONS))
    # Any: a wrapper reads the backend's class attributes (name, schemes) through
    # __getattr__, which a Protocol with ClassVars cannot express.
    wrapped: Any = backend
    if connections > 0:
        wrapped = ConnectionLimitedBackend(wrapped, connections)
    limits = limits or LimitsConfig()
    if local:
        read_rate, write_rate = limits.io_read_mib_per_sec, limits.io_write_mib_per_sec
    else:
        read_rate, write_rate = limits.net_read_mib_per_sec, limits.net_write_mib_per_sec
    if read_rate > 0 or write_rate > 0:
        wrapped = RateLimitedBackend(
            wrapped,
            read=TokenBucket(read_rate * MiB) if read_rate > 0 else None,
            write=TokenBucket(write_rate * MiB) if write_rate > 0 else None,
        )
    return cast(StorageBackend, RetryingBackend(wrapped, retry))


def open_backend(
    url: str,
    options: Mapping[str, Any],
    registry: Registry,
    limits: LimitsConfig | None = None,
) -> StorageBackend:
    """The backend serving ``url``, wrapped (see :func:`wrap_backend`)."""
    backend_cls = registry.storage_for_scheme(url_scheme(url))
    backend: StorageBackend = backend_cls(url, options)
    connections = options.get("connections")
    return wrap_backend(backend, limits, int(connections) if connections is not None else None)


def pack_uploads(backend: StorageBackend, pack_size: int) -> int:
    """How many packs a backup uploads at once to ``backend``.

    Local: 1. Remote: :data:`REMOTE_UPLOADS`, but one fewer than the connection
    cap (so a lock refresh or an index write never queues behind packs), and
    never more finished packs in memory than :data:`UPLOAD_MEMORY` holds.
    """
    if is_local(backend):
        return 1
    uploads = REMOTE_UPLOADS
    connections = int(getattr(backend, "connections", 0) or 0)
    if connections > 0:
        uploads = min(uploads, max(1, connections - 1))
    return max(1, min(uploads, UPLOAD_MEMORY // max(1, pack_size)))
