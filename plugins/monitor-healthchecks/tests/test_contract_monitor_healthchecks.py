"""Healthchecks must pass vger's monitor contract, with the ping urls Healthchecks documents."""

from collections.abc import Mapping
from typing import Any

from vger_monitor_healthchecks import HealthchecksMonitor

from vger.testing import MonitorContract
from vger.testing.monitor import RecordedRequest


class TestHealthchecksContract(MonitorContract):
    monitor_class = HealthchecksMonitor

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        assert request.method == "POST"
        expected = {
            "start": "/ping/3f0c1e52/start",
            "finish": "/ping/3f0c1e52",
            "fail": "/ping/3f0c1e52/fail",
        }
        assert request.path == expected[state]
        # the run id pairs start with finish/fail, so Healthchecks measures the run
        assert request.query["rid"] == [payload["run_id"]]
        text = request.text()
        if state == "start":
            assert text == ""
            return
        assert text.startswith(payload["summary"])
        assert payload["log_tail"].splitlines()[-1] in text  # the end of the log, where the error is
        if state == "fail":
            assert "does not exist" in text
