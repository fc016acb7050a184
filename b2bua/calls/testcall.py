"""Test call on activation: ring the telecommuter number, play a short confirmation, report the result.

Results: ``success`` (answered; the confirmation was played), ``no-answer``, ``busy``, ``rejected``, ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.calls.events import (
    Action,
    Answered,
    CancelTimer,
    Ended,
    Event,
    Finished,
    Hangup,
    Notify,
    PlaceCall,
    PlayTone,
    Role,
    StartTimer,
    Terminate,
    TimerFired,
)

ANSWER_TIMER, PLAYED_TIMER = "user-answer", "confirmation-played"


def result_for(code: int) -> str:
    if code in (486, 600):
        return "busy"
    if code in (408, 480, 487):
        return "no-answer"
    if code in (603, 403):
        return "rejected"
    return "failed"


@dataclass
class TestCall:
    __test__ = False  # not a pytest class

    user_uri: str
    from_uri: str
    number: str
    answer_timeout_s: float = 30.0
    confirmation_s: float = 3.0
    answered_at: float | None = None
    result: str = ""
    code: int = 0
    live: bool = False
    done: bool = False

    @property
    def state(self) -> str:
        return "ended" if self.done else ("playing" if self.answered_at is not None else "calling")

    @property
    def state_name(self) -> str:
        return self.state

    @property
    def holds_user_line(self) -> bool:
        return self.live

    def start(self, now: float) -> list[Action]:
        self.live = True
        return [PlaceCall(Role.USER, self.user_uri, self.from_uri), StartTimer(ANSWER_TIMER, self.answer_timeout_s),
                Notify("test-call", {"status": "calling", "number": self.number})]

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.done:
            return []
        match event:
            case Answered(role=Role.USER) if self.answered_at is None:
                self.answered_at = now
                self.result, self.code = "success", 200
                return [CancelTimer(ANSWER_TIMER), PlayTone(Role.USER, "confirm"),
                        StartTimer(PLAYED_TIMER, self.confirmation_s),
                        Notify("test-call", {"status": "answered", "number": self.number})]
            case TimerFired(name=name) if name == ANSWER_TIMER and self.answered_at is None:
                self.result, self.code = "no-answer", 480
                return [Hangup(Role.USER, "no answer")]
            case TimerFired(name=name) if name == PLAYED_TIMER:
                return [Hangup(Role.USER, "test call complete")]
            case Terminate():
                self.result = self.result or "cancelled"
                return [CancelTimer(ANSWER_TIMER), CancelTimer(PLAYED_TIMER), Hangup(Role.USER, event.cause)]
            case Ended(role=Role.USER) if self.live:
                self.live = False
                self.done = True
                if not self.result:
                    self.result, self.code = result_for(event.code), event.code
                return [CancelTimer(ANSWER_TIMER), CancelTimer(PLAYED_TIMER),
                        Notify("test-call", {"status": "done", "result": self.result, "code": self.code,
                                             "number": self.number}),
                        Finished(f"test-{self.result}", self.code, self.answered_at, now)]
        return []
