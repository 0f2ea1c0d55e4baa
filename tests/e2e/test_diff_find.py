"""``vger diff`` and ``vger find`` through the real CLI over a scripted history.

History (source ``docs`` = tmp/src, source ``other`` = tmp/other):

* d1/o1: the starting tree, every mtime set to T0.
* d2/o2: in docs, content changes (longer, and same size + same mtime), a deletion, a removed
  folder, chmod only, touch only, a symlink pointed elsewhere, new files and a new folder,
  chown only (root), an xattr set (where supported); the root folder's mtime moves to T1.
  ``other`` is unchanged.
* d3/o3: docs gets gone.txt back (new content); other/mod.txt changes.
* d4: docs only: mod.txt deleted.
"""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, Vger, write_file

T0 = 1_600_000_000_000_000_000
T1 = T0 + 86_400 * 10**9
OWNER = (4242, 4343)


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not JSON: {exc}\n{proc.stdout}\nstderr:\n{proc.stderr}") from exc


def xattrs_supported(directory: Path) -> bool:
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.vger-probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()
    return True


def name_of(lookup: Any, number: int) -> str | None:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return None


def set_times(root: Path, ns: int) -> None:
    """Every entry below and including ``root`` gets mtime ``ns`` (folders last, deepest first)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(ns, ns), follow_symlinks=False)
        os.utime(dirpath, ns=(ns, ns))


@dataclass
class History:
    src: str  # stored path prefix of the docs source (no leading slash)
    other: str
    docs: list[str]  # snapshot ids d1..d4
    others: list[str]  # o1..o3
    root: bool
    xattrs: bool

    def p(self, rel: str = "") -> str:
        return f"{self.src}/{rel}" if rel else self.src

    def o(self, rel: str) -> str:
        return f"{self.other}/{rel}"


def backup(vger: Vger, *args: str) -> None:
    docs = json_out(vger.run("--json", "backup", *args))
    assert all(not d["errors"] for d in docs), docs


@pytest.fixture(scope="module")
def vger(tmp_path_factory: pytest.TempPathFactory) -> Vger:
    """One repository for the whole module: the history is read, never changed, by the tests."""
    tmp = tmp_path_factory.mktemp("diff-find")
    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGER_")}
    env.update(
        HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "home/.config"),
        XDG_CACHE_HOME=str(tmp / "home/.cache"),
        VGER_PASSPHRASE=PASSPHRASE,
        VGER_CACHE_DIR=str(tmp / "cache"),
    )
    return Vger(tmp, env, tmp / "vger.yaml")


@pytest.fixture(scope="module")
def history(vger: Vger) -> History:
    src = vger.tmp / "src"
    other = vger.tmp / "other"
    src.mkdir()
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [
                {"label": "docs", "paths": [str(src)]},
                {"label": "other", "paths": [str(other)]},
            ],
        }
    )
    root = os.geteuid() == 0
    xattrs = xattrs_supported(src)
    write_file(src / "keep.txt", b"kept as is\n")
    write_file(src / "mod.txt", b"version 1\n")
    write_file(src / "same.txt", b"aaaa")
    write_file(src / "gone.txt", b"soon gone\n")
    write_file(src / "perm.txt", b"permissions\n").chmod(0o644)
    write_file(src / "touched.txt", b"touched\n")
    write_file(src / "owner.txt", b"owner\n")
    write_file(src / "xattr.txt", b"xattr\n")
    write_file(src / "sub/deep.txt", b"deep\n")
    (src / "empty").mkdir()
    os.symlink("keep.txt", src / "link")
    write_file(other / "notes.txt", b"other notes\n")
    write_file(other / "mod.txt", b"other version 1\n")
    set_times(src, T0)
    set_times(other, T0)
    vger.run("init")
    backup(vger)

    write_file(src / "mod.txt", b"version 2, longer\n")
    write_file(src / "same.txt", b"bbbb")  # same size, same mtime (reset below): only the chunks differ
    os.utime(src / "same.txt", ns=(T0, T0))
    os.utime(src / "mod.txt", ns=(T0, T0))
    (src / "gone.txt").unlink()
    (src / "empty").rmdir()
    (src / "perm.txt").chmod(0o600)
    os.utime(src / "touched.txt", ns=(T1, T1))
    os.unlink(src / "link")
    os.symlink("sub/deep.txt", src / "link")
    os.utime(src / "link", ns=(T0, T0), follow_symlinks=False)
    write_file(src / "sub/new.txt", b"new\n")
    os.utime(src / "sub/new.txt", ns=(T0, T0))
    os.utime(src / "sub", ns=(T0, T0))
    write_file(src / "newdir/x.txt", b"x\n")
    if root:
        os.chown(src / "owner.txt", *OWNER)
    if xattrs:
        os.setxattr(src / "xattr.txt", "user.note", b"hello")
    os.utime(src, ns=(T1, T1))
    backup(vger)

    write_file(src / "gone.txt", b"back again, different\n")
    os.utime(src, ns=(T1, T1))
    write_file(other / "mod.txt", b"other version 2\n")
    os.utime(other, ns=(T0, T0))
    backup(vger)

    (src / "mod.txt").unlink()
    os.utime(src, ns=(T1, T1))
    backup(vger, "-S", "docs")

    snaps = json_out(vger.run("--json", "list"))
    docs = [s["id"] for s in snaps if s["source_label"] == "docs"]
    others = [s["id"] for s in snaps if s["source_label"] == "other"]
    assert len(docs) == 4 and len(others) == 3
    return History(str(src).lstrip("/"), str(other).lstrip("/"), docs, others, root, xattrs)


def owner_fields() -> list[str]:
    fields = ["uid", "gid"]
    if name_of(pwd.getpwuid, 0) != name_of(pwd.getpwuid, OWNER[0]):
        fields.append("user")
    if name_of(grp.getgrgid, 0) != name_of(grp.getgrgid, OWNER[1]):
        fields.append("group")
    return fields


def expected_d1_d2(h: History) -> list[str]:
    lines = [
        f"m {h.p()} (mtime)",
        f"- {h.p('empty')}",
        f"- {h.p('gone.txt')}",
        f"m {h.p('link')} (target)",
        f"M {h.p('mod.txt')}",
        f"+ {h.p('newdir')}",
        f"+ {h.p('newdir/x.txt')}",
        f"m {h.p('owner.txt')} ({', '.join(owner_fields())})" if h.root else None,
        f"m {h.p('perm.txt')} (mode)",
        f"M {h.p('same.txt')}",
        f"+ {h.p('sub/new.txt')}",
        f"m {h.p('touched.txt')} (mtime)",
        f"m {h.p('xattr.txt')} (xattrs)" if h.xattrs else None,
    ]
    return [line for line in lines if line]


def summary(added: int, removed: int, modified: int, meta: int, first: str, second: str) -> str:
    return (
        f"{added} added, {removed} removed, {modified} modified, {meta} metadata changed "
        f"({first[:8]} -> {second[:8]})"
    )


# -- diff -----------------------------------------------------------------------------------


def test_diff_human(vger: Vger, history: History) -> None:
    h = history
    d1, d2 = h.docs[0], h.docs[1]
    out = vger.run("diff", d1[:8], d2[:6]).stdout.splitlines()
    expected = expected_d1_d2(h)
    assert out[:-1] == expected
    meta = 4 + h.root + h.xattrs
    assert out[-1] == summary(3, 2, 2, meta, d1, d2)


def test_diff_json(vger: Vger, history: History) -> None:
    h = history
    d1, d2 = h.docs[0], h.docs[1]
    doc = json_out(vger.run("--json", "diff", d1, d2))
    assert doc["added"] == [h.p("newdir"), h.p("newdir/x.txt"), h.p("sub/new.txt")]
    assert doc["removed"] == [h.p("empty"), h.p("gone.txt")]
    assert doc["modified"] == [h.p("mod.txt"), h.p("same.txt")]
    meta = [
        {"path": h.p(), "fields": ["mtime"]},
        {"path": h.p("link"), "fields": ["target"]},
        *([{"path": h.p("owner.txt"), "fields": owner_fields()}] if h.root else []),
        {"path": h.p("perm.txt"), "fields": ["mode"]},
        {"path": h.p("touched.txt"), "fields": ["mtime"]},
        *([{"path": h.p("xattr.txt"), "fields": ["xattrs"]}] if h.xattrs else []),
    ]
    assert doc["metadata_changed"] == meta
    assert (doc["from"], doc["to"], doc["repository"]) == (d1, d2, "main")
    # --json after the command gives the same document
    assert json_out(vger.run("diff", d1, d2, "--json")) == doc


def test_diff_reversed_swaps_added_and_removed(vger: Vger, history: History) -> None:
    h = history
    forward = json_out(vger.run("--json", "diff", h.docs[0], h.docs[1]))
    backward = json_out(vger.run("--json", "diff", h.docs[1], h.docs[0]))
    assert backward["added"] == forward["removed"]
    assert backward["removed"] == forward["added"]
    assert backward["modified"] == forward["modified"]
    assert backward["metadata_changed"] == forward["metadata_changed"]


def test_diff_below_a_path(vger: Vger, history: History) -> None:
    h = history
    d1, d2 = h.docs[0], h.docs[1]
    out = vger.run("diff", d1, d2, "/" + h.p("sub")).stdout.splitlines()
    assert out == [f"+ {h.p('sub/new.txt')}", summary(1, 0, 0, 0, d1, d2)]
    # without the leading slash, with a trailing one: the same
    doc = json_out(vger.run("--json", "diff", d1, d2, h.p("sub") + "/"))
    assert doc["added"] == [h.p("sub/new.txt")]
    assert doc["removed"] == doc["modified"] == doc["metadata_changed"] == []
    # a single file
    doc = json_out(vger.run("--json", "diff", d1, d2, "/" + h.p("perm.txt")))
    assert doc == {
        **doc,
        "added": [],
        "removed": [],
        "modified": [],
        "metadata_changed": [{"path": h.p("perm.txt"), "fields": ["mode"]}],
    }
    # a PATH is a path, not a string prefix: "sub" does not take in "subway"
    doc = json_out(vger.run("--json", "diff", d1, d2, h.p("su")))
    assert doc["added"] == doc["removed"] == doc["modified"] == doc["metadata_changed"] == []


def test_diff_later_snapshots_and_latest(vger: Vger, history: History) -> None:
    h = history
    d2, d3, d4 = h.docs[1:]
    doc = json_out(vger.run("--json", "diff", d2, d3))
    assert doc["added"] == [h.p("gone.txt")]
    assert doc["removed"] == doc["modified"] == doc["metadata_changed"] == []
    doc = json_out(vger.run("--json", "diff", d3, "latest", "-S", "docs"))
    assert doc["to"] == d4
    assert doc["removed"] == [h.p("mod.txt")]
    assert doc["added"] == doc["modified"] == doc["metadata_changed"] == []
    # the other source: only other/mod.txt changed, from o2 to o3
    o1, o2, o3 = h.others
    doc = json_out(vger.run("--json", "diff", o1, o3))
    assert doc["modified"] == [h.o("mod.txt")]
    assert doc["added"] == doc["removed"] == doc["metadata_changed"] == []
    out = vger.run("diff", o1, o2).stdout.splitlines()
    assert out == [summary(0, 0, 0, 0, o1, o2)]


def test_diff_unknown_snapshot_is_a_clean_error(vger: Vger, history: History) -> None:
    proc = vger.run("diff", "zzzz", history.docs[0], check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "no snapshot 'zzzz'" in proc.stderr
    proc = vger.run("diff", history.docs[0], "ab", check=False)
    assert proc.returncode == 1 and "too short" in proc.stderr


# -- find -----------------------------------------------------------------------------------


def timelines(doc: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """path -> [(snapshot id, status), ...]"""
    return {entry["path"]: [(t["snapshot"], t["status"]) for t in entry["timeline"]] for entry in doc}


def human_timelines(text: str) -> tuple[dict[str, list[tuple[str, str, str]]], str]:
    """path -> [(short id, source, status), ...] from the human output, and the last line."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    lines = text.splitlines()
    for line in lines[:-1]:
        if not line.startswith("  "):
            current = line
            found[current] = []
        elif not line.strip().startswith("SNAPSHOT"):
            short, _date, _time, source, status, *_ = line.split()
            assert current is not None
            found[current].append((short, source, status))
    return found, lines[-1]


def test_find_basename_pattern_timeline(vger: Vger, history: History) -> None:
    h = history
    d1, d2, d3, d4 = h.docs
    o1, o2, o3 = h.others
    doc = json_out(vger.run("--json", "find", "*mod.txt"))
    # tree order: tmp/.../other sorts before tmp/.../src
    assert [e["path"] for e in doc] == [h.o("mod.txt"), h.p("mod.txt")]
    assert timelines(doc) == {
        h.p("mod.txt"): [(d1, "added"), (d2, "modified"), (d3, "unchanged"), (d4, "removed")],
        h.o("mod.txt"): [(o1, "added"), (o2, "unchanged"), (o3, "modified")],
    }
    by_path = {e["path"]: e["timeline"] for e in doc}
    first, second, third, gone = by_path[h.p("mod.txt")]
    assert (first["size"], second["size"], third["size"]) == (10, 18, 18)
    assert first["mtime_ns"] == second["mtime_ns"] == T0
    assert first["source_label"] == "docs" and first["type"] == "file"
    assert gone["size"] is None and gone["mtime"] is None
    assert first["mtime"] == "2020-09-13T12:26:40Z"
    snaps = {s["id"]: s for s in json_out(vger.run("--json", "list"))}
    for entry in doc:
        for point in entry["timeline"]:
            assert point["time"] == snaps[point["snapshot"]]["time"]
            assert point["source_label"] == snaps[point["snapshot"]]["source_label"]


def test_find_removed_and_back(vger: Vger, history: History) -> None:
    h = history
    d1, d2, d3, d4 = h.docs
    doc = json_out(vger.run("find", "gone.txt", "--json"))
    assert timelines(doc) == {
        h.p("gone.txt"): [(d1, "added"), (d2, "removed"), (d3, "added"), (d4, "unchanged")]
    }
    sizes = [t["size"] for t in doc[0]["timeline"]]
    assert sizes == [10, None, 22, 22]


def test_find_touch_only_is_unchanged_content(vger: Vger, history: History) -> None:
    h = history
    doc = json_out(vger.run("--json", "find", "touched.txt", "-S", "docs"))
    assert [t["status"] for t in doc[0]["timeline"]] == ["added", "unchanged", "unchanged", "unchanged"]
    assert [t["mtime_ns"] for t in doc[0]["timeline"]] == [T0, T1, T1, T1]
    assert doc[0]["path"] == h.p("touched.txt")


def test_find_whole_path_pattern(vger: Vger, history: History) -> None:
    h = history
    d1, d2, d3, d4 = h.docs
    expected = {
        h.p("sub/deep.txt"): [(d1, "added"), (d2, "unchanged"), (d3, "unchanged"), (d4, "unchanged")],
        h.p("sub/new.txt"): [(d2, "added"), (d3, "unchanged"), (d4, "unchanged")],
    }
    for pattern in (h.p("sub/*"), "/" + h.p("sub/*"), "*/sub/*.txt"):
        doc = json_out(vger.run("--json", "find", pattern))
        assert timelines(doc) == expected, pattern
        assert [e["path"] for e in doc] == [h.p("sub/deep.txt"), h.p("sub/new.txt")]
    # a whole-path pattern must match the whole path, not its end
    assert json_out(vger.run("--json", "find", "sub/deep.txt")) == []


def test_find_by_source_label(vger: Vger, history: History) -> None:
    h = history
    doc = json_out(vger.run("--json", "find", "*.txt", "-S", "other"))
    assert [e["path"] for e in doc] == [h.o("mod.txt"), h.o("notes.txt")]
    assert timelines(doc)[h.o("notes.txt")] == [
        (o, "unchanged" if i else "added") for i, o in enumerate(h.others)
    ]
    assert json_out(vger.run("--json", "find", "nothing-like-this")) == []


def test_find_human(vger: Vger, history: History) -> None:
    h = history
    d1, d2, d3, d4 = (i[:8] for i in h.docs)
    o1, o2, o3 = (i[:8] for i in h.others)
    found, last = human_timelines(vger.run("find", "*mod.txt").stdout)
    assert found == {
        h.o("mod.txt"): [(o1, "other", "added"), (o2, "other", "unchanged"), (o3, "other", "modified")],
        h.p("mod.txt"): [
            (d1, "docs", "added"),
            (d2, "docs", "modified"),
            (d3, "docs", "unchanged"),
            (d4, "docs", "removed"),
        ],
    }
    assert list(found) == [h.o("mod.txt"), h.p("mod.txt")]
    assert last == "2 paths matching '*mod.txt' in 7 snapshots"
    found, last = human_timelines(vger.run("find", "nothing-like-this").stdout)
    assert found == {} and last == "0 paths matching 'nothing-like-this' in 7 snapshots"
