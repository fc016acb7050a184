"""Which pjsua accounts the engine opens for trunks' SRTP, and which one each outgoing leg uses (plain Python:
``b2bua.sip.config.AccountPlan``)."""

from __future__ import annotations

import pytest

from b2bua.sip.config import AccountPlan, AccountSpec, EngineConfig, TlsConfig, TrunkMedia, target_of

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


def _config(*trunks: TrunkMedia, tcp: bool = False, tls: bool = True) -> EngineConfig:
    return EngineConfig(listen_ip="127.0.0.1", listen_port=5060, public_host="", rtp_port_start=40000,
                        rtp_port_count=100, codecs=("PCMU",), user_agent="t", poll_ms=10, log_level=0,
                        media_threads=1, tcp=tcp, tls=TlsConfig(5061, "c", "k") if tls else None, trunks=trunks)


def _names(plan: AccountPlan) -> list[str]:
    return [a.name for a in plan.accounts]


def test_no_srtp_keeps_one_plain_account_per_listener_inbound_first() -> None:
    plan = AccountPlan(_config(TrunkMedia("udp", "10.0.0.1"), tcp=True))
    assert _names(plan) == ["tls", "tcp", "udp"]
    assert all(a.inbound and a.srtp == "off" for a in plan.accounts)
    assert plan.for_uri("sip:49301@10.0.0.1:5060").name == "udp"
    assert plan.for_uri("sip:49301@10.0.0.1:5060;transport=tcp").name == "tcp"
    assert plan.for_uri("sips:49301@10.0.0.1:5061").name == "tls"


def test_mandatory_tls_trunk_gets_its_account_and_plain_tls_legs_keep_a_plain_one() -> None:
    plan = AccountPlan(_config(TrunkMedia("tls", "10.0.0.3", 5061, "mandatory", True, SUITES),
                               TrunkMedia("tls", "10.0.0.4", 5061)))
    inbound = plan.accounts[0]
    # one plain TLS trunk among them: the inbound TLS account takes SRTP offers but does not insist
    assert inbound == AccountSpec("tls", "tls", "optional", True, SUITES, inbound=True)
    assert _names(plan) == ["tls", "udp", "tls-plain", "tls-srtp-mandatory"]
    srtp = plan.for_uri("sips:4930123@10.0.0.3:5061")
    assert (srtp.name, srtp.srtp, srtp.secure_signaling, srtp.suites) == ("tls-srtp-mandatory", "mandatory", True,
                                                                          SUITES)
    assert plan.for_uri("sips:4930123@10.0.0.4:5061").name == "tls-plain"
    assert plan.for_uri("sips:4930123@10.0.0.9:5061").name == "tls-plain"  # not a trunk: plain
    assert plan.for_uri("sip:4930123@10.0.0.3:5061").name == "udp"  # same host, another transport
    assert plan.for_uri("sips:4930123@10.0.0.3:5062").name == "tls-plain"  # same host, another port


def test_every_trunk_on_a_transport_mandatory_makes_its_inbound_account_mandatory_and_shared() -> None:
    plan = AccountPlan(_config(TrunkMedia("tls", "10.0.0.3", 5061, "mandatory", True, SUITES),
                               TrunkMedia("udp", "10.0.0.5")))
    assert plan.accounts[0] == AccountSpec("tls", "tls", "mandatory", True, SUITES, inbound=True)
    assert plan.for_uri("sips:1@10.0.0.3:5061").name == "tls"  # the inbound account has the same settings
    assert plan.for_uri("sips:1@10.0.0.7").name == "tls-plain"
    assert plan.accounts[-1] == AccountSpec("tls-plain", "tls")
    assert plan.for_uri("sip:1@10.0.0.5").name == "udp"


def test_optional_udp_trunk_without_secure_signalling_and_inbound_only_trunks() -> None:
    plan = AccountPlan(_config(TrunkMedia("udp", "10.0.0.6", 5070, "optional", False, ("AES_256_CM_HMAC_SHA1_80",)),
                               TrunkMedia("udp", ""), TrunkMedia("udp", "10.0.0.7", srtp="optional",
                                                                 srtp_secure_signaling=False), tls=False))
    inbound = plan.accounts[0]
    assert (inbound.name, inbound.srtp, inbound.secure_signaling) == ("udp", "optional", False)
    assert inbound.suites == ("AES_256_CM_HMAC_SHA1_80", *SUITES)  # any suite one of its trunks uses
    assert _names(plan) == ["udp", "udp-plain", "udp-srtp-optional", "udp-srtp-optional-2"]
    assert plan.for_uri("sip:1@10.0.0.6:5070").suites == ("AES_256_CM_HMAC_SHA1_80",)
    assert plan.for_uri("sip:1@10.0.0.7").suites == SUITES
    assert plan.for_uri("sip:1@10.0.0.8").name == "udp-plain"


def test_a_trunk_on_a_transport_without_listener_is_left_to_udp() -> None:
    plan = AccountPlan(_config(TrunkMedia("tls", "10.0.0.3", 5061, "mandatory"), tls=False))
    assert _names(plan) == ["udp"]
    assert plan.for_uri("sips:1@10.0.0.3:5061").name == "udp"


@pytest.mark.parametrize("uri, target", [
    ("sip:4930@10.0.0.1:5080", ("udp", "10.0.0.1", 5080)),
    ("sip:4930@Carrier.Example.COM", ("udp", "carrier.example.com", 5060)),
    ("sips:4930@10.0.0.1", ("tls", "10.0.0.1", 5061)),
    ("sip:4930@10.0.0.1:5080;transport=TCP", ("tcp", "10.0.0.1", 5080)),
    ("sip:4930@10.0.0.1;transport=tls", ("tls", "10.0.0.1", 5061)),
    ("<sip:4930@[2001:db8::1]:5070;user=phone>", ("udp", "2001:db8::1", 5070)),
    ("sip:carrier.example.com:5090", ("udp", "carrier.example.com", 5090)),
    ("tel:+4930", ("udp", "", 5060)),
])
def test_target_of(uri: str, target: tuple[str, str, int]) -> None:
    assert target_of(uri) == target


def test_ipv6_trunk_matches_its_bracketed_uri() -> None:
    plan = AccountPlan(_config(TrunkMedia("tls", "2001:DB8::3", 5061, "mandatory")))
    assert plan.for_uri("sips:1@[2001:db8::3]:5061").srtp == "mandatory"
