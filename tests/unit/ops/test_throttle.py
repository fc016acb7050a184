"""FailureThrottle: N failures within the window block a source for a while; others are unaffected."""

from __future__ import annotations

from b2bua.ops.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_the_nth_failure_in_the_window_blocks_the_source_for_block_s() -> None:
    clock = Clock()
    throttle = FailureThrottle(3, 60, 300, clock=clock)
    assert [throttle.failed("a") for _ in range(3)] == [False, False, True]
    assert throttle.blocked_for("a") == 300 and throttle.blocked == 1
    assert throttle.blocked_for("b") == 0, "another source is not blocked"
    clock.now += 299
    assert throttle.blocked_for("a") == 1
    clock.now += 1
    assert throttle.blocked_for("a") == 0 and throttle.blocked == 0
    assert throttle.failed("a") is False, "after the block, counting starts afresh"


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    throttle = FailureThrottle(3, 60, 300, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    clock.now += 61
    assert throttle.failed("a") is False and throttle.blocked_for("a") == 0
    clock.now += 1
    assert [throttle.failed("a"), throttle.failed("a")] == [False, True]


def test_memory_is_bounded_whatever_the_number_of_sources() -> None:
    throttle = FailureThrottle(2, 60, 300, max_sources=100, clock=Clock())
    for i in range(10_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._failures) == 100
    for i in range(10_000):
        throttle.failed(f"s{i}")
        throttle.failed(f"s{i}")
    assert throttle.blocked == 100 and throttle.blocked_for("s9999") == 300 and throttle.blocked_for("s0") == 0
