"""ntfy push notifications (ntfy.sh or a self-hosted server): a message to your phone when a run fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.monitoring import DEFAULT_TIMEOUT, http_send

#: Lines of the log tail in a failure message: a notification is read on a phone.
TAIL_LINES = 15

_PRIORITY = {"start": "low", "finish": "default", "fail": "high"}
_TAGS = {"start": "hourglass_flowing_sand", "finish": "white_check_mark", "fail": "warning"}


def _header(text: str) -> str:
    # http.client sends headers as latin-1; a host name or label in another
    # script would make the request fail, so keep them readable but ASCII.
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")[:200]


class NtfyMonitor:
    """POSTs the summary to the topic url, with a title, a priority and a tag per state."""

    name: ClassVar[str] = "ntfy"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The topic url, e.g. https://ntfy.sh/my-backups (pick a hard-to-guess topic).",
            },
            "access_token": {
                "type": "string",
                "description": "Access token for a protected topic (sent as a Bearer token).",
            },
            "states": {
                "type": "array",
                "items": {"enum": ["start", "finish", "fail"]},
                "default": ["fail"],
                "description": "Which pings to send; by default only failures reach your phone.",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.url = str(options["url"])
        self.token = options.get("access_token")
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))

    def ping(self, state: str, payload: Mapping[str, Any]) -> None:
        body = str(payload.get("summary", ""))
        if state == "fail" and payload.get("log_tail"):
            tail = str(payload["log_tail"]).splitlines()[-TAIL_LINES:]
            body += "\n\n" + "\n".join(tail)
        verb = {"start": "started", "finish": "succeeded", "fail": "FAILED"}[state]
        headers = {
            "Title": _header(f"vger {payload.get('command', '')} {verb} on {payload.get('hostname', '')}"),
            "Priority": _PRIORITY[state],
            "Tags": _TAGS[state],
            "Content-Type": "text/plain; charset=utf-8",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        http_send(self.url, body.encode("utf-8"), headers=headers, timeout=self.timeout, what="ntfy")


@hookimpl
def vger_register_monitors() -> list[type[Any]]:
    return [NtfyMonitor]
