"""The contract every monitoring plugin must pass (see :class:`vger.interfaces.Monitor`).

Why these tests: a monitor runs at the worst moment -- when the backup just
failed, the network may be down and the service slow -- and it must never turn
that into a second problem. So the suite checks that each state reaches a real
HTTP server on 127.0.0.1 the way the service expects it, that hostile text
(quotes, newlines, other scripts, a long log tail) travels intact, and that a
server answering 500, a port nobody listens on and a server that never answers
all end in a return -- not an exception, and not a wait longer than the
monitor's ``timeout`` option.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from vger.interfaces import Monitor
from vger.testing._support import check_component_name, check_options_schema, schema_defaults

STATES = ("start", "finish", "fail")

#: Text that breaks naive formatting: quotes, shell syntax, JSON syntax,
#: newlines, non-Latin scripts and an emoji (HTTP headers are latin-1).
HOSTILE = 'it\'s "quoted" $(touch /tmp/x) `id`; {}\\ \n second line: Größe 日本語 🚀'


@dataclass
class RecordedRequest:
    """One request the loopback server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class LoopbackServer:
    """A real HTTP server on 127.0.0.1 that records requests; ``status`` and ``delay`` set how it answers."""

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """The requests received once there are ``count`` of them (or whatever came within ``timeout``)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urllib.parse.urlsplit(self.path)
            recorded = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            with server.arrived:
                server.requests.append(recorded)
                server.arrived.notify_all()
            if server.delay:
                server.release.wait(server.delay)
            answer = b"OK"
            try:
                self.send_response(server.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up (the slow-server test): fine

        do_GET = do_POST = do_PUT = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextlib.contextmanager
def serve_loopback(path: str = "/ping/3f0c1e52") -> Iterator[LoopbackServer]:
    """Run a recording HTTP server on 127.0.0.1 in a thread; its ``url`` ends in ``path``."""
    state = LoopbackServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()  # a handler held back by ``delay`` answers now
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class MonitorContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``monitor_class`` (required)
        The class your ``vger_register_monitors`` returns.
    ``options_for(url)``
        The options of a config entry that points your monitor at ``url``, a
        loopback HTTP url such as ``http://127.0.0.1:PORT/ping/abc``
        (default ``{"url": url}``). Schema defaults, ``type`` and ``timeout``
        are added for you, as the config would.
    ``check_request(state, payload, request)``
        Assert what your service needs of the request for ``state`` (method,
        path, query, headers, body). The default only checks that it arrived.
    ``silent_states``
        States your monitor deliberately sends nothing for (Uptime Kuma has
        no "start"); the suite checks that nothing is sent then.
    ``timeout``
        The ``timeout`` option (seconds) the suite configures; an unreachable
        or slow server must not keep ``ping`` longer than this plus
        ``timeout_slack``.
    ``max_body_bytes``
        The largest request body acceptable for a payload whose log tail is as
        long as vger ever sends (100 lines of 500 characters).
    """

    monitor_class: ClassVar[type[Any] | None] = None
    silent_states: ClassVar[frozenset[str]] = frozenset()
    timeout: ClassVar[float] = 1.0
    timeout_slack: ClassVar[float] = 2.5
    max_body_bytes: ClassVar[int] = 256 * 1024

    # -- overridable -------------------------------------------------------------------
    def options_for(self, url: str) -> dict[str, Any]:
        return {"url": url}

    def check_request(self, state: str, payload: Mapping[str, Any], request: RecordedRequest) -> None:
        """Per-plugin expectations; the default accepts any request."""

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def sample_payload(state: str, text: str = "", log_lines: int = 3) -> dict[str, Any]:
        """A payload shaped like the one vger sends (docs/monitoring.md)."""
        failed = state == "fail"
        error = f"main: source docs: source path /srv/docs does not exist {text}".strip() if failed else None
        return {
            "state": state,
            "command": "backup",
            "run_id": "3f0c1e52-8c4a-4f7e-9d6b-2a1c5e7f9b10",
            "hostname": "backup-host",
            "vger_version": "0.1.0",
            "repositories": ["main", "offsite"],
            "snapshots": []
            if state != "finish"
            else [
                {
                    "repository": "main",
                    "source_label": "docs",
                    "snapshot": "5bb05ec2" + "0" * 56,
                    "files": 12,
                    "original_size": 123456,
                    "compressed_size": 65432,
                    "deduplicated_size": 4321,
                    "duration": 1.5,
                }
            ],
            "original_size": 123456 if state == "finish" else 0,
            "compressed_size": 65432 if state == "finish" else 0,
            "deduplicated_size": 4321 if state == "finish" else 0,
            "duration": None if state == "start" else 12.345,
            "error": error,
            "summary": f"vger backup {dict(start='started', finish='succeeded', fail='failed')[state]} "
            f"on backup-host{': ' + error if error else ''}",
            "log_tail": ""
            if state == "start"
            else "\n".join(f"INFO hook after: line {i} {text}" for i in range(log_lines)),
        }

    def build(self, url: str) -> Any:
        cls = self.monitor_class
        if cls is None:
            raise TypeError(f"{type(self).__name__} must set monitor_class")
        options = schema_defaults(cls.options_schema)
        options.update({"type": cls.name, "timeout": self.timeout, **self.options_for(url)})
        return cls(options)

    # -- fixtures ----------------------------------------------------------------------------
    @pytest.fixture
    def server(self) -> Iterator[LoopbackServer]:
        with serve_loopback() as server:
            yield server

    # -- the contract ----------------------------------------------------------------------------
    def test_name_and_options_schema(self) -> None:
        cls = self.monitor_class
        assert cls is not None, "set monitor_class"
        check_component_name(cls.name)
        check_options_schema(cls.options_schema)

    def test_is_a_monitor(self, server: LoopbackServer) -> None:
        assert isinstance(self.build(server.url), Monitor)

    def test_building_sends_nothing(self, server: LoopbackServer) -> None:
        # Monitors are built for every command (even `vger list`): no traffic then.
        self.build(server.url)
        assert server.wait_for(1, timeout=0.3) == []

    @pytest.mark.parametrize("state", STATES)
    def test_each_state_reaches_the_server(self, server: LoopbackServer, state: str) -> None:
        payload = self.sample_payload(state)
        self.build(server.url).ping(state, payload)
        if state in self.silent_states:
            assert server.wait_for(1, timeout=0.3) == [], f"{state} is silent but sent a request"
            return
        requests = server.wait_for(1)
        assert requests, f"no request reached the server for {state}"
        self.check_request(state, payload, requests[-1])

    @pytest.mark.parametrize("state", [s for s in STATES if s != "start"])
    def test_hostile_text_and_a_full_log_tail_travel_intact(self, server: LoopbackServer, state: str) -> None:
        if state in self.silent_states:
            pytest.skip(f"{state} is silent")
        payload = self.sample_payload(state, text=HOSTILE + "x" * 400, log_lines=100)
        self.build(server.url).ping(state, payload)
        requests = server.wait_for(1)
        assert requests, f"no request reached the server for {state} with hostile text"
        assert len(requests[-1].body) <= self.max_body_bytes
        self.check_request(state, payload, requests[-1])

    @pytest.mark.parametrize("status", [400, 404, 500, 503])
    def test_an_error_answer_does_not_raise(self, server: LoopbackServer, status: int) -> None:
        server.status = status
        monitor = self.build(server.url)
        for state in STATES:
            monitor.ping(state, self.sample_payload(state))

    def test_an_unreachable_server_does_not_raise_or_hang(self) -> None:
        monitor = self.build(f"http://127.0.0.1:{closed_port()}/ping/3f0c1e52")
        started = time.monotonic()
        for state in STATES:
            monitor.ping(state, self.sample_payload(state))
        assert time.monotonic() - started < 3 * (self.timeout + self.timeout_slack)

    def test_a_slow_server_does_not_raise_and_is_given_up_on_within_the_timeout(
        self, server: LoopbackServer
    ) -> None:
        server.delay = 30.0
        monitor = self.build(server.url)
        state = next(s for s in ("fail", "finish", "start") if s not in self.silent_states)
        started = time.monotonic()
        monitor.ping(state, self.sample_payload(state))
        elapsed = time.monotonic() - started
        assert server.requests, "the request never reached the slow server"
        assert elapsed < self.timeout + self.timeout_slack, (
            f"ping waited {elapsed:.1f} s for a server that does not answer (timeout {self.timeout} s)"
        )
