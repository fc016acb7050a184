"""Trunk OPTIONS pings over TCP and TLS, through the real B2BUA process: a TCP carrier (SIPp, ``-t t1``) and a
TLS carrier (a pjsua2 phone with a throwaway certificate; Debian's SIPp has no TLS) are each marked up by the
answers on their own transport and down when they stop answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_trunk_failover import trunk, wait_for
from tests.support.pki import self_signed
from tests.support.procs import B2bua, PhoneProc, uas

pytestmark = pytest.mark.e2e

PINGS = "ping_interval_s = 0.5\nping_timeout_s = 1.0\ndown_after = 2\nup_after = 1\n"


def _trunks(b: B2bua) -> str:
    return f"""
[[trunks]]
name = "carrier-tcp"
host = "127.0.0.3"
port = {b.far_port}
transport = "tcp"
{PINGS}
[[trunks]]
name = "carrier-tls"
host = "127.0.0.4"
port = {b.far_port + 1}
transport = "tls"
{PINGS}"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[B2bua]:
    cert, key = self_signed(tmp_path / "pki")
    b = B2bua(tmp_path / "b2bua")
    b.env = {"B2BUA_SIP__TRANSPORTS": '["udp", "tcp", "tls"]', "B2BUA_SIP__TLS_PORT": str(b.sip_port + 5),
             "B2BUA_SIP__TLS_CERT_FILE": str(cert), "B2BUA_SIP__TLS_KEY_FILE": str(key),
             "B2BUA_SIP__TLS_CA_FILE": str(cert)}
    b.routes_before = _trunks(b)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"



def test_tcp_and_tls_trunks_are_pinged_on_their_own_transport(node: B2bua, tmp_path: Path) -> None:
    cert, key = tmp_path / "pki" / "cert.pem", tmp_path / "pki" / "key.pem"
    # nobody answers yet: both go down (a TCP connect is refused, a TLS one too)
    wait_for(lambda: trunk(node, "carrier-tcp")["state"] == trunk(node, "carrier-tls")["state"] == "down", 10)
    assert trunk(node, "carrier-tcp")["last_response"] == 0

    tcp = uas(node, "uas_options.xml", calls=100000, name="tcp-options", ip="127.0.0.3", transport="t1")
    tls = PhoneProc(node.workdir, "tls-carrier", [
        "--ip", "127.0.0.4", "--port", str(node.far_port + 2), "--rtp-port", str(node.far_port + 3000),
        "--tls-port", str(node.far_port + 1), "--tls-cert", str(cert), "--tls-key", str(key),
        "--max-s", "30"]).wait_ready()
    try:
        wait_for(lambda: trunk(node, "carrier-tcp") == {"state": "up", "monitored": True, "last_response": 200}, 10)
        wait_for(lambda: trunk(node, "carrier-tls") == {"state": "up", "monitored": True, "last_response": 200}, 10)
        assert node.metric("b2bua_trunk_up", trunk="carrier-tls") == 1
        assert node.metric("b2bua_trunk_pings_total", trunk="carrier-tls", result="alive") >= 1
    finally:
        tls.kill()
    wait_for(lambda: trunk(node, "carrier-tls")["state"] == "down", 10)
    assert trunk(node, "carrier-tcp")["state"] == "up", "the TCP carrier still answers"
    tcp.stop()
    wait_for(lambda: trunk(node, "carrier-tcp")["state"] == "down", 10)
    assert node.metric("b2bua_trunk_state_changes_total", trunk="carrier-tcp", state="up") == 1
