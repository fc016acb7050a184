"""Call control in-process: a carrier's INVITE screened, bridged onwards and torn down, over a fake engine."""

from __future__ import annotations

from pathlib import Path

from b2bua.sip.types import Admit, Reject
from tests.support.fake_engine import invite
from tests.support.inprocess import in_process


async def test_trunk_call_is_bridged_and_both_legs_end(tmp_path: Path) -> None:
    async with in_process(tmp_path) as t:
        admitted = t.far.call_in(invite("A1", called="4930123456"))
        assert isinstance(admitted, Admit) and admitted.target_trunk == "carrier"
        placed = t.engine.calls_placed()
        assert len(placed) == 1 and placed[0].args[0].startswith("sip:4930123456@127.0.0.3")
        b_leg = placed[0].leg
        t.far.ringing(b_leg)
        assert t.engine.responses("A1") == [180]
        t.far.answered(b_leg)
        assert 200 in t.engine.responses("A1")
        t.far.answered("A1")
        assert {(c.leg, c.args[0]) for c in t.engine.named("link")} == {("A1", b_leg)}
        assert t.node.gate.admitted == 1
        t.far.ended("A1")
        assert [c.leg for c in t.engine.named("hangup")] == [b_leg]
        t.far.ended(b_leg)
        assert t.node.gate.admitted == 0 and not t.runner.calls
        cdr = t.domain.records.recent(10)
        assert cdr[0]["outcome"] == "completed-a-hangup" and cdr[0]["kind"] == "trunk", cdr


async def test_unknown_source_is_refused_before_any_call(tmp_path: Path) -> None:
    async with in_process(tmp_path) as t:
        refused = t.far.call_in(invite("A1", src_ip="127.0.0.66"))
        assert isinstance(refused, Reject) and refused.code == 403
        assert t.engine.commands == [] and t.node.gate.admitted == 0
