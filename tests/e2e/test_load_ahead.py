"""The files cache loads while the key is derived, and a wrong passphrase still stops everything."""

from __future__ import annotations

import ast

from conftest import Vger, write_file

_TIMELINE = """
import atexit, sys, threading, time
import vger.repository.repository as repository
import vger.backup.filecache as filecache
events = []
real_unwrap, real_load = repository.unwrap_key, filecache.FilesCache.load
def unwrap(*args):
    events.append(("derive-start", threading.current_thread().name, time.monotonic()))
    time.sleep(0.3)  # a slow Argon2id
    try:
        return real_unwrap(*args)
    finally:
        events.append(("derive-end", threading.current_thread().name, time.monotonic()))
def load(self):
    events.append(("cache-load", threading.current_thread().name, time.monotonic()))
    return real_load(self)
repository.unwrap_key = unwrap
filecache.FilesCache.load = load
atexit.register(lambda: print("EVENTS", [(e[0], e[1]) for e in sorted(events, key=lambda e: e[2])], file=sys.stderr))
"""


def test_the_files_cache_loads_while_the_key_is_derived(vger: Vger) -> None:
    write_file(vger.tmp / "src" / "a.txt", b"a\n")
    vger.run("init")
    vger.run("backup")
    proc = vger.run_patched(_TIMELINE, "backup")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("EVENTS"))
    events = ast.literal_eval(line[len("EVENTS ") :])
    assert [name for name, _thread in events] == ["derive-start", "cache-load", "derive-end"], events
    assert events[0][1] != "MainThread" and events[1][1] == "MainThread"


def test_a_wrong_passphrase_still_ends_the_backup_with_one_line(vger: Vger) -> None:
    write_file(vger.tmp / "src" / "a.txt", b"a\n")
    vger.run("init")
    vger.run("backup")
    proc = vger.run("backup", check=False, env={"VGER_PASSPHRASE": "not the passphrase"})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len([x for x in proc.stderr.splitlines() if x.strip()]) == 1, proc.stderr
    assert "passphrase" in proc.stderr
