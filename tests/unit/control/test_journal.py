"""The live-dialog journal follows the engine's leg events: a confirmed leg's dialog is written with the call it
belongs to, an ended leg's is removed; legs without a dialog or a call are not journaled; a journal that cannot be
written is counted and logged and the call goes on."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from b2bua.control.journal import dialog_of
from b2bua.sip.types import Admit, Dialog, LegAnswered, LegEnded
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import metric


def dialog(sip_call_id: str, tag: str) -> Dialog:
    return Dialog(sip_call_id, "sip:b2bua@127.0.0.1", tag, "sip:far@127.0.0.3", "far-" + tag,
                  "sip:far@127.0.0.3:5060", ("<sip:p.example;lr>",), "p.example:5060", 1_081_343)


def trunk_call(t: InProcess) -> str:
    assert isinstance(t.far.call_in(invite("A1", called="4930123456", from_user="15551230001")), Admit)
    return str(t.engine.calls_placed()[0].leg)


async def test_confirmed_legs_are_journaled_with_their_call_and_removed_when_they_end(t: InProcess) -> None:
    b = trunk_call(t)
    call = next(iter(t.runner.calls.values()))
    t.node.dispatcher.on_event(LegAnswered(b, dialog("cid-b", "tb")))
    t.node.dispatcher.on_event(LegAnswered("A1", dialog("cid-A1", "ta")))
    rows = t.store.journal.entries()
    assert {(r["leg_id"], r["call_id"], r["kind"]) for r in rows} == {(b, call.id, "trunk"), ("A1", call.id, "trunk")}
    a_row = next(r for r in rows if r["leg_id"] == "A1")
    assert dialog_of(a_row) == dialog("cid-A1", "ta")
    assert a_row["call_started"] == call.created and a_row["answered_at"] >= call.created
    assert json.loads(a_row["call_info"]) == {"caller": "15551230001", "called": "4930123456", "trunk_in": "carrier",
                                              "trunk_out": "carrier", "sip_call_id": "cid-A1"}
    assert call.machine.state_name == "answered"  # the runner saw the answers too
    t.node.dispatcher.on_event(LegEnded(b, 200, "bye"))
    assert [r["leg_id"] for r in t.store.journal.entries()] == ["A1"]
    t.node.dispatcher.on_event(LegEnded("A1", 200, "bye"))
    assert t.store.journal.entries() == [] and not t.runner.calls


async def test_legs_without_a_dialog_or_a_call_are_not_journaled(t: InProcess) -> None:
    b = trunk_call(t)
    t.node.dispatcher.on_event(LegAnswered(b))  # the confirming message could not be read
    t.node.dispatcher.on_event(LegAnswered("L-stray", dialog("cid-x", "x")))  # no call owns it
    assert t.store.journal.entries() == []
    assert next(iter(t.runner.calls.values())).machine.state_name == "answered"


async def test_a_failing_journal_is_counted_and_never_stops_the_call(t: InProcess,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    b = trunk_call(t)

    def full_disk(row: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(t.store.journal, "add", full_disk)
    with capture_logs() as logs:
        t.node.dispatcher.on_event(LegAnswered(b, dialog("cid-b", "tb")))
    assert metric(t, "b2bua_dialog_journal_errors_total") == 1
    assert any(e["event"] == "dialog journal write failed" and e["op"] == "add" for e in logs)
    assert t.engine.responses("A1") == [200]  # the B answer was relayed to the caller all the same
    t.node.dispatcher.on_event(LegEnded(b, 200, ""))
    assert metric(t, "b2bua_dialog_journal_errors_total") == 1  # nothing to remove for a leg never written
