"""Calls placed for a user on request: callbacks (the user's phone first, then the target, under the business
number) and the activation test call. Dialling rules, limits, routes and admission come before anything is
dialled, and a refusal leaves nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from b2bua.calls.events import Role
from b2bua.calls.machine import CallKind
from b2bua.calls.routing import Router
from b2bua.telecommuter.users import Mode, User
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import (
    BUSINESS,
    CALLER,
    MOBILE,
    OUT,
    headers_of,
    make_user,
    metric,
    node,
    placed,
    refused,
)


def on_demand(t: InProcess, **fields: Any) -> User:
    return make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, **fields)


def refusals(t: InProcess, rule: str) -> float:
    return metric(t, "b2bua_dialling_refused_total", kind=rule.split(":")[0], rule=rule)


# ------------------------------------------------------------------------------------------ callbacks
async def test_callback_rings_the_user_first_then_the_target_under_the_business_number(t: InProcess) -> None:
    u = on_demand(t)
    call = t.domain.outgoing.start_callback(u, "030 98765432")
    assert (call.kind, call.user_id) == (CallKind.CALLBACK, u.id)
    assert call.info == {"target": CALLER, "target_category": "national", "dialled": "030 98765432",
                         "user_number": MOBILE}
    assert t.node.gate.admitted == 1
    (user_leg,) = placed(t)
    assert user_leg.args[:2] == (f"sip:{MOBILE}@{OUT}", f'"{CALLER}" <sip:{BUSINESS}@127.0.0.1>')
    assert call.legs == {Role.USER: user_leg.leg}
    t.far.ringing(user_leg.leg)
    t.far.answered(user_leg.leg)
    target = placed(t)[-1]
    assert target.args[:2] == (f"sip:{CALLER}@{OUT}", f'"User 201" <sip:{BUSINESS}@127.0.0.1>')
    assert headers_of(target) == {"P-Asserted-Identity": f'"User 201" <sip:{BUSINESS}@127.0.0.1>'}
    assert [(c.leg, c.args) for c in t.engine.named("play_tone")] == [(user_leg.leg, ("ringback",))]
    t.far.answered(target.leg)
    assert (user_leg.leg, target.leg) in {(c.leg, c.args[0]) for c in t.engine.named("link")}
    assert call.machine.state_name == "connected"
    t.far.ended(target.leg)
    t.far.ended(user_leg.leg)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0


async def test_callback_with_a_confirmation_digit_dials_the_target_only_after_it(t: InProcess) -> None:
    u = on_demand(t, confirm_digit="1")
    t.domain.outgoing.start_callback(u, CALLER)
    user_leg = placed(t)[0].leg
    t.far.answered(user_leg)
    assert len(placed(t)) == 1 and t.engine.named("play_tone")[-1].args == ("prompt",)
    t.far.dtmf(user_leg, "2")
    assert len(placed(t)) == 1
    t.far.dtmf(user_leg, "1")
    assert placed(t)[-1].args[0] == f"sip:{CALLER}@{OUT}"


async def test_privacy_withholds_the_business_number_from_the_target(t: InProcess) -> None:
    u = on_demand(t, privacy=True)
    t.domain.outgoing.start_callback(u, CALLER)
    t.far.answered(placed(t)[0].leg)
    target = placed(t)[-1]
    assert target.args[1] == '"Anonymous" <sip:anonymous@anonymous.invalid>'
    assert headers_of(target)["Privacy"] == "id"


async def test_callback_needs_on_demand_mode_with_a_number(t: InProcess) -> None:
    off = make_user(t, "201")
    kept = make_user(t, "202", "+493012345679", mode=Mode.KEEP_CONNECTED, number=MOBILE)
    t.engine.clear()
    for u in (off, kept):
        with refused(409, "telecommuter-mode-off"):
            t.domain.outgoing.start_callback(u, CALLER)
    assert placed(t) == [] and t.node.gate.admitted == 1  # only the keep-connected session


async def test_dialling_rules_refuse_before_anything_is_dialled(t: InProcess) -> None:
    u = on_demand(t)
    with refused(403, "class-of-service:standard:international"):
        t.domain.outgoing.start_callback(u, "+33123456789")
    with refused(403, "class-of-service:standard:premium"):
        t.domain.outgoing.start_callback(u, "+499001234567")
    with refused(422, "invalid-number"):
        t.domain.outgoing.start_callback(u, "no number")
    assert placed(t) == [] and not t.runner.calls and t.node.gate.admitted == 0
    assert refusals(t, "class-of-service:standard:international") == 1


async def test_concurrent_callbacks_are_limited_429(t: InProcess) -> None:
    u = on_demand(t)  # class "standard": two callbacks at once
    t.domain.outgoing.start_callback(u, CALLER)
    t.domain.outgoing.start_callback(u, CALLER)
    with refused(429, "concurrent-limit"):
        t.domain.outgoing.start_callback(u, CALLER)
    assert len(placed(t)) == 2 and t.node.gate.admitted == 2
    assert refusals(t, "concurrent-limit") == 1
    first = placed(t)[0].leg
    t.far.ended(first, 486)  # one ends: room for another
    t.domain.outgoing.start_callback(u, CALLER)
    assert len(placed(t)) == 3


async def test_callback_attempts_a_minute_are_limited_429(tmp_path: Path) -> None:
    extra = """
[classes_of_service.standard]
max_calls_per_minute = 2
max_concurrent_calls = 5
"""
    async with node(tmp_path, extra=extra) as t:
        u = on_demand(t)
        for _ in range(2):
            call = t.domain.outgoing.start_callback(u, CALLER)
            t.runner.terminate(call.id)
        with refused(429, "rate-limit"):
            t.domain.outgoing.start_callback(u, CALLER)
        assert len(placed(t)) == 2 and refusals(t, "rate-limit") == 1


async def test_no_route_is_503(t: InProcess) -> None:
    u = on_demand(t)
    t.domain.outgoing.router = Router(t.settings.trunks, [])
    with refused(503, "no-route"):
        t.domain.outgoing.start_callback(u, CALLER)
    assert placed(t) == [] and t.node.gate.admitted == 0 and refusals(t, "no-route") == 1


async def test_no_admission_is_503_with_retry_after(t: InProcess) -> None:
    u = on_demand(t)
    t.node.gate.ceiling = 0
    with refused(503, "over-capacity") as caught:
        t.domain.outgoing.start_callback(u, CALLER)
    assert caught.value.retry_after == 5
    t.node.gate.ceiling = 10
    t.node.gate.set_rate(1.0, 1)
    t.domain.outgoing.start_callback(u, CALLER)
    with refused(503, "over-rate") as caught:
        t.domain.outgoing.start_callback(u, CALLER)
    assert caught.value.retry_after == 1
    assert len(placed(t)) == 1 and t.node.gate.admitted == 1
    assert refusals(t, "over-capacity") == 1 and refusals(t, "over-rate") == 1


# ------------------------------------------------------------------------------------------ test call
async def test_test_call_rings_the_telecommuter_number(t: InProcess) -> None:
    u = on_demand(t)
    call = t.domain.outgoing.start_test_call(u)
    assert (call.kind, call.user_id, call.info) == (CallKind.TEST, u.id, {"user_number": MOBILE})
    (leg,) = placed(t)
    assert leg.args[:2] == (f"sip:{MOBILE}@{OUT}", f'"Test call" <sip:{BUSINESS}@127.0.0.1>')
    assert t.node.gate.admitted == 1
    t.far.answered(leg.leg)
    assert t.engine.named("play_tone")[-1].args == ("confirm",)
    t.far.ended(leg.leg)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0


async def test_test_call_hangs_up_once_the_confirmation_is_played(tmp_path: Path) -> None:
    async with node(tmp_path, telecommuter="test_call_confirmation_s = 0.02") as t:
        u = on_demand(t)
        t.domain.outgoing.start_test_call(u)
        leg = placed(t)[0].leg
        t.far.answered(leg)
        await asyncio.sleep(0.05)
        assert [c.leg for c in t.engine.named("hangup")] == [leg]


async def test_test_call_refusals(t: InProcess) -> None:
    u = on_demand(t)
    t.node.gate.ceiling = 0
    with refused(503, "over-capacity"):
        t.domain.outgoing.start_test_call(u)
    t.node.gate.ceiling = 10
    t.domain.outgoing.router = Router(t.settings.trunks, [])
    with refused(503, "no-route"):
        t.domain.outgoing.start_test_call(u)
    assert placed(t) == [] and t.node.gate.admitted == 0
