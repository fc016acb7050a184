"""Per-trunk SRTP settings: the defaults, what is refused at load (file, key, reason) and what the engine gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.app import _engine_config
from b2bua.ops.settings import ConfigError, Settings, load_settings
from b2bua.sip.config import TrunkMedia

BASE = """
[sip]
listen_port = 5070
{sip}
[[trunks]]
name = "t1"
inbound_acl = ["127.0.0.2/32"]
host = "127.0.0.3"
{trunk}
{more}
[[routes]]
pattern = "49.*"
trunk = "t1"
"""


def _pem(tmp_path: Path) -> str:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return f'transports = ["udp", "tls"]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"'


def _load(tmp_path: Path, trunk: str = "", more: str = "", tls: bool = True) -> Settings:
    p = tmp_path / "b2bua.toml"
    p.write_text(BASE.format(sip=_pem(tmp_path) if tls else "", trunk=trunk, more=more))
    return load_settings(p)


def test_srtp_is_off_by_default_and_the_engine_hears_of_every_trunk(tmp_path: Path) -> None:
    s = _load(tmp_path)
    t = s.trunks[0]
    assert (t.srtp, t.srtp_secure_signaling) == ("off", True)
    assert t.srtp_suites == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    assert _engine_config(s).trunks == (TrunkMedia("udp", "127.0.0.3", 5060, "off", True,
                                                   ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")),)


def test_mandatory_srtp_on_a_tls_trunk(tmp_path: Path) -> None:
    s = _load(tmp_path, 'transport = "tls"\nport = 5061\nsrtp = "mandatory"\n'
                        'srtp_suites = ["AES_256_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80"]')
    media = _engine_config(s).trunks[0]
    assert media == TrunkMedia("tls", "127.0.0.3", 5061, "mandatory", True,
                               ("AES_256_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80"))


def test_srtp_over_udp_only_when_the_trunk_gives_up_secure_signalling(tmp_path: Path) -> None:
    s = _load(tmp_path, 'srtp = "optional"\nsrtp_secure_signaling = false', tls=False)
    assert (s.trunks[0].transport, s.trunks[0].srtp, s.trunks[0].srtp_secure_signaling) == ("udp", "optional", False)


SECOND = '[[trunks]]\nname = "t2"\nhost = "127.0.0.3"\n{}'


@pytest.mark.parametrize("trunk, more, key, reason", [
    ('srtp = "mandatory"', "", "trunks[0]", "srtp: SRTP keys would travel in clear text over udp"),
    ('transport = "tcp"\nsrtp = "optional"', "", "trunks[0]", "clear text over tcp"),
    ('srtp = "on"', "", "trunks[0].srtp", "'off', 'optional' or 'mandatory'"),
    ('transport = "tls"\nsrtp = "mandatory"\nsrtp_suites = []', "", "trunks[0]", "srtp_suites: at least one"),
    ('transport = "tls"\nsrtp = "mandatory"\nsrtp_suites = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80"]',
     "", "trunks[0]", "srtp_suites: a suite is named twice"),
    ('transport = "tls"\nsrtp = "mandatory"\nsrtp_suites = ["NULL"]', "", "trunks[0].srtp_suites[0]",
     "'AES_CM_128_HMAC_SHA1_80'"),
    ('transport = "tls"\nport = 5061\nsrtp = "mandatory"', SECOND.format('transport = "tls"\nport = 5061'),
     "trunks[1].srtp", "trunk 't1' sends calls to the same tls host and port with other SRTP settings"),
])
def test_bad_srtp_settings_are_refused(tmp_path: Path, trunk: str, more: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, trunk, more)
    assert e.value.key == key
    assert reason in e.value.reason


def test_two_trunks_to_one_place_with_the_same_srtp_are_fine(tmp_path: Path) -> None:
    s = _load(tmp_path, 'transport = "tls"\nsrtp = "mandatory"', SECOND.format('transport = "tls"\nsrtp = "mandatory"'))
    assert [t.srtp for t in s.trunks] == ["mandatory", "mandatory"]
    # another port is another place
    s = _load(tmp_path, 'transport = "tls"\nsrtp = "mandatory"', SECOND.format('transport = "tls"\nport = 5062'))
    assert [t.srtp for t in s.trunks] == ["mandatory", "off"]
