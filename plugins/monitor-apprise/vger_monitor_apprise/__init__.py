"""Notifications through Apprise: one url syntax for 100+ services (Slack, Matrix, e-mail, Telegram, ...).

Needs the ``apprise`` package (``pip install 'vger[apprise]'``). Without it this
plugin registers nothing, and a config naming ``type: apprise`` is told which
package to install (``vger.pluginmanager.INSTALL_HINTS``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, ClassVar

from vger import hookimpl
from vger.errors import ConfigError
from vger.monitoring import DEFAULT_TIMEOUT

#: Lines of the log tail in a failure message.
TAIL_LINES = 30


def _with_timeouts(url: str, timeout: float) -> str:
    """Apprise's own connect (``cto``) and read (``rto``) timeouts, unless the url sets them."""
    extra = [f"{key}={timeout:g}" for key in ("cto", "rto") if f"{key}=" not in url]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


class AppriseMonitor:
    """Sends one notification per ping to every Apprise url of the entry."""

    name: ClassVar[str] = "apprise"
    options_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["urls"],
        "properties": {
            "urls": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "Apprise urls, e.g. mailtos://user:password@example.com, tgram://bottoken/chatid.",
            },
            "states": {
                "type": "array",
                "items": {"enum": ["start", "finish", "fail"]},
                "default": ["fail"],
                "description": "Which pings to send; by default only failures notify.",
            },
        },
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        import apprise  # imported here: it is large and only needed when configured

        self._types = {
            "start": apprise.NotifyType.INFO,
            "finish": apprise.NotifyType.SUCCESS,
            "fail": apprise.NotifyType.FAILURE,
        }
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        self.apprise = apprise.Apprise()
        for index, url in enumerate(options["urls"]):
            if not self.apprise.add(_with_timeouts(str(url), timeout)):
                # the url itself is not repeated: it usually holds a password or token
                raise ConfigError(f"urls[{index}] is not an Apprise url Apprise understands")

    def ping(self, state: str, payload: Mapping[str, Any]) -> None:
        verb = {"start": "started", "finish": "succeeded", "fail": "FAILED"}[state]
        title = f"vger {payload.get('command', '')} {verb} on {payload.get('hostname', '')}"
        body = str(payload.get("summary", ""))
        if state == "fail" and payload.get("log_tail"):
            body += "\n\n" + "\n".join(str(payload["log_tail"]).splitlines()[-TAIL_LINES:])
        # notify() logs and returns False when a service fails; it does not raise for that.
        self.apprise.notify(title=title, body=body, notify_type=self._types[state])


@hookimpl
def vger_register_monitors() -> list[type[Any]]:
    # find_spec, not import: apprise takes a while to import and most runs never use it.
    if importlib.util.find_spec("apprise") is None:
        return []
    return [AppriseMonitor]
