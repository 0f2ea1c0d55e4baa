"""vger: a fast, encrypted, deduplicating backup tool built as a pluggy plugin framework.

Glossary (used everywhere in this package):

chunk
    A piece of a file cut by the content-defined chunker. Identified by its *chunk id*,
    a keyed BLAKE2b-256 MAC of the plaintext, so equal content has equal ids
    (deduplication) and nobody without the key can test for known content.
blob
    A chunk (or a piece of a snapshot's item stream) after compression and encryption,
    as stored inside a pack.
pack
    A file in ``packs/`` holding many blobs plus an encrypted header listing them.
index segment
    An object in ``index/`` mapping chunk ids to (pack, offset, length, plain size).
snapshot
    An object in ``snapshots/`` describing one backup of one source; points at the
    chunks of its *item stream* (the msgpack sequence of file entries).

``hookimpl`` is the one import a plugin author needs.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "vger"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
