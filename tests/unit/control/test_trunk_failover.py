"""Trunk failover and monitoring in-process: a route's next trunk tried on a 503 or silence, the record naming the
trunk that answered, a down trunk skipped by routing (on the SIP thread's path), /health and metrics."""

from __future__ import annotations

from pathlib import Path

from b2bua.calls.events import Role
from b2bua.sip.types import Admit
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import PBX, metric, node, only_call

# trunk "carrier" (127.0.0.3) is the in-process config's; "backup" and "third" are added, and a route that lists
# them ("fo..." is not matched by the catch-all route)
EXTRA = """
[[trunks]]
name = "backup"
host = "127.0.0.8"
port = 5070
ping_interval_s = 5
down_after = 2
up_after = 2

[[trunks]]
name = "third"
host = "127.0.0.9"

[[routes]]
pattern = "fo[0-9]+"
trunks = ["backup", "carrier", "third"]
"""


async def test_503_from_the_first_trunk_goes_to_the_next_and_the_record_names_it(tmp_path: Path) -> None:
    async with node(tmp_path, extra=EXTRA) as t:
        admitted = t.far.call_in(invite("A1", called="fo4930", src_ip=PBX))
        assert isinstance(admitted, Admit) and [x.trunk for x in admitted.targets] == ["backup", "carrier", "third"]
        (first,) = t.engine.calls_placed()
        assert first.args[0] == "sip:fo4930@127.0.0.8:5070"
        t.far.ended(first.leg, 503)
        assert t.engine.responses("A1") == []  # the caller heard nothing of it
        second = t.engine.calls_placed()[-1]
        assert second.args[0] == "sip:fo4930@127.0.0.3:5060" and second.leg != first.leg
        assert {(c.leg, c.args[0]) for c in t.engine.named("link")} == {("A1", first.leg), ("A1", second.leg)}
        call = only_call(t)
        assert call.legs == {Role.A: "A1", "b": first.leg, "b2": second.leg} and call.info["trunk_out"] == "carrier"
        assert metric(t, "b2bua_trunk_failovers_total", trunk="backup", reason="503") == 1
        t.far.ringing(second.leg)
        t.far.answered(second.leg)
        assert t.engine.responses("A1") == [180, 200]
        t.far.ended("A1")
        assert [c.leg for c in t.engine.named("hangup")] == [second.leg]
        t.far.ended(second.leg)
        assert not t.runner.calls and t.node.gate.admitted == 0
        cdr = t.domain.records.recent(1)[0]
        assert (cdr["trunk_out"], cdr["outcome"], cdr["final_code"]) == ("carrier", "completed-a-hangup", 200)


async def test_every_trunk_failing_refuses_the_caller_once_with_the_mapped_code(tmp_path: Path) -> None:
    async with node(tmp_path, extra=EXTRA) as t:
        t.far.call_in(invite("A1", called="fo1", src_ip=PBX))
        for code in (503, 408, 503):
            t.far.ended(t.engine.calls_placed()[-1].leg, code)
        assert len(t.engine.calls_placed()) == 3
        assert t.engine.responses("A1") == [502]
        t.far.ended("A1", 502)
        assert not t.runner.calls and t.node.gate.admitted == 0
        assert t.domain.records.recent(1)[0]["trunk_out"] == "third"


async def test_a_busy_callee_is_final_on_the_first_trunk(tmp_path: Path) -> None:
    async with node(tmp_path, extra=EXTRA) as t:
        t.far.call_in(invite("A1", called="fo1", src_ip=PBX))
        t.far.ended(t.engine.calls_placed()[-1].leg, 486)
        assert len(t.engine.calls_placed()) == 1 and t.engine.responses("A1") == [486]


async def test_a_trunk_marked_down_by_pings_is_skipped_and_comes_back(tmp_path: Path) -> None:
    async with node(tmp_path, extra=EXTRA) as t:
        monitor = t.node.trunks
        backup = next(x for x in monitor.trunks if x.name == "backup")
        assert [x.name for x in monitor.trunks] == ["backup"]  # the only one with ping_interval_s
        assert metric(t, "b2bua_trunk_up", trunk="backup") == 1
        assert monitor.observe(backup, 0) is None and monitor.observe(backup, 503) is False
        assert metric(t, "b2bua_trunk_up", trunk="backup") == 0
        assert metric(t, "b2bua_trunk_state_changes_total", trunk="backup", state="down") == 1
        health = (await t.call("GET", "/health", token=None)).json()
        assert health["trunks"]["backup"] == {"state": "down", "monitored": True, "last_response": 503}
        assert health["trunks"]["carrier"] == {"state": "up", "monitored": False, "last_response": None}
        assert health["status"] == "ok"  # a carrier's fault is not this node's
        admitted = t.far.call_in(invite("A1", called="fo1", src_ip=PBX))
        assert isinstance(admitted, Admit) and admitted.target_trunk == "carrier"
        assert t.engine.calls_placed()[-1].args[0] == "sip:fo1@127.0.0.3:5060"
        assert monitor.observe(backup, 404) is None and monitor.observe(backup, 405) is True  # 404/405: alive
        admitted = t.far.call_in(invite("A2", called="fo2", src_ip=PBX))
        assert isinstance(admitted, Admit) and admitted.target_trunk == "backup"


async def test_no_provisional_response_in_time_cancels_and_tries_the_next(tmp_path: Path) -> None:
    extra = EXTRA.replace('port = 5070\n', 'port = 5070\nfailover_timeout_s = 0.05\n')
    async with node(tmp_path, extra=extra) as t:
        t.far.call_in(invite("A1", called="fo1", src_ip=PBX))
        (first,) = t.engine.calls_placed()
        await _until(t, lambda: len(t.engine.calls_placed()) == 2)
        assert [c.leg for c in t.engine.named("hangup")] == [first.leg]  # the CANCEL
        assert metric(t, "b2bua_trunk_failovers_total", trunk="backup", reason="timeout") == 1
        t.far.ended(first.leg, 487)
        assert t.runner.calls and t.engine.responses("A1") == []


async def _until(t: InProcess, cond: object, timeout: float = 2.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_monitor_pings_each_trunk_on_its_own_so_a_dead_one_delays_nobody() -> None:
    import asyncio

    from b2bua.control.trunkmonitor import TrunkMonitor
    from b2bua.ops.metrics import Metrics
    from b2bua.ops.settings import TrunkSettings

    trunks = [TrunkSettings(name=n, host=h, transport=tr, ping_interval_s=0.05, ping_timeout_s=0.5, down_after=1,
                            up_after=1)
              for n, h, tr in (("dead", "10.9.9.9", "udp"), ("live", "10.8.8.8", "tls"))]
    trunks.append(TrunkSettings(name="quiet", host="x"))
    pings: dict[str, int] = {"10.9.9.9": 0, "10.8.8.8": 0}
    transports: set[tuple[str, str]] = set()

    class Pinger:
        async def ping(self, host: str, port: int, timeout_s: float, transport: str = "udp") -> int:
            pings[host] += 1
            transports.add((host, transport))
            if host == "10.9.9.9":
                await asyncio.sleep(timeout_s)
                return 0
            return 404

    metrics = Metrics()
    monitor = TrunkMonitor(trunks, metrics)
    task = asyncio.create_task(monitor.run(Pinger()))
    await asyncio.sleep(0.4)
    assert pings["10.8.8.8"] >= 6 and pings["10.9.9.9"] == 1  # the live one went on while the dead one waited
    assert transports == {("10.9.9.9", "udp"), ("10.8.8.8", "tls")}, "each trunk is pinged over its transport"
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not monitor.health.is_up("dead") and monitor.health.is_up("live")
    assert metrics.registry.get_sample_value("b2bua_trunk_up", {"trunk": "dead"}) == 0
    assert set(monitor.views()) == {"dead", "live", "quiet"} and monitor.views()["quiet"]["monitored"] is False
