"""Every call state machine is a :class:`b2bua.calls.machine.Machine`: mypy checks the calls to :func:`run` below
(a class missing a member or giving it the wrong type fails type checking), the tests check what the members
say in the start, answered and ended states."""

from __future__ import annotations

import json

import pytest

from b2bua.calls import events as call_events
from b2bua.calls.bridge import BridgeCall
from b2bua.calls.callback import CallbackCall, CallbackPlan
from b2bua.calls.events import Role
from b2bua.calls.incoming import IncomingCall, IncomingPlan, Ring, VoicemailPlan
from b2bua.calls.keepconnected import KeepConnectedSession, SessionPlan
from b2bua.calls.machine import Machine
from b2bua.calls.testcall import TestCall

CONTRACT = sorted(name for name in vars(Machine) if not name.startswith("_"))


def run(machine: Machine) -> tuple[str, bool]:
    """Typed as the runner sees a call: only what the Protocol offers."""
    return machine.state_name, machine.holds_user_line


def new_machines() -> list[Machine]:
    return [
        BridgeCall("sip:b@t", "<sip:a@us>", 30.0),
        CallbackCall(CallbackPlan("sip:u@t", "<sip:b@us>", "sip:t@t", "<sip:b@us>", "+4930")),
        IncomingCall(IncomingPlan(Ring("sip:u@t", "<sip:c@us>", (), "telecommuter"), 20.0, None)),
        TestCall("sip:u@t", "<sip:b@us>", "+49171"),
        KeepConnectedSession(SessionPlan("sip:l@t", "<sip:b@us>", "+49171")),
    ]


@pytest.mark.parametrize("machine", new_machines(), ids=lambda m: type(m).__name__)
def test_every_machine_offers_the_whole_contract(machine: Machine) -> None:
    assert CONTRACT == ["answered_at", "done", "handle", "holds_user_line", "start", "state_name"]
    for name in CONTRACT:
        assert hasattr(machine, name), f"{type(machine).__name__} lacks {name}"
    state, holds = run(machine)
    assert isinstance(state, str) and state
    assert isinstance(holds, bool)
    assert machine.answered_at is None and not machine.done


def test_trunk_call_never_holds_the_user_line() -> None:
    m = BridgeCall("sip:b@t", "<sip:a@us>", 30.0)
    m.start(0)
    assert run(m) == ("calling", False)
    m.handle(call_events.Progress(Role.B, 180), 1)
    assert run(m) == ("ringing", False)
    m.handle(call_events.Answered("b"), 2)
    assert run(m) == ("answered", False)
    m.handle(call_events.Ended("a", 200), 3)
    assert run(m) == ("ending", False)
    m.handle(call_events.Ended("b", 200), 4)
    assert run(m) == ("ended", False) and m.done


def test_callback_holds_the_line_while_its_user_leg_lives() -> None:
    m = CallbackCall(CallbackPlan("sip:u@t", "<sip:b@us>", "sip:t@t", "<sip:b@us>", "+4930"))
    assert run(m) == ("user-calling", False)  # nothing placed yet
    m.start(0)
    assert run(m) == ("user-calling", True)
    m.handle(call_events.Answered("user"), 1)
    assert run(m) == ("target-calling", True)
    m.handle(call_events.Answered("target"), 2)
    assert run(m) == ("connected", True)
    m.handle(call_events.Ended("user", 200), 3)
    assert run(m) == ("ending", False)
    m.handle(call_events.Ended("target", 200), 4)
    assert run(m) == ("ended", False) and m.done


def test_incoming_call_holds_the_line_while_the_user_leg_lives() -> None:
    m = IncomingCall(IncomingPlan(Ring("sip:u@t", "<sip:c@us>", (), "telecommuter"), 20.0, None))
    m.start(0)
    assert run(m) == ("ringing", True)
    m.handle(call_events.Answered("user"), 1)
    assert run(m) == ("connected", True)
    m.handle(call_events.Ended("caller", 200), 2)
    assert run(m) == ("ending", True)  # the user's leg is only being hung up
    m.handle(call_events.Ended("user", 200), 3)
    assert run(m) == ("ended", False) and m.done


def test_incoming_call_to_voicemail_never_holds_the_line() -> None:
    vm = VoicemailPlan("m1", "/greeting.wav", 2.0, "/m1.wav", 60.0)
    m = IncomingCall(IncomingPlan(None, 20.0, vm, "logged-out"))
    m.start(0)
    assert run(m) == ("greeting", False)
    m.handle(call_events.Ended("caller", 200), 1)
    assert run(m) == ("ended", False) and m.done


def test_test_call_holds_the_line_while_it_rings_and_plays() -> None:
    m = TestCall("sip:u@t", "<sip:b@us>", "+49171")
    assert run(m) == ("calling", False)
    m.start(0)
    assert run(m) == ("calling", True)
    m.handle(call_events.Answered("user"), 1)
    assert run(m) == ("playing", True)
    m.handle(call_events.Ended("user", 200), 2)
    assert run(m) == ("ended", False) and m.done


def test_session_shows_its_line_and_holds_the_line_while_the_line_leg_lives() -> None:
    m = KeepConnectedSession(SessionPlan("sip:l@t", "<sip:b@us>", "+49171"))
    assert run(m) == ("down", False)
    m.start(0)
    assert run(m) == ("calling", True)
    m.handle(call_events.Answered("line1"), 1)
    assert run(m) == ("up", True)
    m.handle(call_events.Ended("line1", 200), 2)
    assert run(m) == ("down", False)  # dropped: nothing kept, so no re-dial
    m.handle(call_events.Terminate("mode off"), 3)
    assert run(m) == ("down", False) and m.done


def test_roles_are_the_wire_strings() -> None:
    assert [str(r) for r in Role] == ["a", "b", "user", "target", "caller", "twin", "forward"]
    assert Role("user") is Role.USER and f"{Role.CALLER}" == "caller" and {"a": 1}[Role.A] == 1
    assert json.dumps({Role.TARGET: Role.USER}) == '{"target": "user"}'
    m = TestCall("sip:u@t", "<sip:b@us>", "+49171")
    placed = [a for a in m.start(0) if isinstance(a, call_events.PlaceCall)]
    assert placed == [call_events.PlaceCall("user", "sip:u@t", "<sip:b@us>")]
    assert call_events.Link() == call_events.Link("a", "b")
