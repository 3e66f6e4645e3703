"""A scripted HTTP server on 127.0.0.1 for the served-model tests: it answers from a script and misbehaves on cue.

It binds the loopback interface only, answers at most ``MAX_REQUESTS`` requests (then a 400 that no client
retries, so a client stuck in a retry loop fails instead of spinning) and shuts itself down after ``LIFETIME_S``
even if a test never stops it. A stalled reply waits on the server's stop event, so stopping is immediate.

``Script.replies`` are consumed in order, one per request; when they run out the server answers 200 with a
completion. A reply is one of:

* ``(status, payload)`` or ``(status, payload, headers)``: JSON ``payload`` with that status and extra headers;
* a callable ``f(body) -> (status, payload[, headers])``;
* ``"drop"``: the connection is closed without an answer (a crashed server);
* ``"reset"``: the connection is reset (TCP RST, as from a killed proxy);
* ``("truncate", payload)``: headers promise the whole JSON body, half of it is sent, then the connection closes;
* ``("raw", status, text)``: ``text`` sent as the whole body, correctly framed (e.g. JSON cut short by the server);
* ``("stall", seconds, reply)``: nothing for ``seconds`` (or until the server stops), then ``reply``.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUESTS = 200
LIFETIME_S = 300.0
OK = (200, {"choices": [{"text": "x"}]})


class Script:
    """What the server answers, and what it saw: ``seen`` (path, body, auth header, arrival time), the peak
    number of requests in flight; ``barrier`` (optional) makes every request wait for that many in flight."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.delay = 0.0
        self.barrier: threading.Barrier | None = None
        self.seen: list[dict[str, Any]] = []
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.url = ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a reset or dropped connection is what the test scripted, not an error to print


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers: a reset then hits a pooled connection

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self._answer(None)

        def do_POST(self) -> None:
            self._answer(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

        def _answer(self, body: Any) -> None:
            with script.lock:
                script.in_flight += 1
                script.peak = max(script.peak, script.in_flight)
                script.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization"),
                                    "at": time.monotonic()})
                over = len(script.seen) > MAX_REQUESTS
                reply = script.replies.pop(0) if script.replies else OK
            try:
                if over:
                    reply = (400, {"error": {"message": f"scripted server: more than {MAX_REQUESTS} requests"}})
                elif script.barrier is not None:
                    try:
                        script.barrier.wait()
                    except threading.BrokenBarrierError:
                        reply = (400, {"error": {"message": f"barrier: fewer than {script.barrier.parties} "
                                                            "requests in flight together"}})
                if script.delay:
                    script.stopping.wait(script.delay)
                while isinstance(reply, tuple) and reply[0] == "stall":
                    script.stopping.wait(reply[1])
                    reply = reply[2]
            finally:
                with script.lock:
                    script.in_flight -= 1
            self._send(reply, body)

        def _send(self, reply: Any, body: Any) -> None:
            if reply == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply == "reset":
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            if callable(reply):
                reply = reply(body)
            if reply[0] == "truncate":
                data = json.dumps(reply[1]).encode()
                self._head(200, len(data), {})
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply[0] == "raw":
                status, data, headers = reply[1], reply[2].encode(), {}
            else:
                status, payload, *rest = reply
                data, headers = json.dumps(payload).encode(), (rest[0] if rest else {})
            self._head(status, len(data), headers)
            self.wfile.write(data)

        def _head(self, status: int, length: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

    return Handler


class LoopbackServer:
    """Serves ``script`` on 127.0.0.1 on a free port, in a daemon thread, until ``stop()`` or ``LIFETIME_S``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.server = _Server(("127.0.0.1", 0), _handler(script))
        script.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.timer = threading.Timer(LIFETIME_S, self.stop)
        self.timer.daemon = True

    def start(self) -> LoopbackServer:
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        if not self.script.stopping.is_set():
            self.script.stopping.set()  # stalled replies return at once
            self.server.shutdown()
            self.server.server_close()
