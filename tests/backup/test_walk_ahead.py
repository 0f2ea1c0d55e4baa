"""The walk-ahead child must give exactly what walking in-process gives, or be left alone."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from vger.backup import walkahead
from vger.backup.walkahead import WalkAhead, WalkAheadFailed, claim, may_walk_early, walk_entries
from vger.backup.walker import Walker, WalkOptions

ALL_FIELDS = [
    "st_mode",
    "st_ino",
    "st_dev",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_size",
    "st_atime",
    "st_mtime",
    "st_ctime",
    "st_atime_ns",
    "st_mtime_ns",
    "st_ctime_ns",
    "st_blksize",
    "st_blocks",
    "st_rdev",
]


def make_tree(root: Path) -> None:
    for n in range(60):
        folder = root / f"d{n % 4}" / f"e{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:02d}.txt").write_bytes(b"x" * n)
        (folder / f"f{n:02d}.pyc").write_bytes(b"compiled")
    (root / "empty-dir").mkdir()
    (root / "skipme").mkdir()
    (root / "skipme" / ".nobackup").write_bytes(b"")
    (root / "skipme" / "inside").write_bytes(b"not walked")
    os.symlink("d0/e0/f00.txt", root / "link")
    os.symlink("nowhere", root / "dangling")
    (root / os.fsdecode(b"caf\xe9-latin1")).write_bytes(b"a name that is not UTF-8")
    (root / "d1" / ".gitignore").write_text("e1/\n")
    # Listing a folder for the first time moves its atime (relatime): walk once,
    # so that every walk below sees the same stat results.
    for _ in os.walk(root):
        pass


def listing(entries: object) -> list[tuple[bytes, tuple[object, ...]]]:
    return [(e.path, tuple(getattr(e.st, f) for f in ALL_FIELDS)) for e in entries]  # type: ignore[attr-defined]


OPTIONS = [
    WalkOptions(),
    WalkOptions(exclude=("*.pyc",), exclude_if_present=(".nobackup",), git_ignore=True),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_the_child_walks_exactly_as_the_walker(tmp_path: Path, options: WalkOptions) -> None:
    make_tree(tmp_path / "a")
    make_tree(tmp_path / "b")
    roots = [str(tmp_path / "a"), str(tmp_path / "missing"), str(tmp_path / "b")]
    walker = Walker(options)
    expected = [listing(walker.walk(root)) for root in roots]
    ahead = WalkAhead(roots, options)
    try:
        got = [listing(ahead.walk(root)) for root in roots]
    finally:
        ahead.close()
    assert got == expected
    assert len(expected[0]) > 70  # the tree really was walked
    if options.exclude:
        walked = [path for path, _st in got[0]]
        assert not [p for p in walked if p.endswith(b".pyc") or b"/skipme/" in p or b"/d1/e1" in p]
    # errors come back too, as the walker reports them
    assert [(e.path, e.message) for e in ahead.errors] == [(e.path, e.message) for e in walker.errors]
    assert ahead.errors and b"missing" in ahead.errors[0].path


def test_roots_must_come_in_the_plan_order(tmp_path: Path) -> None:
    make_tree(tmp_path / "a")
    ahead = WalkAhead([str(tmp_path / "a"), str(tmp_path)], WalkOptions())
    try:
        with pytest.raises(WalkAheadFailed):
            list(ahead.walk(str(tmp_path)))
    finally:
        ahead.close()


def test_a_child_that_dies_mid_walk_is_resumed_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path / "a")
    root = str(tmp_path / "a")
    monkeypatch.setattr(walkahead, "BATCH", 7)
    ahead = WalkAhead([root], WalkOptions())
    ahead._proc.kill()  # may have sent some, all or none of its batches: any is fine
    try:
        got = listing(walk_entries(root, Walker(WalkOptions()), ahead))
    finally:
        ahead.close()
    assert got == listing(Walker(WalkOptions()).walk(root))


def test_resuming_skips_what_the_child_delivered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path / "a")
    root = str(tmp_path / "a")
    monkeypatch.setattr(walkahead, "BATCH", 5)
    ahead = WalkAhead([root], WalkOptions())
    real = ahead._frame
    calls = []

    def fail_on_the_fourth() -> tuple[bytes, int, bytes]:
        calls.append(1)
        if len(calls) == 4:
            raise WalkAheadFailed("gone")
        return real()

    monkeypatch.setattr(ahead, "_frame", fail_on_the_fourth)
    try:
        got = listing(walk_entries(root, Walker(WalkOptions()), ahead))
    finally:
        ahead.close()
    assert len(calls) == 4  # three batches came from the child
    assert got == listing(Walker(WalkOptions()).walk(root))


@pytest.mark.parametrize(
    "frame",
    [
        # a batch that says 3 entries and carries one record's worth of bytes and no paths
        walkahead._FRAME.pack(b"e", 3, walkahead._RECORD.size) + bytes(walkahead._RECORD.size),
        # one entry, one path, but a record cut short
        walkahead._FRAME.pack(b"e", 1, 100) + bytes(100),
        # a kind nobody sends
        walkahead._FRAME.pack(b"?", 0, 0),
        # the end of the root with errors that are not marshal data
        walkahead._FRAME.pack(b"r", 0, 4) + b"\xff\xff\xff\xff",
    ],
)
def test_garbage_from_the_child_is_a_failure_not_entries(tmp_path: Path, frame: bytes) -> None:
    roots = [str(tmp_path), str(tmp_path / "second")]
    ahead = WalkAhead(roots, WalkOptions())
    ahead.close()
    ahead._pending[:] = frame + walkahead._FRAME.pack(b"r", 1, 5) + b"\xdb\x00\x00\x00\x00"
    with pytest.raises(WalkAheadFailed):
        list(ahead.walk(roots[0]))
    # the stream's position is unknown now: nothing more is read from it
    with pytest.raises(WalkAheadFailed, match="failed before"):
        list(ahead.walk(roots[1]))


def test_close_stops_a_child_still_walking(tmp_path: Path) -> None:
    make_tree(tmp_path / "a")
    for n in range(3000):  # enough that the child cannot be done before it is stopped
        (tmp_path / "a" / f"more{n:04d}").touch()
    ahead = WalkAhead([str(tmp_path / "a")], WalkOptions())
    os.kill(ahead._proc.pid, signal.SIGSTOP)  # a child that would never finish on its own
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 5
    assert ahead._proc.returncode == -signal.SIGKILL
    ahead.close()  # twice is harmless


@pytest.fixture
def plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VGER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(walkahead.DISABLE_ENV, raising=False)
    monkeypatch.setattr(walkahead, "_early", None)
    return tmp_path / "cache" / walkahead.PLANS_FILE


def test_a_plan_is_remembered_and_started_next_time(tmp_path: Path, plans: Path) -> None:
    make_tree(tmp_path / "a")
    argv = ["-c", "x.yaml", "backup"]
    roots = [str(tmp_path / "a")]
    assert claim(argv, roots, WalkOptions(), allowed=True) is None  # first run: nothing started
    assert list(json.loads(plans.read_text()).values()) == [
        {
            "roots": roots,
            "options": {
                "exclude": [],
                "exclude_if_present": [],
                "one_file_system": True,
                "git_ignore": False,
            },
        }
    ]
    walkahead.start_early(argv)
    ahead = claim(argv, roots, WalkOptions(), allowed=True)
    assert ahead is not None
    try:
        assert listing(ahead.walk(roots[0])) == listing(Walker(WalkOptions()).walk(roots[0]))
    finally:
        ahead.close()
    walkahead.start_early(["-c", "other.yaml", "backup"])  # another command line: no plan, no child
    assert walkahead._early is None


def test_a_plan_that_does_not_match_is_dropped(tmp_path: Path, plans: Path) -> None:
    make_tree(tmp_path / "a")
    argv = ["backup"]
    claim(argv, [str(tmp_path / "a")], WalkOptions(), allowed=True)
    walkahead.start_early(argv)
    early = walkahead._early
    assert early is not None
    # the config now excludes something: the early walk is wrong for it
    assert claim(argv, [str(tmp_path / "a")], WalkOptions(exclude=("*.pyc",)), allowed=True) is None
    assert early._proc.returncode is not None  # stopped
    walkahead.start_early(argv)  # the new plan is the one remembered
    assert walkahead._early is not None and walkahead._early.options == WalkOptions(exclude=("*.pyc",))
    walkahead._discard()


def test_a_plan_is_forgotten_when_the_walk_may_not_start_early(tmp_path: Path, plans: Path) -> None:
    argv = ["backup"]
    claim(argv, [str(tmp_path)], WalkOptions(), allowed=True)
    walkahead.start_early(argv)
    assert claim(argv, [str(tmp_path)], WalkOptions(), allowed=False) is None  # e.g. a before hook was added
    assert json.loads(plans.read_text()) == {}
    walkahead.start_early(argv)
    assert walkahead._early is None


def test_damaged_plans_only_cost_the_head_start(tmp_path: Path, plans: Path) -> None:
    plans.parent.mkdir(parents=True)
    plans.write_text("{not json")
    walkahead.start_early(["backup"])
    assert walkahead._early is None
    plans.write_text(json.dumps({walkahead._plan_key(["backup"]): {"roots": 5}}))
    walkahead.start_early(["backup"])
    assert walkahead._early is None


def test_what_may_run_before_the_walk() -> None:
    shell = ["lifecycle-shell", "vger-monitoring"]
    assert may_walk_early({}, {}, {}, False, shell)
    assert may_walk_early({"after_backup": ("echo done",)}, {"finally": ("x",)}, {}, False, shell)
    assert not may_walk_early({"before_backup": ("mount /mnt",)}, {}, {}, False, shell)
    assert not may_walk_early({}, {"before": ("x",)}, {}, False, shell)
    assert not may_walk_early({}, {}, {"before": ("systemctl stop app",)}, False, shell)
    assert not may_walk_early({}, {}, {}, True, shell)  # dumps run first
    assert not may_walk_early({}, {}, {}, False, [*shell, "someones-snapshot-plugin"])


def test_labels_and_output_options_share_a_plan() -> None:
    key = walkahead._plan_key
    base = key(["-c", "a.yaml", "backup"])
    assert key(["-c", "a.yaml", "-vv", "--json", "backup", "--label", "monday", "--stats"]) == base
    assert key(["-c", "a.yaml", "-q", "backup", "--label=tuesday"]) == base
    assert key(["-c", "b.yaml", "backup"]) != base
    assert key(["-c", "a.yaml", "backup", "-S", "home"]) != base
    assert key(["-c", "a.yaml", "-R", "usb", "backup"]) != base


def test_matched_ahead_entries_come_first_then_the_rest_and_a_repeated_root_again(tmp_path: Path) -> None:
    from vger.backup.filecache import FilesCache
    from vger.backup.prematch import UNTRIED, paired, prematch

    make_tree(tmp_path / "a")
    root = str(tmp_path / "a")
    expected = listing(Walker(WalkOptions()).walk(root))
    ahead = WalkAhead([root, root], WalkOptions())
    try:
        cache = FilesCache("00" * 16, "src")  # empty: nothing matches, nothing is touched
        pre = prematch(root, WalkOptions(), ahead, cache, limit=10)
        assert len(pre.pairs) == 10 and all(m is None for _e, m in pre.pairs)
        first = list(paired(root, pre.walker, ahead, pre))
        second = list(paired(root, pre.walker, ahead, pre))  # the same root listed twice
    finally:
        ahead.close()
    assert listing(e for e, _m in first) == expected == listing(e for e, _m in second)
    assert [m is UNTRIED for _e, m in first] == [False] * 10 + [True] * (len(expected) - 10)
    assert cache.hits == 0
