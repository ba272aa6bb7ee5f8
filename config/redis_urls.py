"""One Redis URL, spelled the way each client wants it.

The embedded Redis listens on a Unix socket (no port to collide with); redis-py and
channels-redis read ``unix:///path`` while kombu wants ``redis+socket:///path``.
"""

from __future__ import annotations

import socket
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

    No socket timeout (redis-py 8 sets one unless told None): with one, redis-py wraps every
    command's write in ``asyncio.wait_for``, which before Python 3.12 loses a cancellation
    that arrives as the write completes (redis/redis-py#2028). A closed websocket's
    ``receive`` then kept running: a leaked task in daphne, and a test run that waited for
    it forever. Reads need no timeout either: the layer's blocking pop returns every 5 s.
    A dead server is still noticed: a stopped process closes the socket, and over TCP the
    keepalive probes below give up on a silent host within about 25 s. Idle connections are
    pinged before use. TCP options only over TCP: redis-py's Unix socket connection refuses
    them, which made every group_send of the embedded Redis fail."""
    host: dict[str, object] = {
        "address": url,
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    if not is_unix_socket(url):
        host["socket_keepalive"] = True
        host["socket_keepalive_options"] = {
            socket.TCP_KEEPIDLE: 10,  # seconds idle before the first probe
            socket.TCP_KEEPINTVL: 5,  # seconds between probes
            socket.TCP_KEEPCNT: 3,  # unanswered probes before the connection is dropped
        }
    return host
