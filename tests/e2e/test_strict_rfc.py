"""Strict RFC 3261 request checks (issue 16, patch 0007): unknown in-dialog methods get 405 with Allow, a CSeq
method unlike the request's gets 400, an unsupported Require gets 420 with Unsupported, several Content-Length
headers get 400; ACK is never answered; the call and the service go on."""

from __future__ import annotations

import pytest

from tests.support import rawsip
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e


def _finals(msg: str, port: int, timeout: float = 1.5) -> list[str]:
    """Send one datagram from 127.0.0.2 and return the final responses (whole messages) that come back."""
    return [m for m in rawsip.exchange_messages(msg, port, "127.0.0.2", timeout) if not m.startswith("SIP/2.0 1")]


def _code(resp: str) -> int:
    return int(resp.split(" ", 2)[1])


def _header(resp: str, name: str) -> str:
    """A header's value from a raw datagram (CRLF) or a SIPp trace message (LF)."""
    for line in resp.replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            return v.strip()
    return ""


def _normal_call_works(b: B2bua) -> None:
    far = uas(b, "uas_answer.xml", name="uas-after")
    r = uac(b, "uac_call.xml", hold_ms=300, name="uac-after").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out


def _cseq_says(msg: str, method: str, says: str) -> str:
    return msg.replace(f"CSeq: 1 {method}\r\n", f"CSeq: 1 {says}\r\n")


@pytest.mark.parametrize("case, msg, expected", [
    ("INVITE with CSeq BYE", _cseq_says(rawsip.request("INVITE"), "INVITE", "BYE"), 400),
    ("OPTIONS with CSeq INVITE", _cseq_says(rawsip.request("OPTIONS"), "OPTIONS", "INVITE"), 400),
    ("BYE with CSeq CANCEL", _cseq_says(rawsip.request("BYE"), "BYE", "CANCEL"), 400),
    ("two Content-Length headers", rawsip.request("INVITE", extra="Content-Length: 0"), 400),
    ("two different Content-Lengths", rawsip.request("OPTIONS", extra="Content-Length: 12"), 400),
    ("several values in one Content-Length (last header)",
     rawsip.request("OPTIONS").replace("Content-Length: 0\r\n", "Content-Length: 0, 5\r\n"), 400),
    ("several values in one Content-Length (not last)",
     rawsip.request("INVITE").replace("Content-Length: 0\r\n", "Content-Length: 0, 5\r\nSubject: x\r\n"), 400),
    ("supported Require passes", rawsip.request("OPTIONS", extra="Require: timer, 100rel"), 200),
    ("Require on CANCEL is ignored", rawsip.request("CANCEL", extra="Require: x-frob"), 481),
])
def test_malformed_request_is_refused_out_of_dialog(b2bua: B2bua, case: str, msg: str, expected: int) -> None:
    finals = _finals(msg, b2bua.sip_port)
    assert finals and _code(finals[0]) == expected, f"{case}: {[f.split(chr(13))[0] for f in finals]}"
    b2bua.wait_idle()


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_unsupported_require_gets_420_with_unsupported(b2bua: B2bua, method: str) -> None:
    far = uas(b2bua, "uas_answer.xml", name="uas-never")
    msg = rawsip.request(method, extra="Require: x-frob, timer\r\nRequire: 100rel, x-bar")
    finals = _finals(msg, b2bua.sip_port)
    assert finals and _code(finals[0]) == 420, finals
    # only the unknown ones, in order (timer and 100rel are in pjsip's own Supported list)
    assert [v.strip() for v in _header(finals[0], "Unsupported").split(",")] == ["x-frob", "x-bar"]
    assert far.stop().requests() == []  # nothing was dialled
    b2bua.wait_idle()
    _normal_call_works(b2bua)


def test_ack_is_never_answered(b2bua: B2bua) -> None:
    for msg in (_cseq_says(rawsip.request("ACK"), "ACK", "INVITE"),
                rawsip.request("ACK", extra="Require: x-frob"),
                rawsip.request("ACK", extra="Content-Length: 0")):
        assert _finals(msg, b2bua.sip_port, timeout=0.5) == []
    assert b2bua.health()["engine"]["up"]
    _normal_call_works(b2bua)


def test_in_dialog_unknown_method_cseq_mismatch_and_require_then_the_call_goes_on(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_answer.xml", name="uas-dialog")
    r = uac(b2bua, "uac_unknown_method.xml", hold_ms=200, name="uac-dialog").start().wait(30)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    finals = {m.split("\n", 1)[0].strip(): m for m in r.messages if m.startswith("SIP/2.0 ")}
    resp405 = next(m for k, m in finals.items() if k.startswith("SIP/2.0 405"))
    allow = {v.strip() for v in _header(resp405, "Allow").split(",")}
    # what pjsua registers with the endpoint (pjsip_endpt_get_capability(PJSIP_H_ALLOW)): the INVITE usage,
    # 100rel, INFO, OPTIONS, MESSAGE, SUBSCRIBE/NOTIFY and REFER; never the refused method
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "PRACK"} <= allow, allow
    assert "FOO" not in allow
    assert r.statuses()[-1] == 200  # the BYE was answered: the call went on
    # the refused requests never reached the far leg
    assert not {"FOO", "OPTIONS", "INFO"} & set(f.requests()), f.requests()
    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1
    _normal_call_works(b2bua)
