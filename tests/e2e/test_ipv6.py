"""IPv6 carriers (issue 16) through the real B2BUA process listening on ::1: a carrier calls in over IPv6 and the
call goes out to an IPv6 trunk with ``c=IN IP6`` in both legs' SDP and a tone through our RTP each way; an OPTIONS
ping over IPv6 marks an IPv6 trunk up; an IPv6 source outside every ACL gets the edge filter's stateless 403.

Only ::1 exists on the loopback, so peers are told apart by port: the caller (SIPp) on sip_port + 1000, the far
end (SIPp) on far_port, the pinged carrier (SIPp) on far_port + 1."""

from __future__ import annotations

import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from b2bua.media import pcap
from b2bua.sip.build_info import has_ipv6
from tests.support import audio, rawsip
from tests.support.procs import B2bua, Sipp, capture, uas

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _ipv6_build() -> None:
    """The project's build has IPv6 (config_site.h): a build without it fails here rather than skipping."""
    assert has_ipv6(), "this pjsua2 build has no IPv6 (PJ_HAS_IPV6 0): rebuild it with scripts/build-pjsua2.sh"

PINGS = "ping_interval_s = 0.5\nping_timeout_s = 1.0\ndown_after = 2\nup_after = 1\n"


def _trunks(b: B2bua, acl: str, host: str) -> str:
    return f"""
[[trunks]]
name = "carrier"
inbound_acl = ["{acl}"]
host = "[{host}]"
port = {b.far_port}

[[trunks]]
name = "pinged"
host = "{host}"
port = {b.far_port + 1}
{PINGS}
[[routes]]
pattern = "[0-9+]+"
trunk = "carrier"
"""


@pytest.fixture
def node6(tmp_path: Path) -> Iterator[B2bua]:
    b = B2bua(tmp_path / "b2bua", listen_ip="::1")
    b.trunks_text = _trunks(b, "::1/128", "::1")
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def _caller(b: B2bua) -> Sipp:
    return Sipp(b.workdir, "uac", "uac_call.xml", [
        f"[::1]:{b.sip_port}", "-i", "::1", "-p", str(b.sip_port + 1000), "-mi", "::1", "-mp", str(b.sip_port + 3000),
        "-s", "4930123456", "-key", "caller", "15551230001", "-m", "1", "-d", "3000", "-recv_timeout", "30000",
        "-t", "u1"])


def _rtp_to(path: Path, dport: int) -> dict[int, list[bytes]]:
    """G.711 payloads (with their payload type first, as audio.tone_in takes them) sent from ::1 to ::1 ``dport``,
    per source port."""
    out: dict[int, list[bytes]] = defaultdict(list)
    for pkt in pcap.read(path):
        rtp = pcap.parse_rtp(pkt.payload) if (pkt.src, pkt.dst, pkt.dport) == ("::1", "::1", dport) else None
        if rtp is not None and rtp.pt in (0, 8):
            out[pkt.sport].append(bytes([rtp.pt]) + rtp.payload)
    return dict(out)


def _sdp_c(msg: str) -> str:
    return next((ln.strip() for ln in msg.splitlines() if ln.startswith("c=")), "")


def test_call_in_and_out_over_ipv6_with_media_both_ways(node6: B2bua) -> None:
    b = node6
    with capture(b.workdir) as path:
        far = uas(b, "uas_answer.xml", ip="::1")
        caller = _caller(b).start()
        r = caller.wait(30)
        f = far.wait(10)
    assert r.rc == 0, r.out
    assert f.rc == 0, f.out
    assert r.requests() == ["INVITE", "ACK", "BYE"] and f.requests() == ["INVITE", "ACK", "BYE"]
    ok = next(m for m in r.messages if m.startswith("SIP/2.0 200") and "INVITE" in m.split("CSeq:", 1)[1][:20])
    invite_b = next(m for m in f.messages if m.startswith("INVITE"))
    assert _sdp_c(ok) == "c=IN IP6 ::1" and _sdp_c(invite_b) == "c=IN IP6 ::1", (ok, invite_b)
    assert invite_b.startswith(f"INVITE sip:4930123456@[::1]:{b.far_port} SIP/2.0")
    assert f"<sip:b2bua@[::1]:{b.sip_port}>" in invite_b and f"<sip:b2bua@[::1]:{b.sip_port}>" in ok
    assert "sip:15551230001@[::1]" in invite_b.split("\nFrom:", 1)[1].splitlines()[0]

    to_far, to_caller = _rtp_to(path, b.far_port + 2000), _rtp_to(path, b.sip_port + 3000)
    assert len(to_far) == 1 and len(to_caller) == 1, (to_far.keys(), to_caller.keys())
    good, why = audio.tone_in(next(iter(to_far.values())), 1000.0)
    assert good, f"caller->far end: {why}"
    good, why = audio.tone_in(next(iter(to_caller.values())), 1700.0)
    assert good, f"far end->caller: {why}"
    b.wait_idle()
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1


def _wait_for(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_ipv6_trunk_is_marked_up_by_options_over_ipv6(node6: B2bua) -> None:
    b = node6

    def state() -> object:
        return b.health()["trunks"]["pinged"]["state"]

    _wait_for(lambda: state() == "down", 10)  # nobody answers yet
    answering = Sipp(b.workdir, "options6", "uas_options.xml", [
        "-i", "::1", "-p", str(b.far_port + 1), "-mi", "::1", "-mp", str(b.far_port + 2010), "-m", "100000",
        "-t", "u1"]).start()
    try:
        _wait_for(lambda: b.health()["trunks"]["pinged"] == {"state": "up", "monitored": True,
                                                             "last_response": 200}, 10)
    finally:
        result = answering.stop()
    assert any(m.startswith(f"OPTIONS sip:[::1]:{b.far_port + 1} SIP/2.0") for m in result.messages), result.out
    _wait_for(lambda: state() == "down", 10)


def _exchange6(msg: str, port: int) -> list[str]:
    """One datagram from ::1 to the node on [::1]:port; the status lines that come back within a second."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        s.settimeout(1.0)
        s.sendto(msg.replace("{src}", f"[::1]:{s.getsockname()[1]}").encode(), ("::1", port))
        out: list[str] = []
        while True:
            try:
                out.append(s.recv(65535).decode("latin-1").split("\r\n", 1)[0])
            except TimeoutError:
                return out
            s.settimeout(0.3)


def test_ipv6_source_outside_every_acl_gets_403_from_the_edge(tmp_path: Path) -> None:
    b = B2bua(tmp_path / "b2bua", listen_ip="::1")
    b.trunks_text = _trunks(b, "2001:db8:1::/48", "2001:db8::5")  # ::1 is in no ACL and no trunk's host
    b.start()
    try:
        for method in ("INVITE", "OPTIONS"):
            got = _exchange6(rawsip.request(method, ruri=f"sip:4930123456@[::1]:{b.sip_port}"), b.sip_port)
            assert got == ["SIP/2.0 403 Forbidden"], (method, got)
        deadline = time.monotonic() + 3.0  # the SIP thread reads the filter's C counters once a second
        while b.metric("b2bua_untrusted_requests_total", action="rejected") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert b.metric("b2bua_untrusted_requests_total", action="rejected") == 2
        assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 0
    finally:
        rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"
