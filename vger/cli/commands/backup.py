"""``vger backup``: one snapshot per source per repository."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
from typing import Any

import click

from vger.backup.archiver import Archiver, BackupResult, SourceSpec, load_files_cache
from vger.backup.dumps import build_sources, check_no_collision, dump_entries
from vger.backup.filecache import FilesCache
from vger.backup.prematch import Prematched, prematch
from vger.backup.walkahead import WalkAhead, claim, discard, may_walk_early
from vger.backup.walker import WalkOptions
from vger.cli.app import App
from vger.cli.output import emit_json, error_line, human_size, json_option, warn
from vger.cli.progress import make_progress
from vger.config.model import RepositoryConfig, SourceConfig
from vger.errors import EXIT_ERROR, EXIT_PARTIAL, VgerError
from vger.memory import loading_long_lived
from vger.repository.format import RepoConfig
from vger.repository.locks import SHARED, locked
from vger.repository.repository import Repository


def _spec(source: SourceConfig, app: App | None = None) -> SourceSpec:
    dumps = dump_entries(source)
    if dumps:
        check_no_collision(source.paths)
    return SourceSpec(
        dumps=build_sources(dumps, app.registry) if dumps and app is not None else (),
        label=source.label,
        paths=tuple(source.paths),
        walk=_walk_options(source),
        xattrs=source.xattrs,
    )


def _walk_options(source: SourceConfig) -> WalkOptions:
    return WalkOptions(
        exclude=tuple(source.exclude),
        exclude_if_present=tuple(source.exclude_if_present),
        one_file_system=source.one_file_system,
        git_ignore=source.git_ignore,
    )


def _expected_size(repo: Repository, label: str) -> int | None:
    """The last snapshot of this source, as the best guess of this run's size (for the ETA)."""
    try:
        previous = [s for s in repo.snapshots() if s.source_label == label]
    except VgerError:
        return None
    return previous[-1].stats.original_size if previous else None


def pack_target(repo: Repository, cfg: RepositoryConfig) -> int:
    """Pack size grows with the repository: ``min * sqrt(packs / 100)``, clamped (format.md).

    Small repositories keep small packs (cheap to compact); large ones keep the
    object count (and per-object cost on remote storage) in check.
    """
    packs = repo.index.pack_count()
    grown = int(cfg.min_pack_size * math.sqrt(packs / 100)) if packs else 0
    return max(cfg.min_pack_size, min(cfg.max_pack_size, grown))


def result_doc(cfg: RepositoryConfig, result: BackupResult) -> dict[str, Any]:
    snap = result.snapshot
    return {
        "repository": cfg.label,
        "source_label": result.source_label,
        "snapshot": snap.hex_id if snap else None,
        "dry_run": result.dry_run,
        "stats": {
            "files": result.stats.files,
            "original_size": result.stats.original_size,
            "compressed_size": result.stats.compressed_size,
            "deduplicated_size": result.stats.deduplicated_size,
            "files_read": result.files_read,
            "bytes_read": result.bytes_read,
            "cache_hits": result.cache_hits,
            "new_chunks": result.new_chunks,
            "duration": round(result.duration, 3),
        },
        "errors": [{"path": p, "error": m} for p, m in result.errors],
    }


def run_backup(
    app: App, source_labels: tuple[str, ...] = (), label: str = "", dry_run: bool = False, stats: bool = False
) -> int:
    """Back up every selected source into every selected repository; returns the exit code."""
    docs: list[dict[str, Any]] = []
    exit_code = 0
    first = True
    for cfg in app.repositories():
        sources = app.sources(cfg, source_labels)
        if not sources:
            continue
        # The first source may already be walking in a child started with the command.
        ahead = _claim_walk_ahead(app, cfg, sources[0], dry_run) if first else None
        first = False
        try:
            # One lifecycle step per repository, one per source inside it: the
            # repository's and the source's hooks run around them (docs/hooks.md).
            with app.step("backup", repository=cfg.label) as repo_step:
                # The first source's files cache loads while the key is derived.
                # and, walking ahead, its first entries are matched against that cache
                loaded: dict[str, FilesCache] = {}
                matched: dict[str, Prematched] = {}
                repo = app.open_repo(
                    cfg, meanwhile=functools.partial(_load_ahead, loaded, matched, sources[0], ahead)
                )
                failed = 0
                for source in sources:
                    try:
                        with app.step("backup", repository=cfg.label, source=source) as step:
                            result = _backup_one(
                                app,
                                cfg,
                                repo,
                                source,
                                label,
                                dry_run,
                                loaded.pop(source.label, None),
                                ahead if source is sources[0] else None,
                                matched.pop(source.label, None),
                            )
                            step.result.update(result_doc(cfg, result))
                    except VgerError as exc:
                        error_line(f"{cfg.label}: source {source.label}: {exc}")
                        exit_code = EXIT_ERROR
                        failed += 1
                        continue
                    docs.append(result_doc(cfg, result))
                    for path, message in result.errors:
                        warn(f"{path}: {message}")
                    if result.errors and exit_code == 0:
                        exit_code = EXIT_PARTIAL
                    if not app.json and not app.quiet:
                        _print_result(cfg, result, stats)
                if failed:
                    raise _SourcesFailed("; ".join(repo_step.inner_errors))
        except _SourcesFailed:
            pass  # each source's error is already on stderr
        except VgerError as exc:
            error_line(f"{cfg.label}: {exc}")
            exit_code = EXIT_ERROR
        finally:
            if ahead is not None:  # closed by the archiver, unless the step failed first
                ahead.close()
    if app.json:
        emit_json(docs)
    return exit_code


def _claim_walk_ahead(
    app: App, cfg: RepositoryConfig, source: SourceConfig, dry_run: bool
) -> WalkAhead | None:
    """The walk started with the command (walkahead.py), if it is this source's and may be used."""
    if dry_run:  # reads nothing: no head start needed, and the plan stays as it is
        discard()
        return None
    spec = _walk_options(source)
    allowed = may_walk_early(
        app.config.hooks,
        cfg.hooks,
        source.hooks,
        bool(dump_entries(source)),
        [impl.plugin_name for impl in app.registry.pm.hook.vger_before.get_hookimpls()],
    )
    return claim(sys.argv[1:], source.paths, spec, allowed)


def _load_ahead(
    into: dict[str, FilesCache],
    matched: dict[str, Prematched],
    source: SourceConfig,
    ahead: WalkAhead | None,
    config: RepoConfig,
) -> None:
    with loading_long_lived():
        cache = into[source.label] = load_files_cache(config.repo_id.hex(), source.label, source.xattrs)
        if ahead is not None and source.paths:
            matched[source.label] = prematch(source.paths[0], _walk_options(source), ahead, cache)


class _SourcesFailed(VgerError):
    """Ends a repository's step as failed (its ``failed`` hooks run) once its sources were tried."""


def _backup_one(
    app: App,
    cfg: RepositoryConfig,
    repo: Repository,
    source: SourceConfig,
    label: str,
    dry_run: bool,
    files_cache: FilesCache | None = None,
    walk_ahead: WalkAhead | None = None,
    prematched: Prematched | None = None,
) -> BackupResult:
    archiver_progress = make_progress(
        app, f"{source.label} -> {cfg.label}", lambda: _expected_size(repo, source.label)
    )
    display: contextlib.AbstractContextManager[Any] = archiver_progress or contextlib.nullcontext()
    for path in source.paths:
        if not os.path.exists(path):
            raise VgerError(f"source path {path} does not exist")
    lock = contextlib.nullcontext() if dry_run else locked(repo, SHARED, "backup")
    with lock, display:
        with loading_long_lived():
            pack_size = pack_target(repo, cfg)  # loads the chunk index, under the lock
        archiver = Archiver(
            repo,
            app.chunker(),
            app.compressor(cfg),
            app.chunker_factory(),
            _spec(source, app),
            threads=cfg.limits.max_threads,
            pack_size=pack_size,
            label=label,
            progress=archiver_progress,
            dry_run=dry_run,
            files_cache=files_cache,
            walk_ahead=walk_ahead,
            prematched=prematched,
        )
        return archiver.run()


def _print_result(cfg: RepositoryConfig, result: BackupResult, stats: bool) -> None:
    s = result.stats
    if result.dry_run:
        click.echo(
            f"{cfg.label}: {result.source_label}: dry run: {s.files} files, {human_size(s.original_size)}; "
            f"would read {result.files_read} files ({human_size(result.bytes_read)})"
        )
        return
    snap = result.snapshot
    assert snap is not None
    click.echo(
        f"{cfg.label}: {result.source_label}: snapshot {snap.short_id}: {s.files} files, "
        f"{human_size(s.original_size)} (added {human_size(s.deduplicated_size)}) in {result.duration:.1f}s"
    )
    if stats:
        rate = result.bytes_read / result.duration / 2**20 if result.duration else 0.0
        rows = [
            ("original size", human_size(s.original_size)),
            ("compressed size", human_size(s.compressed_size)),
            ("deduplicated size", human_size(s.deduplicated_size)),
            ("files read / from cache", f"{result.files_read} / {result.cache_hits}"),
            ("bytes read", f"{human_size(result.bytes_read)} ({rate:.0f} MiB/s)"),
            ("new chunks", str(result.new_chunks)),
        ]
        for name, value in rows:
            click.echo(f"  {name:<24} {value}")


@click.command("backup")
@click.option("-S", "--source", "sources", multiple=True, help="Only this source label (repeatable).")
@click.option("--label", default="", help="A free-text label stored with the snapshot.")
@click.option("--dry-run", is_flag=True, help="Show what would be read; write nothing.")
@click.option("--stats", is_flag=True, help="Print detailed statistics.")
@json_option
@click.pass_obj
def command(app: App, sources: tuple[str, ...], label: str, dry_run: bool, stats: bool) -> None:
    """Back up every source into every repository (one snapshot per source per repository)."""
    with app.step("backup"):
        code = run_backup(app, sources, label, dry_run, stats)
        if code:
            raise click.exceptions.Exit(code)
