"""The leg's call setting and its transfer refusals, without a running Endpoint: every call operation offers and
accepts audio only, and a REFER or a Replaces INVITE is refused before any of our code can fail (pjsua's default
is to accept them, and to place the transfer's call itself)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from b2bua.sip.call_ops import CallOps
from b2bua.sip.legs import REFER_REFUSAL, REPLACES_REFUSAL, Leg, LegTable, call_op
from b2bua.sip.media_ops import MediaOps


@pytest.mark.parametrize("code, headers", [(0, ()), (180, ()), (200, (("P-Asserted-Identity", "<sip:1@x>"),))])
def test_every_call_operation_is_audio_only(code: int, headers: tuple[tuple[str, str], ...]) -> None:
    op = call_op(code, headers)
    assert (op.opt.audioCount, op.opt.videoCount, op.opt.textCount) == (1, 0, 0)
    assert op.statusCode == code
    assert [(h.hName, h.hValue) for h in op.txOption.headers] == list(headers)


class _FailingListener:
    """A listener whose guard itself fails: the refusal must already be in place."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def guard(self, where: str, fn: Callable[..., None], *args: Any) -> None:
        self.calls.append((where, args[1:]))
        raise RuntimeError("listener broke")

    def on_transfer_refused(self, leg: Leg, kind: str, detail: str) -> None:
        raise AssertionError("guard runs it")


def test_refer_is_refused_before_the_listener_runs() -> None:
    leg: Any = SimpleNamespace(listener=_FailingListener())
    prm = SimpleNamespace(statusCode=202, dstUri="<sip:+4930999@127.0.0.9>")
    with pytest.raises(RuntimeError):
        Leg.onCallTransferRequest(leg, prm)
    assert prm.statusCode == REFER_REFUSAL == 405
    assert leg.listener.calls == [("onCallTransferRequest", ("refer", "<sip:+4930999@127.0.0.9>"))]


def test_replaces_is_refused_before_the_listener_runs_and_its_reason_is_left_alone() -> None:
    leg: Any = SimpleNamespace(listener=_FailingListener())
    prm = SimpleNamespace(statusCode=200, reason="OK", rdata=SimpleNamespace(srcAddress="127.0.0.2:5060"))
    with pytest.raises(RuntimeError):
        Leg.onCallReplaceRequest(leg, prm)
    assert prm.statusCode == REPLACES_REFUSAL == 403
    assert prm.reason == "OK"  # pjsua2 passes pjsua a pointer into prm: a new string would dangle
    assert leg.listener.calls == [("onCallReplaceRequest", ("replaces", "127.0.0.2:5060"))]


def test_refusals_are_counted_by_kind_and_logged() -> None:
    logged: list[tuple[int, str]] = []

    def log(level: int, msg: str) -> None:
        logged.append((level, msg))

    legs = LegTable()
    ops = CallOps(legs, MediaOps(legs, log), lambda invite: None, lambda event: None, log,  # type: ignore[arg-type,return-value]
                  lambda fn: None)  # type: ignore[arg-type,return-value]
    leg: Any = SimpleNamespace(leg_id="L7")
    ops.on_transfer_refused(leg, "refer", "<sip:+4930999@127.0.0.9>")
    ops.on_transfer_refused(leg, "replaces", "127.0.0.2:5060")
    ops.on_transfer_refused(leg, "replaces", "127.0.0.2:5062")
    assert ops.transfers_refused == {"refer": 1, "replaces": 2}
    assert [level for level, _ in logged] == [2, 2, 2]
    assert "L7: REFER to '<sip:+4930999@127.0.0.9>' refused with 405" in logged[0][1]
    assert "L7: INVITE with Replaces from 127.0.0.2:5060 refused with 403" in logged[1][1]
