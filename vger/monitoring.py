"""Monitoring: telling outside services that a run started, finished or failed.

Glossary:

run
    One monitored command -- ``backup``, ``prune``, ``compact``, ``check`` --
    or the no-command cycle (``cycle``), which counts as one run: a service
    watching the nightly ``vger`` hears one start and one finish, not four.
state
    ``start`` (before the run's ``before`` hooks), ``finish`` (it succeeded)
    or ``fail`` (it did not; a backup that left unreadable files out, exit
    code 3, is a failure too: someone should look).
payload
    The mapping every :class:`vger.interfaces.Monitor` gets with a state; its
    keys are documented in ``docs/monitoring.md`` and built by :func:`payload`.
log tail
    The last lines vger logged during the run (hook output, warnings, the
    errors of failed steps), kept in memory and bounded, sent with ``finish``
    and ``fail`` so the alert says what happened without a trip to the logs.

The core decides *when* to ping and with what (this module, registered on the
plugin manager as a lifecycle listener); plugins only know *how* to reach their
service. Every ping runs in a thread of its own with a deadline: a monitor that
hangs (a dead host, a resolver that never answers) costs the run at most its
timeout, and an exception in a monitor is logged, never raised.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vger import __version__, hookimpl
from vger.errors import ConfigError, VgerError
from vger.lifecycle import CommandContext, describe_error

log = logging.getLogger("vger.monitoring")

STATES = ("start", "finish", "fail")
#: The commands worth a ping: those cron runs unattended.
MONITORED_COMMANDS = ("backup", "prune", "compact", "check", "cycle")
#: Seconds a monitor may take by default. Short on purpose: a backup must not
#: wait on a monitoring service, and the ping services answer in milliseconds.
DEFAULT_TIMEOUT = 10.0
#: Extra time a ping thread gets beyond its monitor's timeout (connection set-up
#: and reading the answer are separate socket timeouts in urllib).
DEADLINE_SLACK = 2.0
#: Lines kept for the log tail, and the longest line kept (a runaway hook
#: printing megabytes must not end up in a webhook body).
LOG_TAIL_LINES = 100
LOG_LINE_CHARS = 500


def state_dir() -> Path:
    """Where monitors keep state between runs (consecutive failures): ``$VGER_CACHE_DIR/monitoring``."""
    from vger.cachedir import cache_root

    path = cache_root() / "monitoring"
    path.mkdir(parents=True, exist_ok=True)
    return path


def public_url(url: str) -> str:
    """``scheme://host[:port]`` only: ping urls carry secrets (a check's uuid, a topic, a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def http_send(
    url: str,
    data: bytes | None = None,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "monitor",
) -> int | None:
    """Send one HTTP request with the stdlib; return the status, or None if none came back.

    Never raises for a network problem: it logs a warning naming ``what`` and
    the url's host (never its path, which often is the secret) and returns.
    Only ``http`` and ``https`` urls are sent: urllib would also read
    ``file://`` urls, which is not what a monitoring url is for.
    """
    # Imported here: http.client and ssl cost every ``vger`` start-up otherwise.
    import urllib.error
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.warning("%s: not an http(s) url: %s", what, public_url(url))
        return None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"User-Agent": f"vger/{__version__}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(64 * 1024)
            status: int = response.status
    except urllib.error.HTTPError as exc:
        log.warning("%s: %s answered HTTP %d %s", what, public_url(url), exc.code, exc.reason)
        return exc.code
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused, reset, bad urls
        reason = getattr(exc, "reason", exc)
        log.warning("%s: could not reach %s: %s", what, public_url(url), reason)
        return None
    return status


class LogTail(logging.Handler):
    """The last :data:`LOG_TAIL_LINES` log lines, in memory, for the payloads."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad log call must not break the run
            return
        for line in text.splitlines():
            self.add(line)

    def add(self, line: str) -> None:
        self.lines.append(line if len(line) <= LOG_LINE_CHARS else line[: LOG_LINE_CHARS - 3] + "...")

    def text(self) -> str:
        return "\n".join(self.lines)


def _install(tail: LogTail) -> None:
    """Let INFO lines (hook output) reach the tail without showing them on stderr.

    The console keeps the level the user chose (-v, -q) because the level moves
    from the logger to the console handlers.
    """
    logger = logging.getLogger("vger")
    effective = logger.getEffectiveLevel()
    if effective > logging.INFO:
        for handler in logging.getLogger().handlers:
            if handler.level < effective:
                handler.setLevel(effective)
        logger.setLevel(logging.INFO)
    logger.addHandler(tail)


@dataclass
class _Configured:
    """One ``monitoring`` entry: the built monitor and when it wants pings."""

    label: str
    monitor: Any
    states: frozenset[str]
    commands: frozenset[str]
    timeout: float


@dataclass
class _Run:
    ctx: CommandContext
    started: float
    run_id: str
    repositories: list[str] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)


def payload(
    state: str,
    command: str,
    *,
    run_id: str,
    repositories: list[str],
    snapshots: list[dict[str, Any]],
    duration: float | None,
    error: str | None,
    log_tail: str,
) -> dict[str, Any]:
    """What every monitor gets (docs/monitoring.md lists the keys)."""
    host = socket.gethostname()
    totals = {
        key: sum(int(snap.get(key) or 0) for snap in snapshots)
        for key in ("original_size", "compressed_size", "deduplicated_size")
    }
    verb = {"start": "started", "finish": "succeeded", "fail": "failed"}[state]
    summary = f"vger {command} {verb} on {host}"
    if state == "finish" and snapshots:
        summary += f": {len(snapshots)} snapshot{'s' if len(snapshots) != 1 else ''}, " + (
            f"{_size(totals['deduplicated_size'])} added"
        )
    if duration is not None and state != "start":
        summary += f" in {duration:.1f} s"
    if error:
        summary += f": {error}"
    return {
        "state": state,
        "command": command,
        "run_id": run_id,
        "hostname": host,
        "vger_version": __version__,
        "repositories": list(repositories),
        "snapshots": [dict(snap) for snap in snapshots],
        **totals,
        "duration": None if duration is None else round(duration, 3),
        "error": error,
        "summary": summary,
        "log_tail": log_tail,
    }


def _size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


class MonitoringFanOut:
    """Turns lifecycle events into ``start``/``finish``/``fail`` pings of the configured monitors."""

    plugin_name = "vger-monitoring"

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.monitors: list[_Configured] = []
        self.tail = LogTail()
        self._run: _Run | None = None

    # -- configuration -------------------------------------------------------
    @hookimpl
    def vger_configure(self, config: Any) -> None:
        for index, entry in enumerate(getattr(config, "monitoring", ())):
            name = str(entry["type"])
            label = f"monitoring[{index}] ({name})"
            cls = self.registry.get("monitor", name)
            try:
                monitor = cls(dict(entry))
            except VgerError as exc:
                raise ConfigError(f"{config.path}: {label}: {exc}") from None
            except Exception as exc:
                raise ConfigError(f"{config.path}: {label}: {type(exc).__name__}: {exc}") from None
            self.monitors.append(
                _Configured(
                    label=label,
                    monitor=monitor,
                    states=frozenset(entry.get("states", STATES)),
                    commands=frozenset(entry.get("commands", MONITORED_COMMANDS)),
                    timeout=float(entry.get("timeout", DEFAULT_TIMEOUT)),
                )
            )
        if self.monitors:
            _install(self.tail)

    # -- lifecycle -------------------------------------------------------------
    # tryfirst: the start ping goes out before any ``before`` hook can fail;
    # trylast: finish/fail go out after the hooks ran (from vger_finally), so
    # their output is in the tail.
    @hookimpl(tryfirst=True)
    def vger_before(self, ctx: CommandContext) -> None:
        if not self.monitors:
            return
        if self._run is None:
            if ctx.level == "command" and ctx.command in MONITORED_COMMANDS:
                self._run = _Run(ctx, time.monotonic(), str(uuid.uuid4()))
                self.tail.lines.clear()
                self._send(self._run, "start")
            return
        if ctx.level == "repository" and ctx.repository not in self._run.repositories:
            self._run.repositories.append(str(ctx.repository))

    @hookimpl(trylast=True)
    def vger_after(self, ctx: CommandContext) -> None:
        run = self._run
        if run is None:
            return
        if ctx.level == "source" and ctx.result.get("snapshot"):
            stats = ctx.result.get("stats", {})
            run.snapshots.append(
                {
                    "repository": ctx.result.get("repository", ctx.repository),
                    "source_label": ctx.source_label,
                    "snapshot": ctx.result["snapshot"],
                    "files": stats.get("files"),
                    "original_size": stats.get("original_size"),
                    "compressed_size": stats.get("compressed_size"),
                    "deduplicated_size": stats.get("deduplicated_size"),
                    "duration": stats.get("duration"),
                }
            )

    @hookimpl(trylast=True)
    def vger_failed(self, ctx: CommandContext, error: BaseException) -> None:
        run = self._run
        if run is None or ctx is run.ctx:
            return  # the run's own outcome is sent from vger_finally
        where = ctx.command if ctx.level == "command" else ctx.repository
        if ctx.level == "source":
            where = f"{where}: source {ctx.source_label}"
        self.tail.add(f"ERROR {where}: {ctx.error_message}")

    @hookimpl(trylast=True)
    def vger_finally(self, ctx: CommandContext) -> None:
        # After the run's after/failed *and* finally hooks: an unmount that
        # failed in a finally hook is in the log tail too.
        run = self._run
        if run is None or ctx is not run.ctx:
            return
        self._run = None
        if ctx.error is None:
            self._send(run, "finish")
        else:
            self._send(run, "fail", ctx.error_message or describe_error(ctx.error))

    # -- sending ---------------------------------------------------------------
    def _send(self, run: _Run, state: str, error: str | None = None) -> None:
        wanted = [m for m in self.monitors if state in m.states and run.ctx.command in m.commands]
        if not wanted:
            return
        repositories = run.repositories or [
            repo.label for repo in getattr(run.ctx.config, "repositories", ())
        ]
        document = payload(
            state,
            run.ctx.command,
            run_id=run.run_id,
            repositories=repositories,
            snapshots=run.snapshots,
            duration=None if state == "start" else time.monotonic() - run.started,
            error=error,
            log_tail="" if state == "start" else self.tail.text(),
        )
        threads = []
        for configured in wanted:
            thread = threading.Thread(
                target=_ping, args=(configured, state, document), name=f"vger-{configured.label}", daemon=True
            )
            thread.start()
            threads.append((configured, thread, time.monotonic() + configured.timeout + DEADLINE_SLACK))
        for configured, thread, deadline in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                # A daemon thread: it dies with the process and never delays the exit.
                log.warning(
                    "%s: no answer within %.0f s; not waiting for it", configured.label, configured.timeout
                )


def _ping(configured: _Configured, state: str, document: Mapping[str, Any]) -> None:
    started = time.monotonic()
    try:
        configured.monitor.ping(state, document)
    except Exception as exc:
        log.warning("%s: %s ping failed: %s", configured.label, state, describe_error(exc))
    else:
        log.debug("%s: %s ping sent in %.2f s", configured.label, state, time.monotonic() - started)


__all__ = [
    "DEFAULT_TIMEOUT",
    "MONITORED_COMMANDS",
    "STATES",
    "LogTail",
    "MonitoringFanOut",
    "http_send",
    "payload",
    "public_url",
    "state_dir",
]
