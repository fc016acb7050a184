from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from b2bua.calls.routing import Router
from b2bua.calls.trunkhealth import TrunkHealth
from b2bua.ops.settings import ConfigError, RouteSettings, TrunkSettings, load_settings
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


# ----------------------------------------------------------------------------- several trunks, failover order
FAILOVER_TRUNKS = [
    TrunkSettings(name="a", host="127.0.0.3", port=5060, failover_timeout_s=4),
    TrunkSettings(name="b", host="127.0.0.8", port=5070),
    TrunkSettings(name="c", host="carrier.example", port=5060),
]


def test_route_lists_every_trunk_in_order_with_its_failover_timeout() -> None:
    r = Router(FAILOVER_TRUNKS, [RouteSettings(pattern="[0-9]+", trunks=["a", "b", "c"], prepend="+")])
    route = r.route("4930", None)
    assert route is not None and (route.trunk, route.uri, route.number) == ("a", "sip:+4930@127.0.0.3:5060", "+4930")
    assert [(t.trunk, t.uri, t.failover_timeout_s) for t in route.targets] == [
        ("a", "sip:+4930@127.0.0.3:5060", 4.0), ("b", "sip:+4930@127.0.0.8:5070", 0.0),
        ("c", "sip:+4930@carrier.example:5060", 0.0)]


def test_down_trunks_are_skipped_and_all_down_means_all_tried_in_order() -> None:
    health = TrunkHealth(["a", "b", "c"])
    r = Router(FAILOVER_TRUNKS, [RouteSettings(trunks=["a", "b", "c"])], health)
    health.record("a", False, 0)
    route = r.route("1", None)
    assert route is not None and route.trunk == "b" and [t.trunk for t in route.targets] == ["b", "c"]
    health.record("c", False, 503)
    assert [t.trunk for t in r.route("1", None).targets] == ["b"]  # type: ignore[union-attr]
    health.record("b", False, 408)
    assert [t.trunk for t in r.route("1", None).targets] == ["a", "b", "c"]  # type: ignore[union-attr]
    health.record("a", True, 200)
    assert [t.trunk for t in r.route("1", None).targets] == ["a"]  # type: ignore[union-attr]


def test_single_trunk_route_is_a_list_of_one() -> None:
    r = Router(FAILOVER_TRUNKS, [RouteSettings(trunk="b")])
    route = r.route("1", None)
    assert route is not None and [t.trunk for t in route.targets] == ["b"]
    assert RouteSettings(trunk="b").targets == ["b"] and RouteSettings(trunks=["b", "a"]).targets == ["b", "a"]


@pytest.mark.parametrize("fields, error", [
    ({}, "set trunk or trunks"),
    ({"trunk": "a", "trunks": ["b"]}, "set trunk or trunks"),
    ({"trunks": ["a", "a"]}, "named twice"),
])
def test_route_names_its_trunks_one_way(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        RouteSettings(**fields)


def test_config_refuses_a_route_to_an_unknown_trunk_or_one_without_host(tmp_path: Path) -> None:
    base = '[[trunks]]\nname = "a"\nhost = "127.0.0.3"\n[[trunks]]\nname = "in"\ninbound_acl = ["10.0.0.0/8"]\n'
    cfg = tmp_path / "c.toml"
    cfg.write_text(base + '[[routes]]\ntrunks = ["a", "nope"]\n')
    with pytest.raises(ConfigError, match=r"routes\[0\]\.trunks.*no trunk named 'nope'"):
        load_settings(cfg)
    cfg.write_text(base + '[[routes]]\ntrunks = ["a", "in"]\n')
    with pytest.raises(ConfigError, match="'in' has no host"):
        load_settings(cfg)
    cfg.write_text(base + '[[routes]]\ntrunks = ["a"]\n')
    assert load_settings(cfg).routes[0].targets == ["a"]


def test_trunk_transport_shapes_the_target_uri() -> None:
    """pjsip picks the transport from the URI: TCP is named, TLS is a sips: URI (no transport parameter)."""
    trunks = [TrunkSettings(name="u", host="192.0.2.1", port=5060),
              TrunkSettings(name="t", host="192.0.2.2", port=5060, transport="tcp"),
              TrunkSettings(name="s", host="carrier.example", port=5061, transport="tls"),
              TrunkSettings(name="s6", host="2001:db8::1", port=5061, transport="tls")]
    r = Router(trunks, [RouteSettings(pattern=f"{n}.*", trunk=n) for n in ("u", "t", "s6", "s")])
    assert r.route("u49", None).uri == "sip:u49@192.0.2.1:5060"  # type: ignore[union-attr]
    assert r.route("t49", None).uri == "sip:t49@192.0.2.2:5060;transport=tcp"  # type: ignore[union-attr]
    assert r.route("s49", None).uri == "sips:s49@carrier.example:5061"  # type: ignore[union-attr]
    assert r.route("s649", None).uri == "sips:s649@[2001:db8::1]:5061"  # type: ignore[union-attr]
