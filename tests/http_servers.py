"""Loopback HTTP servers that misbehave like real ones, for the outbound and health tests.

Each records the requests it got, so a test can prove that a refused request never arrived.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour
    requests: list[str]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/health") -> str:
        return f"http://{self.server_address[0]!s}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: RecordingServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        behaviour = self.server.behaviour
        self.send_response(behaviour.status)
        for name, value in behaviour.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(behaviour.body)))
        self.end_headers()
        self.wfile.write(behaviour.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


@contextmanager
def http_server(host: str = "127.0.0.1", status: int = 200) -> Iterator[RecordingServer]:
    """A threaded HTTP server on `host` (any 127.x address works on Linux) and a free port."""
    httpd = RecordingServer((host, 0), _Handler)
    httpd.behaviour = Behaviour(status=status)
    httpd.requests = []
    with serving(httpd):
        yield httpd


_ServerT = TypeVar("_ServerT", bound=ThreadingHTTPServer)


@contextmanager
def serving(httpd: _ServerT) -> Iterator[_ServerT]:
    """Serve `httpd` on a thread for the block (polling shutdown every 50 ms), then stop it
    and close its socket."""
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class Tarpit:
    """Accepts connections and then answers at a trickle (or never): the slow host a check must
    give up on. `connections` counts who came."""

    def __init__(self, trickle_seconds: float | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.trickle_seconds = trickle_seconds
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self, path: str = "/health") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.trickle_seconds is not None:
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self._stop.wait(self.trickle_seconds):
                        conn.sendall(b"X")  # one byte of a header that never ends
                except OSError:
                    return
            else:
                self._stop.wait()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._accepter.join()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def tarpit(trickle_seconds: float | None = None) -> Iterator[Tarpit]:
    pit = Tarpit(trickle_seconds)
    try:
        yield pit
    finally:
        pit.close()


def closed_port() -> int:
    """A port that was free a moment ago and has nothing listening now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except Exception as exc:
        return exc, time.monotonic() - started
