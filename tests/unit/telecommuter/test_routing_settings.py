"""Routing settings: every number checked by the user's dialling rules when set (the refusal names the field and
the rule) and stored normalised; the built-in profiles' defaults; the form two sets are compared in; the JSON
document form (missing keys default, unknown ones are ignored)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from b2bua.telecommuter.routing_settings import SettingsRules, effective
from b2bua.telecommuter.users import (
    Forwarding,
    ListenBy,
    Mobility,
    Mode,
    RoutingSettings,
    Telecommuting,
    User,
    VoicemailPrefs,
)
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, MOBILE, make_user, refused

PREMIUM = "+499001234567"
HAMBURG = "+494012345678"


def rules(t: InProcess) -> SettingsRules:
    found = t.domain.live.rules
    assert isinstance(found, SettingsRules)
    return found


def forwarding(**numbers: str) -> RoutingSettings:
    return RoutingSettings.from_dict({"forwarding": numbers})


async def test_numbers_are_normalised_when_set(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    s = RoutingSettings(mobility=Mobility("300", True, "0171 1234567"),
                        forwarding=Forwarding("040 12345678", "040-1234 5678", "201", 30),
                        telecommuter=Telecommuting(Mode.ON_DEMAND, "0171/1234567"))
    checked = rules(t).check(u, replace(s, forwarding=replace(s.forwarding, no_answer="0401234 5678")))
    assert checked.mobility == Mobility("300", True, MOBILE)
    assert checked.forwarding == Forwarding(HAMBURG, HAMBURG, HAMBURG, 30)
    assert checked.telecommuter == Telecommuting(Mode.ON_DEMAND, MOBILE)


@pytest.mark.parametrize("which", ["unconditional", "busy", "no_answer"])
async def test_forwarding_to_a_premium_number_is_refused_when_set_naming_the_rule(t: InProcess, which: str) -> None:
    u = make_user(t)
    with refused(403, "class-of-service:standard:premium") as caught:
        rules(t).check(u, forwarding(**{which: PREMIUM}))
    assert caught.value.message.startswith(f"forwarding.{which}: ")


async def test_blocked_and_invalid_numbers_anywhere_are_refused(t: InProcess) -> None:
    u = make_user(t)
    with refused(403, "class-of-service:standard:international"):
        rules(t).check(u, RoutingSettings(mobility=Mobility(twinning=True, twin_number="+33123456789")))
    with refused(422, "invalid-number") as caught:
        rules(t).check(u, RoutingSettings(telecommuter=Telecommuting(Mode.ON_DEMAND, "call me")))
    assert caught.value.message.startswith("telecommuter.number: ")


async def test_numbers_needed_by_twinning_and_telecommuter_mode(t: InProcess) -> None:
    u = make_user(t)
    with refused(422, "number-required"):
        rules(t).check(u, RoutingSettings(mobility=Mobility(twinning=True)))
    with refused(422, "number-required"):
        rules(t).check(u, RoutingSettings(telecommuter=Telecommuting(Mode.KEEP_CONNECTED)))


async def test_forwarding_to_oneself_is_a_loop(t: InProcess) -> None:
    u = make_user(t)
    for own in (BUSINESS, "030 12345678", "201"):
        with refused(422, "forwarding-loop"):
            rules(t).check(u, forwarding(busy=own))


async def test_the_default_desk_must_exist_when_set_not_when_selected(t: InProcess) -> None:
    u = make_user(t)
    s = RoutingSettings(mobility=Mobility(default_desk="300"))
    with refused(422, "unknown-desk"):
        rules(t).check(u, s)
    assert rules(t).check(u, s, desk=False).mobility.default_desk == "300", "a desk deleted later rings nobody"
    with refused(422, "invalid-extension"):
        rules(t).check(u, RoutingSettings(mobility=Mobility(default_desk="+4930123")))
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    assert rules(t).check(u, s).mobility.default_desk == "300"


@pytest.mark.parametrize("ring", [4, 301])
async def test_ring_time_is_bounded(t: InProcess, ring: int) -> None:
    with refused(422, "invalid-ring-time"):
        rules(t).check(make_user(t), RoutingSettings(forwarding=Forwarding(ring_time_s=ring)))


# ------------------------------------------------------------------------------------------ built-in defaults
async def test_defaults_without_numbers(t: InProcess) -> None:
    d = rules(t).builtins(make_user(t))
    office, mobile, home = d["office"], d["mobile"], d["home"]
    assert office.pickup and office.voicemail.enabled and office.telecommuter.mode is Mode.OFF
    assert office.forwarding == Forwarding(ring_time_s=20), "ring time: telecommuter.ring_timeout_s"
    assert mobile == office, "no mobile number to twin with yet"
    assert home == replace(office, pickup=False)


async def test_defaults_with_a_telecommuter_number_and_a_desk(t: InProcess) -> None:
    u = make_user(t, number=MOBILE)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    d = rules(t).builtins(u)
    assert d["office"].mobility == Mobility("300") and d["office"].telecommuter.mode is Mode.OFF
    assert d["mobile"].mobility == Mobility("300", True, MOBILE) and d["mobile"].pickup
    assert d["home"].telecommuter == Telecommuting(Mode.ON_DEMAND, MOBILE) and not d["home"].pickup
    assert d["home"].forwarding.unconditional == ""


async def test_home_forwards_to_the_home_number_when_there_is_one(t: InProcess) -> None:
    u = make_user(t, number=MOBILE)
    home = rules(t).builtins(u, home_number=HAMBURG)["home"]
    assert home.forwarding.unconditional == HAMBURG and home.telecommuter.mode is Mode.OFF and not home.pickup


async def test_voicemail_defaults_follow_the_user(t: InProcess) -> None:
    u = make_user(t, voicemail=False)
    assert {s.voicemail.enabled for s in rules(t).builtins(u).values()} == {False}


# ------------------------------------------------------------------------------------------ comparing
def _user(**fields: object) -> User:
    base = User("u1", "Ann", "201", BUSINESS, "", Mode.OFF, "standard", "", False, 0.0)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_numbers_not_in_use_do_not_count() -> None:
    u = _user()
    off_with_number = RoutingSettings(telecommuter=Telecommuting(Mode.OFF, MOBILE),
                                      mobility=Mobility(twinning=False, twin_number=MOBILE))
    assert effective(off_with_number, u) == effective(RoutingSettings(), u)
    on = RoutingSettings(telecommuter=Telecommuting(Mode.ON_DEMAND, MOBILE))
    assert effective(on, u) != effective(replace(on, telecommuter=Telecommuting(Mode.ON_DEMAND, HAMBURG)), u)


def test_on_demand_is_keep_connected_without_disconnect_supervision() -> None:
    on_demand = RoutingSettings(telecommuter=Telecommuting(Mode.ON_DEMAND, MOBILE))
    keep = RoutingSettings(telecommuter=Telecommuting(Mode.KEEP_CONNECTED, MOBILE))
    assert effective(on_demand, _user(no_supervision=True)) == effective(keep, _user(no_supervision=True))
    assert effective(on_demand, _user()) != effective(keep, _user())


# ------------------------------------------------------------------------------------------ the document form
def test_the_document_round_trips() -> None:
    s = RoutingSettings(True, Mobility("300", True, MOBILE), Forwarding(HAMBURG, "", "201", 35),
                        Telecommuting(Mode.KEEP_CONNECTED, MOBILE),
                        VoicemailPrefs(False, True, False, ListenBy.COMPUTER, "g1"))
    data = s.to_dict()
    assert data["telecommuter"] == {"mode": "keep-connected", "number": MOBILE}
    assert data["voicemail"]["listen_by"] == "computer"
    assert RoutingSettings.from_dict(data) == s


def test_missing_keys_default_and_unknown_keys_are_ignored() -> None:
    old = {"pickup": True, "forwarding": {"busy": HAMBURG, "from_a_later_version": 1}, "later_group": {}}
    assert RoutingSettings.from_dict(old) == RoutingSettings(pickup=True, forwarding=Forwarding(busy=HAMBURG))
    with pytest.raises(ValueError):
        RoutingSettings.from_dict({"telecommuter": {"mode": "sometimes"}})


def test_merged_changes_only_what_is_given() -> None:
    s = RoutingSettings(forwarding=Forwarding(HAMBURG, HAMBURG, "", 30))
    merged = s.merged({"forwarding": {"busy": ""}, "pickup": True})
    assert merged == RoutingSettings(pickup=True, forwarding=Forwarding(HAMBURG, "", "", 30))
