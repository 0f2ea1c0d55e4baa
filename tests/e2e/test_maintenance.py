"""History and maintenance through the CLI: delete, compact, prune and the automation cycle.

What a user notices: space comes back after `delete` + `compact`, the snapshots
that remain still restore byte for byte, dry runs change nothing, retention
keeps what the most specific rule says, and `vger` with no command runs the
whole cycle (and stops when the backup fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from conftest import Vger, restored_root, write_file

MiB = 1024 * 1024


# -- helpers -------------------------------------------------------------------
def rand(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def repo_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def file_listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``root``: relative path -> (size, mtime_ns)."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def manifest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file below ``root``."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def snapshots(vger: Vger, config: Path | None = None) -> list[dict[str, Any]]:
    return json.loads(vger.run("--json", "list", config=config).stdout)


def json_doc(proc: Any) -> Any:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:  # pragma: no cover - diagnostic
        raise AssertionError(f"not JSON: {exc}\n{proc.stdout}\n{proc.stderr}") from exc


def restore_manifest(
    vger: Vger, snap_id: str, src: Path, dest: Path, config: Path | None = None
) -> dict[str, str]:
    vger.run("restore", "--snapshot", snap_id, "--dest", str(dest), config=config)
    return manifest(restored_root(dest, src))


def backup(vger: Vger, *args: str, config: Path | None = None) -> str:
    """Run a backup of one source; the new snapshot's id."""
    docs = json_doc(vger.run("--json", "backup", *args, config=config))
    assert len(docs) == 1, docs
    return docs[0]["snapshot"]


# -- compact -------------------------------------------------------------------
def test_compact_after_delete_frees_the_deleted_snapshots_space(vger: Vger) -> None:
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    vger.run("init")
    # Shared data first in walk order, so it lands in the same pack as the
    # unique data: compact must repack (copy the shared blobs), not just delete.
    write_file(src / "a-shared.bin", rand(6 * MiB, 1))
    write_file(src / "b-unique.bin", rand(50 * MiB, 2))
    doomed = backup(vger)
    (src / "b-unique.bin").unlink()
    write_file(src / "c-other.bin", rand(3 * MiB, 3))
    second = backup(vger)
    second_files = manifest(src)
    write_file(src / "d-more.txt", b"more\n" * 1000)
    third = backup(vger)
    third_files = manifest(src)

    vger.run("delete", "--snapshot", doomed[:8])
    assert doomed not in [s["id"] for s in snapshots(vger)]
    before = repo_bytes(repo)

    # dry run: an estimate, and not one byte changed
    listing = file_listing(repo)
    dry = json_doc(vger.run("--json", "compact", "--threshold", "0", "--dry-run"))
    assert dry[0]["dry_run"] is True
    assert dry[0]["freed_bytes"] >= 45 * MiB, dry
    assert dry[0]["packs_repacked"] >= 1, dry  # the pack shared with a-shared.bin
    human = vger.run("compact", "--threshold", "0", "--dry-run").stdout
    assert re.search(r"would free \d+(\.\d+)? MiB", human), human
    assert file_listing(repo) == listing

    vger.run("compact", "--threshold", "0")
    after = repo_bytes(repo)
    assert before - after >= 45 * MiB, (before, after)
    vger.run("check", "--verify-data")
    assert restore_manifest(vger, second, src, vger.tmp / "r2") == second_files
    assert restore_manifest(vger, third, src, vger.tmp / "r3") == third_files
    # nothing left to do: a second compact frees nothing
    again = json_doc(vger.run("--json", "compact", "--threshold", "0"))
    assert again[0]["freed_bytes"] == 0 and again[0]["packs_repacked"] == 0, again


def test_compact_max_repack_size_spreads_the_work_over_runs(vger: Vger) -> None:
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    vger.write_config(
        {
            "repositories": [{"url": str(repo), "label": "main", "min_pack_size": 2 * MiB}],
            "sources": [str(src)],
            "chunker": {"min_size": 64 * 1024, "avg_size": 256 * 1024, "max_size": 1 * MiB},
        }
    )
    vger.run("init")
    # Kept and dropped files alternate, so many packs end up half live.
    for i in range(8):
        write_file(src / f"{i:02d}-keep.bin", rand(3 * MiB, 100 + i))
        write_file(src / f"{i:02d}-drop.bin", rand(3 * MiB, 200 + i))
    doomed = backup(vger)
    for i in range(8):
        (src / f"{i:02d}-drop.bin").unlink()
    kept = backup(vger)
    kept_files = manifest(src)
    vger.run("delete", "--snapshot", doomed)

    plan = json_doc(vger.run("--json", "compact", "--threshold", "0", "--dry-run"))[0]
    assert plan["packs_repacked"] >= 4, plan
    total = plan["repacked_bytes"]
    limit = max(total // 3, 4 * MiB)  # at least one pack's live data fits
    assert limit < total, plan

    runs = []
    for _ in range(10):
        doc = json_doc(vger.run("--json", "compact", "--threshold", "0", "--max-repack-size", str(limit)))[0]
        runs.append(doc)
        assert doc["repacked_bytes"] <= limit, doc
        if doc["packs_repacked"] == 0:
            break
    repacking = [r for r in runs if r["packs_repacked"]]
    assert len(repacking) >= 2, runs  # the limit made it take several runs
    assert sum(r["repacked_bytes"] for r in repacking) >= total
    final = json_doc(vger.run("--json", "compact", "--threshold", "0", "--dry-run"))[0]
    assert final["packs_repacked"] == 0 and final["freed_bytes"] == 0, final
    vger.run("check", "--verify-data")
    assert restore_manifest(vger, kept, src, vger.tmp / "out") == kept_files


# -- prune ---------------------------------------------------------------------
def test_prune_refuses_without_a_retention_rule(vger: Vger) -> None:
    write_file(vger.tmp / "src" / "f.txt", b"x")
    vger.run("init")
    backup(vger)
    backup(vger)
    for args in (("prune",), ("prune", "--dry-run")):
        proc = vger.run(*args, check=False)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "retention" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert len(snapshots(vger)) == 2


def test_prune_dry_run_lists_every_snapshot_with_its_reason(vger: Vger) -> None:
    src = vger.tmp / "src"
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [str(src)],
            "retention": {"keep_last": 2},
        }
    )
    vger.run("init")
    ids = []
    for i in range(4):
        write_file(src / "changing.txt", f"version {i}\n".encode())
        ids.append(backup(vger))
    listing = file_listing(vger.tmp / "repo")

    out = vger.run("prune", "--dry-run", "--list").stdout
    lines = {
        line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in {i[:8] for i in ids}
    }
    assert set(lines) == {i[:8] for i in ids}, out
    assert "last #1" in lines[ids[3][:8]] and "last #2" in lines[ids[2][:8]], out
    for old in ids[:2]:
        assert lines[old[:8]].rstrip().endswith("prune"), out
    assert "would prune 2 of 4" in out, out
    assert file_listing(vger.tmp / "repo") == listing  # dry run: nothing touched
    assert len(snapshots(vger)) == 4

    docs = json_doc(vger.run("--json", "prune", "--dry-run"))
    assert {d["snapshot"]: d["keep"] for d in docs} == {
        ids[0]: False,
        ids[1]: False,
        ids[2]: True,
        ids[3]: True,
    }

    out = vger.run("prune", "--list").stdout
    assert "pruned 2 of 4" in out, out
    assert [s["id"] for s in snapshots(vger)] == ids[2:]
    vger.run("check")


def test_retention_source_beats_repository_beats_global(vger: Vger) -> None:
    a = vger.tmp / "a"
    b = vger.tmp / "b"
    repo = str(vger.tmp / "repo")
    sources = [
        {"path": str(a), "label": "a", "retention": {"keep_last": 1}},
        {"path": str(b), "label": "b"},
    ]
    # global keep_last 4; this repository overrides with keep_last 2; source a with keep_last 1
    with_repo_rule = vger.write_config(
        {
            "repositories": [{"url": repo, "label": "main", "retention": {"keep_last": 2}}],
            "sources": sources,
            "retention": {"keep_last": 4},
        },
        vger.tmp / "repo-rule.yaml",
    )
    # the same without the repository's rule: global keep_last 3 applies to b
    global_only = vger.write_config(
        {"repositories": [{"url": repo, "label": "main"}], "sources": sources, "retention": {"keep_last": 3}},
        vger.tmp / "global-rule.yaml",
    )
    vger.run("init", config=global_only)
    made: dict[str, list[str]] = {"a": [], "b": []}
    for i in range(5):
        for label, folder in (("a", a), ("b", b)):
            write_file(folder / "f.txt", f"{label} {i}\n".encode())
            made[label].append(backup(vger, "-S", label, config=global_only))

    def remaining(config: Path) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"a": [], "b": []}
        for snap in snapshots(vger, config):
            out[snap["source_label"]].append(snap["id"])
        return out

    plan = json_doc(vger.run("--json", "prune", "--dry-run", config=global_only))
    reasons = {d["snapshot"]: d["reason"] for d in plan}
    assert reasons[made["b"][-3]] == "last #3"  # the global rule decided b
    assert reasons[made["a"][-2]] == "prune"  # a's own rule: only the newest

    vger.run("prune", config=global_only)
    assert remaining(global_only) == {"a": made["a"][-1:], "b": made["b"][-3:]}

    vger.run("prune", config=with_repo_rule)
    assert remaining(with_repo_rule) == {"a": made["a"][-1:], "b": made["b"][-2:]}
    vger.run("check")


# -- the cycle -----------------------------------------------------------------
def test_cycle_without_command_backs_up_prunes_compacts_and_checks(vger: Vger) -> None:
    src = vger.tmp / "src"
    repo = vger.tmp / "repo"
    vger.write_config(
        {
            "repositories": [{"url": str(repo), "label": "main"}],
            "sources": [str(src)],
            "retention": {"keep_last": 2},
        }
    )
    vger.run("init")
    write_file(src / "small.txt", b"always here\n")
    states = []
    for i in range(3):
        for old in src.glob("big-*.bin"):
            old.unlink()
        write_file(src / f"big-{i}.bin", rand(20 * MiB, 500 + i))
        proc = vger.run()
        assert proc.returncode == 0
        states.append(manifest(src))
    out = proc.stdout
    assert "snapshot" in out, out  # backup
    assert "pruned 1 of 3" in out, out  # prune
    assert "freed" in out, out  # compact
    assert re.search(r"main: OK: 2 snapshots", out), out  # check

    snaps = snapshots(vger)
    assert len(snaps) == 2
    # the first run's 20 MiB went with its pruned snapshot
    assert repo_bytes(repo) < 2 * 20 * MiB + 4 * MiB, repo_bytes(repo)
    for snap, expected, dest in zip(snaps, states[1:], ("r1", "r2"), strict=True):
        assert restore_manifest(vger, snap["id"], src, vger.tmp / dest) == expected


def test_cycle_stops_with_exit_1_when_the_backup_fails(vger: Vger) -> None:
    # no repository at all: backup fails, and says how to make one
    write_file(vger.tmp / "src" / "f.txt", b"x")
    proc = vger.run(check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "vger init" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    # a repository that works, but a source that cannot be read: the cycle
    # stops after the failed backup (no prune, compact or check output)
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [str(vger.tmp / "src")],
            "retention": {"keep_last": 1},
        }
    )
    vger.run("init")
    backup(vger)
    backup(vger)
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [str(vger.tmp / "gone")],
            "retention": {"keep_last": 1},
        }
    )
    proc = vger.run(check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "does not exist" in proc.stderr, proc.stderr
    assert "pruned" not in proc.stdout and "freed" not in proc.stdout and "OK" not in proc.stdout, proc.stdout
    assert len(snapshots(vger)) == 2  # prune did not run


def test_cycle_prunes_only_the_repositories_with_a_retention_rule(vger: Vger) -> None:
    src = vger.tmp / "src"
    vger.write_config(
        {
            "repositories": [
                {"url": str(vger.tmp / "all"), "label": "all"},  # no rule: keeps everything
                {"url": str(vger.tmp / "few"), "label": "few", "retention": {"keep_last": 1}},
            ],
            "sources": [str(src)],
        }
    )
    vger.run("init")
    for i in range(2):
        write_file(src / "f.txt", f"run {i}\n".encode())
        proc = vger.run(check=False)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "all: OK: 2 snapshots" in proc.stdout and "few: OK: 1 snapshots" in proc.stdout, proc.stdout
    assert len(json.loads(vger.run("--json", "-R", "all", "list").stdout)) == 2
    assert len(json.loads(vger.run("--json", "-R", "few", "list").stdout)) == 1
    # the prune command alone refuses before touching either repository...
    write_file(src / "f.txt", b"run 3\n")
    vger.run("backup")
    proc = vger.run("prune", check=False)
    assert proc.returncode == 1 and "all: no retention rule" in proc.stderr, proc.stderr
    assert len(json.loads(vger.run("--json", "-R", "few", "list").stdout)) == 2
    # ...and prunes the one that has a rule when asked to
    assert "few: pruned 1 of 2" in vger.run("-R", "few", "prune").stdout
    assert len(json.loads(vger.run("--json", "-R", "few", "list").stdout)) == 1
    assert len(json.loads(vger.run("--json", "-R", "all", "list").stdout)) == 3
