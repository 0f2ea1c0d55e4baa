"""Healthchecks.io (or a self-hosted Healthchecks) pings: start, success, fail, with the log tail.

Healthchecks alerts when a check's success ping does not arrive in time, so it
also catches the run that never happened (a dead cron, a powered-off host) --
the failure no ``failed`` hook can report. ``start`` lets it measure how long
runs take and notice one that hangs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.monitoring import DEFAULT_TIMEOUT, http_send

#: Healthchecks stores the first 100 kB of a ping body by default; we stay well
#: under it and keep the end of the log, where the error is.
MAX_BODY = 20_000

_SUFFIX = {"start": "/start", "finish": "", "fail": "/fail"}


class HealthchecksMonitor:
    """POSTs to ``<url>/start``, ``<url>`` and ``<url>/fail`` with a run id pairing them."""

    name: ClassVar[str] = "healthchecks"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The check's ping url, e.g. https://hc-ping.com/<uuid> (or <ping-key>/<slug>).",
            },
            "send_log": {
                "type": "boolean",
                "default": True,
                "description": "Send the summary and the log tail as the body of finish and fail pings.",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.url = str(options["url"]).rstrip("/")
        self.send_log = bool(options.get("send_log", True))
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))

    def ping(self, state: str, payload: Mapping[str, Any]) -> None:
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.urlencode({"rid": payload.get("run_id", "")})
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path + _SUFFIX[state], query, ""))
        body = b""
        if self.send_log and state != "start":
            # The summary (with the error) first, then as much of the log's end as fits.
            summary = str(payload.get("summary", "")).encode("utf-8")[: MAX_BODY // 2]
            tail = str(payload.get("log_tail") or "").encode("utf-8")
            room = MAX_BODY - len(summary) - 6
            if len(tail) > room:
                # cut on a character boundary: the server decodes the body as UTF-8
                tail = b"...\n" + tail[-room:].decode("utf-8", "ignore").encode("utf-8")
            body = summary + (b"\n\n" + tail if tail else b"")
        http_send(
            url,
            body,
            method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=self.timeout,
            what="healthchecks",
        )


@hookimpl
def vger_register_monitors() -> list[type[Any]]:
    return [HealthchecksMonitor]
