"""Outbound requests to user-supplied URLs (URL import, webhooks), guarded against SSRF.

`check_url` decides, without connecting, whether a URL may be fetched: http(s)
only, and every address its host resolves to must be public — not private,
loopback, link-local (which covers the 169.254.169.254 cloud metadata
service), multicast, reserved, unspecified, shared (100.64/10) or an IPv6
form of those (IPv4-mapped, 6to4, NAT64, ULA, the AWS fd00:ec2::254
metadata address) — unless the host is listed in OUTBOUND_ALLOWED_HOSTS.
Odd spellings (`127.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are
resolved the way the operating system would, so they are caught too.

`request` resolves each hop once, checks it, and connects to exactly the
address it checked (the Host header and TLS SNI keep the name, and the
certificate is verified against it), so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot redirect it; the socket's peer
is compared with that address before anything is sent. Redirects are followed
by hand and every hop is checked again; the size is capped and the deadline
holds for every read (a server dripping bytes is cut off when it passes).
"""

from __future__ import annotations

import http.client
import ipaddress
import json as jsonlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from config.errors import ValidationFailed

Resolver = Callable[[str, int], list[str]]
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("169.254.169.254")}
_EXTRA_BLOCKED = [ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("64:ff9b::/96")]


class OutboundRefused(ValidationFailed):
    def __init__(self, detail: str, code: str = "outbound_refused"):
        super().__init__(detail, code, "url")


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"The host {host!r} could not be resolved ({exc}).", "unresolvable_host") from None
    return sorted({info[4][0] for info in infos})


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour):
            if embedded is not None:
                return address_is_public(str(embedded))
    if ip in _METADATA or any(ip in network for network in _EXTRA_BLOCKED):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


@dataclass(frozen=True)
class CheckedURL:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]
    allowed_by_setting: bool


def _allowed_host(host: str) -> bool:
    allowed = {h.strip().lower().strip("[]") for h in settings.OUTBOUND_ALLOWED_HOSTS if h.strip()}
    return host.lower().strip("[]") in allowed


def check_url(url: str, resolver: Resolver = system_resolver) -> CheckedURL:
    """Decide whether `url` may be fetched; raises OutboundRefused (400) with the reason."""
    if not isinstance(url, str) or len(url) > 2048:
        raise OutboundRefused("The URL must be a string of at most 2048 characters.", "invalid_url")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("Only http and https URLs can be fetched.", "unsupported_scheme")
    if not parts.hostname:
        raise OutboundRefused("The URL has no host.", "invalid_url")
    if parts.username or parts.password:
        raise OutboundRefused("URLs with credentials are not fetched.", "invalid_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused("The URL's port is not valid.", "invalid_url") from None
    host = parts.hostname
    if _allowed_host(host):
        return CheckedURL(url, host, port, (), True)
    addresses = tuple(resolver(host, port))
    if not addresses:
        raise OutboundRefused(f"The host {host!r} did not resolve to any address.", "unresolvable_host")
    for address in addresses:
        if not address_is_public(address):
            raise OutboundRefused(
                f"The host {host!r} resolves to {address}, a private, loopback, link-local or otherwise "
                "non-public address; Precis does not fetch those.",
                "private_address",
            )
    return CheckedURL(url, host, port, addresses, False)


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes
    filename: str


class OutboundError(Exception):
    """The fetch failed after the guard allowed it (too big, too slow, HTTP error)."""

    def __init__(self, code: str, detail: str, transient: bool = False):
        super().__init__(detail)
        self.code, self.detail, self.transient = code, detail, transient


Connector = Callable[[str, int, float], socket.socket]


def open_socket(address: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection to exactly `address` (tests replace this to see the decision)."""
    return socket.create_connection((address, port), timeout=timeout_s)


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.OUTBOUND_CA_BUNDLE or None)


def _connect(checked: CheckedURL, scheme: str, address: str, remaining: float, connector: Connector):
    """An HTTP connection pinned to `address`, speaking as `checked.host`."""
    try:
        sock = connector(address, checked.port, min(5.0, remaining))
    except TimeoutError:
        raise OutboundError("fetch_timeout", "The remote server took too long to accept.", transient=True) from None
    except OSError as exc:
        raise OutboundError("fetch_failed", f"Could not reach the URL ({exc.__class__.__name__}).", True) from None
    try:
        peer = sock.getpeername()[0]
    except OSError:
        peer = None
    if peer is None or ipaddress.ip_address(peer.split("%", 1)[0]) != ipaddress.ip_address(address):
        sock.close()
        raise OutboundRefused(f"The connection went to an unexpected address ({peer}).", "private_address")
    if scheme == "https":
        try:
            sock = _tls_context().wrap_socket(sock, server_hostname=checked.host)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise OutboundError("fetch_failed", f"TLS with {checked.host} failed ({exc.__class__.__name__}).") from None
    default_port = 443 if scheme == "https" else 80
    connection = http.client.HTTPConnection(checked.host, checked.port if checked.port != default_port else None)
    connection.sock = sock  # already connected, to the address that was checked
    return connection, sock


def _pinned_address(checked: CheckedURL, resolver: Resolver) -> str:
    if checked.addresses:
        return checked.addresses[0]
    literal = checked.host.strip("[]")
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        return resolver(checked.host, checked.port)[0]  # an allowed host: resolved once, here


def request(
    method: str,
    url: str,
    *,
    resolver: Resolver = system_resolver,
    connector: Connector = open_socket,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    json: object = None,
) -> Fetched:
    """One guarded request: redirects followed by hand, each hop checked and pinned."""
    max_bytes = max_bytes or settings.OUTBOUND_MAX_BYTES
    deadline = time.monotonic() + (timeout_s or settings.OUTBOUND_TIMEOUT_S)
    headers = dict(headers or {})
    if json is not None:
        data = jsonlib.dumps(json).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    headers.setdefault("User-Agent", "Precis/1")
    headers["Accept-Encoding"] = "identity"  # nothing to inflate: the size cap is the size
    for _hop in range(settings.OUTBOUND_MAX_REDIRECTS + 1):
        checked = check_url(url, resolver)
        parts = urlsplit(url.strip())
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True)
        connection, sock = _connect(checked, parts.scheme, _pinned_address(checked, resolver), remaining, connector)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            response = _exchange(connection, sock, method, target, data, headers, deadline)
            if 300 <= response.status < 400 and response.getheader("Location"):
                url = urljoin(url, response.getheader("Location"))
                if response.status in (301, 302, 303):
                    method, data = "GET", None
                continue
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise OutboundError("fetch_too_large", f"The response is larger than {max_bytes} bytes.")
            body = _read_body(sock, response, max_bytes, deadline)
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            return Fetched(url, response.status, response.getheader("Content-Type") or "", body, name)
        finally:
            connection.close()
            sock.close()
    raise OutboundError("too_many_redirects", f"More than {settings.OUTBOUND_MAX_REDIRECTS} redirects.")


def _timed(sock: socket.socket, deadline: float) -> None:
    """Every socket operation may take only what is left of the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True)
    sock.settimeout(remaining)


def _exchange(connection, sock, method, target, data, headers, deadline) -> http.client.HTTPResponse:
    try:
        _timed(sock, deadline)
        connection.request(method, target, body=data, headers=headers)
        _timed(sock, deadline)
        return connection.getresponse()
    except TimeoutError:
        raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundError("fetch_failed", f"Could not reach the URL ({exc.__class__.__name__}).", True) from None


def _read_body(sock, response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    chunks, total = [], 0
    try:
        while True:
            _timed(sock, deadline)
            chunk = response.read1(64 * 1024)  # what has arrived: a slow server cannot hold a read open
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise OutboundError("fetch_too_large", f"The response is larger than {max_bytes} bytes.")
            chunks.append(chunk)
    except TimeoutError:
        raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundError("fetch_failed", f"The response broke off ({exc.__class__.__name__}).", True) from None
    return b"".join(chunks)
