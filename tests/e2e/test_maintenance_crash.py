"""format.md "Must hold" 1 for maintenance: kill -9 at random moments of `prune` and `compact`.

A template repository with six snapshots (changing random files, about 45 MiB)
is built once. Each run copies it, starts the command, kills it with SIGKILL
after a random delay, and then checks what a user would rely on:

* `vger check` accepts the repository (unindexed packs are only a warning;
  an index entry naming a missing pack would be an error);
* every snapshot still listed restores byte for byte (the newest and one other
  picked at random, to keep the time bounded);
* the lock left by the killed process does not block anything, and running the
  command again completes it.

The delays come three ways, taking turns: from the start of the process
(up to its measured duration), from the moment its lock appears (up to the
measured duration of the work), and a few milliseconds after its first change
to snapshots/ (prune: the first deletion) or index/ (compact: the new index
segment, right before the removals start), so kills land all over the run and not only during interpreter start-up. A deterministic
companion stops compact right after chosen steps. The seed is printed so a
failure can be replayed with VGER_CRASH_SEED.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import PASSPHRASE, restored_root, write_file

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
RUNS = int(os.environ.get("VGER_CRASH_RUNS", "20"))


def manifest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Template:
    base: Path
    env: dict[str, str]
    src: Path
    manifests: dict[str, dict[str, str]]  # snapshot id -> files (relative path -> sha256)
    roots: dict[str, Path]  # snapshot id -> the source folder it was taken of
    order: list[str]  # snapshot ids, oldest first

    def copy(self) -> Template:
        return Template(
            self.base, self.env, self.src, dict(self.manifests), dict(self.roots), list(self.order)
        )


def _env(base: Path) -> dict[str, str]:
    home = base / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGER_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        VGER_PASSPHRASE=PASSPHRASE,
        VGER_CACHE_DIR=str(base / "cache"),
    )
    return env


def _config(base: Path, repo: Path, *sources: Path) -> Path:
    path = base / f"vger-{repo.name}.yaml"
    doc = {
        # small packs: more of them, so a kill can fall between any two steps
        "repositories": [{"url": str(repo), "label": "main", "min_pack_size": 4 * MiB}],
        "sources": [str(src) for src in sources],
        "retention": {"keep_last": 2},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _vger(
    env: dict[str, str], config: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vger", "-c", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"vger {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    base = tmp_path_factory.mktemp("crash-template")
    env = _env(base)
    src = base / "src"
    repo = base / "repo"
    config = _config(base, repo, src)
    _vger(env, config, "init")
    rnd = random.Random(1234)
    manifests: dict[str, dict[str, str]] = {}
    order = []
    for i in range(6):
        # kept_i stays in every later snapshot, temp_i only in this one: the
        # packs of each backup end up partly live once snapshots go.
        write_file(src / f"kept-{i}.bin", rnd.randbytes(3 * MiB + rnd.randint(0, MiB)))
        for old in src.glob("temp-*.bin"):
            old.unlink()
        write_file(src / f"temp-{i}.bin", rnd.randbytes(4 * MiB))
        for j in range(20):
            write_file(src / "small" / f"{j}.txt", rnd.randbytes(rnd.randint(0, 20_000)))
        docs = json.loads(_vger(env, config, "--json", "backup").stdout)
        snap = docs[0]["snapshot"]
        manifests[snap] = manifest(src)
        order.append(snap)
    return Template(base, env, src, manifests, dict.fromkeys(order, src), order)


def _snapshot_ids(repo: Path) -> set[str]:
    return {p.name for p in (repo / "snapshots").iterdir() if len(p.name) == 64}


def _wait_for_lock(proc: subprocess.Popen[bytes], repo: Path, limit: float = 60.0) -> float:
    """Seconds until the process's lock object appears (or it exits)."""
    start = time.monotonic()
    locks = repo / "locks"
    while time.monotonic() - start < limit:
        if proc.poll() is not None:
            break
        if locks.is_dir() and any(".tmp-" not in p.name for p in locks.iterdir()):
            break
        time.sleep(0.002)
    return time.monotonic() - start


@dataclass
class Timing:
    full: float  # process start to exit
    work: float  # lock appears to exit


def _measure(t: Template, seed_repo: Path, config: Path, repo: Path, args: list[str]) -> Timing:
    _fresh_copy(seed_repo, repo)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(config), *args],
        env=t.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    locked_after = _wait_for_lock(proc, repo)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    full = time.monotonic() - start
    return Timing(full, max(0.05, full - locked_after))


def _fresh_copy(seed_repo: Path, repo: Path) -> None:
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(seed_repo, repo)


def _kill_at_random(
    t: Template,
    config: Path,
    repo: Path,
    args: list[str],
    timing: Timing,
    rnd: random.Random,
    run: int,
    power: float = 1.0,
    watch: Path | None = None,
) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(config), *args],
        env=t.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if run % 3 == 0:
        delay = rnd.uniform(0, timing.full)
        what = f"{delay:.3f}s after start"
    elif run % 3 == 1 or watch is None:
        waited = _wait_for_lock(proc, repo)
        # power 2 for prune: more kills early in the work, where it does all its deleting
        delay = timing.work * rnd.random() ** power
        what = f"{delay:.3f}s after the lock appeared ({waited:.3f}s)"
    else:
        # aimed at the removals: from the moment the first object in `watch` changes
        before = sorted(os.listdir(watch)) if watch.is_dir() else []
        while proc.poll() is None and (sorted(os.listdir(watch)) if watch.is_dir() else []) == before:
            time.sleep(0.001)
        delay = rnd.uniform(0, 0.05)
        what = f"{delay:.3f}s after {watch.name}/ changed"
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()  # reap it: a zombie's pid would still look alive to the lock code
    return what + (" (had already finished)" if finished else "")


def _start(env: dict[str, str], config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _verify_after_kill(
    t: Template, config: Path, repo: Path, rnd: random.Random, must_survive: set[str], context: str
) -> set[str]:
    """check, and restore the newest snapshot and one other; the three run side by side (all read-only)."""
    ids = _snapshot_ids(repo)  # what `vger list` shows: the objects in snapshots/
    assert ids <= set(t.manifests), f"{context}: unknown snapshots {ids - set(t.manifests)}"
    assert must_survive <= ids, f"{context}: lost {must_survive - ids}"
    newest = max(ids, key=t.order.index)
    sample = [newest]
    others = sorted(ids - {newest})
    if others:
        sample.append(rnd.choice(others))
    dests = {}
    for snap in sample:
        dest = repo.parent / f"restore-{snap[:8]}"
        if dest.exists():
            shutil.rmtree(dest)
        dests[snap] = dest
    checking = _start(t.env, config, "check")
    restoring = {
        snap: _start(t.env, config, "restore", "--snapshot", snap, "--dest", str(dest))
        for snap, dest in dests.items()
    }
    out, err = checking.communicate(timeout=300)
    assert checking.returncode == 0, f"{context}: check failed\n{out}\n{err}"
    assert "missing" not in err, f"{context}\n{err}"
    print(f"{context}: {len(ids)} snapshots, {err.count('warning')} check warnings")
    for snap, proc in restoring.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{context}: restore {snap[:8]} failed\n{out}\n{err}"
        got = manifest(restored_root(dests[snap], t.roots[snap]))
        assert got == t.manifests[snap], f"{context}: snapshot {snap[:8]} restores wrong content"
    return ids


def _seed() -> int:
    seed = int(os.environ.get("VGER_CRASH_SEED", str(random.randrange(2**32))))
    print(f"crash seed: {seed} (replay with VGER_CRASH_SEED={seed})")
    return seed


def test_kill_9_during_prune(template: Template, tmp_path: Path) -> None:
    t = template.copy()
    rnd = random.Random(_seed())
    # More snapshots than the template's six, so that prune has a score of
    # them to delete and a kill can land half-way: eight more small sources,
    # backed up four times in one go each.
    seed_repo = tmp_path / "seed"
    shutil.copytree(t.base / "repo", seed_repo)
    extras = [tmp_path / f"extra-{k}" for k in range(8)]
    seed_config = _config(tmp_path, seed_repo, t.src, *extras)
    for round_ in range(4):
        for k, folder in enumerate(extras):
            write_file(folder / "notes.txt", rnd.randbytes(1000 + 100 * k + round_))
        labels = [arg for folder in extras for arg in ("-S", folder.name)]
        for doc in json.loads(_vger(t.env, seed_config, "--json", "backup", *labels).stdout):
            folder = tmp_path / doc["source_label"]
            t.manifests[doc["snapshot"]] = manifest(folder)
            t.roots[doc["snapshot"]] = folder
            t.order.append(doc["snapshot"])
    keep = set(t.order[4:6]) | set(t.order[-16:])  # keep_last 2 of each source
    repo = tmp_path / "repo"
    config = _config(tmp_path, repo, t.src, *extras)
    timing = _measure(t, seed_repo, config, repo, ["prune"])
    print(f"prune takes {timing.full:.2f}s, {timing.work:.2f}s of it holding the lock")
    assert _snapshot_ids(repo) == keep
    for run in range(RUNS):
        _fresh_copy(seed_repo, repo)
        when = _kill_at_random(
            t, config, repo, ["prune"], timing, rnd, run, power=2, watch=repo / "snapshots"
        )
        context = f"prune run {run}, killed {when}"
        _verify_after_kill(t, config, repo, rnd, keep, context)
        proc = _vger(t.env, config, "prune", check=False)
        assert proc.returncode == 0, f"{context}: prune again failed\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        assert _snapshot_ids(repo) == keep, context
    # the last run's repository, after the re-run, in full
    _vger(t.env, config, "check", "--verify-data")


def test_kill_9_during_compact(template: Template, tmp_path: Path) -> None:
    t = template
    rnd = random.Random(_seed())
    repo = tmp_path / "repo"
    config = _config(tmp_path, repo, t.src)
    # The seed for compact: three of the six snapshots deleted, so most packs
    # are partly garbage and --threshold 0 repacks them.
    seed_repo = tmp_path / "seed"
    shutil.copytree(t.base / "repo", seed_repo)
    seed_config = _config(tmp_path, seed_repo, t.src)
    for snap in t.order[0:5:2]:
        _vger(t.env, seed_config, "delete", "--snapshot", snap)
    survivors = set(t.order[1::2])
    assert _snapshot_ids(seed_repo) == survivors
    args = ["compact", "--threshold", "0"]
    timing = _measure(t, seed_repo, config, repo, args)
    print(f"compact takes {timing.full:.2f}s, {timing.work:.2f}s of it holding the lock")
    for run in range(RUNS):
        _fresh_copy(seed_repo, repo)
        when = _kill_at_random(t, config, repo, args, timing, rnd, run, watch=repo / "index")
        context = f"compact run {run}, killed {when}"
        ids = _verify_after_kill(t, config, repo, rnd, survivors, context)
        assert ids == survivors, context
        proc = _vger(t.env, config, "--json", *args, check=False)
        assert proc.returncode == 0, f"{context}: compact again failed\n{proc.stdout}\n{proc.stderr}"
        doc = json.loads(proc.stdout)[0]
        assert doc["missing_packs"] == [], f"{context}: {doc}"
        if run % 5 == 4:
            # now and then: the completed compact leaves a clean, compact repository
            proc = _vger(t.env, config, "--json", "check", check=False)
            report = json.loads(proc.stdout)[0]
            assert proc.returncode == 0 and report["warnings"] == [], f"{context}: {report}"
    again = json.loads(_vger(t.env, config, "--json", *args, "--dry-run").stdout)[0]
    assert again["freed_bytes"] == 0 and again["packs_repacked"] == 0, again
    _vger(t.env, config, "check", "--verify-data")
    for snap in survivors:
        dest = tmp_path / f"final-{snap[:8]}"
        _vger(t.env, config, "restore", "--snapshot", snap, "--dest", str(dest))
        assert manifest(restored_root(dest, t.src)) == t.manifests[snap]


def _packs_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / "packs").rglob("*") if p.is_file() and ".tmp-" not in p.name)


class _Interrupted(Exception):
    pass


def _compact_until(
    config: Path, steps: int, threshold: float, max_repack: int = 0, kinds: list[str] | None = None
) -> int:
    """Run compact in this process and stop it dead after ``steps`` durable steps (0: never).

    Returns the number of steps done; ``kinds`` collects what each step was.
    """
    from vger.cli.app import App
    from vger.maintenance.compact import plan_compact, run_compact

    app = App(config_path=str(config))
    cfg = app.repositories()[0]
    repo = app.open_repo(cfg)
    done = 0

    def on_step(_step: str) -> None:
        nonlocal done
        done += 1
        if kinds is not None:
            kinds.append(_step)
        if done == steps:
            raise _Interrupted

    try:
        plan = plan_compact(repo, threshold, max_repack)
        run_compact(repo, plan, pack_size=cfg.min_pack_size, on_step=on_step)
    except _Interrupted:
        pass
    finally:
        app.close()
    return done


def test_compact_stopped_at_every_kind_of_step(
    template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic complement of the random kills: stop compact right after chosen steps.

    Every write and delete is durable when its step is reported, so stopping
    there leaves what a kill just after it would. The steps come in four kinds
    (packs written, index segments written, old segments deleted, old packs
    deleted); we stop after the first and the last of each kind. The stopped
    run uses a high threshold and a repack limit, so it leaves packs with
    garbage behind; the run that completes the job uses threshold 0 and must
    then leave a repository that checks clean and has nothing left to free.
    """
    t = template
    for key, value in t.env.items():
        monkeypatch.setenv(key, value)
    seed_repo = tmp_path / "seed"
    shutil.copytree(t.base / "repo", seed_repo)
    seed_config = _config(tmp_path, seed_repo, t.src)
    for snap in t.order[0:5:2]:
        _vger(t.env, seed_config, "delete", "--snapshot", snap)
    survivors = set(t.order[1::2])
    repo = tmp_path / "repo"
    config = _config(tmp_path, repo, t.src)
    full = json.loads(_vger(t.env, seed_config, "--json", "compact", "--dry-run", "--threshold", "0").stdout)[
        0
    ]
    # A partial compact: some packs repacked, not all. How much garbage each pack
    # holds depends on the random data, so take the first setting that does so.
    partial: dict[str, object] = {}
    threshold, limit = 0.0, 0
    for threshold, limit in [
        (50.0, 6 * MiB),
        (30.0, 6 * MiB),
        (15.0, 6 * MiB),
        (5.0, 6 * MiB),
        (5.0, 12 * MiB),
    ]:
        args = [
            "--json",
            "compact",
            "--dry-run",
            "--threshold",
            f"{threshold:g}",
            "--max-repack-size",
            str(limit),
        ]
        partial = json.loads(_vger(t.env, seed_config, *args).stdout)[0]
        if 1 <= int(str(partial["packs_repacked"])) < int(full["packs_repacked"]):
            break
    assert 1 <= int(str(partial["packs_repacked"])) < full["packs_repacked"], (partial, full)

    # what an uninterrupted compact --threshold 0 leaves: the yardstick for the completed runs
    _fresh_copy(seed_repo, repo)
    _vger(t.env, config, "compact", "--threshold", "0")
    compacted = _packs_bytes(repo)

    _fresh_copy(seed_repo, repo)
    kinds: list[str] = []
    _compact_until(config, 0, threshold, limit, kinds)
    chosen = sorted(
        {i + 1 for kind in set(kinds) for i in (kinds.index(kind), len(kinds) - 1 - kinds[::-1].index(kind))}
    )
    assert len(set(kinds)) == 4, kinds
    rnd = random.Random(_seed())
    # plus: stopped with new segments written and old ones not yet deleted at
    # threshold 90 (packs with up to 90 % garbage kept), completed at 0
    cases = [(steps, threshold, limit) for steps in chosen]
    cases.append((kinds.index("index segment written") + 1, 90.0, 0))
    for steps, stop_threshold, stop_limit in cases:
        _fresh_copy(seed_repo, repo)
        _compact_until(config, steps, stop_threshold, stop_limit)
        context = f"compact --threshold {stop_threshold:g} stopped after step {steps}"
        if stop_threshold == threshold:
            context += f" of {len(kinds)} ({kinds[steps - 1]})"
        _verify_after_kill(t, config, repo, rnd, survivors, context)
        _vger(t.env, config, "compact", "--threshold", "0")
        proc = _vger(t.env, config, "--json", "check", check=False)
        report = json.loads(proc.stdout)[0]
        assert proc.returncode == 0 and report["warnings"] == [], f"{context}, then completed: {report}"
        args = ["--json", "compact", "--dry-run", "--threshold", "0"]
        left = json.loads(_vger(t.env, config, *args).stdout)[0]
        assert left["freed_bytes"] == 0, f"{context}, then completed: garbage left {left}"
        # and none that compact overlooks: as small as if it had never been stopped
        assert _packs_bytes(repo) <= compacted + 64 * 1024, f"{context}: {_packs_bytes(repo)} > {compacted}"
    _verify_after_kill(t, config, repo, rnd, survivors, "after the last completed compact")
