"""Interrupt a provider's HTTP call from another thread: on Stop, and when the step's time is up.

A thread blocked reading a socket is not woken on Linux when another thread *closes* that
socket; it is woken when the socket is *shut down*. So the HTTP client the SDKs are given here
records every socket a call opens (httpcore's documented ``trace`` request extension reports
each new connection), and a watcher thread shuts them down as soon as the run's cancel event is
set or the call's deadline passes. The SDK's read then fails or ends at once, and the provider
reports the step as cancelled or timed out instead of waiting for the server.

Connections are not kept alive between calls: a reused connection opens no new socket to
record, and one TCP (and TLS) handshake is nothing beside an LLM call.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import httpx2

from pipeline.providers import errors
from pipeline.providers.base import StepCancelled

# How often the watcher looks whether the call has ended (cancel wakes it at once).
WATCH_SECONDS = 0.25

_current: ContextVar[Call | None] = ContextVar("runway_provider_call", default=None)


class Call:
    """One provider call in flight: its sockets, its cancel event and its deadline."""

    def __init__(self, cancelled: threading.Event, seconds: float) -> None:
        self.cancelled = cancelled
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.timed_out = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._interrupted = False
        self._ended = threading.Event()

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def adopt(self, sock: socket.socket | None) -> None:
        """A socket this call opened; shut down at once if the call was interrupted already."""
        if sock is None:
            return
        with self._lock:
            if not self._interrupted:
                self._sockets.append(sock)
                return
        _shut_down(sock)

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut_down(sock)

    def check(self, label: str) -> None:
        """Raise what an interrupted call means: StepCancelled, or a (transient) timeout."""
        if not self._interrupted:
            return
        if self.timed_out:
            raise errors.timed_out(label, self.seconds)
        raise StepCancelled

    def watch(self) -> None:
        while not self._ended.is_set():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                self.interrupt()
                return
            if self.cancelled.wait(min(remaining, WATCH_SECONDS)):
                self.interrupt()
                return

    def end(self) -> None:
        self._ended.set()


def _shut_down(sock: socket.socket) -> None:
    # The base class's shutdown also works on an SSLSocket without tearing down its SSL state
    # under the reading thread's feet; a socket already closed or detached (wrapped in TLS) is
    # fine to skip, its TLS stream was adopted as well.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def interruptible(cancelled: threading.Event, seconds: float) -> Iterator[Call]:
    """Run an SDK call in the block; its sockets are shut down on cancel or after `seconds`.

    After the block (whether it returned or raised), call ``Call.check(label)``: a call that was
    interrupted may look to the SDK like an ordinary end of stream or a dropped connection.
    """
    call = Call(cancelled, seconds)
    token = _current.set(call)
    watcher = threading.Thread(target=call.watch, name="provider-call-watch", daemon=True)
    watcher.start()
    try:
        yield call
    finally:
        call.end()
        _current.reset(token)


def _tracer(call: Call, previous: Callable[[str, dict[str, Any]], None] | None) -> Any:
    def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):
            stream = info.get("return_value")
            if stream is not None:
                call.adopt(stream.get_extra_info("socket"))
        if previous is not None:
            previous(event, info)

    return trace


class InterruptibleTransport(httpx2.HTTPTransport):
    """httpx's transport, telling the call in flight (if any) about each socket it opens."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _current.get()
        if call is not None:
            if call.interrupted:  # before the request went out: never send it
                raise httpx2.ConnectError("interrupted before sending", request=request)
            request.extensions = {
                **request.extensions,
                "trace": _tracer(call, request.extensions.get("trace")),
            }
        return super().handle_request(request)


def http_client() -> httpx2.Client:
    """An HTTP client for an SDK (``http_client=``) whose calls can be interrupted."""
    transport = InterruptibleTransport(limits=httpx2.Limits(max_keepalive_connections=0))
    return httpx2.Client(transport=transport, follow_redirects=True)
