"""The telecommuter application: users, modes, callback calls and test calls, with the dialling rules applied
before anything is dialled. No pjsua2: calls run through CallControl's state-machine runner."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from b2bua.callcontrol import ActiveCall, AdmissionGate, Attach, CallControl, Local, Machine
from b2bua.calls.callback import CallbackCall, CallbackPlan
from b2bua.calls.incoming import IncomingCall, IncomingPlan, Ring
from b2bua.calls.routing import Router
from b2bua.calls.testcall import TestCall
from b2bua.eventbus import EventBus
from b2bua.ops import logging as blog
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import KeepConnectedSettings, TelecommuterSettings
from b2bua.sip import message
from b2bua.sip.types import Admit, InboundInvite
from b2bua.telecommuter.dialplan import ClassOfService, Dialplan, Number, RateLimiter, Refusal
from b2bua.telecommuter.directory import Directory
from b2bua.telecommuter.sessions import Sessions
from b2bua.telecommuter.users import Desk, Message, Mode, User, UserRepository, new_token
from b2bua.telecommuter.voicemail import VoicemailBoxes


class Refused(Exception):
    """A request the rules turn down; ``status`` is the HTTP status, ``rule`` says which rule."""

    def __init__(self, status: int, rule: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.rule, self.message, self.retry_after = status, rule, message, retry_after


_OVERLOAD_TEXT = {"over-capacity": "at the call ceiling; try again shortly",
                  "over-rate": "too many new calls this second; try again shortly",
                  "closed": "shutting down"}


def admission(gate: AdmissionGate) -> None:
    """Take one admission for an API-started call, or raise the 503 (with Retry-After) that says why not."""
    reason = gate.admit()
    if reason is not None:
        raise Refused(503, reason, _OVERLOAD_TEXT.get(reason, reason), retry_after=gate.retry_after(reason))


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Presentation:
    host: str
    callback_number: str  # "" = the user's business number

    def toward_user(self, user: User, target: str) -> str:
        number = self.callback_number or user.business_number
        return f'"{target}" <sip:{number}@{self.host}>'

    def redirected(self, user: User, caller: str, caller_name: str, inbound: Headers, reason: str,
                   styles: list[str]) -> tuple[str, Headers]:
        """From/PAI keep the original caller; Diversion/History-Info name the business number that was called
        (RFC 5806 / RFC 7044), so the telecommuter's carrier accepts a caller ID that is not ours."""
        name = caller_name.replace('"', "")
        ident = f"<sip:{caller or 'anonymous'}@{self.host}>"
        from_uri = f'"{name}" {ident}' if name else ident
        headers: list[tuple[str, str]] = [
            ("P-Asserted-Identity", message.header(inbound, "P-Asserted-Identity") or from_uri)]
        privacy = message.header(inbound, "Privacy")
        if privacy:
            headers.append(("Privacy", privacy))
        business = f"sip:{user.business_number}@{self.host}"
        if "diversion" in styles:
            headers.append(("Diversion", f"<{business}>;reason={reason};counter=1;privacy=off"))
        if "history-info" in styles:
            target = f"sip:{user.telecommuter_number}@{self.host}"
            headers.append(("History-Info", f"<{business}>;index=1, "
                                            f"<{target}?Reason=SIP%3Bcause%3D302>;index=1.1;mp=1"))
        return from_uri, tuple(headers)

    def toward_target(self, user: User) -> tuple[str, tuple[tuple[str, str], ...]]:
        pai = ("P-Asserted-Identity", f'"{user.name}" <sip:{user.business_number}@{self.host}>')
        if user.privacy:
            return '"Anonymous" <sip:anonymous@anonymous.invalid>', (pai, ("Privacy", "id"))
        return f'"{user.name}" <sip:{user.business_number}@{self.host}>', (pai,)


class TelecommuterService:
    def __init__(
        self,
        settings: TelecommuterSettings,
        classes: dict[str, ClassOfService],
        users: UserRepository,
        calls: CallControl,
        gate: AdmissionGate,
        router: Router,
        metrics: Metrics,
        presentation: Presentation,
        target_answer_timeout_s: float,
        voicemail: VoicemailBoxes,
        bus: EventBus,
        keep_connected: KeepConnectedSettings,
        media_dir: Path,
        extension_trunks: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = settings
        self.classes = classes
        self.users = users
        self.calls = calls
        self.gate = gate
        self.router = router
        self.metrics = metrics
        self.presentation = presentation
        self.target_answer_timeout_s = target_answer_timeout_s
        self.dialplan = Dialplan(settings.home_country, settings.internal_pattern)
        self.limiter = RateLimiter()
        self.clock = clock
        self.log = blog.get("telecommuter")
        self.voicemail = voicemail
        self.bus = bus
        self.extension_trunks = extension_trunks
        self.directory = Directory(self.dialplan)
        self.refresh_directory()
        self.sessions = Sessions(self, keep_connected, media_dir)

    # ------------------------------------------------------------------------------------------ directory
    def refresh_directory(self) -> None:
        """Rebuild the SIP thread's view of our numbers; one assignment swaps it in."""
        self.directory = Directory.build(self.dialplan, self.users.list_users(), self.users.list_desks(),
                                         list(self.cfg.owned_numbers), self.extension_trunks)

    def lookup(self, called: str, trunk: str) -> Local | None:
        """Runs in the SIP thread (see Directory)."""
        return self.directory.lookup(called, trunk)

    # ------------------------------------------------------------------------------------------ users
    def create_user(self, *, name: str, extension: str, business_number: str, class_of_service: str | None = None,
                    confirm_digit: str = "", privacy: bool = False, telecommuter_number: str = "") -> tuple[User, str]:
        cos = class_of_service or self.cfg.default_class_of_service
        if cos not in self.classes:
            raise Refused(422, "unknown-class-of-service", f"no class of service {cos!r}")
        business = self._public_number(business_number, "business_number")
        n = self.dialplan.classify(extension)
        if not isinstance(n, Number) or n.category != "internal":
            raise Refused(422, "invalid-extension", f"extension {extension!r} does not match the internal pattern")
        self._extension_free_of_desks(n.normalised)
        user = User(id=uuid.uuid4().hex[:12], name=name, extension=n.normalised, business_number=business,
                    telecommuter_number="", mode=Mode.OFF, class_of_service=cos, confirm_digit=confirm_digit,
                    privacy=privacy, created_at=time.time(), voicemail=self.voicemail.cfg.enabled_by_default)
        if telecommuter_number:
            user = replace(user, telecommuter_number=self._allowed_number(user, telecommuter_number).normalised)
        token, token_hash = new_token()
        try:
            self.users.add_user(user, token_hash)
        except sqlite3.IntegrityError as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        self.refresh_directory()
        self.log.info("user created", user_id=user.id, extension=user.extension, cos=cos)
        return user, token

    def update_user(self, user: User, **fields: Any) -> User:
        if "class_of_service" in fields and fields["class_of_service"] not in self.classes:
            raise Refused(422, "unknown-class-of-service", f"no class of service {fields['class_of_service']!r}")
        if "business_number" in fields:
            fields["business_number"] = self._public_number(fields["business_number"], "business_number")
        if "extension" in fields:
            n = self.dialplan.classify(fields["extension"])
            if not isinstance(n, Number) or n.category != "internal":
                raise Refused(422, "invalid-extension", f"extension {fields['extension']!r} is not internal")
            self._extension_free_of_desks(fields["extension"])
        try:
            updated = self.users.update_user(user.id, **fields)
        except sqlite3.IntegrityError as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        assert updated is not None
        self.refresh_directory()
        return updated

    def rotate_token(self, user: User) -> str:
        token, token_hash = new_token()
        self.users.set_token_hash(user.id, token_hash)
        return token

    def delete_user(self, user: User) -> None:
        for call in self.calls.calls_of(user.id):
            self.calls.terminate(call.id, "user deleted")
        self.users.delete_user(user.id)
        self.voicemail.delete_box(user.id)
        self.refresh_directory()

    # ------------------------------------------------------------------------------------------ modes
    def set_telecommuter(self, user: User, mode: Mode, number: str | None, test_call: bool) -> tuple[User, str | None]:
        if mode is Mode.ON_DEMAND and user.no_supervision:
            mode = Mode.KEEP_CONNECTED  # without disconnect supervision, re-dialling per call cannot work
        fields: dict[str, Any] = {"mode": mode}
        if number:
            fields["telecommuter_number"] = self._allowed_number(user, number).normalised
        effective = fields.get("telecommuter_number", user.telecommuter_number)
        if mode is not Mode.OFF and not effective:
            raise Refused(422, "number-required", "a telecommuter number is needed to turn telecommuter mode on")
        was_on = user.mode is not Mode.OFF
        if mode is not Mode.OFF and not was_on:
            # hot desking: telecommuter mode takes the user off the desk phone, to be restored on the way back
            fields["restore_desk"] = self.users.clear_occupant(user.id)
        updated = self.users.update_user(user.id, **fields)
        assert updated is not None
        if mode is Mode.OFF and was_on:
            updated = self._restore_desk(updated)
        self.refresh_directory()
        session = self.sessions.of(user.id)
        if session is not None and (mode is not Mode.KEEP_CONNECTED
                                    or updated.telecommuter_number != user.telecommuter_number):
            self.sessions.stop(user.id, "keep-connected mode ended")
            session = None
        if mode is Mode.KEEP_CONNECTED and session is None and not self.calls.gate.closed:
            self.sessions.start(updated)
        self.log.info("telecommuter mode", user_id=user.id, mode=mode.value, number=updated.telecommuter_number)
        test_id = None
        if test_call and mode is Mode.ON_DEMAND:  # keep-connected: the line itself is the test
            test_id = self.start_test_call(updated).id
        return updated, test_id

    def _restore_desk(self, user: User) -> User:
        desk = user.restore_desk
        restored = bool(desk) and self.users.set_occupant(desk, user.id, only_if_free=True)
        updated = self.users.update_user(user.id, restore_desk="")
        assert updated is not None
        if desk:
            self.log.info("desk restore", user_id=user.id, desk=desk, restored=restored)
            self.bus.publish(user.id, "desk", {"desk": desk if restored else None, "restored": restored,
                                               "logged_out": not restored})
        return updated

    # ------------------------------------------------------------------------------------------ desks
    def create_desk(self, extension: str, contact: str, name: str = "") -> Desk:
        n = self.dialplan.classify(extension)
        if not isinstance(n, Number) or n.category != "internal":
            raise Refused(422, "invalid-extension", f"desk extension {extension!r} does not match the internal "
                                                    "pattern")
        if any(u.extension == n.normalised for u in self.users.list_users()):
            raise Refused(409, "conflict", f"extension {n.normalised} belongs to a user")
        desk = Desk(n.normalised, name, contact)
        try:
            self.users.add_desk(desk)
        except sqlite3.IntegrityError:
            raise Refused(409, "conflict", f"desk {n.normalised} exists") from None
        self.refresh_directory()
        return desk

    def get_desk(self, extension: str) -> Desk:
        desk = self.users.get_desk(extension)
        if desk is None:
            raise Refused(404, "no-desk", f"no desk {extension!r}")
        return desk

    def update_desk(self, extension: str, *, name: str | None, contact: str | None) -> Desk:
        self.get_desk(extension)
        desk = self.users.update_desk(extension, name=name, contact=contact)
        assert desk is not None
        return desk

    def delete_desk(self, extension: str) -> None:
        desk = self.get_desk(extension)
        self.users.delete_desk(extension)
        if desk.occupant:
            self.bus.publish(desk.occupant, "desk", {"desk": None, "restored": False, "logged_out": True})
        self.refresh_directory()

    def desk_login(self, user: User, extension: str) -> Desk:
        desk = self.get_desk(extension)
        if user.mode is not Mode.OFF:
            raise Refused(409, "telecommuter-mode-on", "leave telecommuter mode before logging in at a desk")
        if not self.users.set_occupant(desk.extension, user.id, only_if_free=True):
            raise Refused(409, "desk-occupied", f"desk {desk.extension} is in use by another user")
        self.users.update_user(user.id, restore_desk="")
        self.refresh_directory()
        self.bus.publish(user.id, "desk", {"desk": desk.extension, "restored": False, "logged_out": False})
        self.log.info("desk login", user_id=user.id, desk=desk.extension)
        return self.get_desk(extension)

    def desk_logout(self, user: User) -> None:
        desk = self.users.clear_occupant(user.id)
        self.users.update_user(user.id, restore_desk="")
        self.refresh_directory()
        self.bus.publish(user.id, "desk", {"desk": None, "restored": False, "logged_out": True})
        self.log.info("desk logout", user_id=user.id, desk=desk)

    def view(self, user: User) -> dict[str, Any]:
        """What the portal shows for a user: settings, where calls ring now, voicemail counts."""
        desk = self.users.desk_of(user.id)
        total, unread = self.users.message_counts(user.id)
        if user.mode is not Mode.OFF:
            rings = "telecommuter"
        else:
            rings = "desk" if desk else "voicemail" if user.voicemail else "busy"
        return {**user.public(), "desk": desk.extension if desk else None, "rings": rings,
                "voicemail_messages": {"total": total, "unread": unread}}

    # ------------------------------------------------------------------------------------------ incoming
    def incoming_call(self, inv: InboundInvite, admit: Admit) -> tuple[Machine, dict[str, Any]] | Attach:
        """Plan a call to one of our users: ring where they are, else voicemail, else busy/unavailable."""
        user = self.users.get_user(admit.user_id)
        caller = self._caller_number(inv.from_user)
        details: dict[str, Any] = {"direction": "in", "caller": caller, "caller_name": inv.from_display,
                                   "called": inv.called, "trunk": admit.trunk}
        if user is None:  # deleted between the SIP thread's lookup and now
            plan = IncomingPlan(None, 0, None, "unreachable", details)
            return IncomingCall(plan), details
        paging = message.is_paging(inv.headers, inv.sdp)
        if user.mode is Mode.KEEP_CONNECTED and not paging:
            try:
                attach = self.sessions.offer(user, inv.leg_id, details)
            except Refused as e:
                self.log.warning("keep-connected session unavailable", user_id=user.id, reason=e.message)
                attach = None
            if attach is not None:
                return attach
            vm = self.voicemail.plan_for(user)
            return IncomingCall(IncomingPlan(None, 0, vm, "line-busy", details)), {**details, "trunk_in": admit.trunk}
        ring, why = self._where_to_ring(user, caller, inv, paging)
        vm = None if paging else self.voicemail.plan_for(user)
        plan = IncomingPlan(ring, self.cfg.ring_timeout_s, vm, why, details)
        self.log.info("incoming for user", user_id=user.id, rings=ring.where if ring else None, fallback=why or None,
                      voicemail=vm is not None, paging=paging)
        return IncomingCall(plan), {**details, "trunk_in": admit.trunk, "ringing": ring.where if ring else None}

    def _where_to_ring(self, user: User, caller: str, inv: InboundInvite, paging: bool) -> tuple[Ring | None, str]:
        if user.mode is Mode.ON_DEMAND and user.telecommuter_number:
            if paging:
                return None, "paging"  # a page is for a desk phone's speaker, not a mobile
            busy = sum(1 for c in self.calls.calls_of(user.id) if _on_user_line(c.machine))
            if busy >= (2 if user.call_waiting else 1):
                return None, "line-busy"
            route = self.router.route(user.telecommuter_number, None)
            if route is None:
                self.log.warning("no route to telecommuter number", user_id=user.id,
                                 number=user.telecommuter_number)
                return None, "unreachable"
            from_uri, headers = self.presentation.redirected(user, caller, inv.from_display, inv.headers,
                                                             self.cfg.diversion_reason,
                                                             list(self.cfg.redirect_headers))
            return Ring(route.uri, from_uri, headers, "telecommuter"), ""
        desk = self.users.desk_of(user.id)
        if desk is None:
            return None, "paging" if paging else "logged-out"
        name = inv.from_display.replace('"', "")
        ident = f"<sip:{caller or 'anonymous'}@{self.presentation.host}>"
        return Ring(desk.contact, f'"{name}" {ident}' if name else ident, (), "desk"), ""

    def _caller_number(self, from_user: str) -> str:
        n = self.dialplan.classify(from_user)
        return n.normalised if isinstance(n, Number) else from_user

    # ------------------------------------------------------------------------------------------ voicemail
    def on_call_notify(self, call: ActiveCall, state: str, detail: dict[str, Any]) -> None:
        """Voicemail bookkeeping driven by the incoming-call machine's notifications."""
        if state == "voicemail-recorded":
            m = self.voicemail.recorded(call.user_id, str(detail["message_id"]), str(detail["path"]),
                                        str(detail.get("caller", "")), str(detail.get("caller_name", "")),
                                        str(detail.get("called", "")), float(detail["duration_s"]))
            if m is not None:
                self.publish_mailbox(call.user_id, "new", m)
        elif state == "voicemail-discarded":
            Path(str(detail["path"])).unlink(missing_ok=True)

    def publish_mailbox(self, user_id: str, change: str, m: Message | None = None) -> None:
        """The message-waiting indicator: every change to a box goes to the user's event stream."""
        total, unread = self.users.message_counts(user_id)
        data: dict[str, Any] = {"change": change, "total": total, "unread": unread, "waiting": unread > 0}
        if m is not None:
            data["message"] = m.public()
        self.bus.publish(user_id, "voicemail", data)

    def start_test_call(self, user: User) -> ActiveCall:
        route = self.router.route(user.telecommuter_number, None)
        if route is None:
            raise Refused(503, "no-route", f"no route to {user.telecommuter_number}")
        admission(self.gate)
        number = self.presentation.callback_number or user.business_number
        machine = TestCall(route.uri, f'"Test call" <sip:{number}@{self.presentation.host}>',
                           user.telecommuter_number, self.cfg.user_answer_timeout_s, self.cfg.test_call_confirmation_s)
        return self.calls.start_machine("test", machine, user_id=user.id,
                                        info={"user_number": user.telecommuter_number})

    def record_test_result(self, user_id: str, result: str) -> None:
        self.users.update_user(user_id, last_test_result=result, last_test_at=time.time())

    # ------------------------------------------------------------------------------------------ callbacks
    def start_callback(self, user: User, target: str) -> ActiveCall:
        if user.mode is not Mode.ON_DEMAND or not user.telecommuter_number:
            raise Refused(409, "telecommuter-mode-off", "turn telecommuter mode on (on-demand) with a number first")
        number = self.check_target(user, target)
        self.check_limits(user, "callback")
        user_route = self.router.route(user.telecommuter_number, None)
        target_route = self.router.route(number.normalised, None)
        if user_route is None or target_route is None:
            missing = user.telecommuter_number if user_route is None else number.normalised
            raise self._refuse(user, Refused(503, "no-route", f"no route to {missing}"))
        try:
            admission(self.gate)
        except Refused as e:
            raise self._refuse(user, e) from None
        target_from, target_headers = self.presentation.toward_target(user)
        plan = CallbackPlan(
            user_uri=user_route.uri, user_from=self.presentation.toward_user(user, number.normalised),
            target_uri=target_route.uri, target_from=target_from, target_number=number.normalised,
            target_headers=target_headers, confirm_digit=user.confirm_digit,
            user_answer_timeout_s=self.cfg.user_answer_timeout_s, confirm_timeout_s=self.cfg.confirm_timeout_s,
            target_answer_timeout_s=self.target_answer_timeout_s, failure_tone_s=self.cfg.failure_tone_s,
        )
        return self.calls.start_machine("callback", CallbackCall(plan), user_id=user.id, info={
            "target": number.normalised, "target_category": number.category, "dialled": target,
            "user_number": user.telecommuter_number})

    def check_limits(self, user: User, kind: str) -> None:
        """Concurrent callback calls and call attempts per minute (both 429 naming the limit)."""
        cos = self.classes[user.class_of_service]
        if kind == "callback" and len(self.calls.calls_of(user.id, "callback")) >= cos.max_concurrent_calls:
            raise self._refuse(user, Refused(429, "concurrent-limit",
                                             f"at most {cos.max_concurrent_calls} callback calls at once"))
        if not self.limiter.allow(user.id, cos.max_calls_per_minute, self.clock()):
            raise self._refuse(user, Refused(429, "rate-limit", f"at most {cos.max_calls_per_minute} calls a minute"))

    def check_target(self, user: User, target: str) -> Number:
        """The dialling rules for a number this user wants to reach (raises Refused: 403 naming the rule)."""
        res = self.dialplan.check(target, self.classes[user.class_of_service])
        if isinstance(res, Refusal):
            status = 422 if res.rule == "invalid-number" else 403
            raise self._refuse(user, Refused(status, res.rule, res.message))
        return res

    def transit_refusal(self, cos_name: str, called: str) -> tuple[str, str] | None:
        """For trunk calls routed out again: the trunk's class of service applies (None: allowed)."""
        res = self.dialplan.check(called, self.classes[cos_name])
        return (res.rule, res.message) if isinstance(res, Refusal) else None

    # ------------------------------------------------------------------------------------------ helpers
    def _refuse(self, user: User, r: Refused) -> Refused:
        self.metrics.dialling_refused.labels(r.rule.split(":")[0], r.rule).inc()
        self.log.warning("call refused", user_id=user.id, rule=r.rule, reason=r.message, status=r.status)
        return r

    def _allowed_number(self, user: User, number: str) -> Number:
        """The telecommuter number gets the same rules as a target: a premium number is not a home office."""
        return self.check_target(user, number)

    def _extension_free_of_desks(self, extension: str) -> None:
        if self.users.get_desk(extension) is not None:
            raise Refused(409, "conflict", f"extension {extension} is a desk extension")

    def _public_number(self, number: str, field_name: str) -> str:
        n = self.dialplan.classify(number)
        if isinstance(n, Refusal) or n.category in ("internal", "emergency"):
            raise Refused(422, "invalid-number", f"{field_name}: {number!r} is not a public phone number")
        return n.normalised


def _on_user_line(machine: Machine) -> bool:
    """Does this call hold (or ring) the user's telecommuter phone? One line, plus one waiting call at most."""
    live = getattr(machine, "live", False)
    return bool(live.get("user")) if isinstance(live, dict) else bool(live)
