"""/v1/users/{id}/session: the keep-connected session (the persistent line to the telecommuter phone), calls
dialled over it and the user's actions on its calls, with the fake engine playing the phones."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.api.helpers import (
    NOT_A_NUMBER,
    OTHER_TARGET,
    PREMIUM,
    TARGET,
    TELECOMMUTER,
    assert_invalid,
    assert_problem,
    assert_unauthenticated,
    business,
    hung_up,
    placed,
    set_mode,
    user,
)


async def connected(t: InProcess, extension: str = "201", *, answer: bool = True,
                    **fields: Any) -> tuple[str, str, str]:
    """A user in keep-connected mode: (id, token, the line's leg), the line answered unless told otherwise."""
    uid, token = await user(t, extension, **fields)
    await set_mode(t, uid, "keep-connected")
    line = placed(t, TELECOMMUTER)[-1].leg
    if answer:
        t.far.answered(line)
    return uid, token, line


async def dial(t: InProcess, token: str, target: str = TARGET) -> dict[str, Any]:
    r = await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": target})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def act(t: InProcess, token: str, action: str, **body: Any) -> dict[str, Any]:
    r = await t.call("POST", "/v1/users/me/session/actions", token=token, json={"action": action, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def states(view: dict[str, Any]) -> dict[str, str]:
    return {c["call"]: c["state"] for c in view["calls"]}


# ------------------------------------------------------------------------------------------ GET .../session
async def test_keep_connected_mode_brings_up_the_line(t: InProcess) -> None:
    uid, token, line = await connected(t, answer=False)
    [call] = t.engine.calls_placed()
    assert call.leg == line and call.args[0].startswith(f"sip:{TELECOMMUTER}@127.0.0.3")
    r = await t.call("GET", "/v1/users/me/session", token=token)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view == {"id": t.domain.sessions.of(uid).id, "line": "calling", "line_invites": 1, "calls": []}
    t.far.answered(line)
    assert (await t.call("GET", f"/v1/users/{uid}/session")).json()["line"] == "up"


@pytest.mark.parametrize("mode", ["off", "on-demand"])
async def test_no_session_without_keep_connected_mode(t: InProcess, mode: str) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, mode)
    assert_problem(await t.call("GET", "/v1/users/me/session", token=token), 404, "no-session")


async def test_turning_keep_connected_off_ends_the_session(t: InProcess) -> None:
    uid, token, line = await connected(t)
    await set_mode(t, uid, "off", number=None)
    assert line in hung_up(t)
    t.far.ended(line)
    assert_problem(await t.call("GET", "/v1/users/me/session", token=token), 404, "no-session")


async def test_session_auth(t: InProcess) -> None:
    a, a_token, _ = await connected(t, "201")
    _, b_token = await user(t, "202")
    assert_unauthenticated(await t.call("GET", f"/v1/users/{a}/session", token=None))
    assert_problem(await t.call("GET", f"/v1/users/{a}/session", token="wrong"), 403, "forbidden")
    assert_problem(await t.call("GET", f"/v1/users/{a}/session", token=b_token), 403, "not-your-user")
    assert_problem(await t.call("GET", "/v1/users/me/session"), 400, "me-needs-user-token")
    assert_problem(await t.call("GET", "/v1/users/nobody/session"), 404, "no-user")
    assert (await t.call("GET", f"/v1/users/{a}/session", token=a_token)).status_code == 200


# ------------------------------------------------------------------------------------------ POST .../session/calls
async def test_dial_over_the_line(t: InProcess) -> None:
    _, token, line = await connected(t)
    admitted = t.node.gate.admitted
    data = await dial(t, token, "040 12345678")
    assert data["number"] == TARGET and data["call"] == "out-1"
    assert data["session"]["line"] == "up" and states(data["session"]) == {"out-1": "dialing"}
    [party] = placed(t, TARGET)
    assert business("201") in party.args[1]  # the target sees the business number
    assert t.node.gate.admitted == admitted + 1  # the party holds its own admission
    assert ("play_tone", line, ("ringback",)) in [(c.name, c.leg, c.args) for c in t.engine.commands]
    t.far.answered(party.leg)
    view = (await t.call("GET", "/v1/users/me/session", token=token)).json()
    assert view["calls"] == [{"call": "out-1", "number": TARGET, "direction": "out", "state": "active", "slot": None}]
    assert {(c.leg, c.args[0]) for c in t.engine.named("link")} == {(line, party.leg)}


async def test_dial_while_the_line_is_calling_waits_for_it(t: InProcess) -> None:
    _, token, line = await connected(t, answer=False)
    data = await dial(t, token)
    assert data["session"]["line"] == "calling" and placed(t, TARGET) == []
    # a second one cannot queue behind it
    assert_problem(await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": OTHER_TARGET}),
                   409, "line-busy")
    t.far.answered(line)
    assert len(placed(t, TARGET)) == 1 and placed(t, OTHER_TARGET) == []


async def test_dial_while_dialling_is_refused_and_gives_its_admission_back(t: InProcess) -> None:
    _, token, _ = await connected(t)
    await dial(t, token)
    admitted = t.node.gate.admitted
    assert_problem(await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": OTHER_TARGET}),
                   409, "already-dialling")
    assert t.node.gate.admitted == admitted and placed(t, OTHER_TARGET) == []


async def test_dial_refused_by_the_dialling_rules(t: InProcess) -> None:
    _, token, _ = await connected(t)
    before = len(t.engine.calls_placed()), t.node.gate.admitted
    for target, status, rule in ((PREMIUM, 403, "class-of-service:standard:premium"),
                                 (NOT_A_NUMBER, 422, "invalid-number")):
        r = await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": target})
        assert_problem(r, status, rule, target)
    assert (len(t.engine.calls_placed()), t.node.gate.admitted) == before


async def test_dial_without_a_session_is_a_conflict(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")
    assert_problem(await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": TARGET}),
                   409, "no-session")
    assert t.engine.calls_placed() == []


async def test_dial_when_admission_is_full_is_503_with_retry_after(t: InProcess) -> None:
    _, token, _ = await connected(t)
    while t.node.gate.admit() is None:
        pass
    r = await t.call("POST", "/v1/users/me/session/calls", token=token, json={"target": TARGET})
    assert_problem(r, 503, "over-capacity")
    assert r.headers["retry-after"] == "5" and placed(t, TARGET) == []


async def test_dial_refuses_invalid_bodies(t: InProcess) -> None:
    _, token, _ = await connected(t)
    for body in ({}, {"target": ""}, {"target": TARGET, "slot": 1}):
        assert_invalid(await t.call("POST", "/v1/users/me/session/calls", token=token, json=body), case=body)
    assert placed(t, TARGET) == []


async def test_dial_auth(t: InProcess) -> None:
    a, _, _ = await connected(t, "201")
    _, b_token = await user(t, "202")
    body = {"target": TARGET}
    assert_unauthenticated(await t.call("POST", f"/v1/users/{a}/session/calls", token=None, json=body))
    assert_problem(await t.call("POST", f"/v1/users/{a}/session/calls", token=b_token, json=body),
                   403, "not-your-user")
    assert placed(t, TARGET) == []
    r = await t.call("POST", f"/v1/users/{a}/session/calls", json=body)  # the admin may
    assert r.status_code == 201 and len(placed(t, TARGET)) == 1


# ------------------------------------------------------------------------------------------ POST .../session/actions
async def test_hold_retrieve_park_unpark_hangup(t: InProcess) -> None:
    _, token, line = await connected(t)
    await dial(t, token)
    party = placed(t, TARGET)[0].leg
    t.far.answered(party)
    view = await act(t, token, "hold")
    assert states(view) == {"out-1": "held"}
    assert ("unlink", line) in [(c.name, c.leg) for c in t.engine.commands]
    assert [c.leg for c in t.engine.named("play_file")] == [party]  # music for the held party
    assert states(await act(t, token, "retrieve")) == {"out-1": "active"}
    assert states(await act(t, token, "toggle-hold")) == {"out-1": "held"}
    assert states(await act(t, token, "toggle-hold")) == {"out-1": "active"}
    view = await act(t, token, "park", slot=3)
    assert view["calls"][0]["state"] == "parked" and view["calls"][0]["slot"] == 3
    assert states(await act(t, token, "unpark", slot=3)) == {"out-1": "active"}
    await act(t, token, "hangup", call="out-1")
    assert party in hung_up(t)
    t.far.ended(party)
    assert (await t.call("GET", "/v1/users/me/session", token=token)).json()["calls"] == []


async def test_call_waiting_accept_swap_and_reject(t: InProcess) -> None:
    uid, token, _ = await connected(t, call_waiting=True)
    await dial(t, token)
    t.far.answered(placed(t, TARGET)[0].leg)
    t.far.call_in(invite("IN1", called=business("201")[1:]))  # a caller while the user is on the phone
    view = (await t.call("GET", "/v1/users/me/session", token=token)).json()
    assert states(view) == {"out-1": "active", "in-IN1": "waiting"}
    assert 180 in t.engine.responses("IN1")
    view = await act(t, token, "accept")
    assert states(view) == {"out-1": "held", "in-IN1": "active"}
    assert t.engine.responses("IN1") == [180, 200]  # answered only now
    assert states(await act(t, token, "swap")) == {"out-1": "active", "in-IN1": "held"}
    t.far.call_in(invite("IN2", called=business("201")[1:]))
    assert states(await act(t, token, "reject", call="in-IN2"))["in-IN2"] == "waiting"
    assert 486 in t.engine.responses("IN2")
    assert [e.data["state"] for e in t.node.bus.recent(uid) if e.kind == "session"].count("call-offered") == 2


async def test_actions_that_do_not_apply_now_are_409(t: InProcess) -> None:
    uid, token, _ = await connected(t)  # the line is up, no calls on it
    session_id = t.domain.sessions.of(uid).id
    before = len(t.engine.commands)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("hold", {}, "no-active-call"),
        ("toggle-hold", {}, "no-held-call"),  # nothing active: it means retrieve
        ("retrieve", {}, "no-held-call"),
        ("swap", {}, "nothing-to-swap"),
        ("park", {}, "no-call-to-park"),
        ("unpark", {"slot": 1}, "no-parked-call"),
        ("accept", {}, "no-waiting-call"),
        ("reject", {}, "no-waiting-call"),
        ("hangup", {}, "no-call"),
        ("hangup", {"call": "out-7"}, "no-call"),
        ("reconnect", {}, "line-not-down"),
    ]
    for action, body, rule in cases:
        r = await t.call("POST", "/v1/users/me/session/actions", token=token, json={"action": action, **body})
        assert_problem(r, 409, rule, action)
        # the refusal is on the user's event stream too
        assert t.node.bus.recent(uid)[-1].data == {"call_id": session_id, "state": "action-refused",
                                                   "action": action, "reason": rule}
    assert len(t.engine.commands) == before


async def test_park_needs_a_free_slot(t: InProcess) -> None:
    _, token, _ = await connected(t)
    await dial(t, token)
    t.far.answered(placed(t, TARGET)[0].leg)
    assert_problem(await t.call("POST", "/v1/users/me/session/actions", token=token,
                                json={"action": "park", "slot": 10}), 409, "slot-unavailable")  # 9 slots


async def test_reconnect_redials_a_dropped_line(t: InProcess) -> None:
    _, token, line = await connected(t)
    t.far.ended(line)
    assert (await t.call("GET", "/v1/users/me/session", token=token)).json()["line"] == "down"
    view = await act(t, token, "reconnect")
    assert view["line"] == "calling" and view["line_invites"] == 2
    assert len(placed(t, TELECOMMUTER)) == 2


async def test_actions_refuse_invalid_bodies(t: InProcess) -> None:
    _, token, _ = await connected(t)
    bodies: list[dict[str, Any]] = [{"action": "dance"}, {}, {"action": "park", "slot": 100},
                                    {"action": "park", "slot": -1}, {"action": "hold", "call": "x" * 65},
                                    {"action": "hold", "now": True}]
    before = len(t.engine.commands)
    for body in bodies:
        assert_invalid(await t.call("POST", "/v1/users/me/session/actions", token=token, json=body), case=body)
    assert len(t.engine.commands) == before


async def test_actions_without_a_session_are_a_conflict(t: InProcess) -> None:
    _, token = await user(t)
    assert_problem(await t.call("POST", "/v1/users/me/session/actions", token=token, json={"action": "hold"}),
                   409, "no-session")


async def test_actions_auth(t: InProcess) -> None:
    a, _, _ = await connected(t, "201")
    _, b_token = await user(t, "202")
    body = {"action": "reconnect"}
    assert_unauthenticated(await t.call("POST", f"/v1/users/{a}/session/actions", token=None, json=body))
    assert_problem(await t.call("POST", f"/v1/users/{a}/session/actions", token="wrong", json=body),
                   403, "forbidden")
    assert_problem(await t.call("POST", f"/v1/users/{a}/session/actions", token=b_token, json=body),
                   403, "not-your-user")
    assert_problem(await t.call("POST", f"/v1/users/{a}/session/actions", json=body), 409, "line-not-down")
