"""Routing settings checked when they are set, the defaults of the built-in profiles, and the form in which two
sets of settings are compared.

Every number passes the user's dialling rules when it is *set* (a profile saved, the live settings changed) and
is stored normalised: forwarding to a premium number is refused then, with the rule named, not later when a call
would be forwarded. Selecting a profile checks its numbers again (the user's class of service may have changed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import (
    BUILTIN_PROFILES,
    Forwarding,
    Mobility,
    Mode,
    RoutingSettings,
    Telecommuting,
    User,
    UserRepository,
    VoicemailPrefs,
)

MIN_RING_S, MAX_RING_S = 5, 300


class SettingsRules:
    def __init__(self, rules: DiallingRules, repository: UserRepository, default_ring_s: float) -> None:
        self.rules = rules
        self.repository = repository
        self.default_ring_s = max(MIN_RING_S, min(MAX_RING_S, round(default_ring_s)))

    def check(self, user: User, s: RoutingSettings, *, desk: bool = True) -> RoutingSettings:
        """``s`` with every number normalised, or the refusal naming the field and the rule (403: the dialling
        rules, 422: not a number, a missing number, no such desk). The desk is checked when it is set
        (``desk``): one deleted later rings nobody rather than making its profile unusable or uneditable."""
        m, f, t = s.mobility, s.forwarding, s.telecommuter
        if m.twinning and not m.twin_number:
            raise Refused(422, "number-required", "mobility.twin_number: twinning needs a number to ring")
        if t.mode is not Mode.OFF and not t.number:
            raise Refused(422, "number-required", "telecommuter.number: telecommuter mode needs a number")
        if not MIN_RING_S <= f.ring_time_s <= MAX_RING_S:
            raise Refused(422, "invalid-ring-time",
                          f"forwarding.ring_time_s: {f.ring_time_s} is not within {MIN_RING_S}..{MAX_RING_S}")
        forwarding = replace(f, unconditional=self._forward(user, "unconditional", f.unconditional),
                             busy=self._forward(user, "busy", f.busy),
                             no_answer=self._forward(user, "no_answer", f.no_answer))
        mobility = replace(m, twin_number=self._number(user, "mobility.twin_number", m.twin_number),
                           default_desk=self._desk(m.default_desk) if desk else m.default_desk)
        return replace(s, mobility=mobility, forwarding=forwarding,
                       telecommuter=replace(t, number=self._number(user, "telecommuter.number", t.number)))

    def number(self, user: User, field: str, number: str) -> str:
        """One number a user sets (normalised), e.g. a home number; "" stays "" (none)."""
        return self._number(user, field, number)

    def _number(self, user: User, field: str, number: str) -> str:
        if not number:
            return ""
        try:
            return self.rules.check_target(user, number).normalised
        except Refused as e:
            raise Refused(e.status, e.rule, f"{field}: {e.message}") from None

    def _forward(self, user: User, which: str, number: str) -> str:
        normalised = self._number(user, f"forwarding.{which}", number)
        if normalised and normalised in (user.business_number, user.extension):
            raise Refused(422, "forwarding-loop", f"forwarding.{which}: {number!r} is this user's own number")
        return normalised

    def _desk(self, extension: str) -> str:
        if not extension:
            return ""
        ext = self.rules.extension(extension, "mobility.default_desk")
        if self.repository.get_desk(ext) is None:
            raise Refused(422, "unknown-desk", f"mobility.default_desk: there is no desk {ext}")
        return ext

    # ------------------------------------------------------------------------------------------ defaults
    def builtins(self, user: User, home_number: str = "") -> dict[str, RoutingSettings]:
        """Office rings the desk, with voicemail and pickup; Mobile twins desk and the user's telecommuter number;
        Home forwards to the home number, or else is on-demand telecommuter mode on the telecommuter number; no
        pickup at home. Voicemail follows the user's (configured) default."""
        desk = self.repository.desk_of(user.id)
        mobility = Mobility(default_desk=desk.extension if desk else user.restore_desk)
        vm = VoicemailPrefs(enabled=user.voicemail)
        ring = Forwarding(ring_time_s=self.default_ring_s)
        office = RoutingSettings(pickup=True, mobility=mobility, forwarding=ring, voicemail=vm)
        mobile_number = user.telecommuter_number
        mobile = replace(office, mobility=replace(mobility, twinning=bool(mobile_number), twin_number=mobile_number))
        if home_number:
            home = replace(office, pickup=False, forwarding=replace(ring, unconditional=home_number))
        elif user.telecommuter_number:
            home = replace(office, pickup=False,
                           telecommuter=Telecommuting(Mode.ON_DEMAND, user.telecommuter_number))
        else:
            home = replace(office, pickup=False)
        return dict(zip(BUILTIN_PROFILES, (office, mobile, home), strict=True))


def sets_desk(changes: dict[str, Any]) -> bool:
    """A partial change (nested like ``RoutingSettings.to_dict``) that sets the default desk."""
    return "default_desk" in changes.get("mobility", {})


def effective(s: RoutingSettings, user: User) -> RoutingSettings:
    """What the settings make routing do, for comparing two sets: a number only counts while it is in use (the
    telecommuter number with the mode off, the twin number without twinning), and on-demand mode is
    keep-connected for a line without disconnect supervision (as ``Modes`` applies it)."""
    t, m = s.telecommuter, s.mobility
    mode = Mode.KEEP_CONNECTED if t.mode is Mode.ON_DEMAND and user.no_supervision else t.mode
    return replace(s, telecommuter=Telecommuting(mode, t.number if mode is not Mode.OFF else ""),
                   mobility=replace(m, twin_number=m.twin_number if m.twinning else ""))
