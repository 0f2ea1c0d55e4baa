"""lz4 must pass the compressor contract; tag 1 is published and frozen."""

from vger_compressor_lz4 import Lz4Compressor

from vger.testing import CompressorContract


class TestLz4Contract(CompressorContract):
    compressor_class = Lz4Compressor
    expected_tag = 1
