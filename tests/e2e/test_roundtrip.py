"""Round trips through the real CLI: what goes in comes back out, entry by entry."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
from conftest import PASSPHRASE, Vger, restored_root, write_file
from e2e.helpers import (
    MiB,
    describe_tree,
    files_below,
    grep_tree,
    is_root,
    json_out,
    random_bytes,
    sha256_file,
    xattrs_supported,
)

# Distinct nanosecond timestamps (the sub-second part would be lost by any float round trip).
T0 = 1_600_000_000_123_456_789
NON_UTF8 = os.fsdecode(b"bad-\xff\xfe-name.bin")
UNICODE = "ünïcødé 日本語 ✓.txt"
OWNER = (12345, 23456)


@dataclass
class Built:
    src: Path
    xattrs: bool
    device: bool
    atimes: dict[str, int]  # relative path -> atime ns we set on a regular file


def build_tree(src: Path) -> Built:
    """A tree with every entry type and the metadata vger promises to keep."""
    write_file(src / "top.txt", b"top level text\n" * 10)
    write_file(src / "nested/a/b/c/deep.bin", random_bytes(70_000, 1))
    write_file(src / "nested/a/text.txt", "".join(f"line {i}\n" for i in range(5000)).encode())
    write_file(src / "nested/a/b/rand.dat", random_bytes(300_000, 2))
    write_file(src / "big/multi-chunk.bin", random_bytes(21 * MiB, 3))  # > max chunk: several chunks
    write_file(src / "empty", b"")
    write_file(src / "with space.txt", b"spaces in the name\n")
    write_file(src / UNICODE, "unicode content ✓\n".encode())
    write_file(src / NON_UTF8, b"a name that is not UTF-8\n")
    (src / "emptydir").mkdir()

    os.symlink("nested/a/text.txt", src / "link-relative")
    os.symlink(str(src / "top.txt"), src / "link-absolute")
    os.symlink("does/not/exist", src / "link-dangling")

    write_file(src / "hard/one", b"hard linked content\n")
    os.link(src / "hard/one", src / "hard/two")
    os.link(src / "hard/one", src / "nested/hard-three")
    write_file(src / "hard/other", b"hard linked content\n")  # same bytes, different inode

    os.mkfifo(src / "fifo")

    device = False
    if is_root():
        try:
            os.mknod(src / "chardev", stat.S_IFCHR | 0o640, os.makedev(1, 3))
            device = True
        except PermissionError:
            pass  # no CAP_MKNOD in this container

    os.chmod(src / "top.txt", 0o600)
    os.chmod(src / "nested/a/text.txt", 0o755)
    os.chmod(src / "with space.txt", 0o640)
    os.chmod(src / "nested/a/b/rand.dat", 0o604)
    os.chmod(src / "nested/a", 0o750)
    os.chmod(src / "emptydir", 0o711)

    xattrs = xattrs_supported(src)
    if xattrs:
        os.setxattr(src / "top.txt", "user.comment", b"hello xattr")
        os.setxattr(src / "top.txt", "user.binary", b"\x00\x01\xff")
        os.setxattr(src / "nested/a", "user.dir-attr", b"on a directory")

    if is_root():
        os.chown(src / "with space.txt", *OWNER)
        os.lchown(src / "link-relative", *OWNER)

    # Times last, deepest first, so creating children does not move a parent's mtime.
    atimes: dict[str, int] = {}
    everything = sorted(
        (p for p in src.rglob("*")), key=lambda p: len(p.relative_to(src).parts), reverse=True
    )
    for n, path in enumerate([*everything, src]):
        mtime = T0 + n * 1_000_000_007
        atime = T0 - 86400 * 10**9 + n * 999_999_937
        os.utime(path, ns=(atime, mtime), follow_symlinks=False)
    for path in everything:  # read back: hard links share one inode, so the last utime won
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            atimes[str(path.relative_to(src))] = st.st_atime_ns
    return Built(src, xattrs, device, atimes)


def make_runner(base: Path, doc: dict | None = None) -> Vger:
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGER_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        VGER_PASSPHRASE=PASSPHRASE,
        VGER_CACHE_DIR=str(base / "cache"),
    )
    runner = Vger(base, env, base / "vger.yaml")
    runner.write_config(
        doc
        or {"repositories": [{"url": str(base / "repo"), "label": "main"}], "sources": [str(base / "src")]}
    )
    return runner


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Vger, Built, dict]:
    """One repository holding one backup of the full tree (shared: building it is the slow part)."""
    base = tmp_path_factory.mktemp("full")
    built = build_tree(base / "src")
    vger = make_runner(base)
    vger.run("init")
    vger.run("backup")
    snaps = json_out(vger.run("--json", "list"))
    assert len(snaps) == 1
    return vger, built, snaps[0]


# -- the full tree ------------------------------------------------------------------


def test_full_tree_restores_entry_by_entry(full: tuple[Vger, Built, dict]) -> None:
    vger, built, _snap = full
    dest = vger.tmp / "restore-full"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    out = restored_root(dest, built.src)
    want = describe_tree(built.src)
    got = describe_tree(out)

    assert sorted(got) == sorted(want)
    for rel, w in want.items():
        g = got[rel]
        where = rel.decode("utf-8", "backslashreplace")
        assert g.kind == w.kind, where
        assert g.mtime_ns == w.mtime_ns, f"{where}: mtime {g.mtime_ns} != {w.mtime_ns}"
        if w.kind != "symlink":
            assert g.mode == w.mode, f"{where}: mode {oct(g.mode)} != {oct(w.mode)}"
        assert g.sha256 == w.sha256, where
        assert g.target == w.target, where
        assert g.rdev == w.rdev, where
        assert g.xattrs == w.xattrs, where
        if is_root():
            assert (g.uid, g.gid) == (w.uid, w.gid), where
    # The root folder of the source keeps its metadata too.
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(built.src.stat().st_mode)
    assert out.stat().st_mtime_ns == built.src.stat().st_mtime_ns

    # Explicit checks of what the generic comparison could miss if both sides were wrong the same way.
    assert got[b"fifo"].kind == "fifo"
    assert got[b"link-relative"].target == b"nested/a/text.txt"
    assert got[b"link-absolute"].target == os.fsencode(built.src / "top.txt")
    assert got[b"link-dangling"].target == b"does/not/exist"
    assert not (out / "link-dangling").exists() and (out / "link-dangling").is_symlink()
    assert got[b"empty"].kind == "file" and (out / "empty").stat().st_size == 0
    assert got[b"emptydir"].kind == "dir" and got[b"emptydir"].mode == 0o711
    assert got[b"nested/a"].mode == 0o750
    assert got[b"top.txt"].mode == 0o600
    assert got[b"nested/a/b/rand.dat"].mode == 0o604
    assert got[os.fsencode(NON_UTF8)].kind == "file"
    assert (out / UNICODE).read_text() == "unicode content ✓\n"
    assert sha256_file(out / "big/multi-chunk.bin") == sha256_file(built.src / "big/multi-chunk.bin")
    assert got[b"top.txt"].mtime_ns % 1000 != 0  # the nanoseconds survived, not just microseconds
    for rel, atime in built.atimes.items():
        assert got[os.fsencode(rel)].atime_ns == atime, f"{rel}: atime"

    # Hard links: three names for one inode, and that inode is nobody else's.
    group = {got[p].ino for p in (b"hard/one", b"hard/two", b"nested/hard-three")}
    assert len(group) == 1
    assert got[b"hard/one"].nlink == 3
    others = {e.ino for p, e in got.items() if p not in (b"hard/one", b"hard/two", b"nested/hard-three")}
    assert group.isdisjoint(others)
    assert got[b"hard/other"].nlink == 1

    if built.xattrs:
        assert got[b"top.txt"].xattrs == {"user.binary": b"\x00\x01\xff", "user.comment": b"hello xattr"}
        assert got[b"nested/a"].xattrs == {"user.dir-attr": b"on a directory"}
    if built.device:
        assert got[b"chardev"].kind == "chardev"
        assert got[b"chardev"].rdev == os.makedev(1, 3)
    if is_root():
        assert (got[b"with space.txt"].uid, got[b"with space.txt"].gid) == OWNER
        assert (got[b"link-relative"].uid, got[b"link-relative"].gid) == OWNER


def test_partial_restore_of_one_path(full: tuple[Vger, Built, dict]) -> None:
    vger, built, _ = full
    dest = vger.tmp / "restore-partial"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest), str(built.src / "nested/a/b"))
    out = restored_root(dest, built.src)
    assert files_below(out) == {"nested/a/b/rand.dat", "nested/a/b/c/deep.bin"}
    assert sha256_file(out / "nested/a/b/rand.dat") == sha256_file(built.src / "nested/a/b/rand.dat")


def test_partial_restore_of_hard_links_whose_first_link_is_left_out(full: tuple[Vger, Built, dict]) -> None:
    """The selected names of a hard-link group get its content, not whatever sits at the unselected first name."""
    vger, built, _ = full
    dest = vger.tmp / "restore-hardlinks"
    out = restored_root(dest, built.src)
    write_file(out / "hard/one", b"an unrelated file already in the destination\n")
    proc = vger.run(
        "restore",
        "--snapshot",
        "latest",
        "--dest",
        str(dest),
        str(built.src / "hard/two"),
        str(built.src / "nested"),
    )
    assert "warning" not in proc.stderr, proc.stderr
    assert (out / "hard/two").read_bytes() == b"hard linked content\n"
    assert (out / "nested/hard-three").read_bytes() == b"hard linked content\n"
    assert (out / "hard/two").stat().st_ino == (out / "nested/hard-three").stat().st_ino
    assert (out / "hard/one").read_bytes() == b"an unrelated file already in the destination\n"
    assert (out / "hard/one").stat().st_ino != (out / "hard/two").stat().st_ino
    assert (out / "hard/two").stat().st_mtime_ns == (built.src / "hard/one").stat().st_mtime_ns

    # The same through --exclude of the first name.
    dest2 = vger.tmp / "restore-hardlinks-exclude"
    vger.run(
        "restore", "--snapshot", "latest", "--dest", str(dest2), "--exclude", str(built.src / "hard/one")
    )
    out2 = restored_root(dest2, built.src)
    assert not (out2 / "hard/one").exists()
    assert (out2 / "hard/two").read_bytes() == b"hard linked content\n"
    assert (out2 / "hard/two").stat().st_nlink == 2


def test_include_and_exclude(full: tuple[Vger, Built, dict]) -> None:
    vger, built, _ = full
    inc = vger.tmp / "restore-include"
    vger.run("restore", "--snapshot", "latest", "--dest", str(inc), "--include", "*.txt")
    root = restored_root(inc, built.src)
    got = files_below(root)
    assert got == {"top.txt", "with space.txt", UNICODE, "nested/a/text.txt"}
    # Only the folders that hold an included file, with their own metadata back.
    made = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}
    assert made == {"nested", "nested/a"}
    for folder in ("nested", "nested/a"):
        original, restored = (built.src / folder).stat(), (root / folder).stat()
        assert (restored.st_mode, restored.st_mtime_ns) == (original.st_mode, original.st_mtime_ns)

    exc = vger.tmp / "restore-exclude"
    vger.run("restore", "--snapshot", "latest", "--dest", str(exc), "--exclude", "*.txt", "--exclude", "big/")
    got = files_below(restored_root(exc, built.src))
    assert not any(p.endswith(".txt") for p in got)
    assert not any(p.startswith("big") for p in got)
    assert {"empty", "hard/one", "nested/a/b/rand.dat", "fifo", "link-dangling"} <= got


def test_restore_dry_run_writes_nothing(full: tuple[Vger, Built, dict]) -> None:
    vger, _built, _ = full
    dest = vger.tmp / "restore-dry"
    proc = vger.run("restore", "--snapshot", "latest", "--dest", str(dest), "--dry-run")
    assert not dest.exists()
    assert "multi-chunk.bin" in proc.stdout


def test_overwrite_never_and_always(full: tuple[Vger, Built, dict]) -> None:
    vger, built, _ = full
    dest = vger.tmp / "restore-overwrite"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    target = restored_root(dest, built.src) / "top.txt"
    original = target.read_bytes()
    target.write_bytes(b"changed by the user\n")

    vger.run("restore", "--snapshot", "latest", "--dest", str(dest), "--overwrite", "never")
    assert target.read_bytes() == b"changed by the user\n"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))  # never is the default
    assert target.read_bytes() == b"changed by the user\n"

    vger.run("restore", "--snapshot", "latest", "--dest", str(dest), "--overwrite", "always")
    assert target.read_bytes() == original
    assert target.stat().st_mtime_ns == (built.src / "top.txt").stat().st_mtime_ns
    # Replacing everything kept the hard-link group together.
    out = restored_root(dest, built.src)
    assert (out / "hard/one").stat().st_ino == (out / "hard/two").stat().st_ino

    # if-changed: a file whose size or mtime differs is replaced, an identical one is left alone.
    target.write_bytes(b"changed again, with another size\n")
    untouched = out / "nested/a/text.txt"
    ino = untouched.stat().st_ino
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest), "--overwrite", "if-changed")
    assert target.read_bytes() == original
    assert untouched.stat().st_ino == ino


def test_restore_by_id_prefix(full: tuple[Vger, Built, dict]) -> None:
    vger, built, snap = full
    dest = vger.tmp / "restore-prefix"
    vger.run("restore", "--snapshot", snap["id"][:4], "--dest", str(dest))
    out = restored_root(dest, built.src)
    assert (out / "top.txt").read_bytes() == (built.src / "top.txt").read_bytes()


def test_list_json_fields(full: tuple[Vger, Built, dict]) -> None:
    _vger, built, snap = full
    for key in (
        "id",
        "time",
        "source_label",
        "label",
        "hostname",
        "username",
        "source_paths",
        "repository",
        "stats",
    ):
        assert key in snap, key
    assert all(c in "0123456789abcdef" for c in snap["id"]) and len(snap["id"]) >= 8
    when = dt.datetime.fromisoformat(snap["time"])
    assert when.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 3600
    assert snap["source_label"] == "src"
    assert snap["label"] == ""
    assert snap["source_paths"] == [str(built.src)]
    assert snap["repository"] == "main"
    assert snap["hostname"] and snap["username"]
    stats = snap["stats"]
    # Regular files, each inode once (extra hard-link names are not more files).
    inodes = {}
    for dirpath, _dirs, names in os.walk(built.src):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                inodes[st.st_ino] = st.st_size
    assert stats["files"] == len(inodes) == 11
    assert stats["original_size"] == sum(inodes.values())
    assert stats["compressed_size"] > 0
    assert 0 < stats["deduplicated_size"] <= stats["compressed_size"] + 4096


def test_list_entries_below_path(full: tuple[Vger, Built, dict]) -> None:
    vger, built, snap = full
    below = str(built.src / "nested/a")
    entries = json_out(vger.run("--json", "list", "--snapshot", snap["id"][:8], below))
    paths = {e["path"] for e in entries}
    rel = below.lstrip("/")
    assert rel + "/text.txt" in paths
    assert rel + "/b/c/deep.bin" in paths
    assert all(p == rel or p.startswith(rel + "/") for p in paths), paths
    assert not any(p.endswith("top.txt") for p in paths)
    # Human form names the entries too.
    human = vger.run("list", "--snapshot", "latest", below).stdout
    assert "deep.bin" in human and "top.txt" not in human


def test_info_json_has_sizes(full: tuple[Vger, Built, dict]) -> None:
    vger, _built, snap = full
    docs = json_out(vger.run("--json", "-R", "main", "info"))
    assert len(docs) == 1
    info = docs[0]
    assert info["snapshots"] == 1
    assert info["original_size"] == snap["stats"]["original_size"]
    for key in ("compressed_size", "deduplicated_size", "stored_size"):
        assert info[key] > 20 * MiB, key
    assert info["chunks"] > 3 and info["packs"] >= 1


# -- ciphers x compressors -------------------------------------------------------------

TEXT_MARKER = b"VGER-PLAINTEXT-MARKER-"
NAME_MARKER = "VGER-NAME-MARKER-in-a-file-name.txt"


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
@pytest.mark.parametrize("cipher", ["aes256gcm", "chacha20poly1305", "none"])
def test_cipher_compressor_combinations(tmp_path: Path, cipher: str, compression: str) -> None:
    src = tmp_path / "src"
    write_file(src / "marker.bin", TEXT_MARKER * (MiB // len(TEXT_MARKER) + 1))
    write_file(src / NAME_MARKER, b"short\n")
    write_file(src / "random.bin", random_bytes(600_000, 7))
    write_file(src / "sub/text.txt", b"some text that compresses " * 5000)
    vger = make_runner(
        tmp_path,
        {
            "repositories": [{"url": str(tmp_path / "repo"), "label": "main"}],
            "sources": [str(src)],
            "encryption": {"mode": cipher},
            "compression": {"algorithm": compression},
        },
    )
    vger.run("init")
    vger.run("backup")
    config = msgpack.unpackb((tmp_path / "repo/config").read_bytes())  # the one clear object
    assert config["cipher"] == cipher
    assert config["encrypted"] == (cipher != "none")
    assert (tmp_path / "repo/keys/repokey").exists() == (cipher != "none")

    dest = tmp_path / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    out = restored_root(dest, src)
    assert files_below(out) == files_below(src)
    for rel in files_below(src):
        assert (out / rel).read_bytes() == (src / rel).read_bytes(), rel

    repo = tmp_path / "repo"
    text_hits = grep_tree(repo, TEXT_MARKER)
    name_hits = grep_tree(repo, NAME_MARKER.encode())
    if cipher != "none":
        assert text_hits == [], "plaintext content found in an encrypted repository"
        assert name_hits == [], "a file name found in an encrypted repository"
    elif compression == "none":
        # The control: without encryption or compression the same grep does find both.
        assert text_hits, "the unencrypted, uncompressed repository should hold the marker verbatim"
        assert name_hits, "the unencrypted, uncompressed item stream should hold the file name"


# -- several repositories and sources -----------------------------------------------------


def test_repo_selection_and_sources_per_repo(tmp_path: Path) -> None:
    a, b = tmp_path / "alpha", tmp_path / "beta"
    write_file(a / "a.txt", b"alpha\n")
    write_file(b / "b.txt", b"beta\n")
    vger = make_runner(
        tmp_path,
        {
            "repositories": [
                {"url": str(tmp_path / "repo1"), "label": "one"},
                {"url": str(tmp_path / "repo2"), "label": "two"},
            ],
            "sources": [{"path": str(a), "label": "a", "repos": ["one"]}, {"path": str(b), "label": "b"}],
        },
    )
    vger.run("init")
    assert (tmp_path / "repo1/config").is_file() and (tmp_path / "repo2/config").is_file()
    vger.run("backup")

    def pairs() -> list[tuple[str, str]]:
        return sorted((d["repository"], d["source_label"]) for d in json_out(vger.run("--json", "list")))

    assert pairs() == [("one", "a"), ("one", "b"), ("two", "b")]

    vger.run("-R", "two", "backup")
    assert pairs() == [("one", "a"), ("one", "b"), ("two", "b"), ("two", "b")]

    vger.run("-R", "one", "backup", "-S", "a", "--label", "nightly run")
    assert pairs() == [("one", "a"), ("one", "a"), ("one", "b"), ("two", "b"), ("two", "b")]
    only_one = json_out(vger.run("--json", "-R", "one", "list"))
    assert [d["label"] for d in only_one if d["source_label"] == "a"] == ["", "nightly run"]
    assert sorted(d["source_label"] for d in only_one) == ["a", "a", "b"]
    assert {d["repository"] for d in only_one} == {"one"}

    dest = tmp_path / "dest"
    vger.run("-R", "two", "restore", "--snapshot", "latest", "--dest", str(dest))
    assert (restored_root(dest, b) / "b.txt").read_bytes() == b"beta\n"
    assert not restored_root(dest, a).exists()


# -- what the walk leaves out ------------------------------------------------------------


def test_exclude_patterns_marker_files_and_gitignore(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_file(src / "keep.txt", b"keep\n")
    write_file(src / "drop.tmp", b"excluded by pattern\n")
    write_file(src / "deep/also.tmp", b"excluded by pattern\n")
    write_file(src / "cache/blob", b"excluded folder\n")
    write_file(src / "deep/keep.dat", b"keep\n")
    write_file(src / "private/.nobackup", b"")
    write_file(src / "private/secret.txt", b"excluded by marker\n")
    write_file(src / "private/sub/secret2.txt", b"excluded by marker\n")
    write_file(src / "repo/.gitignore", b"*.log\nbuild/\n!important.log\n")
    write_file(src / "repo/app.log", b"ignored by git\n")
    write_file(src / "repo/important.log", b"re-included\n")
    write_file(src / "repo/build/out.o", b"ignored by git\n")
    write_file(src / "repo/main.c", b"int main(void) { return 0; }\n")
    write_file(src / "outside.log", b"not below the .gitignore: kept\n")
    vger = make_runner(
        tmp_path,
        {
            "repositories": [{"url": str(tmp_path / "repo"), "label": "main"}],
            "sources": [str(src)],
            "exclude_patterns": ["*.tmp", "cache/"],
            "exclude_if_present": [".nobackup"],
            "git_ignore": True,
        },
    )
    vger.run("init")
    vger.run("backup")
    dest = tmp_path / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    got = files_below(restored_root(dest, src))
    assert got == {
        "keep.txt",
        "deep/keep.dat",
        "repo/.gitignore",
        "repo/important.log",
        "repo/main.c",
        "outside.log",
    }

    # Without git_ignore the .gitignore is just a file.
    doc = {
        "repositories": [{"url": str(tmp_path / "repo"), "label": "main"}],
        "sources": [str(src)],
    }
    vger.write_config(doc)
    vger.run("backup")
    dest2 = tmp_path / "dest2"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest2))
    assert files_below(restored_root(dest2, src)) == files_below(src)


def test_xattrs_can_be_switched_off(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_file(src / "f", b"x")
    if not xattrs_supported(tmp_path):
        pytest.skip("no user xattrs on this filesystem")
    os.setxattr(src / "f", "user.k", b"v")
    vger = make_runner(
        tmp_path,
        {
            "repositories": [{"url": str(tmp_path / "repo")}],
            "sources": [str(src)],
            "xattrs": {"enabled": False},
        },
    )
    vger.run("init")
    vger.run("backup")
    dest = tmp_path / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    try:
        names = os.listxattr(restored_root(dest, src) / "f")
    except OSError as exc:  # pragma: no cover - filesystem without xattrs
        assert exc.errno in (errno.ENOTSUP,)
        names = []
    assert "user.k" not in names


def test_unchanged_files_keep_their_xattrs_and_an_xattr_change_is_seen(tmp_path: Path) -> None:
    """A files-cache hit of a file without xattrs skips listxattr; files with
    xattrs are listed every time (their values never go into the cache), and
    an xattr change is seen."""
    src = tmp_path / "src"
    write_file(src / "kept", b"same content\n")
    write_file(src / "edited", b"same content too\n")
    if not xattrs_supported(tmp_path):
        pytest.skip("no user xattrs on this filesystem")
    os.setxattr(src / "kept", "user.k", b"v1-a-value-that-stays-out-of-the-cache")
    os.setxattr(src / "edited", "user.e", b"before")
    vger = make_runner(tmp_path, {"repositories": [{"url": str(tmp_path / "repo")}], "sources": [str(src)]})
    vger.run("init")
    vger.run("backup")
    second = json.loads(vger.run("backup", "--json").stdout)
    assert second[0]["stats"]["cache_hits"] == 2
    os.setxattr(src / "edited", "user.e", b"after")
    os.setxattr(src / "edited", "user.added", b"new")
    vger.run("backup")
    dest = tmp_path / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    root = restored_root(dest, src)
    assert os.getxattr(root / "kept", "user.k") == b"v1-a-value-that-stays-out-of-the-cache"
    cache = tmp_path / "cache"
    for path in cache.rglob("*"):
        if path.is_file():
            assert b"a-value-that-stays-out" not in path.read_bytes(), path
    assert os.getxattr(root / "edited", "user.e") == b"after"
    assert os.getxattr(root / "edited", "user.added") == b"new"


# Counts listxattr calls on regular files (directories are always listed).
_COUNT_FILE_XATTR_READS = """
import atexit, os, stat, sys
import vger.backup.archiver as archiver
real = archiver.read_xattrs
calls = [0]
def counting(target):
    if isinstance(target, bytes) and stat.S_ISREG(os.lstat(target).st_mode):
        calls[0] += 1
    return real(target)
archiver.read_xattrs = counting
atexit.register(lambda: print("file-xattr-reads", calls[0], file=sys.stderr))
"""


def test_no_change_backups_never_list_xattrs_of_files_known_to_have_none(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for n in range(30):
        write_file(src / f"d{n % 3}" / f"f{n:02d}", f"file {n}\n".encode())
    if not xattrs_supported(tmp_path):
        pytest.skip("no user xattrs on this filesystem")
    vger = make_runner(tmp_path, {"repositories": [{"url": str(tmp_path / "repo")}], "sources": [str(src)]})
    vger.run("init")
    vger.run("backup")
    for _ in range(3):  # the state the cache records must survive being read back, every time
        proc = vger.run_patched(_COUNT_FILE_XATTR_READS, "backup")
        assert proc.returncode == 0, proc.stderr
        assert "file-xattr-reads 0" in proc.stderr
