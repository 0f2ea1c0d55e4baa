"""The contract every chunker plugin must pass (see :class:`vger.interfaces.Chunker`).

Why these tests: deduplication only works if equal content is cut at equal
places, no matter where it sits in a file and no matter which thread cuts it.
A chunker that drifts (a cut depends on the offset, on earlier calls, or on
another thread's work) silently turns every backup into a full one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from vger.interfaces import Chunker
from vger.testing._support import (
    KiB,
    MiB,
    as_buffers,
    check_component_name,
    check_options_schema,
    random_bytes,
    run_in_threads,
    schema_defaults,
)

#: vger's configured defaults (spec: 512 KiB min / 2 MiB avg / 8 MiB max).
DEFAULT_SIZES = (512 * KiB, 2 * MiB, 8 * MiB)

ChunkerFactory = Callable[[int, int, int], Any]


def random_buffer(size: int, seed: int) -> bytes:
    return random_bytes(size, seed)


def chunk_digests(buf: bytes, lengths: list[int]) -> list[bytes]:
    """Content hashes of the chunks: what deduplication compares."""
    digests = []
    offset = 0
    view = memoryview(buf)
    for length in lengths:
        digests.append(hashlib.blake2b(view[offset : offset + length], digest_size=16).digest())
        offset += length
    return digests


class ChunkerContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``chunker_class`` (required unless you override ``chunker_factory``)
        The class your ``vger_register_chunkers`` hook returns.
    ``chunker_options``
        Options to build it with. Default: the defaults declared in its schema.
    ``sizes``
        ``(min_size, avg_size, max_size)`` for most tests. Small sizes give many
        chunks per buffer, so the statistics below are meaningful and fast.
    ``chunker_factory`` fixture
        Returns ``make(min_size, avg_size, max_size)``; override it if your
        class needs more than sizes and options to be built.
    ``kept_fraction``
        Share of chunks that must survive an edit near the start of a buffer.
    """

    chunker_class: ClassVar[type[Any] | None] = None
    chunker_options: ClassVar[Mapping[str, Any] | None] = None
    sizes: ClassVar[tuple[int, int, int]] = (16 * KiB, 64 * KiB, 256 * KiB)
    kept_fraction: ClassVar[float] = 0.9

    @pytest.fixture
    def chunker_factory(self) -> ChunkerFactory:
        cls = self.chunker_class
        if cls is None:
            raise TypeError(
                f"{type(self).__name__}: set `chunker_class` or override the `chunker_factory` fixture"
            )
        options = self.chunker_options
        if options is None:
            options = schema_defaults(cls.options_schema)
        frozen = dict(options)

        def make(min_size: int, avg_size: int, max_size: int) -> Any:
            return cls(min_size, avg_size, max_size, dict(frozen))

        return make

    @pytest.fixture
    def chunker(self, chunker_factory: ChunkerFactory) -> Any:
        return chunker_factory(*self.sizes)

    def check_lengths(self, lengths: list[int], buf_len: int, sizes: tuple[int, int, int]) -> None:
        min_size, _avg, max_size = sizes
        assert isinstance(lengths, list), "split() must return a list"
        assert all(isinstance(n, int) and not isinstance(n, bool) for n in lengths)
        assert sum(lengths) == buf_len, f"lengths add up to {sum(lengths)}, buffer has {buf_len} bytes"
        for index, length in enumerate(lengths[:-1]):
            assert min_size <= length <= max_size, (
                f"chunk {index} is {length} bytes, outside [{min_size}, {max_size}]"
            )
        if lengths:
            assert 0 < lengths[-1] <= max_size, f"last chunk is {lengths[-1]} bytes"

    # -- identity ---------------------------------------------------------

    def test_satisfies_the_protocol(self, chunker: Any) -> None:
        assert isinstance(chunker, Chunker)
        check_component_name(type(chunker).name)

    def test_options_schema_is_valid(self, chunker: Any) -> None:
        check_options_schema(type(chunker).options_schema)

    def test_options_may_include_the_core_keys(self, chunker: Any) -> None:
        # vger hands over the user's whole `chunker:` block: the selector and the
        # sizes (also passed as arguments) sit beside the plugin's own options.
        cls = type(chunker)
        min_size, avg_size, max_size = self.sizes
        block = {
            **schema_defaults(cls.options_schema),
            "algorithm": cls.name,
            "min_size": min_size,
            "avg_size": avg_size,
            "max_size": max_size,
        }
        buf = random_buffer(2 * MiB, seed=10)
        self.check_lengths(cls(min_size, avg_size, max_size, block).split(buf), len(buf), self.sizes)

    # -- cut rules ------------------------------------------------------------

    def test_empty_buffer_gives_no_chunks(self, chunker: Any) -> None:
        assert chunker.split(b"") == []

    def test_buffer_below_min_size_is_one_chunk(self, chunker: Any) -> None:
        for size in (1, 100, self.sizes[0] - 1):
            assert chunker.split(random_buffer(size, seed=size)) == [size]

    @pytest.mark.parametrize("seed", [1, 2])
    def test_lengths_cover_the_buffer_within_bounds(self, chunker: Any, seed: int) -> None:
        buf = random_buffer(8 * MiB + 12345, seed=seed)
        self.check_lengths(chunker.split(buf), len(buf), self.sizes)

    def test_bounds_hold_with_vger_default_sizes(self, chunker_factory: ChunkerFactory) -> None:
        buf = random_buffer(32 * MiB, seed=3)
        self.check_lengths(chunker_factory(*DEFAULT_SIZES).split(buf), len(buf), DEFAULT_SIZES)

    def test_low_entropy_data_is_cut_at_max_size(self, chunker: Any) -> None:
        # Zeros never trigger a content cut: only the max_size cap bounds them.
        max_size = self.sizes[2]
        buf = bytes(3 * max_size + 17)
        lengths = chunker.split(buf)
        self.check_lengths(lengths, len(buf), self.sizes)
        assert max(lengths) <= max_size

    def test_average_size_is_honoured_roughly(self, chunker: Any) -> None:
        buf = random_buffer(32 * MiB, seed=4)
        lengths = chunker.split(buf)
        mean = len(buf) / len(lengths)
        avg = self.sizes[1]
        assert avg / 2 <= mean <= avg * 2, f"mean chunk {mean:.0f} bytes for a configured average of {avg}"

    @pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
    def test_accepts_every_buffer_type(self, chunker: Any, kind: str) -> None:
        buf = random_buffer(4 * MiB, seed=5)
        assert chunker.split(dict(as_buffers(buf))[kind]) == chunker.split(buf)

    # -- determinism and content definition ------------------------------------

    def test_is_deterministic(self, chunker: Any, chunker_factory: ChunkerFactory) -> None:
        buf = random_buffer(8 * MiB, seed=6)
        first = chunker.split(buf)
        assert chunker.split(buf) == first, "a second call on one instance cut differently"
        assert chunker_factory(*self.sizes).split(buf) == first, "a second instance cut differently"

    def test_cuts_depend_on_content_not_offset(self, chunker: Any) -> None:
        buf = random_buffer(32 * MiB, seed=7)
        before = chunk_digests(buf, chunker.split(buf))
        for label, edited in (
            ("insert", buf[:1000] + b"inserted by an edit" * 10 + buf[1000:]),
            ("delete", buf[:1000] + buf[1500:]),
            ("replace", buf[:1000] + bytes(300) + buf[1300:]),
        ):
            after = set(chunk_digests(edited, chunker.split(edited)))
            kept = sum(digest in after for digest in before) / len(before)
            assert kept >= self.kept_fraction, (
                f"{label} near the start kept only {kept:.0%} of {len(before)} chunks"
            )

    def test_equal_content_at_another_offset_cuts_equally(self, chunker: Any) -> None:
        # The same file seen inside a bigger buffer (e.g. after a prepended header)
        # must re-synchronise and produce the same chunks after the first cuts.
        body = random_buffer(8 * MiB, seed=8)
        alone = chunk_digests(body, chunker.split(body))
        shifted_buf = random_buffer(12345, seed=9) + body
        shifted = set(chunk_digests(shifted_buf, chunker.split(shifted_buf)))
        kept = sum(digest in shifted for digest in alone) / len(alone)
        assert kept >= self.kept_fraction

    # -- concurrency ------------------------------------------------------

    def test_concurrent_use_from_four_threads(self, chunker: Any) -> None:
        buffers = [random_buffer(4 * MiB + i, seed=20 + i) for i in range(4)]
        expected = [chunker.split(buf) for buf in buffers]

        def worker(index: int) -> bool:
            for round_number in range(5):
                which = (index + round_number) % len(buffers)
                if chunker.split(buffers[which]) != expected[which]:
                    return False
            return True

        assert all(run_in_threads(worker, 4))
