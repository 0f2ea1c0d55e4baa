"""format.md "Must hold" 4: every modified, missing or truncated object is found and named.

Each case backs up a few MiB of random files through the CLI, damages one
object on disk (one flipped byte, a deleted or truncated file, an edited
config, swapped snapshot names) and checks what the user sees: `check` fails
naming the object, and a restore never leaves a file with wrong content.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from tests.conftest import PASSPHRASE, Vger, restored_root, write_file

MiB = 1024 * 1024
PREAMBLE = 9  # b"VGERPACK" + version byte


def _make_source(src: Path, seed: int = 7) -> dict[str, bytes]:
    rnd = random.Random(seed)
    files = {
        "big1.bin": rnd.randbytes(3 * MiB + 123),
        "big2.bin": rnd.randbytes(2 * MiB + 77),
        "sub/medium.bin": rnd.randbytes(700 * 1024),
    }
    for i in range(12):
        files[f"sub/small/{i:02d}.txt"] = rnd.randbytes(rnd.randint(0, 9000))
    for rel, data in files.items():
        write_file(src / rel, data)
    # Hard links to the large files: a second name must never keep the bytes of
    # a first link whose restore failed.
    for first, second in (("big1.bin", "sub/big1.hardlink"), ("big2.bin", "big2.hardlink")):
        os.link(src / first, src / second)
        files[second] = files[first]
    return files


def _snapshot_ids(vger: Vger) -> list[str]:
    proc = vger.run("--json", "list")
    return [s["id"] for s in json.loads(proc.stdout)]


@dataclass
class Golden:
    """One healthy repository with one snapshot, built once for the module."""

    tmp: Path
    env: dict[str, str]
    src: Path
    files: dict[str, bytes]
    snap_id: str


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    tmp = tmp_path_factory.mktemp("golden")
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGER_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        VGER_PASSPHRASE=PASSPHRASE,
        VGER_CACHE_DIR=str(tmp / "cache"),
    )
    src = tmp / "src"
    files = _make_source(src)
    runner = Vger(tmp, env, tmp / "vger.yaml")
    runner.write_config(
        {"repositories": [{"url": str(tmp / "repo"), "label": "main"}], "sources": [str(src)]}
    )
    runner.run("init")
    runner.run("backup")
    (snap_id,) = _snapshot_ids(runner)
    return Golden(tmp, env, src, files, snap_id)


@pytest.fixture
def case(golden: Golden, tmp_path: Path) -> Vger:
    """A private copy of the golden repository (tmp_path/repo) to damage, and a runner for it."""
    shutil.copytree(golden.tmp / "repo", tmp_path / "repo")
    runner = Vger(tmp_path, golden.env, tmp_path / "vger.yaml")
    runner.write_config(
        {"repositories": [{"url": str(tmp_path / "repo"), "label": "main"}], "sources": [str(golden.src)]}
    )
    return runner


def _packs(repo: Path) -> list[Path]:
    return sorted((repo / "packs").glob("*/*"), key=lambda p: p.stat().st_size)


def _flip(path: Path, pos: int) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))


def _blob_offsets(pack: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each blob, from the length prefixes (no key needed)."""
    out = []
    pos = PREAMBLE
    end = len(pack) - 4 - int.from_bytes(pack[-4:], "little")
    while pos < end:
        length = int.from_bytes(pack[pos : pos + 4], "little")
        out.append((pos + 4, length))
        pos += 4 + length
    assert pos == end, "pack layout is not what docs/format.md describes"
    return out


def _restored_files(dest: Path, src: Path) -> dict[str, bytes]:
    root = restored_root(dest, src)
    found = {}
    for dirpath, _dirs, names in os.walk(dest):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def _assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, _output(proc)


def test_healthy_repository_checks_clean(golden: Golden, case: Vger) -> None:
    proc = case.run("check")
    assert proc.returncode == 0
    assert "warning" not in proc.stderr and "error" not in proc.stderr, proc.stderr
    case.run("check", "--verify-data")
    dest = case.tmp / "restore"
    case.run("restore", "--snapshot", golden.snap_id, "--dest", str(dest))
    assert _restored_files(dest, golden.src) == golden.files


def _position(pack: bytes, where: str) -> int:
    size = len(pack)
    hlen = int.from_bytes(pack[-4:], "little")
    if where == "blob":
        blobs = _blob_offsets(pack)
        offset, length = max(blobs, key=lambda b: b[1])  # a file-content blob, not a tiny one
        return offset + length // 3
    if where == "blob-envelope-type":
        offset, _length = max(_blob_offsets(pack), key=lambda b: b[1])
        return offset
    if where == "blob-length-prefix":
        offset, _length = max(_blob_offsets(pack), key=lambda b: b[1])
        return offset - 2
    if where == "header":
        return size - 4 - hlen // 2
    if where == "header-length":
        return size - 3
    if where == "preamble":
        return 3
    raise AssertionError(where)


@pytest.mark.parametrize(
    "where", ["blob", "blob-envelope-type", "blob-length-prefix", "header", "header-length", "preamble"]
)
def test_flipped_byte_in_pack(golden: Golden, case: Vger, where: str) -> None:
    files = golden.files
    repo = case.tmp / "repo"
    pack_path = _packs(repo)[-1]  # the data pack (item-stream packs are small)
    pack_hex = pack_path.name
    _flip(pack_path, _position(pack_path.read_bytes(), where))

    proc = case.run("check", "--verify-data", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert pack_hex in proc.stderr, _output(proc)

    dest = case.tmp / "restore"
    proc = case.run("restore", "--snapshot", golden.snap_id, "--dest", str(dest), check=False)
    _assert_no_traceback(proc)
    restored = _restored_files(dest, golden.src)
    # Never a file with wrong content, whatever was damaged.
    for rel, data in restored.items():
        assert rel in files, f"unexpected file {rel} restored"
        assert data == files[rel], f"{rel} was restored with wrong content after damage to the {where}"
    if where in ("blob", "blob-envelope-type"):
        # The damaged bytes are read by the restore: it must fail and say where.
        assert proc.returncode == 1, _output(proc)
        assert pack_hex[:16] in proc.stderr, proc.stderr
        missing = set(files) - set(restored)
        assert missing, "every file restored although one of its chunks is damaged"
        for rel in missing:
            assert rel in proc.stderr, f"{rel} not restored but not reported:\n{proc.stderr}"
        # Restoring only the affected file fails the same way and leaves nothing behind.
        victim = sorted(missing)[0]
        one = case.tmp / "restore-one"
        target = str(golden.src / victim)
        proc = case.run("restore", "--snapshot", golden.snap_id, "--dest", str(one), target, check=False)
        _assert_no_traceback(proc)
        assert proc.returncode == 1, _output(proc)
        assert "chunk" in proc.stderr and pack_hex[:16] in proc.stderr, proc.stderr
        assert _restored_files(one, golden.src) == {}
    else:
        # The restore reads blobs at the offsets of the (intact, authenticated)
        # index, so damage elsewhere in the pack may go unnoticed by it -- the
        # data it writes is still authenticated, and any failure names the pack.
        if proc.returncode == 0:
            assert restored == files
        else:
            assert pack_hex[:16] in proc.stderr, proc.stderr


def test_flipped_byte_in_index_segment(case: Vger) -> None:
    (segment,) = (case.tmp / "repo" / "index").iterdir()
    _flip(segment, segment.stat().st_size // 2)
    proc = case.run("check", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert segment.name in proc.stderr, proc.stderr


@pytest.mark.parametrize("pos", [0, 5, -20])
def test_flipped_byte_in_snapshot(golden: Golden, case: Vger, pos: int) -> None:
    (snap,) = (case.tmp / "repo" / "snapshots").iterdir()
    _flip(snap, pos % snap.stat().st_size)
    proc = case.run("check", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert f"snapshot {snap.name[:8]}" in proc.stderr, proc.stderr
    dest = case.tmp / "r"
    proc = case.run("restore", "--snapshot", snap.name, "--dest", str(dest), check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert snap.name[:8] in proc.stderr
    assert _restored_files(dest, golden.src) == {} if dest.exists() else True


def test_missing_pack_is_reported(case: Vger) -> None:
    pack = _packs(case.tmp / "repo")[-1]
    pack.unlink()
    proc = case.run("check", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert pack.name in proc.stderr and "missing" in proc.stderr, proc.stderr


@pytest.mark.parametrize("which", [0, -1])
@pytest.mark.parametrize("cut", ["half", "last-byte", "header-only", "empty"])
def test_truncated_pack_is_reported(case: Vger, which: int, cut: str) -> None:
    pack = _packs(case.tmp / "repo")[which]
    data = pack.read_bytes()
    keep = {"half": len(data) // 2, "last-byte": len(data) - 1, "header-only": PREAMBLE, "empty": 0}[cut]
    pack.write_bytes(data[:keep])
    proc = case.run("check", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    assert pack.name in proc.stderr, proc.stderr


def _edit_config(repo: Path, **changes: object) -> None:
    doc = msgpack.unpackb((repo / "config").read_bytes())
    doc.update(changes)
    (repo / "config").write_bytes(msgpack.packb(doc))


def _assert_one_line_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    _assert_no_traceback(proc)
    assert proc.returncode == 1, _output(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.stdout.strip() == ""
    return lines[0].lower()


def test_downgrade_to_cipher_none_is_refused(case: Vger) -> None:
    repo = case.tmp / "repo"
    _edit_config(repo, cipher="none", encrypted=False)
    line = _assert_one_line_refusal(case.run("list", check=False))
    assert "tamper" in line or "downgrade" in line, line
    # ... also when the attacker removes the key file as well.
    (repo / "keys" / "repokey").unlink()
    line = _assert_one_line_refusal(case.run("list", check=False))
    assert "downgrade" in line, line


def test_cipher_switch_in_clear_config_is_refused(case: Vger) -> None:
    repo = case.tmp / "repo"
    current = msgpack.unpackb((repo / "config").read_bytes())["cipher"]
    other = "chacha20poly1305" if current == "aes256gcm" else "aes256gcm"
    _edit_config(repo, cipher=other)
    line = _assert_one_line_refusal(case.run("list", check=False))
    assert "does not match" in line or "tamper" in line, line


def test_swapped_snapshot_names_are_refused(golden: Golden, case: Vger) -> None:
    extra = write_file(case.tmp / "extra" / "new.txt", b"second backup")
    case.write_config(
        {
            "repositories": [{"url": str(case.tmp / "repo"), "label": "main"}],
            "sources": [str(golden.src), str(extra.parent)],
        }
    )
    case.run("backup", "-S", "extra")
    ids = _snapshot_ids(case)
    assert len(ids) == 2
    snaps = case.tmp / "repo" / "snapshots"
    a, b = (snaps / i for i in ids)
    a.rename(snaps / "swap")
    b.rename(a)
    (snaps / "swap").rename(b)
    proc = case.run("list", check=False)
    line = _assert_one_line_refusal(proc)
    assert "snapshot" in line and (ids[0][:8] in line or ids[1][:8] in line), line
    proc = case.run("check", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1
    assert ids[0][:8] in proc.stderr and ids[1][:8] in proc.stderr, proc.stderr
    # Neither snapshot restores (each object claims to be the other one).
    dest = case.tmp / "r"
    proc = case.run("restore", "--snapshot", golden.snap_id, "--dest", str(dest), check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1
    assert not dest.exists() or not any(dest.rglob("*.bin"))
