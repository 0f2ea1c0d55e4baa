"""The programs under test, their fixed settings, and how one command is measured.

Each tool gets, per suite and repetition, a fresh folder holding its repository,
its cache (``VGER_CACHE_DIR``, ``--cache-dir``, ``BORG_BASE_DIR``) and its
config: the initial backup is therefore cold (no files cache, no chunk index
cache), and the later backups and the restore of that repetition reuse what the
initial backup left behind, as they would on a user's machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

PASSPHRASE = "benchmark passphrase, not a secret"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    """One finished child process: wall time and the kernel's account of its resources."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kib: int
    log: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


# Runs one command and reports its resource usage. It runs in a fresh, small Python
# (``-I -S``: no site, no imports beyond the standard library's core) rather than in
# the harness itself because Linux carries a process's peak RSS across fork and exec:
# a child forked from the harness (which holds corpus manifests, 100+ MiB) would
# report at least the harness's size as its ``ru_maxrss``. Forked from this ~10 MiB
# process instead, the tool's number is its own.
_SPAWNER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    json.dump({"code": code, "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
               "maxrss": usage.ru_maxrss}, f)
sys.exit(0)
"""


def measure(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Measurement:
    """Run ``argv`` and collect the child's own rusage from ``os.wait4`` (through ``_SPAWNER``).

    ``ru_maxrss`` is the child's peak resident set (KiB on Linux); user and system
    CPU include all of its threads. The wall time is taken around spawn and wait in
    the spawner, so the spawner's own start-up is not counted. Output goes to ``log``
    (both streams), so a chatty tool never blocks on a pipe.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    report = log.with_suffix(".rusage.json")
    report.unlink(missing_ok=True)
    with open(log, "wb") as out:
        out.write(("$ " + " ".join(argv) + "\n").encode())
        out.flush()
        spawner = [sys.executable, "-I", "-S", "-c", _SPAWNER, str(report), *argv]
        start = time.perf_counter()
        done = subprocess.run(
            spawner, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        outer_wall = time.perf_counter() - start
    try:
        usage = json.loads(report.read_text())
    except (OSError, ValueError):
        # The spawner itself failed (e.g. the program does not exist): report that, unmeasured.
        usage = {"code": done.returncode or 127, "wall": outer_wall, "user": 0.0, "sys": 0.0, "maxrss": 0}
    return Measurement(
        argv=argv,
        returncode=int(usage["code"]),
        wall_s=float(usage["wall"]),
        user_s=float(usage["user"]),
        sys_s=float(usage["sys"]),
        maxrss_kib=int(usage["maxrss"]),
        log=str(log),
    )


def tail(path: str, lines: int = 15) -> str:
    """The last lines a command printed (without the ``$ command`` line the log starts with)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    printed = [line for line in text.splitlines()[1:] if line.strip()]
    return "\n".join(printed[-lines:])


def base_env() -> dict[str, str]:
    """The harness's environment without anything that would steer a tool elsewhere."""
    drop = ("VGER_", "RESTIC_", "BORG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["LC_ALL"] = "C.UTF-8"
    env["LANG"] = "C.UTF-8"
    return env


class Tool:
    """A backup program with fixed settings, used in one folder (``home``) per repetition."""

    name: ClassVar[str]
    program: ClassVar[str]  # the executable that must be on PATH (or the Debian package's)
    debian_package: ClassVar[str | None] = None
    settings: ClassVar[str]
    ok_codes: ClassVar[tuple[int, ...]] = (0,)
    # Scenarios and suites this tool takes part in (None: all of them).
    scenarios: ClassVar[tuple[str, ...] | None] = None
    suites: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, home: Path, source: Path) -> None:
        self.home = home
        self.source = source
        self.repo = home / "repo"
        self.cache = home / "cache"
        self.logs = home / "logs"

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.program) is not None

    @classmethod
    def version(cls) -> str:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return base_env()

    def init_argv(self) -> list[str]:
        raise NotImplementedError

    def backup_argv(self, snapshot: str) -> list[str]:
        raise NotImplementedError

    def restore_argv(self, snapshot: str, dest: Path) -> list[str]:
        raise NotImplementedError

    def restore_cwd(self, dest: Path) -> Path:
        return self.home

    def restored_root(self, dest: Path) -> Path:
        """Where the restore puts the source folder: its full path below ``dest`` (all three tools)."""
        return dest / str(self.source).lstrip("/")

    def prepare(self) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        self.cache.mkdir(parents=True)

    def run(self, step: str, argv: list[str], cwd: Path | None = None) -> Measurement:
        return measure(argv, self.env(), cwd or self.home, self.logs / f"{step}.log")

    def init(self) -> Measurement:
        return self.run("init", self.init_argv())

    def backup(self, step: str) -> Measurement:
        return self.run(step, self.backup_argv(step))

    def restore(self, snapshot: str, dest: Path) -> Measurement:
        dest.mkdir(parents=True, exist_ok=True)
        return self.run("restore", self.restore_argv(snapshot, dest), cwd=self.restore_cwd(dest))


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=base_env())
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


class Vger(Tool):
    name = "vger"
    program = sys.executable
    settings = "defaults: lz4, encryption auto (AES-256-GCM here), FastCDC 512 KiB / 2 MiB / 8 MiB"
    compression: ClassVar[str] = "compression: {algorithm: lz4}"

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def version(cls) -> str:
        version = _first_line([sys.executable, "-m", "vger", "--version"])
        where = _first_line(
            [sys.executable, "-c", "import os, vger; print(os.path.dirname(os.path.dirname(vger.__file__)))"]
        )
        commit = _first_line(["git", "-C", where, "rev-parse", "--short", "HEAD"])
        if not all(c in "0123456789abcdef" for c in commit):
            commit = "unknown commit"
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no", "--", "vger", "plugins"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        place = "" if Path(where).resolve() == REPO_ROOT else f", imported from {where}"
        return f"{version} (git {commit}{', with uncommitted changes' if dirty else ''}{place})"

    @property
    def config(self) -> Path:
        return self.home / "vger.yaml"

    def prepare(self) -> None:
        super().prepare()
        self.config.write_text(
            f"repositories:\n  - url: {self.repo}\nsources:\n  - {self.source}\n{self.compression}\n"
        )

    def env(self) -> dict[str, str]:
        return {**base_env(), "VGER_PASSPHRASE": PASSPHRASE, "VGER_CACHE_DIR": str(self.cache)}

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "vger", "-c", str(self.config), *args]

    def init_argv(self) -> list[str]:
        return self._cli("init")

    def backup_argv(self, snapshot: str) -> list[str]:
        return self._cli("backup", "--json", "--label", snapshot)

    def restore_argv(self, snapshot: str, dest: Path) -> list[str]:
        return self._cli("restore", "--snapshot", "latest", "--dest", str(dest))


class VgerZstd(Vger):
    """Only for the repository-size comparison: its initial backup of the mixed corpus."""

    name = "vger-zstd"
    settings = "as vger, but compression zstd level 3 (initial backup of the mixed corpus only)"
    scenarios = ("init", "initial")
    suites = ("mixed",)
    compression = "compression: {algorithm: zstd, zstd_level: 3}"


class Restic(Tool):
    name = "restic"
    program = "restic"
    debian_package = "restic"
    settings = "defaults: repository format 2, compression auto (zstd), RESTIC_PASSWORD"

    @classmethod
    def version(cls) -> str:
        return _first_line(["restic", "version"])

    def env(self) -> dict[str, str]:
        return {**base_env(), "RESTIC_PASSWORD": PASSPHRASE, "RESTIC_CACHE_DIR": str(self.cache)}

    def init_argv(self) -> list[str]:
        return ["restic", "-r", str(self.repo), "init"]

    def backup_argv(self, snapshot: str) -> list[str]:
        return [
            "restic",
            "-r",
            str(self.repo),
            "--cache-dir",
            str(self.cache),
            "backup",
            "--tag",
            snapshot,
            str(self.source),
        ]

    def restore_argv(self, snapshot: str, dest: Path) -> list[str]:
        return [
            "restic",
            "-r",
            str(self.repo),
            "--cache-dir",
            str(self.cache),
            "restore",
            "latest",
            "--target",
            str(dest),
        ]


class Borg(Tool):
    name = "borg"
    program = "borg"
    debian_package = "borgbackup"
    settings = "borg init -e repokey-blake2; borg create --compression lz4 (default chunker 19,23,21,4095)"
    ok_codes = (0, 1)  # 1 = finished with warnings (borg's own convention)

    @classmethod
    def version(cls) -> str:
        return _first_line(["borg", "--version"])

    def env(self) -> dict[str, str]:
        return {
            **base_env(),
            "BORG_PASSPHRASE": PASSPHRASE,
            "BORG_BASE_DIR": str(self.cache),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING": "NO",
            "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "NO",
            "BORG_DISPLAY_PASSPHRASE": "no",
        }

    def init_argv(self) -> list[str]:
        return ["borg", "init", "-e", "repokey-blake2", str(self.repo)]

    def backup_argv(self, snapshot: str) -> list[str]:
        return ["borg", "create", "--compression", "lz4", f"{self.repo}::{snapshot}", str(self.source)]

    def restore_argv(self, snapshot: str, dest: Path) -> list[str]:
        return ["borg", "extract", f"{self.repo}::{snapshot}"]

    def restore_cwd(self, dest: Path) -> Path:
        return dest  # borg extracts into the current folder


TOOLS: dict[str, type[Tool]] = {cls.name: cls for cls in (Vger, Restic, Borg, VgerZstd)}
DEFAULT_TOOLS = ("vger", "restic", "borg", "vger-zstd")


def ensure_installed(tools: list[type[Tool]], install: bool, log: object = print) -> dict[str, str]:
    """Install missing Debian packages (restic, borgbackup); returns ``{tool: why it is skipped}``.

    ``apt-get install`` is tried first and, when it fails (an empty or stale package
    list), again after ``apt-get update``. Nothing is installed when ``install`` is
    false (the smoke test) or when we are not root.
    """
    say = log if callable(log) else print
    missing = [t for t in tools if not t.available()]
    skipped: dict[str, str] = {}
    if not missing:
        return skipped
    packages = [t.debian_package for t in missing if t.debian_package]
    if not install:
        return {t.name: f"{t.program} is not installed (installation disabled)" for t in missing}
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return {t.name: f"{t.program} is not installed and apt-get cannot be run here" for t in missing}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    say(f"installing {' '.join(packages)} with apt-get ...")
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        say("apt-get install failed; running apt-get update and trying again ...")
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(cmd, env=env, capture_output=True)
    for t in missing:
        if not t.available():
            skipped[t.name] = (
                f"{t.program} could not be installed (apt-get install {t.debian_package} failed)"
            )
    return skipped
