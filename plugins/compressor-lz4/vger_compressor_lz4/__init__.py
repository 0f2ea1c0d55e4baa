"""LZ4 block compression: the default, because it costs almost nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import lz4.block

from vger import hookimpl
from vger.errors import CorruptData
from vger.interfaces import Buffer


class Lz4Compressor:
    """Raw LZ4 blocks; the plain size comes from the index, not the blob."""

    name: ClassVar[str] = "lz4"
    tag: ClassVar[int] = 1
    options_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def compress(self, data: Buffer) -> bytes:
        # store_size=False: the size is recorded in the index; uncompressed_size
        # on the way back then bounds the output allocation.
        return lz4.block.compress(data, store_size=False)

    def decompress(self, data: Buffer, plain_size: int) -> bytes:
        if plain_size == 0:
            if len(data) > 1:
                raise CorruptData("lz4: data for an empty chunk")
            return b""
        try:
            out = lz4.block.decompress(data, uncompressed_size=plain_size)
        except Exception as exc:
            raise CorruptData(f"lz4: cannot decompress: {exc}") from exc
        if len(out) != plain_size:
            raise CorruptData(f"lz4: expected {plain_size} bytes, got {len(out)}")
        return out


@hookimpl
def vger_register_compressors() -> list[type[Any]]:
    return [Lz4Compressor]
