"""ntfy must pass vger's monitor contract: a titled, prioritised message per state."""

from collections.abc import Mapping
from typing import Any

from vger_monitor_ntfy import NtfyMonitor

from vger.testing import MonitorContract
from vger.testing.monitor import RecordedRequest


class TestNtfyContract(MonitorContract):
    monitor_class = NtfyMonitor

    def options_for(self, url: str) -> dict[str, Any]:
        return {"url": url, "access_token": "tk_secret"}

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        assert request.method == "POST"
        assert request.path == "/ping/3f0c1e52"
        assert request.headers["authorization"] == "Bearer tk_secret"
        assert request.headers["priority"] == {"start": "low", "finish": "default", "fail": "high"}[state]
        title = request.headers["title"]
        assert "vger backup" in title and "backup-host" in title
        assert ("FAILED" in title) == (state == "fail")
        text = request.text()
        assert text.startswith(payload["summary"])
        if state == "fail":
            assert payload["log_tail"].splitlines()[-1] in text
