"""The SIP edge's settings: who is trusted (trunks' ACLs and hosts given by address, sip.trusted_sources), what
untrusted requests get, and the counter read from the SIP thread on each scrape."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from b2bua.app import _edge_config
from b2bua.ops.carrier_settings import TrunkSettings, invites_from_anywhere, trusted_sources
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import BUNDLED_CONFIG, ConfigError, load_settings

TRUNKS = """
[[trunks]]
name = "carrier"
inbound_acl = ["198.51.100.7", "198.51.100.0/28", "2001:db8:0:0:1::/80"]
host = "198.51.100.1"
[[trunks]]
name = "by-name"
host = "sbc.example.net"
[[trunks]]
name = "v6"
host = "[2001:db8::5]"
[[trunks]]
name = "pbx"
inbound_acl = ["203.0.113.0/24"]
auth_username = "pbx"
auth_password = "pw"
"""


def test_trusted_sources_are_the_trunks_acls_and_hosts_given_by_address(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, TRUNKS))
    assert trusted_sources(s.trunks) == ["198.51.100.7/32", "198.51.100.0/28", "2001:db8:0:0:1::/80",
                                         "198.51.100.1/32", "2001:db8::5/128", "203.0.113.0/24"]
    assert not invites_from_anywhere(s.trunks)  # pbx has credentials but comes from its ACL
    edge = _edge_config(s)
    assert edge.trusted == tuple(trusted_sources(s.trunks)) and not edge.drop and not edge.pass_invites


def test_a_digest_trunk_without_acl_lets_invites_from_anywhere_pass(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B2BUA_SIP__UNTRUSTED", "drop")
    monkeypatch.setenv("B2BUA_SIP__TRUSTED_SOURCES", '["192.0.2.9", "198.51.100.1/32"]')
    s = load_settings(_write(tmp_path, TRUNKS.replace('inbound_acl = ["203.0.113.0/24"]\n', "")))
    assert invites_from_anywhere(s.trunks)
    edge = _edge_config(s)
    assert edge.drop and edge.pass_invites
    # the operator's extra sources are added once, after the trunks'
    assert edge.trusted[-1] == "192.0.2.9/32" and edge.trusted.count("198.51.100.1/32") == 1


def test_no_trunks_no_trusted_source() -> None:
    assert trusted_sources([TrunkSettings(name="out", host="")]) == []


@pytest.mark.parametrize("line, key, reason", [
    ('untrusted = "ignore"', "sip.untrusted", "'reject' or 'drop'"),
    ('trusted_sources = ["10.0.0.300/8"]', "sip.trusted_sources", "does not appear to be"),
])
def test_bad_edge_settings_name_the_key(tmp_path: Path, line: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(_write(tmp_path, f"[sip]\n{line}\n"))
    assert e.value.key == key and reason in e.value.reason, e.value


def test_default_is_reject() -> None:
    s = load_settings(BUNDLED_CONFIG)
    assert s.sip.untrusted == "reject" and s.sip.trusted_sources == []


def test_untrusted_counter_is_read_on_each_scrape() -> None:
    m = Metrics()
    counts = {"rejected": 3, "dropped": 0}
    m.bind_untrusted(lambda: counts)
    assert 'b2bua_untrusted_requests_total{action="rejected"} 3.0' in generate_latest(m.registry).decode()
    counts = {"rejected": 5, "dropped": 2}
    text = generate_latest(m.registry).decode()
    assert 'b2bua_untrusted_requests_total{action="rejected"} 5.0' in text
    assert 'b2bua_untrusted_requests_total{action="dropped"} 2.0' in text
    assert "# TYPE b2bua_untrusted_requests_total counter" in text


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "b2bua.toml"
    p.write_text(text)
    return p
