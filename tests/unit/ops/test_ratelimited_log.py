"""RateLimitedLog: a flood of similar lines writes a few of them and one summary per interval, with the count."""

from __future__ import annotations

from typing import Any

import pytest

from b2bua.ops.ratelimited_log import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines:
    """A logger that keeps what it was asked to write: (level, event, fields)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.written.append((level, event, fields))


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


def make(lines: int = 2, interval_s: float = 10.0, max_keys: int = 100) -> tuple[RateLimitedLog, Lines, Clock,
                                                                                  Count]:
    out, clock, count = Lines(), Clock(), Count()
    return (RateLimitedLog(out, lines=lines, interval_s=interval_s, max_keys=max_keys, suppressed=count,
                           clock=clock), out, clock, count)


def test_a_flood_writes_the_first_lines_then_one_summary_with_the_count() -> None:
    limited, out, clock, count = make(lines=2)
    written = [limited.log("info", "10.0.0.1", "invite rejected", n=i) for i in range(1000)]
    assert written[:2] == [True, True] and not any(written[2:])
    assert [e[2]["n"] for e in out.written] == [0, 1]
    assert limited.suppressed_total == 998 and count.value == 998
    clock.now += 9.9
    assert limited.flush() == 0 and len(out.written) == 2, "the interval is not over yet"
    clock.now += 0.1
    assert limited.flush() == 1
    level, event, fields = out.written[-1]
    assert (level, event) == ("info", "invite rejected: suppressed 998 similar lines")
    assert fields == {"n": 999, "suppressed": 998, "interval_s": 10.0}, "the last left-out line's fields"
    assert limited.flush() == 0, "a summary is written once"


def test_the_next_interval_starts_afresh_and_its_first_line_follows_the_summary() -> None:
    limited, out, clock, _ = make(lines=1)
    for _ in range(5):
        limited.log("warning", "k", "auth failed")
    clock.now += 10
    assert limited.log("warning", "k", "auth failed", again=True) is True
    assert [e[1] for e in out.written] == ["auth failed", "auth failed: suppressed 4 similar lines", "auth failed"]
    assert out.written[-1][2] == {"again": True}
    assert limited.log("warning", "k", "auth failed") is False


def test_keys_are_limited_separately_and_a_quiet_key_writes_no_summary() -> None:
    limited, out, clock, count = make(lines=1)
    for src in ("a", "b", "a", "a", "c"):
        limited.log("info", src, "refused", src=src)
    assert [e[2]["src"] for e in out.written] == ["a", "b", "c"] and count.value == 2
    clock.now += 10
    limited.log("info", "d", "refused", src="d")  # any line rolls finished intervals over
    summaries = [e for e in out.written if "suppressed" in e[1]]
    assert [(e[2]["src"], e[2]["suppressed"]) for e in summaries] == [("a", 2)]


def test_memory_is_bounded_by_max_keys_and_an_evicted_key_reports_what_it_left_out() -> None:
    limited, out, _, _ = make(lines=1, max_keys=3)
    limited.log("info", "first", "x")
    limited.log("info", "first", "x")
    for i in range(1000):
        limited.log("info", f"source-{i}", "x")
    assert len(limited._windows) == 3
    # "first", source-0 and source-1 fill the table; source-2 pushes "first" out, with its summary
    assert out.written[3] == ("info", "x: suppressed 1 similar lines", {"suppressed": 1, "interval_s": 10.0})
    assert sum("suppressed" in e[1] for e in out.written) == 1


def test_flush_everything_at_shutdown() -> None:
    limited, out, _, _ = make(lines=1)
    for _ in range(3):
        limited.log("error", ("503", "10.0.0.9"), "over capacity")
    assert limited.flush(everything=True) == 1
    assert out.written[-1][:2] == ("error", "over capacity: suppressed 2 similar lines")


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimitedLog(Lines(), lines=0)
    with pytest.raises(ValueError):
        RateLimitedLog(Lines(), interval_s=0)


def test_works_with_structlog_and_a_prometheus_counter() -> None:
    from prometheus_client import CollectorRegistry, Counter
    from structlog.testing import capture_logs

    from b2bua.ops.logging import get_logger

    registry = CollectorRegistry()
    counter = Counter("lines_suppressed", "test", ["what"], registry=registry)
    clock = Clock()
    limited = RateLimitedLog(get_logger("test"), lines=1, interval_s=60, suppressed=counter.labels("x"),
                             clock=clock)
    with capture_logs() as logs:
        for _ in range(2000):
            limited.log("warning", "10.1.2.3", "api authentication failed", src="10.1.2.3")
        clock.now += 60
        limited.flush()
    assert [entry["event"] for entry in logs] == ["api authentication failed",
                                                  "api authentication failed: suppressed 1999 similar lines"]
    assert logs[1]["log_level"] == "warning" and logs[1]["suppressed"] == 1999 and logs[1]["src"] == "10.1.2.3"
    assert registry.get_sample_value("lines_suppressed_total", {"what": "x"}) == 1999
