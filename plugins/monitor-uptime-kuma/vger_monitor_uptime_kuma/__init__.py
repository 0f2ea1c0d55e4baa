"""Uptime Kuma push monitors: ``up`` when a run succeeds, ``down`` when it fails.

A push monitor turns red by itself when no push arrives within its heartbeat
interval, so a run that never happened is caught too.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.monitoring import DEFAULT_TIMEOUT, http_send

#: Uptime Kuma shows ``msg`` in its event list; long ones only clutter it.
MAX_MESSAGE = 250


class UptimeKumaMonitor:
    """GETs the push url with ``status``, ``msg`` and ``ping`` (the run's duration in ms)."""

    name: ClassVar[str] = "uptime_kuma"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The push monitor's url, e.g. https://kuma.example.com/api/push/<token> "
                "(query parameters are replaced).",
            },
            "states": {
                "type": "array",
                "items": {"enum": ["start", "finish", "fail"]},
                "default": ["finish", "fail"],
                "description": "Which pings to send; Uptime Kuma has no 'start', so start is never sent.",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.url = str(options["url"])
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))

    def ping(self, state: str, payload: Mapping[str, Any]) -> None:
        if state == "start":
            return  # a push means "up" or "down"; a start is neither
        message = str(payload.get("summary", ""))
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        duration = payload.get("duration")
        query = {
            "status": "up" if state == "finish" else "down",
            "msg": message,
            "ping": "" if duration is None else str(round(float(duration) * 1000)),
        }
        parts = urllib.parse.urlsplit(self.url)
        url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(query), "")
        )
        http_send(url, method="GET", timeout=self.timeout, what="uptime_kuma")


@hookimpl
def vger_register_monitors() -> list[type[Any]]:
    return [UptimeKumaMonitor]
