"""On the real web server (daphne): an oversized chunked body to the API gets the API's 413
JSON error, not an HTML 400; a declared oversized one too."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration


def raw_post(base: str, body_chunks: list[bytes], *, declared: int | None = None) -> bytes:
    parts = urlsplit(base)
    head = [
        "POST /api/features HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        "Content-Type: application/json",
        "Authorization: Bearer nope",
        "Connection: close",
    ]
    head.append(f"Content-Length: {declared}" if declared else "Transfer-Encoding: chunked")
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in body_chunks:
                if declared:
                    sock.sendall(chunk)
                else:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            if not declared:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data


def test_an_oversized_body_gets_the_apis_413_json(transactional_db, stack) -> None:
    base = stack.start_web()
    chunks = [b"x" * 16384] * 32  # 512 KB, over the 64 KB limit

    for answer in (raw_post(base, chunks), raw_post(base, chunks, declared=512 * 1024)):
        status_line, _, rest = answer.partition(b"\r\n")
        headers, _, body = rest.partition(b"\r\n\r\n")
        assert b" 413 " in status_line, answer[:300]
        assert b"application/json" in headers.lower()
        assert json.loads(body)["error"]["code"] == "too_large"
