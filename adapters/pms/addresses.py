"""Where a call to a PMS may go: to the internet, never to the service's own host, its
private networks or a cloud's metadata service, unless the operator names the host.

A practice's admin sets its PMS's URL (Open Dental's base URL, the Eaglesoft bridge's).
Without this rule an admin could point it at `http://127.0.0.1:5432`, `169.254.169.254`
or `10.0.0.7:6379` and make the service call them. So an address is reached only when
it is global (`ipaddress`'s `is_global`: not loopback, private, link-local, shared,
unspecified, reserved or documentation) and not multicast, or when its host (or
host:port) is among the operator's `PAYLEDGER_PMS_ALLOWED_HOSTS` (an office's Open
Dental on the practice's own network, a test's fake on 127.0.0.1).

It is checked twice: when the URL is set (`check_url`: an address written in the URL,
`localhost`, or a name that resolves to a refused address), and at every connection
(`GuardedBackend`: the name resolved then, each address checked, and the connection
made to the address that was checked, so a name that resolves elsewhere a moment later
cannot slip through). PMS calls never follow redirects (adapters/pms/http.py).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The host may not be reached by a PMS call; the message says why."""


@dataclass(frozen=True)
class AllowedHosts:
    """The hosts (`name`, or `name:port`) the operator lets PMS calls reach whatever
    their addresses; names compared lower-case."""

    entries: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowedHosts:
        return cls(frozenset(normal_entry(e) for e in entries if e.strip()))

    def allows(self, host: str, port: int | None) -> bool:
        name = host.strip("[]").lower()
        return name in self.entries or (port is not None and f"{name}:{port}" in self.entries)


def normal_entry(entry: str) -> str:
    """'Host:8080' -> 'host:8080'; '[::1]:8080' -> '::1:8080'; '[::1]' -> '::1'."""
    parts = urlsplit("//" + entry.strip())
    name = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"PAYLEDGER_PMS_ALLOWED_HOSTS lists hosts or host:port, not {entry!r}"
        ) from None
    if not name:
        raise ValueError(f"PAYLEDGER_PMS_ALLOWED_HOSTS lists hosts or host:port, not {entry!r}")
    return f"{name}:{port}" if port is not None else name


def refusal(address: IPAddress) -> str | None:
    """Why a PMS call may not reach the address (None: it may)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return refusal(mapped)
    if address.is_loopback:
        return "a loopback address (this host)"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or not address.is_global:
        return "a private or reserved address"
    return None


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """The name's addresses (the system's resolver), each once, in the resolver's order."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def reachable(host: str, port: int, allowed: AllowedHosts) -> list[str]:
    """The addresses to connect to for host:port, each checked; AddressRefused when any
    address of the host is refused (and the operator does not allow the host)."""
    if allowed.allows(host, port):
        return [host]
    address = literal(host)
    try:
        addresses = [address] if address is not None else resolve(host, port)
    except OSError:
        raise AddressRefused(f"the name {host} could not be resolved") from None
    for found in addresses:
        why = refusal(found)
        if why is not None:
            raise AddressRefused(f"{host} is {why}, which PMS calls may not reach")
    return [str(a) for a in addresses]


def check_url(url: str, allowed: AllowedHosts) -> None:
    """When a PMS URL is set: AddressRefused when it names a refused address, `localhost`,
    or a name that resolves to a refused address. A name that does not resolve now is let
    through: each call checks its addresses again."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused("the URL's port is not a number from 0 to 65535") from None
    if not host:
        raise AddressRefused("the URL names no host")
    if allowed.allows(host, port):
        return
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise AddressRefused(f"{host} is this host, which PMS calls may not reach")
    address = literal(host)
    try:
        addresses = [address] if address is not None else resolve(host, port)
    except OSError:
        return  # not resolvable now: checked again at each call
    for found in addresses:
        why = refusal(found)
        if why is not None:
            raise AddressRefused(f"{host} is {why}, which PMS calls may not reach")


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's connections through `reachable`: the name resolved, every address
    checked, the connection made to a checked address (the TLS handshake still names
    and verifies the host)."""

    def __init__(self, allowed: AllowedHosts) -> None:
        self._allowed = allowed
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failed: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in reachable(host, port, self._allowed):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failed = error
        assert failed is not None
        raise failed

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise AddressRefused("PMS calls do not use local sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport (HTTP/1.1, its default pool limits) on a `GuardedBackend`. No
    proxy from the environment is used: the addresses checked are those connected to."""

    def __init__(self, allowed: AllowedHosts, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allowed),
        )
