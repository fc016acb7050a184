from __future__ import annotations

import pytest

from b2bua.telecommuter.dialplan import ClassOfService, Dialplan, Number, RateLimiter, Refusal

DP = Dialplan("DE", "[0-9]{2,6}")
STANDARD = ClassOfService("standard", frozenset({"internal", "national", "mobile"}), ("+49137",))
WORLD = ClassOfService("world", frozenset({"internal", "national", "mobile", "international"}))


@pytest.mark.parametrize("dialled, normalised, category", [
    ("030 1234567", "+49301234567", "national"),
    ("(030) 123-4567", "+49301234567", "national"),
    ("+49 171 2345678", "+491712345678", "mobile"),
    ("0049 171 2345678", "+491712345678", "mobile"),
    ("0900 1234567", "+499001234567", "premium"),
    ("+1 212 555 0100", "+12125550100", "international"),
    ("2001", "2001", "internal"),
    ("112", "112", "emergency"),
])
def test_classify(dialled: str, normalised: str, category: str) -> None:
    n = DP.classify(dialled)
    assert isinstance(n, Number) and (n.normalised, n.category) == (normalised, category)


@pytest.mark.parametrize("dialled", ["", "abc", "+49 1", "+999 12345"])
def test_invalid(dialled: str) -> None:
    r = DP.classify(dialled)
    assert isinstance(r, Refusal) and r.rule == "invalid-number"


def test_class_of_service_and_blocked_prefixes() -> None:
    assert isinstance(DP.check("030 1234567", STANDARD), Number)
    r = DP.check("+1 212 555 0100", STANDARD)
    assert isinstance(r, Refusal) and r.rule == "class-of-service:standard:international"
    assert isinstance(DP.check("+1 212 555 0100", WORLD), Number)
    r = DP.check("0900 1234567", WORLD)
    assert isinstance(r, Refusal) and r.rule == "class-of-service:world:premium"  # never unless listed
    r = DP.check("112", WORLD)
    assert isinstance(r, Refusal) and r.rule.endswith(":emergency")
    blocked = ClassOfService("b", frozenset({"national", "mobile"}), ("+49171",))
    r = DP.check("0171 2345678", blocked)
    assert isinstance(r, Refusal) and r.rule == "blocked-prefix:+49171"


def test_unknown_home_country() -> None:
    with pytest.raises(ValueError):
        Dialplan("XX", ".*")


def test_rate_limiter_sliding_window() -> None:
    rl = RateLimiter()
    assert all(rl.allow("u", 3, t) for t in (0.0, 1.0, 2.0))
    assert not rl.allow("u", 3, 30.0)
    assert rl.allow("other", 3, 30.0)
    assert rl.allow("u", 3, 60.0)  # the first attempt left the window
