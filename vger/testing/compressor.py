"""The contract every compressor plugin must pass (see :class:`vger.interfaces.Compressor`).

Why these tests: a compressor sits between a possibly hostile repository and
the user's files. Its input on restore is whatever the storage returned (after
the cipher authenticated it, if the repository is encrypted), and the plain size
comes from the index, so a compressor that trusts sizes written inside its own
format can be made to allocate gigabytes or to return the wrong number of bytes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from vger.errors import CorruptData
from vger.interfaces import Compressor
from vger.testing._support import (
    MiB,
    as_buffers,
    check_component_name,
    check_options_schema,
    compressible_bytes,
    flip,
    measure,
    random_bytes,
    run_in_threads,
    sample_positions,
    schema_defaults,
    unique,
)

#: A zstd frame header (magic, single-segment, 8-byte content size) declaring
#: 1 GiB and carrying no data: python-zstandard allocates the declared size up
#: front unless the plugin checks it first. Garbage to any other format.
FORGED_ZSTD_1GIB = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", 1 << 30)

#: Headroom on top of ``plain_size`` for the allocation bound: decoder state,
#: small temporaries. The bombs below would need 64 MiB or 1 GiB.
ALLOCATION_SLACK = 8 * MiB

#: A hostile blob must be refused in well under this; generous so a loaded CI
#: machine never flakes, yet far below what inflating a bomb would take.
HOSTILE_SECONDS = 5.0

#: Round-trip inputs, built on first use so importing the suite stays cheap.
_CASES: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "one-byte": lambda: b"\x00",
    "small-random": lambda: random_bytes(4096 + 3, seed=1),
    "random-8MiB": lambda: random_bytes(8 * MiB, seed=2),
    "compressible-8MiB": lambda: compressible_bytes(8 * MiB),
    "zeros-1MiB": lambda: bytes(MiB),
}


@functools.cache
def case(name: str) -> bytes:
    return _CASES[name]()


class CompressorContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``compressor_class`` (required unless you override the ``compressor`` fixture)
        The class your ``vger_register_compressors`` hook returns.
    ``compressor_options``
        Options to build it with. Default: the defaults declared in its schema.
    ``expected_tag``
        Your published tag. Set it: the test then fails if someone changes the
        tag, which would make every existing repository unreadable.
    ``compresses``
        Set False for a pass-through compressor (no size reduction expected).
    ``detects_corruption``
        Set True if your format carries a checksum: then *every* altered byte
        must raise. By default an altered blob may decode to other bytes of the
        right length, because vger authenticates each blob with the repository
        cipher before decompressing it.
    ``compressor`` fixture
        Override it to build the instance yourself (e.g. parametrized over
        levels with ``@pytest.fixture(params=[...])``).

    ``hostile_inputs()`` may be extended with forged blobs specific to your format.
    """

    compressor_class: ClassVar[type[Any] | None] = None
    compressor_options: ClassVar[Mapping[str, Any] | None] = None
    expected_tag: ClassVar[int | None] = None
    compresses: ClassVar[bool] = True
    detects_corruption: ClassVar[bool] = False

    @pytest.fixture
    def compressor(self) -> Any:
        cls = self.compressor_class
        if cls is None:
            raise TypeError(
                f"{type(self).__name__}: set `compressor_class` or override the `compressor` fixture"
            )
        options = self.compressor_options
        if options is None:
            options = schema_defaults(cls.options_schema)
        return cls(dict(options))

    def hostile_inputs(self, compressor: Any) -> list[tuple[str, bytes, int]]:
        """``(label, blob, plain_size)`` triples that must be refused cheaply.

        Each must raise :class:`CorruptData` or return exactly ``plain_size``
        bytes, within the memory and time bounds above. Extend with
        ``super().hostile_inputs(compressor) + [...]``.
        """
        bomb = compressor.compress(bytes(64 * MiB))
        return [
            ("own-64MiB-bomb-claimed-as-4KiB", bomb, 4096),
            ("forged-zstd-frame-declaring-1GiB", FORGED_ZSTD_1GIB, 100),
            ("forged-zstd-frame-declaring-1GiB-plain-0", FORGED_ZSTD_1GIB, 0),
        ]

    # -- identity ---------------------------------------------------------

    def test_satisfies_the_protocol(self, compressor: Any) -> None:
        assert isinstance(compressor, Compressor)
        check_component_name(type(compressor).name)

    def test_tag_is_one_byte(self, compressor: Any) -> None:
        tag = type(compressor).tag
        # bool is an int subclass; True as a tag is certainly a mistake.
        assert isinstance(tag, int) and not isinstance(tag, bool), "`tag` must be an int"
        assert 0 <= tag <= 255, f"`tag` {tag} does not fit in the one byte written before each blob"
        if self.expected_tag is not None:
            assert tag == self.expected_tag, "a published tag must never change: old repositories use it"

    def test_options_schema_is_valid(self, compressor: Any) -> None:
        check_options_schema(type(compressor).options_schema)

    def test_builds_from_schema_defaults(self, compressor: Any) -> None:
        cls = type(compressor)
        built = cls(schema_defaults(cls.options_schema))
        assert built.decompress(built.compress(b"vger"), 4) == b"vger"

    def test_options_may_include_the_selector_key(self, compressor: Any) -> None:
        # vger hands over the user's whole `compression:` block, `algorithm` included.
        cls = type(compressor)
        built = cls({**schema_defaults(cls.options_schema), "algorithm": cls.name})
        assert built.decompress(built.compress(b"vger" * 100), 400) == b"vger" * 100

    def test_an_instance_without_options_reads_what_a_configured_one_wrote(self, compressor: Any) -> None:
        # On restore the class is picked by the blob's tag and built with {}: the
        # options a blob was written with (a level, say) are recorded nowhere.
        data = random_bytes(50_000, seed=8) + compressible_bytes(200_000)
        blob = compressor.compress(data)
        assert type(compressor)({}).decompress(blob, len(data)) == data

    # -- round trips ------------------------------------------------------

    @pytest.mark.parametrize("name", list(_CASES))
    def test_round_trip(self, compressor: Any, name: str) -> None:
        data = case(name)
        blob = compressor.compress(data)
        assert isinstance(blob, bytes), "compress() must return bytes"
        out = compressor.decompress(blob, len(data))
        assert isinstance(out, bytes), "decompress() must return bytes"
        assert len(out) == len(data)
        assert out == data

    def test_compressible_data_shrinks(self, compressor: Any) -> None:
        if not self.compresses:
            pytest.skip("declared a pass-through compressor (compresses = False)")
        data = case("compressible-8MiB")
        assert len(compressor.compress(data)) < len(data) // 2

    @pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
    def test_accepts_every_buffer_type(self, compressor: Any, kind: str) -> None:
        data = random_bytes(1000, seed=3) + compressible_bytes(5000)
        blob = compressor.compress(dict(as_buffers(data))[kind])
        assert compressor.decompress(dict(as_buffers(blob))[kind], len(data)) == data

    # -- sizes and damage ---------------------------------------------------

    @pytest.mark.parametrize("name", ["empty", "one-byte", "small-random", "zeros-1MiB"])
    def test_wrong_plain_size_raises(self, compressor: Any, name: str) -> None:
        data = case(name)
        blob = compressor.compress(data)
        size = len(data)
        for wrong in unique([size + 1, size - 1, 0, 2 * size + 1, size + 4096]):
            if wrong < 0 or wrong == size:
                continue
            with pytest.raises(CorruptData):
                compressor.decompress(blob, wrong)

    @pytest.mark.parametrize("name", ["one-byte", "small-random", "compressible-8MiB"])
    def test_truncated_input_raises(self, compressor: Any, name: str) -> None:
        data = case(name)
        blob = compressor.compress(data)
        for cut in unique([0, 1, len(blob) // 2, len(blob) - 1]):
            if cut >= len(blob):
                continue
            with pytest.raises(CorruptData):
                compressor.decompress(blob[:cut], len(data))

    def test_trailing_bytes_never_change_the_output(self, compressor: Any) -> None:
        # Formats that stop at their end marker (zstd) may ignore what follows;
        # what they must not do is return anything but the original bytes.
        data = random_bytes(3000, seed=4) + compressible_bytes(3000)
        blob = compressor.compress(data)
        for tail in (b"\x00", b"\x00" * 16, random_bytes(100, seed=5), blob):
            try:
                out = compressor.decompress(blob + tail, len(data))
            except CorruptData:
                continue
            assert out == data, "trailing bytes changed the output"

    def test_altered_bytes_never_give_a_wrong_length(self, compressor: Any) -> None:
        data = random_bytes(2000, seed=5) + compressible_bytes(6000)
        blob = compressor.compress(data)
        for position in sample_positions(len(blob), 300, seed=6):
            for mask in (0x01, 0xFF):
                altered = flip(blob, position, mask)
                try:
                    out = compressor.decompress(altered, len(data))
                except CorruptData:
                    continue
                assert not self.detects_corruption, (
                    f"byte {position} ^ {mask:#x} went undetected though detects_corruption is set"
                )
                assert isinstance(out, bytes) and len(out) == len(data), (
                    f"byte {position} ^ {mask:#x}: returned {len(out)} bytes, expected {len(data)}"
                )

    @pytest.mark.parametrize("plain_size", [0, 1, 100, 65536])
    def test_random_garbage_raises_corrupt_data_only(self, compressor: Any, plain_size: int) -> None:
        for length in (0, 1, 2, 7, 16, 100, 1000):
            for seed in range(4):
                garbage = random_bytes(length, seed=1000 * length + seed)
                try:
                    out = compressor.decompress(garbage, plain_size)
                except CorruptData:
                    continue
                assert isinstance(out, bytes) and len(out) == plain_size

    def test_hostile_input_is_refused_cheaply(self, compressor: Any) -> None:
        for label, blob, plain_size in self.hostile_inputs(compressor):
            outcome = measure(functools.partial(compressor.decompress, blob, plain_size))
            if outcome.error is not None:
                assert isinstance(outcome.error, CorruptData), (
                    f"{label}: raised {type(outcome.error).__name__}: {outcome.error} instead of CorruptData"
                )
            else:
                assert len(outcome.result) == plain_size, f"{label}: returned a wrong length"
            assert outcome.peak_bytes <= plain_size + ALLOCATION_SLACK, (
                f"{label}: allocated {outcome.peak_bytes} bytes for a {plain_size}-byte chunk"
            )
            assert outcome.seconds < HOSTILE_SECONDS, f"{label}: took {outcome.seconds:.1f} s to refuse"

    def test_own_output_with_understated_size_raises(self, compressor: Any) -> None:
        bomb = compressor.compress(bytes(16 * MiB))
        with pytest.raises(CorruptData):
            compressor.decompress(bomb, 4096)

    # -- concurrency ------------------------------------------------------

    def test_concurrent_use_from_four_threads(self, compressor: Any) -> None:
        inputs = [
            random_bytes(64 * 1024 * (i + 1), seed=100 + i) + compressible_bytes(300_000) for i in range(8)
        ]
        reference = [compressor.compress(data) for data in inputs]

        def worker(index: int) -> bool:
            for round_number in range(10):
                which = (index + round_number) % len(inputs)
                data = inputs[which]
                # Decompress blobs made on the main thread too: per-thread state
                # must not leak into the format.
                if compressor.decompress(reference[which], len(data)) != data:
                    return False
                if compressor.decompress(compressor.compress(data), len(data)) != data:
                    return False
            return True

        assert all(run_in_threads(worker, 4))
