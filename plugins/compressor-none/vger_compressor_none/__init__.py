"""No compression: for data that is already compressed or encrypted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.errors import CorruptData
from vger.interfaces import Buffer


class NoCompressor:
    """Stores chunks as they are (tag 0)."""

    name: ClassVar[str] = "none"
    tag: ClassVar[int] = 0
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def compress(self, data: Buffer) -> bytes:
        return bytes(data)

    def decompress(self, data: Buffer, plain_size: int) -> bytes:
        if len(data) != plain_size:
            raise CorruptData(f"uncompressed chunk is {len(data)} bytes, expected {plain_size}")
        return bytes(data)


@hookimpl
def vger_register_compressors() -> list[type[Any]]:
    return [NoCompressor]
