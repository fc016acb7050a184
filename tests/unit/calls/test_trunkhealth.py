"""Trunk up/down from OPTIONS ping results: which responses mean alive, hysteresis both ways, the router's view."""

from __future__ import annotations

import pytest

from b2bua.calls.trunkhealth import Hysteresis, TrunkHealth, alive


@pytest.mark.parametrize("code", [200, 404, 405, 481, 403, 500, 486, 603])
def test_any_final_response_but_408_and_503_means_alive(code: int) -> None:
    assert alive(code)


@pytest.mark.parametrize("code", [0, 408, 503, 100, 180])
def test_timeout_408_503_and_no_final_response_mean_dead(code: int) -> None:
    assert not alive(code)


def test_down_after_n_failures_in_a_row_and_up_after_m_successes_in_a_row() -> None:
    h = Hysteresis(down_after=3, up_after=2, since=0.0)
    assert h.observe(0, 10) is None and h.observe(503, 20) is None  # two failures: still up
    assert h.observe(404, 30) is None  # an answer resets the count
    assert h.observe(0, 40) is None and h.observe(408, 50) is None
    assert h.up and h.observe(0, 60) is False  # the third in a row
    assert (h.up, h.since, h.last_code) == (False, 60, 0)
    assert h.observe(0, 70) is None  # down stays down, no repeated change
    assert h.observe(200, 80) is None  # one answer is not enough
    assert h.observe(0, 90) is None  # and a failure in between starts over
    assert h.observe(200, 100) is None
    assert h.observe(405, 110) is True and h.up and h.since == 110


def test_one_lost_ping_with_down_after_one_is_enough() -> None:
    h = Hysteresis(down_after=1, up_after=1)
    assert h.observe(0, 1) is False
    assert h.observe(200, 2) is True


def test_health_snapshot_is_replaced_whole_and_unmonitored_trunks_are_up() -> None:
    health = TrunkHealth(["a", "b"])
    before = health._down
    health.record("a", False, 0)
    assert not health.is_up("a") and health.is_up("b") and health.is_up("never-heard-of")
    assert before == frozenset() and health._down == frozenset({"a"})  # a new set, the old one untouched
    health.record("a", True, 200)
    assert health.is_up("a")
    states = health.states(["a", "b", "c"])
    assert (states["a"].up, states["a"].monitored, states["a"].last_code) == (True, True, 200)
    assert (states["b"].monitored, states["b"].last_code) == (True, None)
    assert (states["c"].up, states["c"].monitored) == (True, False)
