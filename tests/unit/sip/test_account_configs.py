"""The pjsua2 account configurations the engine opens for an ``AccountPlan``: SRTP use, keying only over TLS,
the suites, and inbound accounts first (pjsua picks an incoming INVITE's account by transport, then priority)."""

from __future__ import annotations

import pjsua2 as pj

from b2bua.sip.config import AccountPlan, EngineConfig, TlsConfig, TrunkMedia
from b2bua.sip.endpoint import account_configs

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
TRANSPORTS = {"udp": 0, "tls": 1}


def _configs() -> dict[str, pj.AccountConfig]:
    c = EngineConfig(listen_ip="127.0.0.1", listen_port=5060, public_host="sbc.example", rtp_port_start=40000,
                     rtp_port_count=100, codecs=("PCMU",), user_agent="t", poll_ms=10, log_level=0, media_threads=1,
                     tls=TlsConfig(5061, "c", "k"),
                     trunks=(TrunkMedia("tls", "10.0.0.3", 5061, "mandatory", True, SUITES),
                             TrunkMedia("tls", "10.0.0.4", 5061, "optional", True, SUITES[:1]),
                             TrunkMedia("udp", "10.0.0.5")))
    return account_configs(c, TRANSPORTS, AccountPlan(c))


def test_accounts_in_order_with_inbound_ones_preferred() -> None:
    cfgs = _configs()
    assert list(cfgs) == ["tls", "udp", "tls-plain", "tls-srtp-mandatory", "tls-srtp-optional"]
    assert [cfgs[n].priority for n in cfgs] == [1, 1, 0, 0, 0]
    assert cfgs["tls"].sipConfig.contactForced == "<sips:b2bua@sbc.example:5061>"
    assert cfgs["tls-srtp-mandatory"].sipConfig.transportId == TRANSPORTS["tls"]
    assert cfgs["tls-plain"].sipConfig.transportId == TRANSPORTS["tls"]
    assert cfgs["udp"].sipConfig.contactForced == "<sip:b2bua@sbc.example:5060>"


def test_srtp_use_keying_and_suites() -> None:
    cfgs = _configs()
    plain = ("udp", "tls-plain")
    for name in plain:
        assert cfgs[name].mediaConfig.srtpUse == pj.PJMEDIA_SRTP_DISABLED, name
    mand, opt, inbound = (cfgs[n].mediaConfig for n in ("tls-srtp-mandatory", "tls-srtp-optional", "tls"))
    assert mand.srtpUse == pj.PJMEDIA_SRTP_MANDATORY and opt.srtpUse == pj.PJMEDIA_SRTP_OPTIONAL
    assert inbound.srtpUse == pj.PJMEDIA_SRTP_OPTIONAL  # an optional trunk on TLS: a plain offer is accepted
    for m in (mand, opt, inbound):
        assert m.srtpSecureSignaling == 1  # keys only when the INVITE went over TLS
        assert list(m.srtpOpt.keyings) == [pj.PJMEDIA_SRTP_KEYING_SDES]
        assert all(c.key == "" for c in m.srtpOpt.cryptos)  # a fresh random key per call
    assert [c.name for c in mand.srtpOpt.cryptos] == list(SUITES)
    assert [c.name for c in opt.srtpOpt.cryptos] == list(SUITES[:1])
    assert [c.name for c in inbound.srtpOpt.cryptos] == list(SUITES)
