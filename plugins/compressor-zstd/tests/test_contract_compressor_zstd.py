"""zstd must pass the compressor contract at its fastest, default and a high level; tag 2 is frozen."""

from typing import Any

import pytest
import zstandard
from vger_compressor_zstd import ZstdCompressor

from vger.errors import CorruptData
from vger.testing import CompressorContract
from vger.testing.compressor import FORGED_ZSTD_1GIB


class TestZstdContract(CompressorContract):
    compressor_class = ZstdCompressor
    expected_tag = 2

    # Level 19 on 8 MiB of random data takes seconds, so the highest level
    # checked is 9: the decoder (what the contract mostly probes) is the same.
    @pytest.fixture(params=[1, 3, 9], ids=lambda level: f"level{level}")
    def compressor(self, request: pytest.FixtureRequest) -> Any:
        return ZstdCompressor({"zstd_level": request.param})

    def hostile_inputs(self, compressor: Any) -> list[tuple[str, bytes, int]]:
        # A real frame of 64 MiB whose header we keep but whose size the index
        # understates: python-zstandard would allocate the declared 64 MiB.
        declared = zstandard.ZstdCompressor(level=1, write_content_size=True).compress(bytes(64 << 20))
        return [*super().hostile_inputs(compressor), ("real-frame-declaring-64MiB", declared, 1000)]

    def test_forged_frame_declaring_1gib_is_refused(self, compressor: Any) -> None:
        # The trap from docs/plugins.md: max_output_size is ignored when the frame
        # declares its own size, so the plugin must check the declared size first.
        for plain_size in (0, 100, 4096):
            with pytest.raises(CorruptData, match="declares"):
                compressor.decompress(FORGED_ZSTD_1GIB, plain_size)

    def test_frames_without_a_declared_size_are_accepted(self, compressor: Any) -> None:
        data = b"streamed " * 1000
        frame = zstandard.ZstdCompressor(write_content_size=False).compress(data)
        assert compressor.decompress(frame, len(data)) == data
        with pytest.raises(CorruptData):
            compressor.decompress(frame, len(data) - 1)
