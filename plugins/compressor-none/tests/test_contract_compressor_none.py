"""The pass-through compressor must pass the compressor contract; tag 0 is frozen."""

from vger_compressor_none import NoCompressor

from vger.testing import CompressorContract


class TestNoCompressorContract(CompressorContract):
    compressor_class = NoCompressor
    expected_tag = 0
    compresses = False
