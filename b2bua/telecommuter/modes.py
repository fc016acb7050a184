"""Telecommuter mode: off, on-demand or keep-connected, and the number. Turning it on takes the user off their
desk (hot desking) and, for keep-connected, brings up the persistent line; turning it off restores the desk."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from b2bua.control.admission import AdmissionGate
from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.desks import Desks
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.directory import LiveDirectory
from b2bua.telecommuter.errors import Refused, Reservation
from b2bua.telecommuter.outgoing import OutgoingCalls
from b2bua.telecommuter.sessions import Sessions
from b2bua.telecommuter.users import LiveRouting, Mode, User, UserRepository


class Modes:
    def __init__(self, repository: UserRepository, rules: DiallingRules, desks: Desks, sessions: Sessions,
                 outgoing: OutgoingCalls, directory: LiveDirectory, gate: AdmissionGate, bus: EventBus) -> None:
        self.repository = repository
        self.rules = rules
        self.desks = desks
        self.sessions = sessions
        self.outgoing = outgoing
        self.directory = directory
        self.gate = gate
        self.bus = bus
        self._log = get_logger("telecommuter")

    def set(self, user: User, mode: Mode, number: str | None, test_call: bool) -> tuple[User, str | None]:
        """Apply a mode change; returns the updated user and the test call's id if one was started. The mode and
        number are the live settings' telecommuter part: the active profile follows (this route's events stay
        what they were: ``mode`` only)."""
        mode = _supervised(user, mode)
        fields: dict[str, Any] = {"mode": mode}
        if number:
            # the telecommuter number gets the same rules as a target: a premium number is not a home office
            fields["telecommuter_number"] = self.rules.check_target(user, number).normalised

        def write(entering: bool) -> User | None:
            if entering:
                fields["restore_desk"] = self.desks.leave_for_telecommuting(user)
            return self.repository.update_user(user.id, **fields)

        return self._change(user, mode, fields.get("telecommuter_number", user.telecommuter_number), test_call,
                            write, announce=True)

    def apply(self, user: User, live: LiveRouting) -> User:
        """All live routing settings at once (a profile selected, the settings changed), checked already: the
        mode, number, voicemail and the rest are written in one transaction, then the mode's consequences follow
        as for ``set``. A profile without a number keeps the user's (kept for later, as with ``set``)."""
        t = live.settings.telecommuter
        mode, number = _supervised(user, t.mode), t.number or user.telecommuter_number
        live = replace(live, settings=live.settings.with_telecommuter(mode, number))
        changed = (mode, number) != (user.mode, user.telecommuter_number)

        def write(entering: bool) -> User | None:
            return self.repository.apply_routing(user.id, live, leave_desk=entering)

        return self._change(user, mode, number, False, write, announce=changed)[0]

    def _change(self, user: User, mode: Mode, new_number: str, test_call: bool,
                write: Callable[[bool], User | None], *, announce: bool) -> tuple[User, str | None]:
        """``write(entering telecommuter mode)`` stores the change; admissions are taken before it (a full node
        refuses the change with 503 before anything is changed), the desk and the persistent line follow it."""
        if mode is not Mode.OFF and not new_number:
            raise Refused(422, "number-required", "a telecommuter number is needed to turn telecommuter mode on")
        was_on = user.mode is not Mode.OFF
        session = self.sessions.of(user.id)
        wants_line = mode is Mode.KEEP_CONNECTED and not self.gate.closed and (
            session is None or new_number != user.telecommuter_number)
        wants_test = test_call and mode is Mode.ON_DEMAND  # keep-connected: the line itself is the test
        with contextlib.ExitStack() as stack:
            line = stack.enter_context(Reservation(self.gate)) if wants_line else None
            test = stack.enter_context(Reservation(self.gate)) if wants_test else None
            updated = write(mode is not Mode.OFF and not was_on)
            if updated is None:
                raise Refused(404, "no-user", f"no user {user.id!r}")
            if mode is Mode.OFF and was_on:
                updated = self.desks.restore(updated)
            self.directory.rebuild()
            self._follow_session(user, updated, line)
            if announce:
                self._log.info("telecommuter mode", user_id=user.id, mode=mode.value,
                               number=updated.telecommuter_number)
                self.bus.publish(user.id, "mode", {"mode": updated.mode.value, "number": updated.telecommuter_number})
            test_id = self.outgoing.start_test_call(updated, test).id if test is not None else None
        return updated, test_id

    def _follow_session(self, before: User, after: User, line: Reservation | None) -> None:
        """The persistent line exists exactly while the user is in keep-connected mode, to the current number;
        ``line``: the admission for a new line, taken before the change."""
        session = self.sessions.of(after.id)
        if session is not None and (after.mode is not Mode.KEEP_CONNECTED
                                    or after.telecommuter_number != before.telecommuter_number):
            self.sessions.stop(after.id, "keep-connected mode ended")
            session = None
        if after.mode is Mode.KEEP_CONNECTED and session is None and line is not None:
            self.sessions.start(after, line)


def _supervised(user: User, mode: Mode) -> Mode:
    """Without disconnect supervision, re-dialling per call cannot work: on-demand is keep-connected."""
    return Mode.KEEP_CONNECTED if mode is Mode.ON_DEMAND and user.no_supervision else mode
