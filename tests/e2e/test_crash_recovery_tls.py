"""Crash recovery over TLS: the B2BUA is killed (SIGKILL) with a call up whose both legs are TLS (a carrier calling
in over sips:, the call out to a TLS trunk). Its connections die with it, so the next start sends each BYE on a
new TLS connection from the listen address, with the certificate checks calls get; both phones hang up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pki import self_signed
from tests.support.procs import B2bua, PhoneProc

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(tmp_path: Path) -> Iterator[B2bua]:
    cert, key = self_signed(tmp_path / "pki")
    b = B2bua(tmp_path / "b2bua")
    b.env = {"B2BUA_SIP__TRANSPORTS": '["udp", "tls"]', "B2BUA_SIP__TLS_PORT": str(b.sip_port + 5),
             "B2BUA_SIP__TLS_CERT_FILE": str(cert), "B2BUA_SIP__TLS_KEY_FILE": str(key),
             "B2BUA_SIP__TLS_CA_FILE": str(cert)}
    b.routes_before = f"""
[[trunks]]
name = "carrier-tls"
host = "127.0.0.3"
port = {b.far_port + 1}
transport = "tls"

[[routes]]
pattern = "4930.*"
trunk = "carrier-tls"
"""
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def test_kill_9_with_a_tls_call_up_ends_both_legs_over_tls_at_restart(node: B2bua, tmp_path: Path) -> None:
    b = node
    tls = ["--tls-cert", str(tmp_path / "pki" / "cert.pem"), "--tls-key", str(tmp_path / "pki" / "key.pem")]
    far = PhoneProc(b.workdir, "far", ["--ip", "127.0.0.3", "--port", str(b.far_port), "--rtp-port",
                                       str(b.far_port + 3000), "--tls-port", str(b.far_port + 1), *tls,
                                       "--max-s", "40"]).wait_ready()
    caller = PhoneProc(b.workdir, "caller", [
        "--ip", "127.0.0.2", "--port", str(b.sip_port + 1000), "--rtp-port", str(b.sip_port + 4000),
        "--tls-port", str(b.sip_port + 1001), *tls, "--call", f"sips:4930123456@127.0.0.1:{b.sip_port + 5}",
        "--max-s", "40"]).wait_ready()
    deadline = time.monotonic() + 15
    while b.metric("b2bua_active_legs") != 2 or b.health()["active_calls"] != 1:
        assert time.monotonic() < deadline, "the TLS call did not come up"
        time.sleep(0.1)
    time.sleep(1.0)  # journaled once confirmed

    assert b.proc is not None
    b.proc.kill()
    assert b.proc.wait(5) == -9
    b.stop()
    killed = time.monotonic()
    b.start()

    ce, fe = caller.wait(20), far.wait(20)
    for name, events in (("caller", ce), ("far", fe)):
        kinds = [e["event"] for e in events if e["event"] in ("confirmed", "disconnected")]
        assert kinds == ["confirmed", "disconnected"], f"{name}: {events}"
        ended = next(e for e in events if e["event"] == "disconnected")
        assert ended["t"] >= killed, f"{name} hung up before the restart: {ended}"
    unclean = next(e for e in b.log_events() if e.get("event") == "last stop was unclean")
    assert (unclean["byes_sent"], unclean["byes_answered"], unclean["byes_failed"]) == (2, 2, 0), unclean
    assert b.metric("b2bua_recovery_byes_total", result="answered") == 2
    b.wait_idle()
