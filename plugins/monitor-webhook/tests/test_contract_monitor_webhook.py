"""The webhook must pass vger's monitor contract: the payload, as JSON, unchanged.

Also here: ``alert_after`` stays quiet until the N-th failure in a row, and a
success starts the count again -- across processes, because the count lives
in the cache folder.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from vger_monitor_webhook import WebhookMonitor

from vger.testing import MonitorContract
from vger.testing.monitor import LoopbackServer, RecordedRequest


class TestWebhookContract(MonitorContract):
    monitor_class = WebhookMonitor

    def options_for(self, url: str) -> dict[str, Any]:
        return {"url": url, "headers": {"X-Api-Key": "k1"}, "auth_token": "s3cret"}

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-api-key"] == "k1"
        assert request.headers["authorization"] == "Bearer s3cret"
        assert request.json() == dict(payload)


class TestAlertAfter:
    @pytest.fixture(autouse=True)
    def _cache(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VGER_CACHE_DIR", str(tmp_path / "cache"))

    server = MonitorContract.server

    def test_fail_is_sent_from_the_third_failure_in_a_row(self, server: LoopbackServer) -> None:
        def monitor() -> WebhookMonitor:  # a new instance each time, like a new vger process
            return WebhookMonitor({"url": server.url, "alert_after": 3, "timeout": 2})

        fail = MonitorContract.sample_payload("fail")
        finish = MonitorContract.sample_payload("finish")
        monitor().ping("fail", fail)
        monitor().ping("fail", fail)
        assert server.wait_for(1, timeout=0.3) == []
        monitor().ping("fail", fail)
        sent = server.wait_for(1)
        assert [r.json()["consecutive_failures"] for r in sent] == [3]
        monitor().ping("fail", fail)
        monitor().ping("finish", finish)  # a success is always sent, and resets the count
        monitor().ping("fail", fail)
        sent = server.wait_for(3)
        assert [(r.json()["state"], r.json()["consecutive_failures"]) for r in sent] == [
            ("fail", 3),
            ("fail", 4),
            ("finish", 0),
        ]

    def test_counts_are_kept_per_command(self, server: LoopbackServer) -> None:
        monitor = WebhookMonitor({"url": server.url, "alert_after": 2, "timeout": 2})
        backup = MonitorContract.sample_payload("fail")
        check = {**backup, "command": "check"}
        monitor.ping("fail", backup)
        monitor.ping("fail", check)
        assert server.wait_for(1, timeout=0.3) == []
        monitor.ping("fail", check)
        assert [r.json()["command"] for r in server.wait_for(1)] == ["check"]
