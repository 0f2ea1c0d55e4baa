"""``vger info``: what each repository holds and how much it costs."""

from __future__ import annotations

from typing import Any

import click

from vger.cli.app import App
from vger.cli.output import emit_json, human_size, json_option
from vger.repository import format as fmt


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
                }
                docs.append(doc)
                if not app.json:
                    rows = [
                        ("repository", f"{cfg.label} ({cfg.url})"),
                        ("id", repo.id_hex),
                        ("cipher", repo.config.cipher),
                        ("compression", cfg.compression.algorithm),
                        ("chunker", f"{app.config.chunker.algorithm} {app.config.chunker.min_size}/"
                         f"{app.config.chunker.avg_size}/{app.config.chunker.max_size}"),
                        ("snapshots", str(len(snaps))),
                        ("original size", human_size(doc["original_size"])),
                        ("compressed size", human_size(doc["compressed_size"])),
                        ("deduplicated size", human_size(unique_stored)),
                        ("stored size", human_size(stored)),
                        ("chunks / packs", f"{len(index)} / {len(pack_keys)}"),
                    ]
                    for name, value in rows:
                        click.echo(f"{name:<18} {value}")
                    click.echo()
        if app.json:
            emit_json(docs)
