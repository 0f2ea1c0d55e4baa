"""Shared fixtures: run the real ``vger`` CLI in subprocesses against temp folders."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def _private_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """In-process tests write vger's memos (validated schemas, parsed configs, entry
    points) into a folder of the test session, not the user's ~/.cache/vger."""
    os.environ.setdefault("VGER_CACHE_DIR", str(tmp_path_factory.mktemp("vger-cache")))


@dataclass
class Vger:
    """Runs ``python -m vger`` with an isolated environment (HOME, cache, config)."""

    tmp: Path
    env: dict[str, str]
    config: Path

    def run(
        self,
        *args: str,
        check: bool = True,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "vger", "-c", str(config or self.config), *args]
        proc = subprocess.run(
            cmd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            cwd=self.tmp,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"vger {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def run_patched(self, prelude: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``vger -c CONFIG ARGS`` in a real subprocess that runs ``prelude`` first (to patch a module)."""
        code = f"{prelude}\nfrom vger.cli.main import main\nmain()\n"
        return subprocess.run(
            [sys.executable, "-c", code, "-c", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
        )

    def write_config(self, doc: dict[str, Any], path: Path | None = None) -> Path:
        target = path or self.config
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        return target


@pytest.fixture
def vger_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGER_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        VGER_PASSPHRASE=PASSPHRASE,
        VGER_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env


@pytest.fixture
def vger(tmp_path: Path, vger_env: dict[str, str]) -> Vger:
    """A ``Vger`` runner whose default config backs up ``tmp/src`` into ``tmp/repo``."""
    src = tmp_path / "src"
    src.mkdir()
    runner = Vger(tmp_path, vger_env, tmp_path / "vger.yaml")
    runner.write_config(
        {"repositories": [{"url": str(tmp_path / "repo"), "label": "main"}], "sources": [str(src)]}
    )
    return runner


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def restored_root(dest: Path, source: Path) -> Path:
    """Where a restore into ``dest`` puts ``source`` (full path below dest, like borg/restic)."""
    return dest / str(source).lstrip("/")
