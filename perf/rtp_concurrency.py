"""Concurrent bridged calls with RTP, the media from perf/build/rtpload instead of SIPp.

SIPp's ``play_pcap_audio`` (one thread per call) saturates the load core near 400 calls, which hides the
B2BUA's own limit. Here SIPp does only the signalling; each call's SDP names a port owned by ``rtpload``
(``perf/rtpload.c``): the trunk side on 127.0.0.2 answers the B2BUA's RTP with a 1000 Hz tone, the far end on
127.0.0.3 with 1700 Hz, so each side can count how many frames carried the *other* side's tone (the B2BUA
sends silence frames until audio arrives from the opposite leg). Same role and signature as
SIPp's own pcap playback; the B2BUA is pinned to CPU 0, every load tool to CPU 1.

Standalone: ``bash -c 'ulimit -n $(ulimit -Hn); .venv/bin/python -m perf.rtp_concurrency --levels 100,300'``
(JSON on stdout, progress on stderr). ``perf.bench.start_b2bua`` gives the B2BUA 4000 RTP ports: two per leg,
so the test helper's usual 2000 would hold only 500 bridged calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from perf.bench import (
    B2BUA_CPU,
    LOAD_CPU,
    ROOT,
    TICKS,
    Load,
    SipCapture,
    cpu_seconds,
    final_stats,
    pct,
    rss_kb,
    settle,
    setup_times_ms,
    start_b2bua,
)
from tests.support.procs import B2bua, stop_process

RTPLOAD = ROOT / "perf" / "build" / "rtpload"
TRUNK_IP, FAR_IP = "127.0.0.2", "127.0.0.3"
# On both addresses, above Linux's ephemeral range (32768-60999): a socket some other tool autobinds on 0.0.0.0
# there makes rtpload's bind fail. The B2BUA's own RTP ports are on 127.0.0.1.
RTP_FIRST, RTP_STEP = 61000, 2
WINDOW_S = 5.0
UP_GRACE_S = 10.0  # beyond the ramp, for the calls to come up before the window starts anyway
FRAME_S = 0.020


def ensure_built() -> Path:
    """Build the tool if needed (make is a no-op when it is up to date)."""
    subprocess.run(["make", "-s", "-C", str(ROOT / "perf"), "rtpload"], check=True)
    return RTPLOAD


class RtpLoad:
    """One rtpload process on the load CPU; counters are read through its SIGUSR1/SIGUSR2 protocol."""

    def __init__(self, work: Path, name: str, ip: str, count: int, tone: int, peer_ip: str | None = None) -> None:
        args = ["--ip", ip, "--first-port", str(RTP_FIRST), "--count", str(count), "--step", str(RTP_STEP),
                "--tone", str(tone)]
        if peer_ip:
            args += ["--peer-ip", peer_ip, "--peer-first-port", str(RTP_FIRST)]
        self.err_path = work / f"{name}.err"
        self.err = open(self.err_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, str(RTPLOAD), *args], stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.cpu0 = 0.0
        self.t0 = time.monotonic()

    def mark(self) -> None:
        """Window start: the tool zeroes its counters."""
        self.proc.send_signal(signal.SIGUSR1)
        self.cpu0, self.t0 = cpu_seconds(self.proc.pid), time.monotonic()

    def report(self, timeout: float = 5.0) -> dict[str, Any]:
        """Counters since the last mark, plus the tool's CPU % measured from /proc."""
        self.proc.send_signal(signal.SIGUSR2)
        out: IO[bytes] | None = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else b""
        if not line:
            self.err.flush()
            why = self.err_path.read_text(errors="replace").strip()[-500:]
            raise RuntimeError(f"rtpload {self.proc.pid} gave no report (rc={self.proc.poll()}): {why}")
        rep: dict[str, Any] = json.loads(line)
        rep["cpu_pct"] = round(100 * (cpu_seconds(self.proc.pid) - self.cpu0) / (time.monotonic() - self.t0), 1)
        return rep

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self.err.close()


def _inf(path: Path, rows: list[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{r}\n" for r in rows))
    return path


def _ports(n: int) -> list[int]:
    return [RTP_FIRST + RTP_STEP * i for i in range(n)]


def _share(count: int, rx: dict[str, Any]) -> float:
    """``count`` over what ``ports`` * window / 20 ms should have brought (+-1 frame per port at the edges)."""
    expected: float = rx["ports"] * rx["window_s"] / FRAME_S
    return round(count / max(1.0, expected), 4)


def _direction(rx: dict[str, Any], tx: dict[str, Any]) -> dict[str, Any]:
    """Headline: frames with the other side's tone per expected frame. ``tone_over_seq_span`` has no edge error
    but misses frames the B2BUA never generated; ``received_share`` counts silence frames too."""
    return {"delivered_share": _share(rx["loud"], rx), "received_share": _share(rx["received"], rx),
            "tone_over_seq_span": round(rx["loud"] / max(1, rx["seq_span"]), 4),
            "received_over_sent": round(rx["received"] / max(1, tx["sent"]), 4),
            "ports_lt_99_9pct": rx["ports_loud_lt_999"], "ports_lt_99pct": rx["ports_loud_lt_99"],
            "ports_no_tone": rx["ports_no_loud"], "latched": rx["latched"]}


def concurrency(b: B2bua, load: Load, work: Path, levels: list[int], hold_s: int) -> list[dict[str, Any]]:
    """Hold ``level`` bridged calls with RTP both ways; measure a window at steady state; stop after a bad level."""
    assert b.proc is not None
    ensure_built()
    out: list[dict[str, Any]] = []
    idle_rss, _ = rss_kb(b.proc.pid)
    for level in levels:
        row = _level(b, load, work, level, hold_s, idle_rss)
        out.append(row)
        print("rtp-concurrency", json.dumps(row), file=sys.stderr, flush=True)
        worst = min(row["to_far_end"]["delivered_share"], row["to_trunk"]["delivered_share"])
        if not row["all_up"] or worst < 0.95 or row["failed"] > 0.01 * level or row["successful"] < level:
            break
    return out


def _level(b: B2bua, load: Load, work: Path, level: int, hold_s: int, idle_rss: int) -> dict[str, Any]:
    assert b.proc is not None
    ports = _ports(level)
    trunk_inf = _inf(work / f"rtp-trunk-{level}.csv", [f"4930123456;15551230001;{p}" for p in ports])
    far_inf = _inf(work / f"rtp-far-{level}.csv", [str(p) for p in ports])
    rss_before, _ = rss_kb(b.proc.pid)
    rate = min(100, level)
    ramp = level / rate
    # every call must outlive the window, even when set-up is slow and _wait_up gives up
    hold = max(hold_s, math.ceil(ramp + UP_GRACE_S + WINDOW_S + 3))
    with contextlib.ExitStack() as stack:  # nothing this level started outlives it, whatever goes wrong
        trunk_rtp = RtpLoad(work, f"rtpload-trunk-{level}", TRUNK_IP, level, 1000)
        stack.callback(trunk_rtp.stop)
        far_rtp = RtpLoad(work, f"rtpload-far-{level}", FAR_IP, level, 1700)
        stack.callback(far_rtp.stop)
        far = load._sipp(f"uas-rtp{level}", ["-sf", "uas_answer_rtpload.xml", "-inf", str(far_inf), "-i", FAR_IP,
                                             "-p", str(load.far_port), "-mi", FAR_IP,
                                             "-mp", str(load.far_port + 2000), "-m", str(level), "-d", "0"])
        stack.callback(stop_process, far, 10)
        time.sleep(0.3)
        uac_port = load.next_uac_port()
        cap = SipCapture(work, uac_port)
        stack.callback(lambda: cap.proc.poll() is not None or cap.stop())
        load.n += 1
        load.uac_port = uac_port
        stat = work / f"uac{load.n}.stat.csv"
        uac = load._sipp(f"uac{load.n}", [
            "-sf", "uac_call_rtpload.xml", load.target, "-inf", str(trunk_inf), "-i", TRUNK_IP, "-p", str(uac_port),
            "-mi", TRUNK_IP, "-mp", str(load.sip_port + 3000 + 4 * load.n), "-r", str(rate), "-m", str(level),
            "-l", str(level), "-d", str(hold * 1000), "-trace_stat", "-stf", str(stat), "-fd", "1",
            "-recv_timeout", "10000"])
        stack.callback(stop_process, uac, 5)
        t_start = time.monotonic()
        up = _wait_up(level, trunk_rtp, far_rtp, deadline=t_start + ramp + UP_GRACE_S)
        up_s = round(time.monotonic() - t_start, 2)
        time.sleep(0.5)  # the last calls' first frames
        sipp_pids = [uac.pid, far.pid]
        s0 = sum(cpu_seconds(p) for p in sipp_pids)
        trunk_rtp.mark()
        far_rtp.mark()
        th0, core0 = _threads(b.proc.pid), _core_busy(B2BUA_CPU)
        c0, t0 = cpu_seconds(b.proc.pid), time.monotonic()
        time.sleep(WINDOW_S)
        rep_trunk, rep_far = trunk_rtp.report(), far_rtp.report()
        c1, t1 = cpu_seconds(b.proc.pid), time.monotonic()
        th1, core1 = _threads(b.proc.pid), _core_busy(B2BUA_CPU)
        s1 = sum(cpu_seconds(p) for p in sipp_pids)
        rss, hwm = rss_kb(b.proc.pid)
        active = _active_calls(b)
        try:  # bounded: an overloaded level would otherwise wait out SIPp's timers call by call
            uac.wait(max(0.0, t_start + ramp + hold + 15 - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop_process(uac, 5)
        rt = setup_times_ms(cap.stop(), uac_port)
    st = final_stats(stat)
    cpu = 100 * (c1 - c0) / (t1 - t0)
    return {
        "calls": level, "all_up": up, "up_after_s": up_s, "active_during_window": active, **st,
        "hold_s": hold, "window_s": round(t1 - t0, 2),
        "b2bua_cpu_pct": round(cpu, 1), "cpu_pct_per_call": round(cpu / level, 4),
        # the whole core: softirq work (loopback delivery) is not charged to the process; other tenants show here too
        "b2bua_core_busy_pct": round(100 * (core1[0] - core0[0]) / max(1, core1[2] - core0[2]), 1),
        "b2bua_core_softirq_pct": round(100 * (core1[1] - core0[1]) / max(1, core1[2] - core0[2]), 1),
        "b2bua_threads_cpu_pct": _top_threads(th0, th1, t1 - t0),
        "rss_mb": round(rss / 1024, 1), "rss_kb_per_call": round((rss - idle_rss) / level, 1),
        "rss_kb_per_call_this_level": round((rss - rss_before) / level, 1), "rss_hwm_mb": round(hwm / 1024, 1),
        "to_far_end": _direction(rep_far, rep_trunk), "to_trunk": _direction(rep_trunk, rep_far),
        "setup_measured": len(rt), "setup_p50_ms": round(pct(rt, 50), 2), "setup_p99_ms": round(pct(rt, 99), 2),
        "rtpload_cpu_pct": {"trunk": rep_trunk["cpu_pct"], "far": rep_far["cpu_pct"]},
        "rtpload_late_ticks": rep_trunk["late_ticks"] + rep_far["late_ticks"],
        "sipp_cpu_pct": round(100 * (s1 - s0) / (t1 - t0), 1),
        "clear_s": _settle(b, 60)}  # abandoned calls clear by SIP timers (~32 s)


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds per thread ("name/tid"): which thread (SIP, media, bridge clock) runs out of time first."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name, rest = task.joinpath("stat").read_text().rsplit(")", 1)
            f = rest.split()
            out[f"{name.split('(', 1)[1]}/{task.name}"] = (int(f[11]) + int(f[12])) / TICKS
    return out


def _top_threads(th0: dict[str, float], th1: dict[str, float], seconds: float, n: int = 4) -> dict[str, float]:
    busy = {k: 100 * (v - th0.get(k, 0.0)) / seconds for k, v in th1.items()}
    return {k: round(v, 1) for k, v in sorted(busy.items(), key=lambda kv: -kv[1])[:n]}


def _core_busy(cpu: str) -> tuple[int, int, int]:
    """(busy, softirq, total) jiffies of one core from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return sum(v) - v[3] - v[4], v[6], sum(v)
    return 0, 0, 1


def _active_calls(b: B2bua) -> int | None:
    """The B2BUA's own count; None when its HTTP API does not answer (its loop starved by overload)."""
    try:
        return int(b.health()["active_calls"])
    except OSError:
        return None


def _settle(b: B2bua, timeout: float) -> float | None:
    try:
        return settle(b, timeout)
    except OSError:  # the API itself timed out
        return None


def _wait_up(level: int, *tools: RtpLoad, deadline: float) -> bool:
    """True once every rtpload port on both sides has latched to the B2BUA's RTP: both legs have media.

    Asks the tools, not the B2BUA's API, so the wait adds no load to the process under test."""
    while time.monotonic() < deadline:
        if all(t.report()["latched"] >= level for t in tools):
            return True
        time.sleep(0.5)
    return False


def direct_baseline(work: Path, calls: int, seconds: float) -> dict[str, Any]:
    """Two rtpload instances talking to each other at the same level: this box's limit with the same tool."""
    ensure_built()
    a = RtpLoad(work, f"direct-a-{calls}", TRUNK_IP, calls, 1000, peer_ip=FAR_IP)
    z = RtpLoad(work, f"direct-z-{calls}", FAR_IP, calls, 1700, peer_ip=TRUNK_IP)
    try:
        time.sleep(1.0)
        a.mark()
        z.mark()
        time.sleep(seconds)
        ra, rz = a.report(), z.report()
    finally:
        a.stop()
        z.stop()
    return {"calls": calls, "a_to_z": _direction(rz, ra), "z_to_a": _direction(ra, rz),
            "rtpload_cpu_pct": {"a": ra["cpu_pct"], "z": rz["cpu_pct"]},
            "late_ticks": ra["late_ticks"] + rz["late_ticks"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="100,200,300", help="comma-separated numbers of concurrent calls")
    ap.add_argument("--hold", type=int, default=15, help="call hold time, s (raised so calls outlive the window)")
    ap.add_argument("--no-direct", action="store_true", help="skip the rtpload-to-rtpload baseline")
    ap.add_argument("--rtp-ports", type=int, default=4000, help="B2BUA RTP port range (2 per leg, 4 per call)")
    ap.add_argument("--ptime", type=int, default=20, help="the B2BUA's sip.ptime_ms (rtpload always sends 20 ms)")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "levels": levels,
                               "ptime_ms": args.ptime}
    with tempfile.TemporaryDirectory(prefix="b2bua-rtpconc-") as tmp:
        work = Path(tmp)
        if not args.no_direct:
            results["direct"] = [direct_baseline(work, n, WINDOW_S) for n in levels]
            print("direct", json.dumps(results["direct"]), file=sys.stderr, flush=True)
        b = start_b2bua(work / "b2bua", rtp_ports=args.rtp_ports, ptime_ms=args.ptime)
        try:
            load = Load(work, f"127.0.0.1:{b.sip_port}", b.far_port, b.sip_port)
            assert b.proc is not None
            results["idle_rss_mb"] = round(rss_kb(b.proc.pid)[0] / 1024, 1)
            results["concurrency"] = concurrency(b, load, work, levels, args.hold)
        finally:
            b.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
