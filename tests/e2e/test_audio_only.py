"""Every leg the product places offers one audio stream and nothing else (issue 23): pjsua2's default call setting
also offers a T.140 ``m=text`` with RTP and RTCP sockets of its own, an m-line some carriers reject. Checked on
the INVITE each far end receives: a trunk call routed out, both legs of a callback, an incoming call redirected to
the telecommuter phone, and the re-INVITEs of hold and unhold. A caller offering text and video is answered with
those streams refused (port 0) and audio kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.test_callback import BUSINESS, CALLBACK_CONFIG, MOBILE, ROUTES, make_user, phone
from tests.e2e.test_incoming import INCOMING_CONFIG
from tests.support import rawdialog
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e


def _sdp_of(invite: str) -> str:
    """The body of an INVITE as a SIPp trace (LF) or a phone's event (CRLF) shows it."""
    text = invite.replace("\r\n", "\n")
    return text.split("\n\n", 1)[1] if "\n\n" in text else ""


def _assert_audio_only(invite: str, who: str) -> None:
    lines = rawdialog.m_lines(_sdp_of(invite))
    assert len(lines) == 1 and lines[0].startswith("m=audio ") and not lines[0].startswith("m=audio 0 "), \
        f"{who}: {lines}\n{invite}"


def _assert_text_and_video_refused(answer: str) -> None:
    """The answer to an offer of audio, text and video: audio accepted, the other two refused with port 0."""
    lines = rawdialog.m_lines(rawdialog.body(answer))
    assert [ln.split()[0] for ln in lines] == ["m=audio", "m=text", "m=video"], lines
    assert lines[0].split()[1] != "0" and lines[1].split()[1] == "0" and lines[2].split()[1] == "0", lines


def _phone_invites(events: list[dict[str, Any]]) -> list[str]:
    return [e["invite"] for e in events if e["event"] == "incoming"]


def test_trunk_call_out_offers_audio_only_and_a_text_and_video_offer_keeps_only_audio(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_answer.xml")
    caller = rawdialog.RawUa("127.0.0.2", ("127.0.0.1", b2bua.sip_port), "15551230001", 1000.0)
    try:
        responses, dlg = caller.invite(f"sip:4930123456@127.0.0.1:{b2bua.sip_port}", extra_media=True)
        assert dlg is not None, [r.split("\r\n", 1)[0] for r in responses]
        _assert_text_and_video_refused(responses[-1])
        time.sleep(1.0)
        share, blocks = caller.tone_share(1700.0, since=0.0)  # uas_answer.xml plays 1700 Hz: audio was kept
        assert blocks >= 5 and share > 0.8, (share, blocks)
        assert rawdialog.code(caller.in_dialog(dlg, "BYE")[-1]) == 200
    finally:
        caller.close()
    f = far.wait(10)
    invites = [m for m in f.messages if m.startswith("INVITE ")]
    assert len(invites) == 1, f.requests()
    _assert_audio_only(invites[0], "trunk leg out")
    b2bua.wait_idle()


def test_hold_and_unhold_reinvites_offer_audio_only(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_hold.xml")
    r = uac(b2bua, "uac_hold.xml", hold_ms=800).start().wait(30)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    invites = [m for m in f.messages if m.startswith("INVITE ")]
    assert len(invites) == 3, f.requests()  # the call, hold, unhold
    for n, invite in enumerate(invites):
        _assert_audio_only(invite, f"INVITE {n + 1} to the far end")
    b2bua.wait_idle()


def test_callback_legs_offer_audio_only(start_b2bua: Callable[..., B2bua]) -> None:
    cb = start_b2bua(extra_config=CALLBACK_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)
    uid, token = make_user(cb)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, tone_hz="1000", answer_after_s="0.3", max_s="20")
    target = phone(cb, "target", "127.0.0.3", cb.far_port + 3500, tone_hz="1700", answer_after_s="0.3",
                   max_s="20")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": "030 98765432"})
    assert status == 201, call
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and cb.http("GET", f"/v1/calls/{call['id']}", token=token)[1].get(
            "state") != "connected":
        time.sleep(0.2)
    assert cb.http("DELETE", f"/v1/calls/{call['id']}", token=token)[0] == 202
    ue, te = user.wait(20), target.wait(20)
    for name, events in (("user leg", ue), ("target leg", te)):
        invites = _phone_invites(events)
        assert len(invites) == 1, (name, events)
        _assert_audio_only(invites[0], name)
    cb.wait_idle()


def test_incoming_call_redirected_to_the_telecommuter_offers_audio_only(start_b2bua: Callable[..., B2bua]) -> None:
    inc = start_b2bua(extra_config=INCOMING_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)
    make_user(inc)
    tele = phone(inc, "tele", "127.0.0.4", inc.far_port + 3000, tone_hz="1700", answer_after_s="0.5", max_s="20")
    caller = rawdialog.RawUa("127.0.0.2", ("127.0.0.1", inc.sip_port), "+4940111222", 1000.0)
    try:
        responses, dlg = caller.invite(f"sip:{BUSINESS}@127.0.0.1:{inc.sip_port}", extra_media=True)
        assert dlg is not None, [r.split("\r\n", 1)[0] for r in responses]
        _assert_text_and_video_refused(responses[-1])
        time.sleep(1.0)
        assert rawdialog.code(caller.in_dialog(dlg, "BYE")[-1]) == 200
    finally:
        caller.close()
    invites = _phone_invites(tele.wait(20))
    assert len(invites) == 1 and invites[0].startswith(f"INVITE sip:{MOBILE}@127.0.0.4"), invites
    _assert_audio_only(invites[0], "telecommuter leg")
    inc.wait_idle()
