"""Uptime Kuma must pass vger's monitor contract: a push with status up/down; start sends nothing."""

from collections.abc import Mapping
from typing import Any

from vger_monitor_uptime_kuma import UptimeKumaMonitor

from vger.testing import MonitorContract
from vger.testing.monitor import RecordedRequest


class TestUptimeKumaContract(MonitorContract):
    monitor_class = UptimeKumaMonitor
    silent_states = frozenset({"start"})

    def options_for(self, url: str) -> dict[str, Any]:
        # a push url copied from Kuma's UI carries placeholder parameters: they are replaced
        return {"url": url + "?status=up&msg=OK&ping="}

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        assert request.method == "GET"
        assert request.path == "/ping/3f0c1e52"
        assert request.query["status"] == ["up" if state == "finish" else "down"]
        assert request.query["ping"] == [str(round(payload["duration"] * 1000))]
        message = request.query["msg"][0]
        assert message.startswith("vger backup")
        assert len(message) <= 250
