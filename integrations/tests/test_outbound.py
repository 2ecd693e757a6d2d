"""The outbound guard. Private and public addresses are only ever *decided* on (a resolver
that answers from a table, or literal IPs resolved locally); real requests go to 127.0.0.1,
allowed through OUTBOUND_ALLOWED_HOSTS."""

import time

import pytest

from integrations import outbound
from integrations.outbound import OutboundError, OutboundRefused, address_is_public, check_url


def table(mapping):
    def resolve(host, port):
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_refused(address):
    assert not address_is_public(address)
    with pytest.raises(OutboundRefused) as exc:
        check_url("https://innocent.example/doc", resolver=table({"innocent.example": [address]}))
    assert exc.value.get_codes() == "private_address"


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_allowed_without_connecting(address):
    checked = check_url("https://example.org/a", resolver=table({"example.org": [address]}))
    assert checked.addresses == (address,)


def test_one_private_address_among_several_is_enough_to_refuse():
    with pytest.raises(OutboundRefused):
        check_url("http://mixed.example", resolver=table({"mixed.example": ["93.184.216.34", "10.0.0.5"]}))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::1]:8080/",
        "http://0/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_odd_spellings_resolve_to_what_they_are(url):
    with pytest.raises(OutboundRefused) as exc:  # the system resolver parses literals locally: no traffic
        check_url(url)
    assert exc.value.get_codes() == "private_address"


@pytest.mark.parametrize(
    "url, code",
    [
        ("ftp://example.org/x", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("gopher://example.org", "unsupported_scheme"),
        ("http://user:pw@example.org/", "invalid_url"),
        ("http:///nohost", "invalid_url"),
        ("http://example.org:99999/", "invalid_url"),
        ("x" * 3000, "invalid_url"),
    ],
)
def test_malformed_or_unsupported(url, code):
    with pytest.raises(OutboundRefused) as exc:
        check_url(url, resolver=table({"example.org": ["93.184.216.34"]}))
    assert exc.value.get_codes() == code


def test_allowed_hosts_setting(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "intranet.local"]
    assert check_url("http://127.0.0.1:9/x").allowed_by_setting
    assert check_url("http://intranet.local/x", resolver=table({})).allowed_by_setting


class TestRealFetchOnLoopback:
    def test_fetch(self, fake_providers):
        fetched = outbound.request("GET", f"{fake_providers.url}/pages/plan")
        assert fetched.status == 200 and b"Quarterly plan" in fetched.body and "text/html" in fetched.content_type

    def test_redirect_to_a_private_address_is_refused_before_following(self, fake_providers):
        with pytest.raises(OutboundRefused) as exc:
            outbound.request("GET", f"{fake_providers.url}/redirect-to-private")
        assert exc.value.get_codes() == "private_address"
        assert fake_providers.calls[-1] == ("GET", "/redirect-to-private")  # 10.0.0.1 never contacted

    def test_size_cap(self, fake_providers):
        with pytest.raises(OutboundError) as exc:
            outbound.request("GET", f"{fake_providers.url}/pages/plan", max_bytes=50)
        assert exc.value.code == "fetch_too_large"

    def test_loopback_refused_when_not_allowed(self, fake_providers, settings):
        settings.OUTBOUND_ALLOWED_HOSTS = []
        with pytest.raises(OutboundRefused):
            outbound.request("GET", f"{fake_providers.url}/pages/plan")
        assert ("GET", "/pages/plan") not in fake_providers.calls


class TestPinnedConnections:
    """Each hop connects to the very address that was checked; decided without leaving loopback."""

    def test_dns_rebinding_cannot_move_the_connection(self):
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public to the check, internal afterwards
        calls = []

        def rebinding(host, port):
            calls.append(host)
            return next(answers)

        attempted = []

        def connector(address, port, timeout):
            attempted.append((address, port))
            raise ConnectionRefusedError  # the decision is what is tested: nothing is sent anywhere

        with pytest.raises(OutboundError):
            outbound.request("GET", "http://rebind.example/internal", resolver=rebinding, connector=connector)
        assert attempted == [("93.184.216.34", 80)] and calls == ["rebind.example"]  # resolved once, pinned

    def test_a_peer_other_than_the_checked_address_is_refused(self, fake_providers, settings):
        import socket

        settings.OUTBOUND_ALLOWED_HOSTS = ["pinned.example"]
        port = int(fake_providers.url.rsplit(":", 1)[1])

        def elsewhere(address, _port, timeout):
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)  # not what was asked

        with pytest.raises(OutboundRefused) as exc:
            outbound.request(
                "GET",
                f"http://pinned.example:{port}/pages/plan",
                resolver=table({"pinned.example": ["127.0.0.2"]}),
                connector=elsewhere,
            )
        assert exc.value.get_codes() == "private_address" and ("GET", "/pages/plan") not in fake_providers.calls

    def test_host_header_and_tls_name_stay_the_requested_ones(self, settings, tmp_path):
        server = TLSServer(tmp_path, "pinned.example")
        settings.OUTBOUND_ALLOWED_HOSTS = ["pinned.example"]
        settings.OUTBOUND_CA_BUNDLE = str(server.cert_path)
        try:
            fetched = outbound.request(
                "GET",
                f"https://pinned.example:{server.port}/hello?x=1",
                resolver=table({"pinned.example": ["127.0.0.1"]}),
            )
        finally:
            server.stop()
        assert fetched.status == 200 and fetched.body == b"hello over tls"
        assert server.seen == {"sni": "pinned.example", "host": f"pinned.example:{server.port}", "path": "/hello?x=1"}

    def test_the_deadline_holds_for_every_read(self, settings):
        server = DripServer()
        settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
        started = time.monotonic()
        try:
            with pytest.raises(OutboundError) as exc:
                outbound.request("GET", f"http://127.0.0.1:{server.port}/drip", timeout_s=1.0)
        finally:
            server.stop()
        assert exc.value.code == "fetch_timeout" and time.monotonic() - started < 1.5  # was 9.5 s for a 2 s budget


class DripServer:
    """Answers with headers at once, then one byte every 0.2 s for a minute."""

    def __init__(self):
        import socket
        import threading

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 300\r\n\r\n")
            for _ in range(300):
                if self.stopped.wait(0.2):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    def stop(self):
        self.stopped.set()
        self.listener.close()


class TLSServer:
    """A loopback HTTPS server with a self-signed certificate for `name`; records SNI and Host."""

    def __init__(self, tmp_path, name: str):
        import datetime
        import ssl
        import threading

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_path = tmp_path / "cert.pem"
        key_path = tmp_path / "key.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.seen: dict[str, str] = {}
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        context.sni_callback = lambda _sock, server_name, _ctx: self.seen.update(sni=server_name)
        import socket

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.context = context
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            raw, _ = self.listener.accept()
            with self.context.wrap_socket(raw, server_side=True) as conn:
                request = conn.recv(8192).decode("latin-1")
                line, *headers = request.split("\r\n")
                self.seen["path"] = line.split(" ")[1]
                for header in headers:
                    if header.lower().startswith("host:"):
                        self.seen["host"] = header.split(":", 1)[1].strip()
                body = b"hello over tls"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
        except OSError:
            return

    def stop(self):
        self.listener.close()
