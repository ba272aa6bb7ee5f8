"""One Redis URL, spelled the way each client wants it.

The embedded Redis listens on a Unix socket (no port to collide with); redis-py and
channels-redis read ``unix:///path`` while kombu wants ``redis+socket:///path``.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def is_unix_socket(url: str) -> bool:
    return url.startswith(("unix://", "redis+socket://"))


def socket_path(url: str) -> str:
    return urlsplit(url).path


def for_redis_py(url: str) -> str:
    if url.startswith("redis+socket://"):
        return "unix://" + socket_path(url)
    return url


def for_kombu(url: str) -> str:
    if url.startswith("unix://"):
        return "redis+socket://" + socket_path(url)
    return url
