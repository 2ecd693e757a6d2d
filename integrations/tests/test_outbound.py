"""The outbound guard. Private and public addresses are only ever *decided* on (a resolver
that answers from a table, or literal IPs resolved locally); real requests go to 127.0.0.1,
allowed through OUTBOUND_ALLOWED_HOSTS."""

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
