"""Contract test suites for vger plugins, usable from pytest.

Every storage backend, compressor, cipher and chunker -- built-in or from a
third party -- must pass the suite for its kind. The suites are abstract test
classes in the style of fsspec's ``fsspec/tests/abstract`` and restic's backend
test suite: a plugin's test module subclasses one and tells it how to build the
component; pytest then runs every inherited test against it::

    # tests/test_contract_compressor_zlib.py
    from vger.testing import CompressorContract
    from vger_compressor_zlib import ZlibCompressor

    class TestZlibContract(CompressorContract):
        compressor_class = ZlibCompressor
        expected_tag = 100

Glossary:

contract
    The MUST rules of a protocol in :mod:`vger.interfaces`, turned into tests.
suite
    One abstract class per component kind (:class:`CompressorContract`,
    :class:`CipherContract`, :class:`ChunkerContract`,
    :class:`StorageBackendContract`, :class:`DumpSourceContract`,
    :class:`MonitorContract`). Its name does not start with ``Test``, so
    pytest only collects your subclass of it.
override
    What a subclass provides: a class attribute (``compressor_class = ...``) or a
    pytest fixture method of the same name as the suite's (``backend_factory``).
    Each suite's docstring lists what it needs.
slow
    Tests marked ``@pytest.mark.slow`` (large objects). Register the marker in
    your pytest configuration when you run with ``--strict-markers``.

The suites import nothing from vger beyond :mod:`vger.errors` and
:mod:`vger.interfaces`, the two modules a plugin already depends on.
"""

from vger.testing.chunker import ChunkerContract
from vger.testing.cipher import CipherContract
from vger.testing.compressor import CompressorContract
from vger.testing.dump import DumpSourceContract
from vger.testing.monitor import MonitorContract
from vger.testing.storage import StorageBackendContract

__all__ = [
    "ChunkerContract",
    "CipherContract",
    "CompressorContract",
    "DumpSourceContract",
    "MonitorContract",
    "StorageBackendContract",
]
