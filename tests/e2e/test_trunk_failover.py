"""Trunk failover over real SIP: a route lists carrier A (127.0.0.3) then carrier B (127.0.0.8). A 503 from A is
retried on B before the caller hears anything; A going silent to OPTIONS takes it out of routing, and its return
brings it back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from b2bua.media import pcap as pcapfile
from b2bua.sip import message
from tests.support import audio
from tests.support.procs import B2bua, capture, uac, uas

pytestmark = pytest.mark.e2e

A_IP, B_IP = "127.0.0.3", "127.0.0.8"
PING_S, TIMEOUT_S, DOWN_AFTER, UP_AFTER = 0.5, 0.5, 2, 2


def carriers(ping: bool) -> str:
    """Carriers A and B on the far port, a route for 49... listing both (tried before the catch-all)."""
    pings = (f"ping_interval_s = {PING_S}\nping_timeout_s = {TIMEOUT_S}\ndown_after = {DOWN_AFTER}\n"
             f"up_after = {UP_AFTER}\n") if ping else ""
    return f"""
[[trunks]]
name = "carrier-a"
host = "{A_IP}"
port = @FAR_PORT@
{pings}
[[trunks]]
name = "carrier-b"
host = "{B_IP}"
port = @FAR_PORT@

[[routes]]
pattern = "49[0-9]+"
trunks = ["carrier-a", "carrier-b"]
"""


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[B2bua]:
    """The node with both carriers (A pinged when the test asks for it); it must stop cleanly."""
    b = B2bua(tmp_path / "b2bua")
    b.routes_before = carriers(bool(getattr(request, "param", False))).replace("@FAR_PORT@", str(b.far_port))
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def test_503_from_carrier_a_fails_over_to_carrier_b_with_media_both_ways(node: B2bua) -> None:
    with capture(node.workdir) as pcap:
        a = uas(node, "uas_503.xml", name="carrier-a", ip=A_IP)
        b = uas(node, "uas_answer.xml", name="carrier-b", ip=B_IP)
        caller = uac(node, "uac_call.xml", hold_ms=3000).start()
        r, fa, fb = caller.wait(30), a.wait(10), b.wait(10)
    assert r.rc == 0 and fa.rc == 0 and fb.rc == 0, r.out + fa.out + fb.out
    assert fa.requests() == ["INVITE", "ACK"] and fb.requests() == ["INVITE", "ACK", "BYE"]
    assert r.requests() == ["INVITE", "ACK", "BYE"]
    assert 200 in r.statuses() and not [s for s in r.statuses() if s >= 300], r.statuses()  # no failure seen

    to_b, to_caller = audio.streams(pcap, "127.0.0.1", B_IP), audio.streams(pcap, "127.0.0.1", "127.0.0.2")
    assert len(to_b) == 1 and len(to_caller) == 1, (to_b.keys(), to_caller.keys())
    ok, why = audio.tone_in(next(iter(to_b.values())), 1000.0)
    assert ok, f"caller->carrier B: {why}"
    ok, why = audio.tone_in(next(iter(to_caller.values())), 1700.0)
    assert ok, f"carrier B->caller: {why}"
    assert not audio.streams(pcap, "127.0.0.1", A_IP), "no media toward the carrier that refused"

    added = failover_latency(pcap, node.far_port)
    print(f"failover: 503 from A -> INVITE to B in {added * 1000:.1f} ms")
    assert added < 0.25, added

    node.wait_idle()
    assert node.metric("b2bua_trunk_failovers_total", trunk="carrier-a", reason="503") == 1
    cdr = node.http("GET", "/v1/cdrs")[1]["cdrs"][0]
    assert (cdr["trunk_out"], cdr["outcome"], cdr["final_code"]) == ("carrier-b", "completed-a-hangup", 200)


def failover_latency(path: Path, far_port: int) -> float:
    """Seconds from carrier A's 503 reaching us to our INVITE leaving for carrier B (from the capture)."""
    got_503 = sent_b = None
    for p in pcapfile.read(path):
        if p.src == A_IP and p.sport == far_port and p.payload.startswith(b"SIP/2.0 503") and got_503 is None:
            got_503 = p.ts
        if p.dst == B_IP and p.dport == far_port and p.payload.startswith(b"INVITE ") and sent_b is None:
            sent_b = p.ts
    assert got_503 is not None and sent_b is not None
    return sent_b - got_503


@pytest.mark.parametrize("node", [True], indirect=True)
def test_carrier_a_silent_to_options_is_skipped_and_used_again_when_back(node: B2bua) -> None:
    pinger = uas(node, "uas_options.xml", calls=100000, name="a-options", ip=A_IP)
    wait_for(lambda: trunk(node, "carrier-a") == {"state": "up", "monitored": True, "last_response": 200}, 5)
    assert node.metric("b2bua_trunk_up", trunk="carrier-a") == 1

    pinger.stop()  # carrier A stops answering
    stopped = time.monotonic()
    wait_for(lambda: trunk(node, "carrier-a")["state"] == "down", 10)
    took_down = time.monotonic() - stopped
    print(f"carrier A marked down {took_down:.2f} s after it stopped answering")
    assert took_down <= PING_S * DOWN_AFTER + TIMEOUT_S + 0.5, took_down
    assert node.metric("b2bua_trunk_up", trunk="carrier-a") == 0
    assert node.metric("b2bua_trunk_state_changes_total", trunk="carrier-a", state="down") == 1
    assert node.health()["status"] == "ok" and trunk(node, "carrier-b")["monitored"] is False

    b = uas(node, "uas_answer.xml", name="carrier-b", ip=B_IP)
    r = uac(node, "uac_call.xml", hold_ms=500).start().wait(30)
    fb = b.wait(10)
    assert r.rc == 0 and fb.rc == 0 and fb.requests() == ["INVITE", "ACK", "BYE"], r.out + fb.out
    node.wait_idle()
    assert node.metric("b2bua_trunk_failovers_total", trunk="carrier-a", reason="408") == 0  # straight to B
    assert node.http("GET", "/v1/cdrs")[1]["cdrs"][0]["trunk_out"] == "carrier-b"

    with carrier_a_back(node.far_port) as seen:  # answers OPTIONS 200 and INVITEs 486
        back = time.monotonic()
        wait_for(lambda: trunk(node, "carrier-a")["state"] == "up", 10)
        took_up = time.monotonic() - back
        print(f"carrier A marked up {took_up:.2f} s after it answered again")
        assert took_up <= PING_S * UP_AFTER + 0.5, took_up
        assert seen["OPTIONS"] >= UP_AFTER
        r = uac(node, "uac_fail.xml", name="uac2").start().wait(20)
        assert r.rc == 0 and r.statuses()[-1] == 486, r.out  # A took the call (and its busy callee is final)
        assert seen["INVITE"] >= 1
    node.wait_idle()
    assert node.metric("b2bua_trunk_up", trunk="carrier-a") == 1
    assert node.metric("b2bua_trunk_state_changes_total", trunk="carrier-a", state="up") == 1


def trunk(node: B2bua, name: str) -> dict[str, Any]:
    return dict(node.health()["trunks"][name])


def wait_for(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextmanager
def carrier_a_back(port: int) -> Iterator[dict[str, int]]:
    """Carrier A again, as a few lines of UDP: 200 to OPTIONS, 100 + 486 to INVITE; counts what it saw."""
    seen = {"OPTIONS": 0, "INVITE": 0}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((A_IP, port))
    s.settimeout(0.1)
    stop = threading.Event()

    def reply(text: str, addr: tuple[str, int], status: str, tag: bool) -> None:
        _, headers = message.request_line_and_headers(text)
        to = (message.header(headers, "To") or "") + (";tag=a-back" if tag else "")
        lines = [f"SIP/2.0 {status}", *(f"Via: {v}" for n, v in headers if n.lower() == "via"),
                 f"From: {message.header(headers, 'From')}", f"To: {to}",
                 f"Call-ID: {message.header(headers, 'Call-ID')}", f"CSeq: {message.header(headers, 'CSeq')}",
                 "Content-Length: 0", "", ""]
        s.sendto("\r\n".join(lines).encode(), addr)

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(65535)
            except TimeoutError:
                continue
            text = data.decode(errors="replace")
            method = text.split(" ", 1)[0]
            if method == "OPTIONS":
                seen["OPTIONS"] += 1
                reply(text, addr, "200 OK", True)
            elif method == "INVITE":
                seen["INVITE"] += 1
                reply(text, addr, "100 Trying", False)
                reply(text, addr, "486 Busy Here", True)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield seen
    finally:
        stop.set()
        t.join(2)
        s.close()
