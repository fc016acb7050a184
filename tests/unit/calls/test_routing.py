from __future__ import annotations

from b2bua.calls.routing import Router
from b2bua.ops.settings import RouteSettings, TrunkSettings
from b2bua.sip import message

TRUNKS = [
    TrunkSettings(name="in", inbound_acl=["127.0.0.2/32", "10.1.0.0/16"], host="", port=5060),
    TrunkSettings(name="out", host="127.0.0.3", port=5080),
    TrunkSettings(name="v6", host="::1", port=5060),
]


def test_acl_matches_networks_only() -> None:
    r = Router(TRUNKS, [])
    assert r.trunk_for_source("127.0.0.2") == "in"
    assert r.trunk_for_source("10.1.200.3") == "in"
    assert r.trunk_for_source("127.0.0.66") is None
    assert r.trunk_for_source("not-an-ip") is None


def test_first_matching_route_with_strip_and_prepend() -> None:
    r = Router(TRUNKS, [
        RouteSettings(pattern="00.*", trunk="out", strip=2, prepend="+"),
        RouteSettings(pattern="[0-9]+", trunk="out", from_trunks=["in"]),
        RouteSettings(pattern="v6.*", trunk="v6"),
    ])
    assert r.route("004930", "in").uri == "sip:+4930@127.0.0.3:5080"  # type: ignore[union-attr]
    assert r.route("4930", "in").uri == "sip:4930@127.0.0.3:5080"  # type: ignore[union-attr]
    assert r.route("4930", "other") is None  # from_trunks restricts
    assert r.route("v6x", None).uri == "sip:v6x@[::1]:5060"  # type: ignore[union-attr]
    assert r.route("abc", "in") is None


def test_request_line_headers_compact_forms_and_folding() -> None:
    whole = ("INVITE sip:123@h SIP/2.0\r\nf: \"Al\\\"ice\" <sip:555@x>;tag=1\r\nt: <sip:123@h>\r\n"
             "i: abc\r\nSubject: long\r\n  folded\r\n\r\nv=0\r\n")
    line, headers = message.request_line_and_headers(whole)
    assert message.request_uri(line) == "sip:123@h"
    assert message.header(headers, "from") == '"Al\\"ice" <sip:555@x>;tag=1'
    assert message.header(headers, "Call-ID") == "abc"
    assert message.header(headers, "Subject") == "long folded"
    assert message.uri_user(message.header(headers, "From") or "") == "555"
    assert message.display_name('"Al\\"ice" <sip:555@x>') == 'Al\\"ice'
    assert message.display_name("Bob <sip:1@x>") == "Bob"
    assert message.uri_user("tel:+4930123") == "+4930123"
    assert message.uri_user("<sips:alice@x;transport=tls>") == "alice"
