"""features.outbound: every address class and spelling refused before anything is sent, the
connection pinned to the checked address, redirects re-checked, time and size capped, vague
errors, and the operator's allow-list.

Servers listen on loopback; every refusal is proved by the server's empty request log and by a
spy on the socket layer that sees no connection attempt."""

from __future__ import annotations

import socket
from typing import Any

import httpcore2
import pytest
from django.core.exceptions import ImproperlyConfigured

from features import outbound
from features.outbound import addresses
from tests.http_servers import closed_port, http_server, tarpit, timed


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the outbound client opens, recorded (and still made)."""
    seen: list[tuple[str, int]] = []
    original = httpcore2.SyncBackend.connect_tcp

    def spy(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        seen.append((host, port))
        return original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore2.SyncBackend, "connect_tcp", spy)
    return seen


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Names the test controls: each lookup of a name pops its next answer (the last repeats)."""
    answers: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        queue = answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[addresses.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in current
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def get(url: str, **kwargs: Any) -> outbound.Response:
    return outbound.fetch(url, timeout=kwargs.pop("timeout", 5), max_bytes=65536, **kwargs)


# --- every class and spelling of address that must never be reached -------------------------

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://2130706433:{port}/",  # integer
    "http://0x7f000001:{port}/",  # hex
    "http://0x7f.0.0.1:{port}/",  # hex octet
    "http://127.1:{port}/",  # short form
    "http://0177.0.0.1:{port}/",  # octal
    "http://017700000001:{port}/",  # octal integer
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/",  # the same, in hex
    "http://0.0.0.0:{port}/",  # unspecified: Linux delivers it to loopback
    "http://0:{port}/",
    "http://LOCALHOST.:{port}/",  # case and trailing dot
]


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_it_refuses_every_spelling_of_loopback_and_sends_nothing(
    spelling: str, connects: list[Any]
) -> None:
    with http_server() as server:
        with pytest.raises(outbound.Refused):
            get(spelling.format(port=server.port))
        assert server.requests == []
    assert connects == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "non-public"),
        ("255.255.255.255", "non-public"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("[::1]", "loopback"),
        ("[::]", "unspecified"),
        ("[fe80::1]", "link-local"),
        ("[fd00::1]", "unique-local"),
        ("[fd00:ec2::254]", "metadata"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:10.0.0.1]", "private"),  # IPv4-mapped
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[64:ff9b::a9fe:a9fe]", "metadata"),  # NAT64 of 169.254.169.254
        ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
        ("[::127.0.0.1]", "loopback"),  # IPv4-compatible
        ("[fec0::1]", "private"),  # site-local
    ],
)
def test_it_refuses_every_non_public_address_class(
    host: str, reason: str, connects: list[Any]
) -> None:
    with pytest.raises(outbound.Refused, match=reason):
        get(f"http://{host}/")
    assert connects == []


def test_it_refuses_a_name_when_any_of_its_addresses_is_private(
    fake_dns: dict[str, Any], connects: list[Any]
) -> None:
    fake_dns["mixed.test"] = [["93.184.215.14", "10.0.0.5"]]

    with pytest.raises(outbound.Refused, match="private"):
        get("http://mixed.test/")
    with pytest.raises(outbound.Refused, match="private"):
        outbound.check_url("http://mixed.test/")  # the same at save time
    assert connects == []


def test_the_save_time_check_refuses_what_the_request_would(connects: list[Any]) -> None:
    for url in ("http://127.0.0.1/", "http://2130706433/", "http://[::ffff:127.0.0.1]/"):
        with pytest.raises(outbound.Refused, match="loopback"):
            outbound.check_url(url)
    with pytest.raises(outbound.Refused, match="not an http"):
        outbound.check_url("file:///etc/passwd")
    with pytest.raises(outbound.Refused, match="user name or password"):
        outbound.check_url("http://user:secret@shop.example/")
    assert outbound.check_url("https://shop.example/health").host == "shop.example"
    assert connects == []


# --- pinning, redirects ------------------------------------------------------------------------


def test_it_connects_to_the_address_it_checked_not_a_second_lookup(
    fake_dns: dict[str, Any], settings: Any
) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server("127.0.0.1") as checked, http_server("127.0.0.2") as rebound:
        # First answer: the allowed address; any later lookup would get another one.
        fake_dns["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]

        response = get(f"http://rebind.test:{checked.port}/health")

        assert response.status == 200
        assert checked.requests == ["/health"]
        assert rebound.requests == []


def test_a_redirect_to_a_refused_address_is_not_followed(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server("127.0.0.1") as first, http_server("127.0.0.2") as internal:
        first.behaviour.status = 302
        first.behaviour.headers["Location"] = internal.url("/admin")

        with pytest.raises(outbound.Refused, match="loopback"):
            get(first.url("/health"), max_redirects=3)

        assert first.requests == ["/health"]
        assert internal.requests == []


def test_an_allowed_redirect_is_followed_and_a_scheme_change_is_refused(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server() as server:
        server.behaviour.status = 301
        server.behaviour.headers["Location"] = "/moved"
        # Without following, the redirect is just a status.
        assert get(server.url("/health")).status == 301
        server.behaviour.headers["Location"] = "file:///etc/passwd"
        with pytest.raises(outbound.Refused, match="not an http"):
            get(server.url("/health"), max_redirects=2)
        server.behaviour.headers["Location"] = "/again"
        # A loop ends at the limit with the last status, after 1 + 2 requests.
        assert get(server.url("/health"), max_redirects=2).status == 301
        assert len(server.requests) == 1 + 1 + 3


# --- time and size caps, errors ----------------------------------------------------------------


def test_a_host_that_never_answers_is_given_up_on_in_time(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with tarpit() as pit:
        outcome, elapsed = timed(lambda: get(pit.url(), timeout=1))

    assert isinstance(outcome, outbound.Unreachable)
    assert pit.connections == 1
    assert elapsed < 10  # the 1 s budget, with room for a loaded machine


def test_a_server_trickling_bytes_cannot_stretch_the_time_limit(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    # A byte every 0.2 s resets any per-read timeout; only a deadline for the whole
    # exchange ends it.
    with tarpit(trickle_seconds=0.2) as pit:
        outcome, elapsed = timed(lambda: get(pit.url(), timeout=1))

    assert isinstance(outcome, outbound.Unreachable)
    assert elapsed < 10


def test_it_reads_at_most_max_bytes(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server() as server:
        server.behaviour.body = b"x" * 1_000_000

        response = outbound.fetch(server.url(), timeout=5, max_bytes=1000)

    assert (response.status, len(response.body), response.truncated) == (200, 1000, True)


def test_errors_say_unreachable_and_nothing_about_the_socket(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    port = closed_port()

    with pytest.raises(outbound.Unreachable) as refused_connection:
        get(f"http://127.0.0.1:{port}/")
    with pytest.raises(outbound.Unreachable) as no_such_name:
        get("http://no-such-host.invalid/")

    assert str(refused_connection.value) == "Unreachable"
    assert str(no_such_name.value) == "Unreachable"


def test_statuses_come_back_as_they_are(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server(status=503) as server:
        server.behaviour.body = b"down"
        response = get(server.url())

    assert (response.status, response.body, response.truncated) == (503, b"down", False)


# --- the operator's allow-list -----------------------------------------------------------------


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "localhost", "*.test"])
def test_the_allow_list_lets_named_hosts_and_ranges_through(
    entry: str, settings: Any, fake_dns: dict[str, Any]
) -> None:
    fake_dns["status.internal.test"] = [["127.0.0.1"]]
    settings.RUNWAY_OUTBOUND_ALLOW = [entry]
    host = {"localhost": "localhost", "*.test": "status.internal.test"}.get(entry, "127.0.0.1")
    with http_server() as server:
        assert get(f"http://{host}:{server.port}/health").status == 200
        assert server.requests == ["/health"]


def test_an_allowed_range_does_not_allow_its_neighbours(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.2/32"]
    with http_server() as server:
        with pytest.raises(outbound.Refused):
            get(server.url())
        assert server.requests == []


def test_a_bad_allow_list_entry_stops_with_its_name(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["10.0.0.0/8", "not a host!"]

    with pytest.raises(ImproperlyConfigured, match="not a host!"):
        get("http://127.0.0.1/")
