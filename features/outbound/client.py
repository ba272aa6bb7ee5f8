"""The request itself: pinned to checked addresses, redirects re-checked, time and size capped.

httpcore2 (the transport under our HTTP client, httpx2) does the HTTP; this module gives it a
network backend that connects only to the addresses `addresses.checked_addresses` returned
for the URL's host (so DNS cannot change its answer between the check and the connection) and
clips every socket operation to one deadline for the whole exchange (so a server that trickles
a byte at a time cannot stretch a 10 s check into minutes).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpcore2
import httpx2

from features.outbound.addresses import IPAddress, Target, checked_addresses, parse_url
from features.outbound.errors import OutboundError, Refused, Unreachable

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Runway (+outbound)"

__all__ = ["OutboundError", "Refused", "Response", "Unreachable", "fetch"]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    url: str  # the URL that answered, after any redirects
    truncated: bool  # the body was longer than max_bytes; the rest was not read


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def clip(self, timeout: float | None) -> float:
        left = self.remaining()
        if left <= 0:
            raise httpcore2.ReadTimeout("time limit reached")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A socket stream whose every read, write and handshake ends by the deadline."""

    def __init__(self, inner: httpcore2.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clip(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        stream = self._inner.start_tls(ssl_context, server_hostname, self._deadline.clip(timeout))
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore2.NetworkBackend):
    """Connects to the checked addresses only, whatever host name the connection asks for."""

    def __init__(self, addresses: list[IPAddress], deadline: _Deadline) -> None:
        self._addresses = addresses
        self._deadline = deadline
        self._sockets = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        failure: Exception = httpcore2.ConnectError("no address")
        for address in self._addresses:
            try:
                stream = self._sockets.connect_tcp(
                    str(address),
                    port,
                    timeout=self._deadline.clip(timeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("outbound requests never use unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(self._deadline.remaining(), 0)))


# What the transport raises when there is no usable answer. All of them mean "unreachable".
_TRANSPORT_ERRORS = (
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
    ssl.SSLError,
    OSError,
)


def _exchange(
    target: Target,
    addresses: list[IPAddress],
    deadline: _Deadline,
    *,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
    max_bytes: int,
) -> tuple[int, dict[str, str], bytes, bool]:
    timeout = deadline.clip(None)
    pool = httpcore2.ConnectionPool(
        ssl_context=httpx2.create_ssl_context(),
        network_backend=_PinnedBackend(addresses, deadline),
        max_connections=1,
        retries=0,
    )
    with (
        pool,
        pool.stream(
            method,
            target.url,
            headers=[("Host", _host_header(target)), ("User-Agent", USER_AGENT), *headers],
            content=body or None,
            extensions={
                "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            },
        ) as response,
    ):
        chunks: list[bytes] = []
        size, truncated = 0, False
        for chunk in response.iter_stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                truncated = True  # stop reading: closing the stream drops the connection
                break
        response_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
        }
        return response.status, response_headers, b"".join(chunks)[:max_bytes], truncated


def _host_header(target: Target) -> str:
    return target.url.split("://", 1)[1].split("/", 1)[0]


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    max_redirects: int = 0,
) -> Response:
    """Send one request to a user-given URL, safely.

    `timeout` (seconds) bounds the whole exchange: DNS, connect, TLS, every redirect and the
    body. At most `max_bytes` of the body are read. Redirects are followed up to
    `max_redirects` times, each hop checked like the first; the caller's headers are not sent
    to a redirect target. Raises Refused (URL or address not allowed; nothing sent) or
    Unreachable (no usable answer in time). Any status, 4xx and 5xx included, is a Response.
    """
    deadline = _Deadline(timeout)
    extra = [(k, v) for k, v in (headers or {}).items()]
    current = url
    for hop in range(max_redirects + 1):
        target = parse_url(current)
        addresses = checked_addresses(target, max(deadline.remaining(), 0.01))
        try:
            status, response_headers, content, truncated = _exchange(
                target,
                addresses,
                deadline,
                method=method,
                headers=extra,
                body=body,
                max_bytes=max_bytes,
            )
        except _TRANSPORT_ERRORS as exc:
            logger.info("outbound %s %s unreachable: %r", method, target.url, exc)
            raise Unreachable() from None
        location = response_headers.get("location")
        if status in REDIRECT_STATUSES and location and hop < max_redirects:
            current = urljoin(target.url, location)
            extra = []  # credentials meant for one host never follow a redirect elsewhere
            if status == 303:
                method, body = "GET", b""
            continue
        return Response(status=status, body=content, url=target.url, truncated=truncated)
    raise AssertionError("unreachable: the loop returns on its last hop")
