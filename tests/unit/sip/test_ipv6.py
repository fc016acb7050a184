"""IPv6 (issue 16): an IPv6 ``sip.listen_ip`` gives IPv6 listeners, bracketed Contacts and URIs, and RTP bound to
the IPv6 address (pjsua's ``ipv6Use``) so SDP says ``c=IN IP6``; IPv6 trunk hosts and ACLs are taken as written
("::1" or "[::1]"), and a bad address stops start-up with the file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pjsua2 as pj
import pytest

from b2bua.calls.routing import trunk_uri
from b2bua.ops.carrier_settings import TrunkSettings, trusted_sources
from b2bua.ops.settings import ConfigError, load_settings
from b2bua.sip.config import AccountPlan, EngineConfig, TlsConfig, TrunkMedia, target_of, uri_host
from b2bua.sip.endpoint import account_configs
from b2bua.sip.options import build_options

BASE = '[sip]\nlisten_ip = "::1"\n'


def _engine(public_host: str = "") -> EngineConfig:
    return EngineConfig(listen_ip="::1", listen_port=5060, public_host=public_host, rtp_port_start=40000,
                        rtp_port_count=100, codecs=("PCMU",), user_agent="t", poll_ms=10, log_level=0,
                        media_threads=1, tcp=True, tls=TlsConfig(5061, "c", "k"),
                        trunks=(TrunkMedia("udp", "2001:db8::5", 5070),))


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "b2bua.toml"
    path.write_text(text)
    return load_settings(path)


def test_contacts_bracket_ipv6_and_media_is_bound_ipv6_only() -> None:
    c = _engine()
    assert c.ipv6
    cfgs = account_configs(c, {"udp": 0, "tcp": 1, "tls": 2}, AccountPlan(c))
    assert cfgs["udp"].sipConfig.contactForced == "<sip:b2bua@[::1]:5060>"
    assert cfgs["udp"].idUri == "sip:b2bua@[::1]:5060"
    assert cfgs["tcp"].sipConfig.contactForced == "<sip:b2bua@[::1]:5060;transport=tcp>"
    assert cfgs["tls"].sipConfig.contactForced == "<sips:b2bua@[::1]:5061>"
    for acfg in cfgs.values():
        assert acfg.mediaConfig.transportConfig.boundAddress == "::1"
        assert acfg.mediaConfig.ipv6Use == pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
    public = account_configs(_engine("2001:db8::1"), {"udp": 0, "tcp": 1, "tls": 2}, AccountPlan(_engine()))
    assert public["udp"].sipConfig.contactForced == "<sip:b2bua@[2001:db8::1]:5060>"


def test_ipv4_node_keeps_ipv4_media() -> None:
    c = EngineConfig(listen_ip="127.0.0.1", listen_port=5060, public_host="", rtp_port_start=40000,
                     rtp_port_count=100, codecs=("PCMU",), user_agent="t", poll_ms=10, log_level=0, media_threads=1)
    assert not c.ipv6
    acfg = account_configs(c, {"udp": 0}, AccountPlan(c))["udp"]
    assert acfg.mediaConfig.ipv6Use == pj.PJSUA_IPV6_DISABLED
    assert acfg.sipConfig.contactForced == "<sip:b2bua@127.0.0.1:5060>"


@pytest.mark.parametrize("written", ["::1", "[::1]", "0:0::1"])
def test_trunk_host_written_either_way_is_one_address(written: str) -> None:
    t = TrunkSettings(name="v6", host=written, port=5070, inbound_acl=["::1/128"])
    assert t.host == "::1"
    assert trunk_uri("4930123456", t) == "sip:4930123456@[::1]:5070"
    assert target_of(trunk_uri("4930123456", t)) == ("udp", "::1", 5070)
    assert trusted_sources([t]) == ["::1/128"]
    assert uri_host(t.host) == "[::1]" and uri_host("[::1]") == "[::1]" and uri_host("10.0.0.1") == "10.0.0.1"


def test_account_plan_finds_an_ipv6_trunk_by_its_uri() -> None:
    c = EngineConfig(listen_ip="::1", listen_port=5060, public_host="", rtp_port_start=40000, rtp_port_count=100,
                     codecs=("PCMU",), user_agent="t", poll_ms=10, log_level=0, media_threads=1,
                     tls=TlsConfig(5061, "c", "k"),
                     trunks=(TrunkMedia("tls", "::1", 5071, "mandatory", True, ("AES_CM_128_HMAC_SHA1_80",)),))
    assert AccountPlan(c).for_uri("sips:123@[::1]:5071").srtp == "mandatory"
    assert AccountPlan(c).for_uri("sips:123@[::1]:5072").srtp == "off"


def test_options_ping_to_an_ipv6_host_brackets_every_uri_and_via() -> None:
    text = build_options("::1", 5070, via_host="::1", via_port=40000, branch="z9hG4bKx").decode()
    assert text.startswith("OPTIONS sip:[::1]:5070 SIP/2.0\r\n")
    assert "Via: SIP/2.0/UDP [::1]:40000;rport;branch=z9hG4bKx\r\n" in text
    assert "To: <sip:[::1]:5070>\r\n" in text


def test_ipv6_settings_load(tmp_path: Path) -> None:
    s = _load(tmp_path, '[sip]\nlisten_ip = "[2001:DB8::5]"\npublic_host = "[2001:db8::6]"\n'
                        'media_public_address = "2001:db8::7"\ntrusted_sources = ["2001:db8::/32"]\n'
                        '[[trunks]]\nname = "v6"\nhost = "2001:db8::9"\ninbound_acl = ["2001:db8:1::/48"]\n')
    sip = s.sip  # type: ignore[attr-defined]
    assert (sip.listen_ip, sip.public_host, sip.uri_host) == ("2001:db8::5", "2001:db8::6", "[2001:db8::6]")
    assert sip.trusted_sources == ["2001:db8::/32"]


@pytest.mark.parametrize("text, key, reason", [
    ('[sip]\nlisten_ip = "::g"\n', "sip.listen_ip", "does not appear to be an IPv4 or IPv6 address"),
    ('[sip]\nlisten_ip = "::1"\npublic_host = "[::1"\n', "sip.public_host", "is not an IPv6 address"),
    (BASE + 'media_public_address = "192.0.2.1"\n', "sip", "media_public_address: 192.0.2.1 is not of listen_ip's"),
    (BASE + 'trusted_sources = ["2001:db8::/129"]\n', "sip.trusted_sources", "2001:db8::/129"),
    (BASE + '[[trunks]]\nname = "v6"\nhost = "::1:5060:x"\n', "trunks[0].host", "not an IPv6 address"),
    (BASE + '[[trunks]]\nname = "v6"\nhost = "10.0.0.1:5060"\n', "trunks[0].host", "a port goes in its own"),
    (BASE + '[[trunks]]\nname = "v6"\ninbound_acl = ["fe80::1::2/64"]\n', "trunks[0].inbound_acl",
     "does not appear to be"),
])
def test_bad_ipv6_values_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text)
    assert str(tmp_path / "b2bua.toml") in str(e.value)
    assert e.value.key == key, str(e.value)
    assert reason in str(e.value)


def test_a_build_without_ipv6_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """pjlib's default (and the PyPI wheel's) is no IPv6: pjsua's bare PJ_EINVAL would not say why."""
    from b2bua.sip import endpoint

    monkeypatch.setattr(endpoint, "has_ipv6", lambda: False)
    with pytest.raises(RuntimeError, match="listen_ip ::1 is IPv6, but this pjsua2 build has no IPv6"):
        endpoint.create_endpoint(_engine(), None, lambda level, msg: None)  # type: ignore[arg-type]
