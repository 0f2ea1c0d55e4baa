"""Cutting a stream into chunks one buffer-full at a time.

Files and dump streams are read into a reused buffer; the chunker sees the
buffer, and the last piece of a full buffer was cut by the buffer's end, not
by the content, so it is carried over and cut again with what follows. With
one shared rule a file and the same bytes piped through a dump give the same
chunks (and deduplicate).
"""

from __future__ import annotations

from vger.interfaces import Chunker


def content_cuts(chunker: Chunker, block: memoryview, eof: bool) -> list[int]:
    """Chunk lengths for ``block``; unless ``eof``, without the trailing piece to carry over.

    A single piece is kept even before the end: the buffer holds more than the
    largest chunk, so that cut was made by the chunker's maximum size.
    """
    lengths = chunker.split(block)
    if not eof and len(lengths) > 1:
        lengths.pop()
    return lengths
