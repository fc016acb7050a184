"""We advertise what we handle, no more (issue 16, patch 0010): pjsua's Allow named SUBSCRIBE, NOTIFY, REFER and
MESSAGE and its Supported replaces and norefersub, none of which the product handles. Now INVITEs, 200s and
OPTIONS answers carry exactly the product's Allow and Supported; Require: replaces gets 420; an out-of-dialog
SUBSCRIBE or MESSAGE gets 405 with that Allow and makes no subscription; session timers, which are advertised,
work."""

from __future__ import annotations

import pytest

from tests.support import rawsip
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e

ALLOW = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO"}
SUPPORTED = {"100rel", "timer"}


def _header(msg: str, name: str) -> str | None:
    """A header's value from a raw datagram (CRLF) or a SIPp trace (LF); None if absent."""
    for line in msg.replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            return v.strip()
    return None


def _tokens(msg: str, name: str) -> list[str]:
    value = _header(msg, name)
    assert value is not None, f"no {name} in:\n{msg}"
    return [v.strip() for v in value.split(",")]


def _exactly(msg: str, name: str, expected: set[str]) -> None:
    tokens = _tokens(msg, name)
    assert set(tokens) == expected and len(tokens) == len(expected), f"{name}: {tokens}"


def _finals(msg: str, port: int) -> list[str]:
    return [m for m in rawsip.exchange_messages(msg, port, "127.0.0.2", 1.5) if not m.startswith("SIP/2.0 1")]


def test_options_answer_carries_exactly_what_we_handle(b2bua: B2bua) -> None:
    finals = _finals(rawsip.request("OPTIONS"), b2bua.sip_port)
    assert len(finals) == 1 and finals[0].startswith("SIP/2.0 200"), finals
    _exactly(finals[0], "Allow", ALLOW)
    _exactly(finals[0], "Supported", SUPPORTED)
    assert _tokens(finals[0], "Accept") == ["application/sdp"]
    assert _header(finals[0], "Allow-Events") is None  # no subscriptions, so no event packages


def test_our_invite_and_200_carry_exactly_what_we_handle_and_session_timers_work(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_answer.xml")
    r = uac(b2bua, "uac_session_timer.xml", hold_ms=300).start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    invite = next(m for m in f.messages if m.startswith("INVITE "))
    ok = next(m for m in r.messages if m.startswith("SIP/2.0 200") and "INVITE" in (_header(m, "CSeq") or ""))
    for msg in (invite, ok):
        _exactly(msg, "Allow", ALLOW)
        _exactly(msg, "Supported", SUPPORTED)
    # the caller required session timers (RFC 4028): the 200 takes them on, with the caller as refresher
    assert (_header(ok, "Session-Expires") or "").replace(" ", "") == "1800;refresher=uac", ok
    assert "timer" in _tokens(ok, "Require"), ok
    b2bua.wait_idle()


def test_require_replaces_gets_420_and_nothing_is_dialled(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_answer.xml", name="uas-never")
    finals = _finals(rawsip.request("INVITE", extra="Require: replaces"), b2bua.sip_port)
    assert len(finals) == 1 and finals[0].startswith("SIP/2.0 420"), finals
    assert _tokens(finals[0], "Unsupported") == ["replaces"]
    assert far.stop().requests() == []
    b2bua.wait_idle()


@pytest.mark.parametrize("method, extra", [
    ("SUBSCRIBE", "Event: presence\r\nExpires: 600\r\nAccept: application/pidf+xml"),
    ("SUBSCRIBE", "Event: dialog\r\nExpires: 600"),
    ("MESSAGE", "Content-Type: text/plain"),
    ("REFER", "Refer-To: <sip:4930999@127.0.0.3>"),
    ("NOTIFY", "Event: message-summary\r\nSubscription-State: active"),
])
def test_out_of_dialog_methods_we_do_not_handle_get_405_and_leave_no_state(b2bua: B2bua, method: str,
                                                                          extra: str) -> None:
    msgs = rawsip.exchange_messages(rawsip.request(method, ruri="sip:4930123456@127.0.0.1", extra=extra),
                                    b2bua.sip_port, "127.0.0.2", 1.5)
    # only the 405 (and its retransmissions: none, it was sent statelessly); before, a SUBSCRIBE got 200 and
    # a NOTIFY from the subscription pjsua made, a MESSAGE 200
    assert [m.split(" ", 2)[1] for m in msgs] == ["405"], [m.split("\r\n", 1)[0] for m in msgs]
    _exactly(msgs[0], "Allow", ALLOW)
    b2bua.wait_idle()
    # the service goes on
    far = uas(b2bua, "uas_answer.xml", name="uas-after")
    assert uac(b2bua, "uac_call.xml", hold_ms=300, name="uac-after").start().wait(20).rc == 0
    assert far.wait(10).rc == 0
