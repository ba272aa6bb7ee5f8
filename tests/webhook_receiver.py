"""A webhook receiver on loopback that misbehaves on request, and a loopback SMTP server.

The receiver records every POST (headers and body) and answers from a script of statuses
("fail 3 times, then 200"), so a test can count what it acknowledged.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.http_servers import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Script:
    statuses: list[int] = field(default_factory=list)  # answered first, in order
    then: int = 200


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    script: Script
    received: list[Received]
    lock: threading.Lock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/runway"

    def acknowledged(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with self.server.lock:
            script = self.server.script
            status = script.statuses.pop(0) if script.statuses else script.then
            self.server.received.append(
                Received({k.lower(): v for k, v in self.headers.items()}, body, status)
            )
        answer = b"ok" if status < 300 else b"try later"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def receiver(statuses: list[int] | None = None, then: int = 200) -> Iterator[Receiver]:
    httpd = Receiver(("127.0.0.1", 0), _Handler)
    httpd.script = Script(list(statuses or []), then)
    httpd.received = []
    httpd.lock = threading.Lock()
    with serving(httpd):
        yield httpd


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def all(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd's SMTP server on 127.0.0.1 and a free port, keeping every message it gets."""
    inbox = _Inbox()
    with socket.socket() as probe:  # aiosmtpd checks it is up by connecting: it needs the port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # SMTP's line ends


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())
