"""Outbound requests to user-supplied URLs (URL import, webhooks), guarded against SSRF.

`check_url` decides, without connecting, whether a URL may be fetched: http(s)
only, and every address its host resolves to must be public — not private,
loopback, link-local (which covers the 169.254.169.254 cloud metadata
service), multicast, reserved, unspecified, shared (100.64/10) or an IPv6
form of those (IPv4-mapped, 6to4, NAT64, ULA, the AWS fd00:ec2::254
metadata address) — unless the host is listed in OUTBOUND_ALLOWED_HOSTS.
Odd spellings (`127.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are
resolved the way the operating system would, so they are caught too.

`fetch` follows redirects itself, checking every hop, then checks the
address it actually connected to (DNS rebinding), and caps size and time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
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


def _peer_address(response: requests.Response) -> str | None:
    try:
        sock = response.raw._connection.sock  # urllib3 keeps the socket it connected
        return sock.getpeername()[0] if sock else None
    except AttributeError:
        return None


def request(
    method: str,
    url: str,
    *,
    session: requests.Session | None = None,
    resolver: Resolver = system_resolver,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
    **kwargs,
) -> Fetched:
    """One guarded request (redirects followed by hand, each hop checked)."""
    session = session or requests.Session()
    max_bytes = max_bytes or settings.OUTBOUND_MAX_BYTES
    deadline = time.monotonic() + (timeout_s or settings.OUTBOUND_TIMEOUT_S)
    for _hop in range(settings.OUTBOUND_MAX_REDIRECTS + 1):
        checked = check_url(url, resolver)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True)
        try:
            response = session.request(
                method, url, stream=True, allow_redirects=False, timeout=(min(5, remaining), remaining), **kwargs
            )
        except requests.Timeout:
            raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True) from None
        except requests.RequestException as exc:
            raise OutboundError("fetch_failed", f"Could not reach the URL ({exc.__class__.__name__}).", True) from None
        with response:
            peer = _peer_address(response)
            if peer and not checked.allowed_by_setting and not address_is_public(peer):
                raise OutboundRefused(f"The connection went to a non-public address ({peer}).", "private_address")
            if response.is_redirect and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                method = "GET" if response.status_code in (301, 302, 303) else method
                kwargs.pop("data", None) if method == "GET" else None
                continue
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise OutboundError("fetch_too_large", f"The response is larger than {max_bytes} bytes.")
            chunks, total = [], 0
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise OutboundError("fetch_too_large", f"The response is larger than {max_bytes} bytes.")
                if time.monotonic() > deadline:
                    raise OutboundError("fetch_timeout", "The remote server took too long.", transient=True)
                chunks.append(chunk)
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            return Fetched(url, response.status_code, response.headers.get("Content-Type", ""), b"".join(chunks), name)
    raise OutboundError("too_many_redirects", f"More than {settings.OUTBOUND_MAX_REDIRECTS} redirects.")
