"""The dialling rules: which numbers a user may reach (class of service, blocked prefixes), how many callbacks at
once and how many attempts a minute, what counts as a public number or an extension; every refusal counted."""

from __future__ import annotations

import pytest

from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.dialplan import ClassOfService, Dialplan
from b2bua.telecommuter.users import Mode, User
from tests.unit.control.helpers import refused

CLASSES = {
    "standard": ClassOfService("standard", frozenset({"internal", "national", "mobile"}), ("+4930999",),
                               max_concurrent_calls=2, max_calls_per_minute=3),
    "world": ClassOfService("world", frozenset({"internal", "national", "mobile", "international"})),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rules(clock: Clock) -> DiallingRules:
    return DiallingRules(Dialplan("DE", "[0-9]{2,6}"), CLASSES, Metrics(), clock)


def a_user(cos: str = "standard", uid: str = "u1") -> User:
    return User(uid, "Ann", "201", "+493012345678", "", Mode.ON_DEMAND, cos, "", False, 0.0)


def refusals(rules: DiallingRules, kind: str, rule: str) -> float:
    value = rules.metrics.registry.get_sample_value("b2bua_dialling_refused_total", {"kind": kind, "rule": rule})
    return 0.0 if value is None else value


def test_require_class(rules: DiallingRules) -> None:
    assert rules.require_class("world") == "world"
    with refused(422, "unknown-class-of-service"):
        rules.require_class("gold")


@pytest.mark.parametrize(("target", "normalised", "category"), [
    ("030 1234567", "+49301234567", "national"),
    ("0171-1234567", "+491711234567", "mobile"),
    ("+49 (30) 1234567", "+49301234567", "national"),
    ("205", "205", "internal"),
])
def test_allowed_targets_are_normalised(rules: DiallingRules, target: str, normalised: str, category: str) -> None:
    n = rules.check_target(a_user(), target)
    assert (n.normalised, n.category) == (normalised, category)


def test_class_of_service_refuses_by_category_and_counts_it(rules: DiallingRules) -> None:
    with refused(403, "class-of-service:standard:international"):
        rules.check_target(a_user(), "+33123456789")
    with refused(403, "class-of-service:standard:premium"):
        rules.check_target(a_user(), "+499001234567")
    with refused(403, "class-of-service:standard:emergency"):
        rules.check_target(a_user(), "112")
    assert refusals(rules, "class-of-service", "class-of-service:standard:international") == 1
    assert refusals(rules, "class-of-service", "class-of-service:standard:premium") == 1
    # the wider class reaches abroad
    assert rules.check_target(a_user("world"), "+33123456789").category == "international"


def test_blocked_prefix_and_invalid_numbers(rules: DiallingRules) -> None:
    with refused(403, "blocked-prefix:+4930999"):
        rules.check_target(a_user(), "030 999 1234")
    with refused(422, "invalid-number"):
        rules.check_target(a_user(), "hello")
    with refused(422, "invalid-number"):
        rules.check_target(a_user(), "")
    assert refusals(rules, "blocked-prefix", "blocked-prefix:+4930999") == 1
    assert refusals(rules, "invalid-number", "invalid-number") == 2


def test_concurrent_callbacks_are_limited_by_the_class(rules: DiallingRules) -> None:
    rules.check_limits(a_user(), concurrent_callbacks=1)
    with refused(429, "concurrent-limit"):
        rules.check_limits(a_user(), concurrent_callbacks=2)
    assert refusals(rules, "concurrent-limit", "concurrent-limit") == 1


def test_attempts_a_minute_are_limited_per_user_in_a_sliding_window(rules: DiallingRules, clock: Clock) -> None:
    for _ in range(3):
        rules.check_limits(a_user())
    with refused(429, "rate-limit"):
        rules.check_limits(a_user())
    rules.check_limits(a_user(uid="u2"))  # another user has their own window
    clock.now += 59.9
    with refused(429, "rate-limit"):
        rules.check_limits(a_user())
    clock.now += 0.1
    rules.check_limits(a_user())
    assert refusals(rules, "rate-limit", "rate-limit") == 2


def test_transit_refusal_uses_the_trunks_class(rules: DiallingRules) -> None:
    assert rules.transit_refusal("standard", "030 1234567") is None
    rule, text = rules.transit_refusal("standard", "+33123456789") or ("", "")
    assert rule == "class-of-service:standard:international" and "not allowed" in text
    assert rules.transit_refusal("world", "+33123456789") is None
    assert rules.transit_refusal("standard", "0309991234") == (
        "blocked-prefix:+4930999", "+49309991234 matches blocked prefix +4930999")


def test_public_number_and_extension(rules: DiallingRules) -> None:
    assert rules.public_number("030 12345678", "business_number") == "+493012345678"
    for bad in ("201", "112", "nope"):
        with refused(422, "invalid-number"):
            rules.public_number(bad, "business_number")
    assert rules.extension(" 201") == "201"
    for bad in ("2", "1234567", "+493012345678", "112"):
        with refused(422, "invalid-extension"):
            rules.extension(bad, "desk extension")


def test_caller_number_is_shown_in_e164_where_it_parses(rules: DiallingRules) -> None:
    assert rules.caller_number("03098765432") == "+493098765432"
    assert rules.caller_number("0049 30 98765432") == "+493098765432"
    assert rules.caller_number("202") == "202"
    assert rules.caller_number("anonymous") == "anonymous"
