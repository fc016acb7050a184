"""RFC 4475 torture messages (and RFC 5118's IPv6 ones, as parsing over IPv4) sent to one B2BUA process: each gets
what the RFC says a compliant element answers (or nothing, where it says to drop it), and after each one the process
is still alive and answering; after all of them a normal call still completes and no call is left in flight.

Cases where the product answers otherwise are strict xfails whose reason says what it does instead (see
``tests/support/torture_cases.py``); a crash or a lost service is never excused by them (it raises ``NotServing``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support import rawsip
from tests.support.procs import B2bua, uac, uas
from tests.support.torture_cases import CASES, Case

pytestmark = pytest.mark.e2e


class NotServing(Exception):  # not an AssertionError: xfail(raises=AssertionError) cannot hide it
    """The B2BUA died or stopped answering OPTIONS."""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[B2bua]:
    """One B2BUA for the whole module; it must still stop cleanly at the end."""
    b = B2bua(tmp_path_factory.mktemp("torture") / "b2bua").start()
    yield b
    rc = b.stop()
    assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def _still_serving(b: B2bua) -> None:
    assert b.proc is not None
    if b.proc.poll() is not None:
        raise NotServing(f"the B2BUA exited with {b.proc.returncode}\n{b.log_tail()}")
    status = rawsip.options_status(b.sip_port)
    if status != 200:
        raise NotServing(f"OPTIONS got {status or 'nothing'} after the message\n{b.log_tail()}")


def _head(msg: bytes) -> bytes:
    return msg.split(b"\r\n\r\n", 1)[0]


def _header_values(msg: bytes, name: str) -> list[str]:
    out = []
    for line in _head(msg).split(b"\r\n")[1:]:
        n, _, v = line.partition(b":")
        if n.strip().lower() == name.lower().encode():
            out += [x.strip() for x in v.decode("latin-1").split(",")]
    return out


def _described(msgs: list[bytes]) -> list[str]:
    return [m.split(b"\r\n", 1)[0].decode("latin-1") for m in msgs]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_torture_message(node: B2bua, case: Case) -> None:
    token = case.token()
    got = rawsip.exchange_raw(case.wire(), node.sip_port, (case.src, case.reply_port), token,
                              timeout=0.6 if case.is_response else 2.0)
    _still_serving(node)
    ours = [m for m in got if m.startswith(b"SIP/2.0 ") and token in _head(m)]
    finals = [m for m in ours if not m.startswith(b"SIP/2.0 1")]
    if case.unanswered:
        assert not [m for m in got if case.unanswered.encode() in _head(m)], _described(got)
    if not case.expect:
        assert ours == [], f"{case.says}; got {_described(ours)}"
        return
    codes = {int(m[8:11]) for m in finals}
    assert len(codes) == 1 and codes <= set(case.expect), \
        f"{case.says}; expected {case.expect}, got {_described(ours) or 'no answer'}"
    for name, values in case.headers:
        present = _header_values(finals[0], name)
        assert set(values) <= set(present), f"{name}: {present}, expected {values}\n{finals[0].decode('latin-1')}"
    if case.called is not None:
        read = _called(node, case.call_id())
        assert read == [case.called], f"the B2BUA read the called number as {read}, not {case.called!r}"


def _called(b: B2bua, call_id: str) -> list[str]:
    """What the B2BUA logged as the called number of the INVITE with this Call-ID (it logs a refusal on its asyncio
    thread, shortly after answering)."""
    deadline = time.monotonic() + 2.0
    while True:
        found = [str(e.get("called")) for e in b.log_events()
                 if e.get("event") == "invite rejected" and e.get("sip_call_id") == call_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_still_whole_after_the_torture(node: B2bua) -> None:
    """After every message: OPTIONS answered, a normal call completes, nothing left in flight, no error logged."""
    assert rawsip.options_status(node.sip_port) == 200
    far = uas(node, "uas_answer.xml", name="uas-after-torture")
    r = uac(node, "uac_call.xml", hold_ms=300, name="uac-after-torture").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    node.wait_idle()
    health = node.health()
    assert health["engine"]["up"] and health["active_calls"] == 0, health
    assert health["admission"]["admitted"] == 0, health
    # a callback that raised (pjsua2 swallows it) or a fault is logged at error level
    assert [e for e in node.log_events() if e.get("level") in ("error", "critical")] == []
