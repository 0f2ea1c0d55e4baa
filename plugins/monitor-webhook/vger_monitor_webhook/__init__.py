"""A generic JSON webhook: the whole run report POSTed to any url (your own alerting, n8n, Node-RED, ...).

Optionally quiet about one-off failures: with ``alert_after: 3`` a ``fail`` is
only sent at the third failure of a command in a row (a laptop that missed one
night's backup is not an incident); the count lives in vger's cache folder
(``$VGER_CACHE_DIR/monitoring``) and a success resets it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from vger import hookimpl
from vger.monitoring import DEFAULT_TIMEOUT, http_send, state_dir

log = logging.getLogger("vger.monitoring")


class WebhookMonitor:
    """POSTs the payload as JSON (``Content-Type: application/json``)."""

    name: ClassVar[str] = "webhook"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "Where to POST the JSON report.",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {},
                "description": "Extra HTTP headers, e.g. {X-Api-Key: ...}.",
            },
            "auth_token": {
                "type": "string",
                "description": "Sent as 'Authorization: Bearer <auth_token>' (masked by config --check).",
            },
            "alert_after": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "Send a fail only when this many runs of a command failed in a row.",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.url = str(options["url"])
        self.headers = {str(k): str(v) for k, v in dict(options.get("headers") or {}).items()}
        if options.get("auth_token"):
            self.headers["Authorization"] = f"Bearer {options['auth_token']}"
        self.alert_after = int(options.get("alert_after", 1))
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))

    def ping(self, state: str, payload: Mapping[str, Any]) -> None:
        document = dict(payload)
        if state in ("finish", "fail") and self.alert_after > 1:
            failures = self._count(str(payload.get("command", "")), state == "fail")
            document["consecutive_failures"] = failures
            if state == "fail" and failures < self.alert_after:
                log.info("webhook: failure %d of %d in a row; not alerting yet", failures, self.alert_after)
                return
        body = json.dumps(document, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", **self.headers}
        http_send(self.url, body, headers=headers, timeout=self.timeout, what="webhook")

    def _count(self, command: str, failed: bool) -> int:
        """Failures of ``command`` in a row, this run included; 0 after a success."""
        key = hashlib.blake2b(f"{self.url}\0{command}".encode(), digest_size=8).hexdigest()
        path = state_dir() / f"webhook-{key}.json"
        try:
            previous = int(json.loads(path.read_text(encoding="utf-8")).get("failures", 0))
        except (OSError, ValueError, AttributeError):
            previous = 0  # no file yet, or a damaged one: start counting again
        failures = previous + 1 if failed else 0
        _write_atomically(path, json.dumps({"command": command, "failures": failures}))
        return failures


def _write_atomically(path: Path, text: str) -> None:
    """Two runs finishing at once must not leave a half-written count."""
    import tempfile  # at use, not in every command's start-up

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@hookimpl
def vger_register_monitors() -> list[type[Any]]:
    return [WebhookMonitor]
