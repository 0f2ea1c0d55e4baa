"""From a repository url to a storage backend instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from vger.interfaces import StorageBackend
from vger.pluginmanager import Registry


def url_scheme(url: str) -> str:
    """``/path``, ``./path`` and ``file:///path`` are local files; otherwise the url scheme."""
    if "://" not in url:
        return "file"
    return urlparse(url).scheme.lower()


def open_backend(url: str, options: Mapping[str, Any], registry: Registry) -> StorageBackend:
    backend_cls = registry.storage_for_scheme(url_scheme(url))
    backend: StorageBackend = backend_cls(url, options)
    return backend
