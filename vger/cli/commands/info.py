"""``vger info``: what each repository holds and how much it costs."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, human_size, json_option, table
from vger.repository import format as fmt
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot

_SHARED = -1


def source_breakdown(repo: Repository, snaps: Sequence[Snapshot]) -> dict[str, dict[str, Any]]:
    """Per source label: snapshot count, latest snapshot, sizes, and the bytes only that label needs.

    ``deduplicated_size`` is the stored size of the chunks (file data and item
    stream) that only this label's snapshots reference: what deleting every
    snapshot of the label and compacting would free. Chunks shared with another
    label count for neither. It reads every item stream once (a snapshot whose
    item stream is identical to one already read for the label is skipped); memory
    is one small dict entry per referenced chunk.
    """
    by_label: dict[str, list[Snapshot]] = {}
    for snap in snaps:
        by_label.setdefault(snap.source_label, []).append(snap)
    labels = sorted(by_label)
    owner: dict[bytes, int] = {}  # chunk id -> label number, or _SHARED

    def mark(chunk_id: bytes, number: int) -> None:
        current = owner.setdefault(chunk_id, number)
        if current != number and current != _SHARED:
            owner[chunk_id] = _SHARED

    for number, label in enumerate(labels):
        streams_seen: set[bytes] = set()
        for snap in by_label[label]:
            stream_key = hashlib.blake2b(b"".join(snap.items), digest_size=16).digest()
            if stream_key in streams_seen:
                continue  # same item stream, same chunks: nothing new to mark
            streams_seen.add(stream_key)
            for chunk_id in snap.items:
                mark(chunk_id, number)
            for item in repo.iter_items(snap):
                for chunk in item.get("chunks") or ():
                    if isinstance(chunk, list | tuple) and chunk and isinstance(chunk[0], bytes):
                        mark(chunk[0], number)
    unique = [0] * len(labels)
    unique_chunks = [0] * len(labels)
    index = repo.index
    for chunk_id, number in owner.items():
        if number != _SHARED:
            unique[number] += index.stored_length(chunk_id)
            unique_chunks[number] += 1
    result: dict[str, dict[str, Any]] = {}
    for number, label in enumerate(labels):
        group = by_label[label]  # oldest first, as Repository.snapshots() returns them
        latest = group[-1]
        result[label] = {
            "snapshots": len(group),
            "latest": latest.time_iso,
            "latest_id": latest.hex_id,
            "latest_original_size": latest.stats.original_size,
            "original_size": sum(s.stats.original_size for s in group),
            "deduplicated_size": unique[number],
            "unique_chunks": unique_chunks[number],
        }
    return result


def _sources_table(sources: dict[str, dict[str, Any]]) -> str:
    rows = [
        (
            label,
            doc["snapshots"],
            dt.datetime.fromisoformat(doc["latest"].replace("Z", "+00:00"))
            .astimezone()
            .strftime("%Y-%m-%d %H:%M:%S"),
            human_size(doc["latest_original_size"]),
            human_size(doc["original_size"]),
            human_size(doc["deduplicated_size"]),
        )
        for label, doc in sources.items()
    ]
    return table(
        ("SOURCE", "SNAPSHOTS", "LATEST", "LATEST SIZE", "ALL SNAPSHOTS", "UNIQUE (STORED)"),
        rows,
        right=(1, 3, 4, 5),
    )


@click.command("info")
@json_option
@click.pass_obj
def command(app: App) -> None:
    """Per repository: snapshots, sizes (original / compressed / deduplicated / stored), chunks, packs."""
    with app.step("info"):
        docs: list[dict[str, Any]] = []
        with app.each_repo() as repos:
            for cfg, repo in repos:
                snaps = repo.snapshots()
                index = repo.index
                pack_keys = list(repo.backend.list(fmt.PACKS_PREFIX))
                stored = sum(repo.backend.size(k) for k in pack_keys)
                unique_plain = unique_stored = 0
                for _, entry in index.items():
                    unique_plain += entry.plain_size
                    unique_stored += entry.length
                doc: dict[str, Any] = {
                    "repository": cfg.label,
                    "url": cfg.url,
                    "id": repo.id_hex,
                    "format_version": repo.config.version,
                    "cipher": repo.config.cipher,
                    "encrypted": repo.config.encrypted,
                    "compression": cfg.compression.algorithm,
                    "chunker": {
                        "algorithm": app.config.chunker.algorithm,
                        "min_size": app.config.chunker.min_size,
                        "avg_size": app.config.chunker.avg_size,
                        "max_size": app.config.chunker.max_size,
                    },
                    "snapshots": len(snaps),
                    "original_size": sum(s.stats.original_size for s in snaps),
                    "compressed_size": sum(s.stats.compressed_size for s in snaps),
                    "deduplicated_size": unique_stored,
                    "unique_original_size": unique_plain,
                    "stored_size": stored,
                    "chunks": len(index),
                    "packs": len(pack_keys),
                    "sources": source_breakdown(repo, snaps),
                }
                docs.append(doc)
                if not app.json:
                    rows = [
                        ("repository", f"{cfg.label} ({cfg.url})"),
                        ("id", repo.id_hex),
                        ("cipher", repo.config.cipher),
                        ("compression", cfg.compression.algorithm),
                        (
                            "chunker",
                            f"{app.config.chunker.algorithm} {app.config.chunker.min_size}/"
                            f"{app.config.chunker.avg_size}/{app.config.chunker.max_size}",
                        ),
                        ("snapshots", str(len(snaps))),
                        ("original size", human_size(doc["original_size"])),
                        ("compressed size", human_size(doc["compressed_size"])),
                        ("deduplicated size", human_size(unique_stored)),
                        ("stored size", human_size(stored)),
                        ("chunks / packs", f"{len(index)} / {len(pack_keys)}"),
                    ]
                    for name, value in rows:
                        click.echo(f"{name:<18} {value}")
                    if doc["sources"]:
                        click.echo()
                        click.echo(_sources_table(doc["sources"]))
                    click.echo()
        if app.json:
            emit_json(docs)
