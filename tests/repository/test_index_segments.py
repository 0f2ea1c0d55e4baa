"""Index segments: the fast loader accepts and refuses exactly what decode_segment does."""

import msgpack
import pytest

from vger.errors import CorruptData
from vger.repository.index import ChunkIndex, decode_segment, encode_segment

PACK_A, PACK_B = b"a" * 32, b"b" * 32
GOOD = encode_segment(
    {
        PACK_A: [(b"1" * 32, 0, 4, 100, 250), (b"2" * 32, 1, 108, 50, 50)],
        PACK_B: [(b"3" * 32, 0, 4, 7, 9)],
    }
)


def test_a_pack_without_entries_is_fine() -> None:
    index = ChunkIndex()
    index.add_segment(msgpack.packb([[PACK_A, []], [PACK_B, [[b"3" * 32, 0, 4, 7, 9]]]]), "index/x")
    assert len(index) == 1


def test_a_good_segment_loads_the_same_both_ways() -> None:
    slow, fast = ChunkIndex(), ChunkIndex()
    for row in decode_segment(GOOD, "index/x"):
        slow.add(*row)
    fast.add_segment(GOOD, "index/x")
    assert list(slow.items()) == list(fast.items())
    assert fast.stored_total([(b"1" * 32, 250), (b"3" * 32, 9)]) == 107
    assert fast.stored_total([(b"1" * 32, 250), (b"9" * 32, 9)]) == 0  # one chunk missing


BAD = {
    "not msgpack": b"\xc1\xc1\xc1",
    "not a list": msgpack.packb({"a": 1}),
    "short pack id": msgpack.packb([[b"a" * 31, [[b"1" * 32, 0, 4, 1, 1]]]]),
    "short chunk id": msgpack.packb([[PACK_A, [[b"1" * 31, 0, 4, 1, 1]]]]),
    "negative offset": msgpack.packb([[PACK_A, [[b"1" * 32, 0, -4, 1, 1]]]]),
    "negative plain size": msgpack.packb([[PACK_A, [[b"1" * 32, 0, 4, 1, -1]]]]),
    "text where a number goes": msgpack.packb([[PACK_A, [[b"1" * 32, 0, "4", 1, 1]]]]),
    "too few fields": msgpack.packb([[PACK_A, [[b"1" * 32, 0, 4, 1]]]]),
    "entries not a list": msgpack.packb([[PACK_A, 5]]),
    "too many fields": msgpack.packb([[PACK_A, [[b"1" * 32, 0, 4, 1, 1], [b"2" * 32, 0, 4, 1, 1, 9]]]]),
    "an entry not a list": msgpack.packb([[PACK_A, [[b"1" * 32, 0, 4, 1, 1], b"2" * 5]]]),
    "a float where an integer goes": msgpack.packb([[PACK_A, [[b"1" * 32, 0, 4.0, 1, 1]]]]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_malformed_segment_is_corrupt_data_both_ways(name: str) -> None:
    with pytest.raises(CorruptData):
        list(decode_segment(BAD[name], "index/x"))
    with pytest.raises(CorruptData):
        ChunkIndex().add_segment(BAD[name], "index/x")
