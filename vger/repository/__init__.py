"""The repository on storage: config, key, packs, index segments, snapshots.

Layout (see docs/format.md for every byte)::

    config              clear msgpack: format version, repo id, cipher, chunk-id scheme
    keys/repokey        wrapped master key
    snapshots/<id>      one encrypted object per snapshot
    index/<id>          encrypted index segments: chunk id -> (pack, offset, length, plain size)
    packs/<xx>/<id>     pack files, sharded by the first byte of the id
    locks/<id>          lock objects

Write order is the crash-safety rule: packs, then index segment, then snapshot
(the commit point). A backup only adds objects.
"""

from vger.repository.repository import Repository

__all__ = ["Repository"]
