"""Which hosts and addresses an outbound request may reach.

Rules (IANA special-purpose registries, RFC 6890 for IPv4 and RFC 6890/4291 for IPv6, as
tabulated by the standard library's ``ipaddress``): loopback, private, link-local,
unique-local, multicast, unspecified, reserved/non-global and cloud metadata addresses are
refused, for every address a name resolves to. IPv6 forms that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4, Teredo) are judged by that IPv4
address. Integer, octal, hex and short IPv4 spellings ("2130706433", "0x7f000001", "127.1")
are resolved by the system's resolver like any name and judged by the address they become.

The operator's ``RUNWAY_OUTBOUND_ALLOW`` (comma-separated host names, ``*.suffix`` patterns,
addresses and CIDR ranges) lets named hosts or ranges through.
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

import httpx2
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from features.outbound.errors import Refused, Unreachable

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Instance metadata services answer on these (AWS, GCP and Azure on 169.254.169.254, AWS ECS on
# 169.254.170.2, AWS over IPv6 on fd00:ec2::254, Alibaba on 100.100.100.200, Oracle on
# 192.0.0.192). Each is in a refused range anyway; naming them makes the refusal clearer.
METADATA_ADDRESSES = frozenset(
    ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_UNIQUE_LOCAL = ip_network("fc00::/7")
_SITE_LOCAL = ip_network("fec0::/10")
_NAT64 = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ip_network("::/96")
_IETF_PROTOCOL = ip_network("192.0.0.0/24")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62}\.)*[a-z0-9_-]{0,63}$")
_ALLOW_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62}\.)*[a-z0-9_-]{0,63}$")
# getaddrinfo has no timeout of its own: it runs here, and the caller waits only so long.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-dns")
DEFAULT_RESOLVE_SECONDS = 5.0


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why an address is never a target, e.g. "a loopback address"; None for a public one."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return refusal_reason(inner)
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, IPv6Address) and ip in _UNIQUE_LOCAL:
        return "a unique-local address"
    if isinstance(ip, IPv4Address) and ip.is_reserved:  # 240.0.0.0/4, broadcast
        return "a reserved, non-public address"
    if ip.is_private or (isinstance(ip, IPv6Address) and ip in _SITE_LOCAL):
        return "a private address"
    if ip.is_reserved or not ip.is_global or ip in _IETF_PROTOCOL:
        return "a reserved, non-public address"
    return None


# --- The operator's allow-list -----------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    def allows_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


@functools.lru_cache(maxsize=8)
def _parse_allow_list(entries: tuple[str, ...]) -> AllowList:
    names: set[str] = set()
    suffixes: list[str] = []
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if not _ALLOW_NAME.match(entry):
            raise ImproperlyConfigured(
                f"RUNWAY_OUTBOUND_ALLOW: {raw!r} is neither a host name (or *.suffix), "
                "an address nor a CIDR range."
            )
        if entry.startswith("*."):
            suffixes.append(entry[1:])
        else:
            names.add(entry)
    return AllowList(frozenset(names), tuple(suffixes), tuple(networks))


def allow_list() -> AllowList:
    """The operator's allow-list from settings.RUNWAY_OUTBOUND_ALLOW (a list of strings).

    Raises ImproperlyConfigured naming an entry that is not a name, address or range.
    """
    return _parse_allow_list(tuple(getattr(settings, "RUNWAY_OUTBOUND_ALLOW", ()) or ()))


# --- URLs and resolution -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed http(s) URL: ASCII host (IDNA), port, and the path with its query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        netloc = host if self.port == default else f"{host}:{self.port}"
        return f"{self.scheme}://{netloc}{self.path}"


def parse_url(url: str) -> Target:
    """An http(s) URL with a host and no credentials, or Refused saying what is wrong."""
    try:
        parsed = httpx2.URL(url)
        host = parsed.raw_host.decode("ascii").lower()
    except (httpx2.InvalidURL, UnicodeError, TypeError, ValueError):
        raise Refused(f"{url!r} is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise Refused(f"{url!r} is not an http(s) URL.")
    if parsed.userinfo:
        raise Refused("URLs with a user name or password are not allowed.")
    if ":" not in host:
        # "localhost." is "localhost": one spelling, so one set of rules and one allow-list entry.
        host = host.rstrip(".")
        if not _HOST_NAME.match(host):
            raise Refused(f"{host!r} is not a valid host name.")
    port = parsed.port or {"http": 80, "https": 443}[parsed.scheme]
    return Target(parsed.scheme, host, port, parsed.raw_path.decode("ascii") or "/")


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int, timeout: float = DEFAULT_RESOLVE_SECONDS) -> list[IPAddress]:
    """Every address `host` resolves to (in the resolver's order, without repeats).

    Raises Unreachable when the name does not resolve within `timeout` seconds.
    """
    literal = _literal(host)
    if literal is not None:
        return [literal]
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(timeout, 0.01))
    except (FutureTimeout, OSError, UnicodeError):
        raise Unreachable() from None
    addresses: list[IPAddress] = []
    for info in infos:
        # A scoped IPv6 address comes back as "fe80::1%eth0": the scope never makes it public.
        ip = ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Unreachable()
    return addresses


def checked_addresses(target: Target, timeout: float = DEFAULT_RESOLVE_SECONDS) -> list[IPAddress]:
    """The addresses a request to `target` may connect to: all of them, or Refused.

    One refused address refuses the host: a name that answers with both a public and a private
    address would otherwise reach the private one whenever the resolver's order changes.
    """
    allowed = allow_list()
    addresses = resolve(target.host, target.port, timeout)
    if allowed.allows_name(target.host):
        return addresses
    for ip in addresses:
        reason = refusal_reason(ip)
        if reason is not None and not allowed.allows_address(ip):
            raise Refused(
                f"{target.host} is not allowed: it points to {reason}. The server's operator "
                "can allow it in RUNWAY_OUTBOUND_ALLOW."
            )
    return addresses


def check_url(url: str, *, timeout: float = DEFAULT_RESOLVE_SECONDS) -> Target:
    """Save-time check of a URL a user gives: Refused if it is malformed or any address it
    resolves to now is refused. A name that does not resolve yet is accepted: it is checked
    again, with whatever it resolves to then, before every request."""
    target = parse_url(url)
    with contextlib.suppress(Unreachable):
        checked_addresses(target, timeout)
    return target
