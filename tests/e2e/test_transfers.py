"""Transfers are refused, the call unharmed (issue 23: this release performs no transfers).

A REFER in a bridged call's dialog, from the trunk side or from the telecommuter's side, gets 405 (with the Allow
header a 405 carries) and no INVITE goes anywhere: left to pjsua, it would answer 202 and call the Refer-To
target itself. An INVITE whose Replaces names the live dialog gets 403 (420 when it requires the extension:
"replaces" is not in our Supported), one naming no dialog of ours 481; a REFER outside any dialog 405. Through all
of it the call stays up and each side's tone still reaches the other.

Peers: a hand-driven SIP agent with an RTP tone (``tests/support/rawdialog.py``) on the side that sends the
requests, a pjsua2 phone on the other; a DID call from the carrier trunk (127.0.0.2) to a user whose telecommuter
phone is on the mobile trunk (127.0.0.4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from b2bua.media import pcap
from tests.e2e.test_callback import BUSINESS, ROUTES, make_user, phone
from tests.e2e.test_incoming import INCOMING_CONFIG, caller_phone
from tests.support import rawdialog, wav
from tests.support.procs import B2bua, capture
from tests.support.rawdialog import Dialog, RawUa

pytestmark = pytest.mark.e2e

REFER_TO = "Refer-To: <sip:+4930999888@127.0.0.1>\r\nReferred-By: <sip:+4940111222@127.0.0.2>"


@pytest.fixture
def inc(start_b2bua: Callable[..., B2bua]) -> B2bua:
    b = start_b2bua(extra_config=INCOMING_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)
    make_user(b)
    return b


def _finals(responses: list[str]) -> list[int]:
    return [rawdialog.code(r) for r in responses if rawdialog.code(r) >= 200]


def _refuse_all(b: B2bua, ua: RawUa, dlg: Dialog, src_ip: str) -> int:
    """Send the refused requests from ``ua``'s side of the live dialog ``dlg`` and check each answer; how many
    the refused leg itself refused (a REFER, and Replaces INVITEs that reached it: one or two)."""
    refer = ua.in_dialog(dlg, "REFER", REFER_TO)
    assert _finals(refer) == [405], [r.split("\r\n", 1)[0] for r in refer]
    # a 405 must carry Allow (RFC 3261 21.4.6), and REFER is not in it (patch 0010 trims what we advertise)
    allowed = {v.strip() for v in rawdialog.header(refer[-1], "allow").split(",")}
    assert "INVITE" in allowed and "REFER" not in allowed, refer[-1]

    other = RawUa(src_ip, ("127.0.0.1", b.sip_port), "intruder", 400.0)
    try:
        ruri = f"sip:{BUSINESS}@127.0.0.1:{b.sip_port}"
        replacing, _ = other.invite(ruri, extra=rawdialog.replaces(dlg))
        assert _finals(replacing) == [403], [r.split("\r\n", 1)[0] for r in replacing]
        required, _ = other.invite(ruri, extra=rawdialog.replaces(dlg) + "\r\nRequire: replaces")
        # "replaces" is not in our Supported: requiring it is 420 before any call exists
        assert _finals(required) == [420], [r.split("\r\n", 1)[0] for r in required]
        assert "replaces" in rawdialog.header(required[-1], "unsupported").lower(), required[-1]
        unknown, _ = other.invite(ruri, extra="Replaces: no-such-call@127.0.0.9;to-tag=a1;from-tag=b2")
        assert _finals(unknown) == [481], [r.split("\r\n", 1)[0] for r in unknown]
        assert other.received == []  # nobody called the intruder back
    finally:
        other.close()
    assert b.health()["active_calls"] == 1
    return 2  # the REFER and the Replaces INVITE; the one requiring "replaces" never reached the leg


def _invites_sent(path: Path, b: B2bua) -> list[str]:
    """Request lines of the INVITEs the B2BUA sent (from its SIP port), retransmissions folded."""
    seen: dict[bytes, str] = {}
    for p in pcap.read(path):
        if p.src == "127.0.0.1" and p.sport == b.sip_port and p.payload.startswith(b"INVITE "):
            branch = p.payload.split(b"branch=", 1)[-1].split(b"\r\n", 1)[0]
            seen.setdefault(branch, p.payload.split(b"\r\n", 1)[0].decode())
    return list(seen.values())


def _tone_since(events: list[dict[str, Any]], path: Path, hz: float, since: float) -> tuple[float, int]:
    """Share of a phone's recording after ``since`` (a monotonic time: the phone's clock is the same) carrying
    ``hz``; the recording starts at the phone's first media event."""
    t0 = next(e["t"] for e in events if e["event"] == "media")
    return wav.tone_share(path, hz, start_s=max(0.0, since - t0) + 0.3)


def test_refer_and_replaces_from_the_trunk_side_are_refused_and_the_call_goes_on(inc: B2bua) -> None:
    tele_wav = inc.workdir / "tele.wav"
    with capture(inc.workdir, bpf=f"udp port {inc.sip_port}") as sip:
        tele = phone(inc, "tele", "127.0.0.4", inc.far_port + 3000, tone_hz="1700", record=str(tele_wav),
                     answer_after_s="0.3", max_s="30")
        caller = RawUa("127.0.0.2", ("127.0.0.1", inc.sip_port), "+4940111222", 1000.0)
        try:
            responses, dlg = caller.invite(f"sip:{BUSINESS}@127.0.0.1:{inc.sip_port}")
            assert dlg is not None, [r.split("\r\n", 1)[0] for r in responses]
            time.sleep(1.0)
            refused = _refuse_all(inc, caller, dlg, "127.0.0.2")
            after = time.monotonic()
            caller.listen(3.0)
            share, blocks = caller.tone_share(1700.0, since=after)
            assert blocks >= 20 and share > 0.8, f"telecommuter's tone at the caller: {share:.2f} of {blocks}"
            assert caller.received == []  # pjsua sent the caller nothing (no NOTIFY, no BYE)
            assert _finals(caller.in_dialog(dlg, "BYE")) == [200]
        finally:
            caller.close()
        te = tele.wait(20)
    assert [e["event"] for e in te].count("incoming") == 1
    share, blocks = _tone_since(te, tele_wav, 1000.0, after)
    assert blocks >= 20 and share > 0.8, f"caller's tone at the telecommuter: {share:.2f} of {blocks}"
    assert len(_invites_sent(sip, inc)) == 1, _invites_sent(sip, inc)  # the telecommuter's, and nothing else
    inc.wait_idle()
    assert inc.metric("b2bua_calls_total", outcome="completed-caller-hangup") == 1
    logged = [e["event"] for e in inc.log_events() if "performs no transfers" in str(e.get("event"))]
    assert len(logged) == refused and "REFER to" in logged[0], logged
    assert all("INVITE with Replaces from 127.0.0.2" in x for x in logged[1:]), logged
    assert inc.metric("b2bua_transfers_refused_total", kind="refer") == 1
    assert inc.metric("b2bua_transfers_refused_total", kind="replaces") == 1


def test_refer_and_replaces_from_the_telecommuter_side_are_refused_and_the_call_goes_on(inc: B2bua) -> None:
    caller_wav = inc.workdir / "caller.wav"
    tele = RawUa("127.0.0.4", ("127.0.0.1", inc.sip_port), "+491711234567", 1700.0, sip_port=inc.far_port)
    try:
        with capture(inc.workdir, bpf=f"udp port {inc.sip_port}") as sip:
            caller = caller_phone(inc, "caller", BUSINESS, tone_hz="1000", record=str(caller_wav),
                                  hangup_after_s="6", max_s="30")
            _, dlg = tele.answer()
            time.sleep(1.0)
            _refuse_all(inc, tele, dlg, "127.0.0.4")
            after = time.monotonic()
            tele.listen(2.5)
            share, blocks = tele.tone_share(1000.0, since=after)
            assert blocks >= 15 and share > 0.8, f"caller's tone at the telecommuter: {share:.2f} of {blocks}"
            ce = caller.wait(20)
            tele.listen(1.0)
    finally:
        tele.close()
    assert [r.split(" ", 1)[0] for r in tele.received] == ["BYE"]  # the caller's hang-up, and nothing before it
    assert [e["event"] for e in ce].count("disconnected") == 1
    share, blocks = _tone_since(ce, caller_wav, 1700.0, after)
    assert blocks >= 15 and share > 0.8, f"telecommuter's tone at the caller: {share:.2f} of {blocks}"
    assert len(_invites_sent(sip, inc)) == 1, _invites_sent(sip, inc)
    inc.wait_idle()
    assert inc.metric("b2bua_calls_total", outcome="completed-caller-hangup") == 1


def test_refer_outside_any_dialog_is_refused_and_calls_nobody(inc: B2bua) -> None:
    with capture(inc.workdir, bpf=f"udp port {inc.sip_port}") as sip:
        ua = RawUa("127.0.0.2", ("127.0.0.1", inc.sip_port), "+4940111222", 1000.0)
        try:
            dlg = Dialog("ood-refer@127.0.0.2", "<sip:+4940111222@127.0.0.2>;tag=ood1",
                         f"<sip:{BUSINESS}@127.0.0.1>", f"sip:{BUSINESS}@127.0.0.1:{inc.sip_port}", cseq=0)
            responses = ua.in_dialog(dlg, "REFER", REFER_TO)
            ua.listen(1.0)
        finally:
            ua.close()
    # 405: REFER is not among the methods we allow (patch 0010)
    assert _finals(responses) == [405], [r.split("\r\n", 1)[0] for r in responses]
    assert ua.received == [] and _invites_sent(sip, inc) == []
    inc.wait_idle()
