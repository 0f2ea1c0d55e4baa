"""Monitoring through the real CLI: pings reach a real HTTP server on 127.0.0.1.

The server runs in a thread of the test and records every request, so each
test sees exactly what a Healthchecks instance or a webhook receiver would.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Vger, write_file

from vger.testing.monitor import LoopbackServer, RecordedRequest, closed_port, serve_loopback


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve_loopback(path="") as running:
        yield running


def config(vger: Vger, monitoring: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
        "sources": [{"path": str(vger.tmp / "src"), "label": "docs"}],
        "monitoring": monitoring,
        **extra,
    }


def init(vger: Vger, doc: dict[str, Any]) -> None:
    """Init with a monitoring-free config (init is not a monitored command anyway), then install ``doc``."""
    write_file(vger.tmp / "src" / "report.txt", b"quarterly numbers\n" * 1000)
    vger.run("init")
    vger.write_config(doc)


def at(requests: list[RecordedRequest], path: str) -> list[RecordedRequest]:
    return [request for request in requests if request.path == path]


def test_backup_pings_start_then_finish_with_snapshots_sizes_and_log_tail(
    vger: Vger, server: LoopbackServer
) -> None:
    doc = config(
        vger,
        [
            {"type": "webhook", "url": f"{server.url}/hook"},
            {"type": "healthchecks", "url": f"{server.url}/hc/5a1f"},
            {"type": "webhook", "url": f"{server.url}/only-failures", "states": ["fail"]},
            {"type": "webhook", "url": f"{server.url}/only-check", "commands": ["check"]},
        ],
        hooks={"after_backup": "echo hello-from-the-after-hook"},
    )
    init(vger, doc)
    vger.run("backup")
    requests = server.wait_for(4)
    hook = [r.json() for r in at(requests, "/hook")]
    assert [p["state"] for p in hook] == ["start", "finish"]
    start, finish = hook
    assert start["command"] == "backup" and start["error"] is None and start["duration"] is None
    assert start["snapshots"] == [] and start["log_tail"] == ""
    snapshot = json.loads(vger.run("list", "--json").stdout)[0]
    assert finish["command"] == "backup"
    assert finish["repositories"] == ["main"]
    assert finish["run_id"] == start["run_id"]
    assert [(s["repository"], s["source_label"], s["snapshot"]) for s in finish["snapshots"]] == [
        ("main", "docs", snapshot["id"])
    ]
    assert finish["original_size"] == 18000 == finish["snapshots"][0]["original_size"]
    assert 0 < finish["deduplicated_size"] < 18000  # compressed, encrypted, stored once
    assert 0 < finish["duration"] < 30
    assert finish["error"] is None
    assert "INFO hook after_backup: hello-from-the-after-hook" in finish["log_tail"].splitlines()
    assert finish["summary"].startswith("vger backup succeeded on ")

    hc = at(requests, "/hc/5a1f/start") + at(requests, "/hc/5a1f")
    assert [r.path for r in hc] == ["/hc/5a1f/start", "/hc/5a1f"]
    assert {r.query["rid"][0] for r in hc} == {start["run_id"]}
    assert hc[1].text().startswith(finish["summary"])
    assert "hello-from-the-after-hook" in hc[1].text()

    assert at(requests, "/only-failures") == [] and at(requests, "/only-check") == []
    assert len(requests) == 4


def test_a_failed_backup_pings_fail_with_the_error_and_keeps_its_exit_code(
    vger: Vger, server: LoopbackServer
) -> None:
    doc = config(
        vger,
        [
            {"type": "webhook", "url": f"{server.url}/hook"},
            {"type": "healthchecks", "url": f"{server.url}/hc"},
        ],
        hooks={"failed": "echo cleaning up after {command}", "finally": "echo unmounting"},
    )
    doc["sources"].append({"path": str(vger.tmp / "missing"), "label": "gone"})
    init(vger, doc)
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1
    requests = server.wait_for(4)
    hook = [r.json() for r in at(requests, "/hook")]
    assert [p["state"] for p in hook] == ["start", "fail"]
    fail = hook[1]
    error = f"main: source gone: source path {vger.tmp / 'missing'} does not exist"
    assert fail["error"] == error
    assert fail["summary"].endswith(f"failed on {fail['hostname']} in {fail['duration']:.1f} s: {error}")
    # the source that worked is reported too
    assert [s["source_label"] for s in fail["snapshots"]] == ["docs"]
    tail = fail["log_tail"].splitlines()
    assert f"ERROR main: source gone: source path {vger.tmp / 'missing'} does not exist" in tail
    assert "INFO hook failed: cleaning up after backup" in tail
    assert tail[-1] == "INFO hook finally: unmounting"  # sent after the finally hooks too
    hc_fail = at(requests, "/hc/fail")
    assert len(hc_fail) == 1 and error in hc_fail[0].text()


def test_the_cycle_is_one_run_and_a_failing_before_hook_still_pings_fail(
    vger: Vger, server: LoopbackServer
) -> None:
    doc = config(vger, [{"type": "webhook", "url": f"{server.url}/hook"}])
    init(vger, doc)
    vger.run()
    assert [(p["state"], p["command"]) for p in (r.json() for r in server.wait_for(2))] == [
        ("start", "cycle"),
        ("finish", "cycle"),
    ]
    server.requests.clear()
    vger.write_config({**doc, "hooks": {"before_prune": "true", "before": "exit 5"}})
    proc = vger.run("prune", check=False)
    assert proc.returncode == 1
    sent = [r.json() for r in server.wait_for(2)]
    assert [(p["state"], p["command"]) for p in sent] == [("start", "prune"), ("fail", "prune")]
    assert sent[1]["error"] == "before hook failed (exit code 5), so prune did not run: exit 5"


def test_an_unreachable_or_slow_monitor_never_fails_or_holds_up_the_backup(
    vger: Vger, server: LoopbackServer
) -> None:
    server.delay = 60.0  # answers after a minute: far beyond the 1 s timeout
    doc = config(
        vger,
        [
            {"type": "webhook", "url": f"http://127.0.0.1:{closed_port()}/hook"},
            {"type": "healthchecks", "url": f"{server.url}/slow", "timeout": 1},
        ],
    )
    init(vger, doc)
    started = time.monotonic()
    proc = vger.run("backup")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0
    assert "could not reach http://127.0.0.1:" in proc.stderr
    assert "/hook" not in proc.stderr  # the url's path (often its secret) is never printed
    # start and finish each waited about 1 s for the slow server; without the
    # timeout this would take two minutes
    assert elapsed < 12, f"backup took {elapsed:.1f} s"
    assert [r.path for r in server.wait_for(2)] == ["/slow/start", "/slow"]
    assert len(json.loads(vger.run("list", "--json").stdout)) == 1


def test_alert_after_waits_for_consecutive_failures_across_runs(vger: Vger, server: LoopbackServer) -> None:
    doc = config(
        vger, [{"type": "webhook", "url": f"{server.url}/hook", "states": ["fail"], "alert_after": 2}]
    )
    doc["sources"][0]["path"] = str(vger.tmp / "missing")
    init(vger, doc)
    assert vger.run("backup", check=False).returncode == 1
    assert server.wait_for(1, timeout=0.5) == []
    assert vger.run("backup", check=False).returncode == 1
    sent = [r.json() for r in server.wait_for(1)]
    assert [(p["state"], p["consecutive_failures"]) for p in sent] == [("fail", 2)]


@pytest.mark.skipif(importlib.util.find_spec("apprise") is not None, reason="apprise is installed")
def test_apprise_without_the_package_says_what_to_install(vger: Vger) -> None:
    vger.write_config(config(vger, [{"type": "apprise", "urls": ["json://127.0.0.1/"]}]))
    proc = vger.run("backup", check=False)
    assert proc.returncode == 1
    assert "monitoring[0].type" in proc.stderr
    assert "install it with: pip install apprise" in proc.stderr
    assert "Traceback" not in proc.stderr
