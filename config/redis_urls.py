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


def channel_layer_host(url: str) -> dict[str, object]:
    """channels-redis's connection settings for `url` (redis-py's URL form).

    The read timeout stays above the layer's 5 s blocking wait, so an idle socket is not closed
    as "Timeout reading from …" and a dead Redis is still noticed; idle connections are pinged
    before use. TCP keepalive only over TCP: redis-py's Unix socket connection refuses the
    option, which made every group_send of the embedded Redis fail."""
    host: dict[str, object] = {
        "address": url,
        "socket_timeout": 20,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    if not is_unix_socket(url):
        host["socket_keepalive"] = True
    return host
