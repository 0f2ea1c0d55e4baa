"""Deduplication and the files cache, measured from the outside: repository bytes and ``backup --json``."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Vger, restored_root, write_file
from e2e.helpers import MiB, json_out, random_bytes, sha256_file, tree_bytes, tree_state


def packs_bytes(vger: Vger) -> int:
    packs = vger.tmp / "repo" / "packs"
    return tree_bytes(packs) if packs.exists() else 0


def backup_stats(vger: Vger, *args: str) -> dict:
    docs = json_out(vger.run("--json", "backup", *args))
    assert len(docs) == 1, docs
    assert docs[0]["errors"] == []
    return docs[0]["stats"]


def test_identical_files_are_stored_once(vger: Vger) -> None:
    src = vger.tmp / "src"
    data = random_bytes(20 * MiB, 11)
    write_file(src / "first.bin", data)
    write_file(src / "copy/second.bin", data)
    vger.run("init")
    before = packs_bytes(vger)

    stats = backup_stats(vger)
    growth = packs_bytes(vger) - before
    assert 20 * MiB <= growth < 22 * MiB, f"packs grew by {growth / MiB:.1f} MiB for 20 MiB of unique data"
    assert stats["files"] == 2
    assert stats["original_size"] == 40 * MiB
    assert stats["compressed_size"] >= 40 * MiB  # random data: both files count in full
    assert 20 * MiB <= stats["deduplicated_size"] < 22 * MiB

    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    out = restored_root(dest, src)
    assert (out / "first.bin").read_bytes() == data
    assert (out / "copy/second.bin").read_bytes() == data


def test_small_edit_in_a_big_file_adds_little(vger: Vger) -> None:
    src = vger.tmp / "src"
    big = write_file(src / "big.bin", random_bytes(64 * MiB, 12))
    vger.run("init")
    first = backup_stats(vger)
    assert first["deduplicated_size"] >= 64 * MiB
    before = packs_bytes(vger)

    with open(big, "r+b") as fh:  # a small edit in place, in the middle
        fh.seek(30 * MiB + 12345)
        fh.write(b"an edit in the middle of the file" * 3)
    second = backup_stats(vger)
    growth = packs_bytes(vger) - before
    assert second["files_read"] == 1
    assert second["deduplicated_size"] < 12 * MiB, second
    assert growth < 12 * MiB, f"packs grew by {growth / MiB:.1f} MiB after a 99-byte edit"
    assert growth > 0

    snaps = json_out(vger.run("--json", "list"))
    assert len(snaps) == 2
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert sha256_file(restored_root(dest, src) / "big.bin") == sha256_file(big)
    old = vger.tmp / "old"
    vger.run("restore", "--snapshot", snaps[0]["id"], "--dest", str(old))
    restored_old = (restored_root(old, src) / "big.bin").read_bytes()
    assert restored_old == random_bytes(64 * MiB, 12)


def test_unchanged_files_are_not_read_again(vger: Vger) -> None:
    src = vger.tmp / "src"
    names = ["a.txt", "b.bin", "sub/c.txt", "sub/deeper/d.bin", "e-empty"]
    write_file(src / names[0], b"alpha\n" * 1000)
    write_file(src / names[1], random_bytes(2 * MiB, 13))
    write_file(src / names[2], b"gamma\n")
    write_file(src / names[3], random_bytes(100_000, 14))
    write_file(src / names[4], b"")
    vger.run("init")

    first = backup_stats(vger)
    assert first["files_read"] == len(names)
    assert first["cache_hits"] == 0
    assert first["bytes_read"] == sum((src / n).stat().st_size for n in names)

    second = backup_stats(vger)
    assert second["files_read"] == 0, second
    assert second["bytes_read"] == 0, second
    assert second["cache_hits"] == len(names)
    assert second["files"] == len(names)
    assert second["original_size"] == first["original_size"]
    assert second["deduplicated_size"] < 64 * 1024  # at most some changed metadata

    touched = src / names[1]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = backup_stats(vger)
    assert third["files_read"] == 1, third
    assert third["bytes_read"] == touched.stat().st_size
    assert third["cache_hits"] == len(names) - 1
    assert third["deduplicated_size"] < 64 * 1024  # same content: read again, nothing new stored

    # The snapshots made from the cache restore like the first.
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    for name in names:
        assert (restored_root(dest, src) / name).read_bytes() == (src / name).read_bytes(), name


def test_files_cache_is_rewritten_only_when_something_changed(vger: Vger) -> None:
    src = vger.tmp / "src"
    for n in range(20):
        write_file(src / f"f{n:02d}.txt", f"file {n}\n".encode())
    vger.run("init")
    backup_stats(vger)
    (cache_file,) = [p for p in (vger.tmp / "cache").rglob("files-*") if p.is_file()]

    def state() -> tuple[int, int, bytes]:
        st = cache_file.stat()
        return st.st_ino, st.st_mtime_ns, cache_file.read_bytes()

    before = state()
    for _ in range(2):  # nothing changed: the file already says it all
        assert backup_stats(vger)["cache_hits"] == 20
        assert state() == before
    write_file(src / "f03.txt", b"edited\n")
    (src / "f07.txt").unlink()
    assert backup_stats(vger)["cache_hits"] == 18
    after_change = state()
    assert after_change[0] != before[0] and after_change[2] != before[2]
    # The deleted file's entry ages on every backup, so the cache keeps being rewritten until it expires,
    # and every unchanged file still hits.
    assert backup_stats(vger)["cache_hits"] == 19
    assert state()[2] != after_change[2]


def test_backup_dry_run_writes_nothing(vger: Vger) -> None:
    src = vger.tmp / "src"
    write_file(src / "a.txt", b"alpha\n")
    write_file(src / "b.bin", random_bytes(300_000, 15))
    vger.run("init")
    repo = vger.tmp / "repo"
    before = tree_state(repo)

    docs = json_out(vger.run("--json", "backup", "--dry-run"))
    assert docs[0]["dry_run"] is True
    assert docs[0]["snapshot"] is None
    assert docs[0]["stats"]["files_read"] == 2
    assert tree_state(repo) == before
    assert json_out(vger.run("--json", "list")) == []

    human = vger.run("backup", "--dry-run")
    assert "dry run" in human.stdout
    assert tree_state(repo) == before

    # After a real backup, a dry run knows nothing needs reading, and still writes nothing.
    vger.run("backup")
    after_backup = tree_state(repo)
    docs = json_out(vger.run("--json", "backup", "--dry-run"))
    assert docs[0]["stats"]["files_read"] == 0
    assert docs[0]["stats"]["cache_hits"] == 2
    assert tree_state(repo) == after_backup
    assert len(json_out(vger.run("--json", "list"))) == 1


def test_dedup_across_sources_and_snapshots(vger: Vger, tmp_path: Path) -> None:
    """The same bytes under another source label are not stored again either."""
    src = vger.tmp / "src"
    other = tmp_path / "other"
    data = random_bytes(8 * MiB, 16)
    write_file(src / "x.bin", data)
    write_file(other / "y.bin", data)
    vger.write_config(
        {
            "repositories": [{"url": str(tmp_path / "repo"), "label": "main"}],
            "sources": [str(src), str(other)],
        }
    )
    vger.run("init")
    docs = json_out(vger.run("--json", "backup"))
    assert [d["source_label"] for d in docs] == ["src", "other"]
    assert docs[0]["stats"]["deduplicated_size"] >= 8 * MiB
    assert docs[1]["stats"]["deduplicated_size"] < 64 * 1024  # only its own metadata
    assert 8 * MiB <= packs_bytes(vger) < 9 * MiB
