"""Zstandard compression, levels 1-22: smaller repositories for more CPU."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import zstandard

from vger import hookimpl
from vger.errors import CorruptData
from vger.interfaces import Buffer


class ZstdCompressor:
    """One zstd frame per chunk, with a per-thread context (contexts are not thread-safe)."""

    name: ClassVar[str] = "zstd"
    tag: ClassVar[int] = 2
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {
            "zstd_level": {
                "type": "integer",
                "minimum": 1,
                "maximum": 22,
                "default": 3,
                "description": "zstd compression level, 1 (fast) to 22 (small).",
            }
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.level = int(options.get("zstd_level", 3))
        self._local = threading.local()

    def _contexts(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = (zstandard.ZstdCompressor(level=self.level), zstandard.ZstdDecompressor())
            self._local.ctx = ctx
        return ctx

    def compress(self, data: Buffer) -> bytes:
        return self._contexts()[0].compress(data)

    def decompress(self, data: Buffer, plain_size: int) -> bytes:
        # python-zstandard ignores max_output_size when the frame declares its
        # own content size, so check the declared size before trusting it.
        try:
            params = zstandard.get_frame_parameters(data)
        except zstandard.ZstdError as exc:
            raise CorruptData(f"zstd: bad frame: {exc}") from exc
        declared = params.content_size
        if declared not in (plain_size, zstandard.CONTENTSIZE_UNKNOWN):
            raise CorruptData(f"zstd: frame declares {declared} bytes, expected {plain_size}")
        try:
            out = self._contexts()[1].decompress(data, max_output_size=plain_size)
        except zstandard.ZstdError as exc:
            raise CorruptData(f"zstd: cannot decompress: {exc}") from exc
        if len(out) != plain_size:
            raise CorruptData(f"zstd: expected {plain_size} bytes, got {len(out)}")
        return out


@hookimpl
def vger_register_compressors() -> list[type[Any]]:
    return [ZstdCompressor]
