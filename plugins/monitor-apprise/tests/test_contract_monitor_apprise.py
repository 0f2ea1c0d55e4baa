"""Apprise must pass vger's monitor contract (when apprise is installed: it is an extra).

Apprise's ``json://`` service POSTs a JSON document to any http server, which
is how the loopback server of the contract sees what Apprise sends.
"""

from collections.abc import Mapping
from typing import Any

import pytest
from vger_monitor_apprise import AppriseMonitor

from vger.testing import MonitorContract
from vger.testing.monitor import RecordedRequest

pytest.importorskip("apprise", reason="the apprise extra is not installed (pip install 'vger[apprise]')")


class TestAppriseContract(MonitorContract):
    monitor_class = AppriseMonitor

    def options_for(self, url: str) -> dict[str, Any]:
        return {"urls": ["json://" + url.removeprefix("http://")]}

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        assert request.method == "POST"
        document = request.json()
        assert document["type"] == {"start": "info", "finish": "success", "fail": "failure"}[state]
        assert "vger backup" in document["title"]
        assert document["message"].startswith(payload["summary"])
