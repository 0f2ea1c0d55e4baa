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

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

PROJECT_NAME = "vger"

if TYPE_CHECKING:
    import pluggy

    hookimpl: pluggy.HookimplMarker
    hookspec: pluggy.HookspecMarker


def __getattr__(name: str) -> Any:
    # The markers are made on first use: importing pluggy here cost 8 ms before
    # `vger backup` could start its walk-ahead child (vger/cli/launch.py).
    if name in ("hookimpl", "hookspec"):
        import pluggy

        marker = (
            pluggy.HookimplMarker(PROJECT_NAME) if name == "hookimpl" else pluggy.HookspecMarker(PROJECT_NAME)
        )
        globals()[name] = marker
        return marker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
