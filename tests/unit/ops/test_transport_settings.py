"""[sip] transports, TLS files and the media address: what a carrier engineer can get wrong is refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.ops.settings import ConfigError, Settings, load_settings

BASE = """
[sip]
listen_port = 5070
{sip}
[[trunks]]
name = "t1"
inbound_acl = ["127.0.0.2/32"]
host = "127.0.0.3"
{trunk}
[[routes]]
pattern = "49.*"
trunk = "t1"
"""


def _load(tmp_path: Path, sip: str = "", trunk: str = "") -> Settings:
    p = tmp_path / "b2bua.toml"
    p.write_text(BASE.format(sip=sip, trunk=trunk))
    return load_settings(p)


def _pem(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return cert, key


def test_defaults_keep_todays_behaviour(tmp_path: Path) -> None:
    s = _load(tmp_path)
    sip = s.sip
    assert sip.transports == ["udp"] and sip.media_public_address == "" and sip.tls_port == 5061
    assert sip.tls_verify_server is True and sip.tls_verify_client is False
    assert s.trunks[0].transport == "udp"


def test_tcp_and_tls_listeners_with_files(tmp_path: Path) -> None:
    cert, key = _pem(tmp_path)
    s = _load(tmp_path, f'transports = ["udp", "tcp", "tls"]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
                        f'tls_ca_file = "{cert}"\ntls_verify_client = true\nmedia_public_address = "203.0.113.7"',
              'transport = "tls"\nport = 5061')
    assert s.sip.transports == ["udp", "tcp", "tls"]
    assert s.sip.media_public_address == "203.0.113.7"
    assert s.trunks[0].transport == "tls"


@pytest.mark.parametrize("sip, trunk, key, reason", [
    ('transports = ["tcp"]', "", "sip.transports", "udp must be listed"),
    ('transports = ["udp", "udp"]', "", "sip.transports", "listed twice"),
    ('transports = ["udp", "sctp"]', "", "sip.transports[1]", "'udp', 'tcp' or 'tls'"),
    ('transports = ["udp", "tls"]', "", "sip", "tls_cert_file: required when transports lists tls"),
    ('transports = ["udp", "tls"]\ntls_cert_file = "/nonexistent/cert.pem"\ntls_key_file = "/nonexistent/k.pem"',
     "", "sip", "tls_cert_file: no such file"),
    ("tls_verify_client = true", "", "sip", "tls_ca_file: required for tls_verify_client"),
    ('media_public_address = "media.example.com"', "", "sip.media_public_address", "does not appear to be"),
    ("", 'transport = "tcp"', "trunks[0].transport", "needs 'tcp' in sip.transports"),
    ("", 'transport = "tls"', "trunks[0].transport", "needs 'tls' in sip.transports"),
    ('transports = ["udp", "tcp"]', 'transport = "sctp"', "trunks[0].transport", "'udp', 'tcp' or 'tls'"),
])
def test_bad_transport_settings_are_refused(tmp_path: Path, sip: str, trunk: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, sip, trunk)
    assert e.value.key == key
    assert reason in e.value.reason
