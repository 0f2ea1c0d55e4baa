"""Per-invocation state shared by the commands: config, plugins, repositories."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from vger.config import load_config
from vger.config.model import Config, RepositoryConfig, SourceConfig
from vger.crypto.passphrase import get_passphrase
from vger.errors import ConfigError, VgerError
from vger.interfaces import Chunker, Compressor
from vger.lifecycle import CommandContext, lifecycle
from vger.monitoring import MonitoringFanOut
from vger.pluginmanager import Registry, load_plugins
from vger.repository.format import RepoConfig
from vger.repository.repository import Repository
from vger.storage import open_backend

log = logging.getLogger("vger")


def _apply_nice(level: int) -> None:
    """``limits.cpu.nice``: lower our CPU priority once, for the whole process (and its threads)."""
    if level <= 0:
        return
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < level:
        os.setpriority(os.PRIO_PROCESS, 0, level)


@dataclass
class App:
    config_path: str | None = None
    repo_selector: str | None = None
    verbose: int = 0
    quiet: bool = False
    json: bool = False
    _opened: list[Repository] = field(default_factory=list)
    #: set by the no-command cycle: each step's JSON document lands here under ``json_step``
    json_parts: dict[str, Any] | None = None
    json_step: str = ""

    #: the lifecycle steps we are inside, outermost first (command, repository, source)
    _steps: list[CommandContext] = field(default_factory=list)

    @cached_property
    def _loaded(self) -> tuple[Config, Registry]:
        config, registry = load_config(self.config_path, lambda disabled: load_plugins(disabled))
        # The monitoring fan-out is core, not a plugin, but listens to the same
        # lifecycle events (and builds the configured monitors in vger_configure).
        registry.pm.register(MonitoringFanOut(registry), name=MonitoringFanOut.plugin_name)
        registry.pm.hook.vger_configure(config=config)
        _apply_nice(max((repo.limits.nice for repo in config.repositories), default=0))
        return config, registry

    @contextmanager
    def step(
        self, command: str, repository: str | None = None, source: SourceConfig | None = None
    ) -> Iterator[CommandContext]:
        """Surround a command (or one repository / source step of it) with lifecycle hooks.

        Steps nest (command, then repository, then source): each context
        records the one it runs in, so failures inside reach the outer
        ``failed`` hooks and the order of hooks follows the nesting.
        """
        ctx = CommandContext(
            command,
            self.config,
            repository=repository,
            source_label=source.label if source else None,
            source_paths=tuple(source.paths) if source else (),
            parent=self._steps[-1] if self._steps else None,
        )
        self._steps.append(ctx)
        try:
            with lifecycle(self.registry.pm, ctx) as current:
                yield current
        finally:
            self._steps.remove(ctx)

    @property
    def config(self) -> Config:
        return self._loaded[0]

    @property
    def registry(self) -> Registry:
        return self._loaded[1]

    # -- selection -------------------------------------------------------------
    def repositories(self) -> list[RepositoryConfig]:
        repos = list(self.config.repositories)
        if self.repo_selector is None:
            return repos
        return [self.config.repository(self.repo_selector)]

    def sources(self, repo: RepositoryConfig, labels: tuple[str, ...] = ()) -> list[SourceConfig]:
        sources = list(self.config.sources_for(repo))
        if labels:
            known = {s.label for s in self.config.sources}
            unknown = [label for label in labels if label not in known]
            if unknown:
                raise ConfigError(
                    f"no source labelled {', '.join(unknown)}; configured: {', '.join(sorted(known))}"
                )
            sources = [s for s in sources if s.label in labels]
        return sources

    # -- components --------------------------------------------------------------
    def compressor(self, repo: RepositoryConfig) -> Compressor:
        cls = self.registry.get("compressor", repo.compression.algorithm)
        comp: Compressor = cls(dict(repo.compression.options))
        return comp

    def chunker(
        self, min_size: int | None = None, avg: int | None = None, max_size: int | None = None
    ) -> Chunker:
        cfg = self.config.chunker
        cls = self.registry.get("chunker", cfg.algorithm)
        chunker: Chunker = cls(
            min_size or cfg.min_size, avg or cfg.avg_size, max_size or cfg.max_size, dict(cfg.options)
        )
        return chunker

    def chunker_factory(self) -> Any:
        return lambda lo, avg, hi: self.chunker(lo, avg, hi)

    # -- repositories --------------------------------------------------------------
    def backend(self, repo: RepositoryConfig) -> Any:
        return open_backend(repo.url, repo.options, self.registry, repo.limits)

    def passphrase(self, repo: RepositoryConfig, confirm: bool = False) -> Any:
        enc = repo.encryption
        return lambda: get_passphrase(
            enc.passphrase, enc.passcommand, confirm=confirm, what=f"repository {repo.label}"
        )

    def open_repo(
        self, repo: RepositoryConfig, meanwhile: Callable[[RepoConfig], None] | None = None
    ) -> Repository:
        backend = self.backend(repo)
        opened = Repository.open(
            backend,
            self.registry,
            self.passphrase(repo),
            allow_unencrypted=repo.encryption.mode == "none",
            label=repo.label,
            meanwhile=meanwhile,
        )
        self._opened.append(opened)
        return opened

    @contextmanager
    def each_repo(self) -> Iterator[Iterator[tuple[RepositoryConfig, Repository]]]:
        """Open the selected repositories one by one, closing their backends afterwards.

        Inside a command step, each repository gets a step of its own (its
        ``hooks`` run around it). An error raised in the caller's loop body is
        thrown back into the generator, so the repository step it happened in
        runs its ``failed`` and ``finally`` hooks with that error.
        """
        command = self._steps[-1].command if self._steps else None

        def gen() -> Generator[tuple[RepositoryConfig, Repository], None, None]:
            for cfg in self.repositories():
                step = (
                    self.step(command, repository=cfg.label)
                    if command is not None
                    else contextlib.nullcontext()
                )
                with step:
                    repo = self.open_repo(cfg)
                    try:
                        yield cfg, repo
                    finally:
                        repo.backend.close()

        repos = gen()
        try:
            yield repos
        except BaseException as exc:
            if inspect.getgeneratorstate(repos) == inspect.GEN_SUSPENDED:
                repos.throw(exc)
            raise
        finally:
            repos.close()

    def close(self) -> None:
        for repo in self._opened:
            try:
                repo.backend.close()
            except VgerError:
                pass
