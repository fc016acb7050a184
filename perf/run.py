"""The benchmark: every figure of the issue, side by side with SIPp-to-SIPp and Sippy B2BUA, over several runs.

``make -C perf bench`` (3 runs, ~25 min) or ``.venv/bin/python -m perf.run --runs 1 --quick`` (a smoke run).
Our B2BUA and Sippy are pinned to CPU 0, SIPp, tcpdump and rtpload to CPU 1. Each run measures, in order:

1. set-up latency at 50 CPS (INVITE -> 200 at the trunk SIPp, from packet times): our B2BUA, SIPp talking to
   SIPp directly (the box's physical limit) and Sippy B2BUA (signalling only);
2. callback set-up (API request -> the target's 180), paired per call by target number;
3. concurrent bridged calls with RTP from rtpload (SIPp only signals) at rising levels: share of frames
   delivered each way, B2BUA CPU, set-up p99 at that level, RSS per call; and rtpload talking to itself directly
   at the top level (the box's limit for the same media load); then the same with the B2BUA at
   ``sip.ptime_ms = 40`` (it sends 40 ms packets and bridges 40 ms frames; the load keeps sending 20 ms);
4. CPS ramp (1 s calls, 10 s steps) until the first failed call or retransmission: ours and Sippy's, CPU % and
   ms of CPU per call;
5. overload: twice the configured call rate offered; admitted calls' set-up p99, failures, 503s.

The results file holds every run in full and a summary: per figure the median of the runs and the range, and
our figures as ratios to SIPp-to-SIPp and to Sippy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perf import bench, overload, rtp_concurrency, sippy_b2bua

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY_GOAL = {"delivered": 0.999, "cpu_pct": 90.0, "setup_p99_ms": 50.0}


def one_run(work: Path, quick: bool) -> dict[str, Any]:
    step_s = 3 if quick else 10
    rates = [50, 100] if quick else [100, 150, 200, 250, 300, 350]
    levels = [100] if quick else [200, 400, 600]
    levels40 = [100] if quick else [600, 800]
    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    b = bench.start_b2bua(work / "b2bua")
    load = bench.Load(work, f"127.0.0.1:{b.sip_port}", b.far_port, b.sip_port)
    try:
        assert b.proc is not None
        out["idle_rss_mb"] = round(bench.rss_kb(b.proc.pid)[0] / 1024, 1)
        out["setup_latency"] = {"b2bua": bench.setup_latency(load, 50, step_s, direct=False),
                                "sipp_to_sipp": bench.setup_latency(load, 50, step_s, direct=True)}
        print("setup", out["setup_latency"], flush=True)
        out["callback_setup"] = bench.callback_setup(b, load, work, rate=10, calls=30 if quick else 100)
        print("callback", out["callback_setup"], flush=True)
        out["concurrency"] = rtp_concurrency.concurrency(b, load, work, levels, hold_s=15)
        # last: its overloaded step leaves transactions retransmitting for ~32 s
        out["cps_ramp"] = bench.cps_ramp(b, load, rates, step_s)
        out["rss_hwm_mb"] = round(bench.rss_kb(b.proc.pid)[1] / 1024, 1)
    finally:
        b.stop()
    # the same load against a B2BUA that sends 40 ms packets and runs its bridge on 40 ms frames (sip.ptime_ms)
    b40 = bench.start_b2bua(work / "b2bua-ptime40", ptime_ms=40)
    try:
        out["concurrency_ptime40"] = rtp_concurrency.concurrency(b40, load, work, levels40, hold_s=15)
    finally:
        b40.stop()
    top = max(levels)
    out["rtp_direct"] = rtp_concurrency.direct_baseline(work, top, 5.0)
    print("rtp direct", out["rtp_direct"], flush=True)
    # Sippy gets the same port block and core once ours has stopped
    sload = bench.Load(work / "sippy", "", load.far_port + 100, load.sip_port + 100)
    (work / "sippy").mkdir(exist_ok=True)
    out["sippy"] = {"about": sippy_b2bua.describe(sload),
                    "setup_latency": sippy_b2bua.setup_latency_sippy(sload, 50, step_s),
                    "cps_ramp": sippy_b2bua.cps_ramp_sippy(sload, [50, 100] if quick else [100, 150, 200, 250],
                                                           step_s)}
    print("sippy", out["sippy"]["setup_latency"], flush=True)
    out["overload"] = overload.overload(work / "overload", capacity=50 if quick else 150, seconds=step_s)
    print("overload", out["overload"], flush=True)
    out["figures"] = figures(out)
    return out


def _last_clean(steps: list[dict[str, Any]]) -> int:
    clean = 0
    for s in steps:
        if not bench.clean_step(s, s["offered"]):
            break
        clean = s["rate"]
    return clean


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def figures(run: dict[str, Any]) -> dict[str, float | None]:
    """The headline numbers of one run, flat, so that runs can be compared figure by figure."""
    ours, direct = run["setup_latency"]["b2bua"], run["setup_latency"]["sipp_to_sipp"]
    sippy = run["sippy"]["setup_latency"]
    cps, sippy_cps = _last_clean(run["cps_ramp"]), _last_clean(run["sippy"]["cps_ramp"])
    f: dict[str, float | None] = {
        "cps_last_clean": cps, "sippy_cps_last_clean": sippy_cps, "cps_ratio_to_sippy": _ratio(cps, sippy_cps),
        "setup_p50_ms": ours["p50_ms"], "setup_p99_ms": ours["p99_ms"],
        "sipp_to_sipp_p50_ms": direct["p50_ms"], "sipp_to_sipp_p99_ms": direct["p99_ms"],
        "sippy_p50_ms": sippy["p50_ms"], "sippy_p99_ms": sippy["p99_ms"],
        "setup_p50_ratio_to_sipp": _ratio(ours["p50_ms"], direct["p50_ms"]),
        "setup_p50_ratio_to_sippy": _ratio(ours["p50_ms"], sippy["p50_ms"]),
        "callback_p50_ms": run["callback_setup"]["p50_ms"], "callback_p99_ms": run["callback_setup"]["p99_ms"],
        "idle_rss_mb": run["idle_rss_mb"], "rss_hwm_mb": run.get("rss_hwm_mb"),
    }
    by_step = {s["rate"]: s for s in run["cps_ramp"]}
    for rate in (100, 200, 300):
        s = by_step.get(rate)
        f[f"cpu_ms_per_call_at_{rate}cps"] = s["cpu_ms_per_call"] if s else None
        f[f"setup_p99_ms_at_{rate}cps"] = s["setup_p99_ms"] if s else None
    f.update(_concurrency_figures(run["concurrency"], "conc", "concurrent_calls_meeting_goal"))
    f.update(_concurrency_figures(run.get("concurrency_ptime40", []), "ptime40_conc",
                                  "concurrent_calls_meeting_goal_ptime40"))
    d = run["rtp_direct"]
    f["rtp_direct_delivered"] = min(d["a_to_z"]["delivered_share"], d["z_to_a"]["delivered_share"])
    o = run["overload"]
    f.update({"overload_failed": o["failed"], "overload_admitted_cps": o["admitted_cps"],
              "overload_refused": o["refused_503"], "overload_admitted_setup_p99_ms": o["admitted_setup_p99_ms"]})
    return f


def _concurrency_figures(rows: list[dict[str, Any]], prefix: str, goal_key: str) -> dict[str, float | None]:
    f: dict[str, float | None] = {}
    best = 0
    for row in rows:
        level = row["calls"]
        worst = min(row["to_far_end"]["delivered_share"], row["to_trunk"]["delivered_share"])
        f[f"{prefix}{level}_delivered"] = worst
        f[f"{prefix}{level}_cpu_pct"] = row["b2bua_cpu_pct"]
        f[f"{prefix}{level}_setup_p99_ms"] = row["setup_p99_ms"]
        f[f"{prefix}{level}_rss_kb_per_call"] = row["rss_kb_per_call"]
        if (row["all_up"] and worst >= CONCURRENCY_GOAL["delivered"] and row["failed"] == 0
                and row["b2bua_cpu_pct"] < CONCURRENCY_GOAL["cpu_pct"]
                and row["setup_p99_ms"] < CONCURRENCY_GOAL["setup_p99_ms"]):
            best = max(best, level)
    f[goal_key] = best
    return f


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range of every figure over the runs (machines are noisy: quote medians, not single runs)."""
    names = sorted({k for r in runs for k in r["figures"]})
    out: dict[str, Any] = {}
    for k in names:
        vals = [r["figures"].get(k) for r in runs]
        nums = [float(v) for v in vals if v is not None]
        out[k] = {"median": round(statistics.median(nums), 4) if nums else None,
                  "min": min(nums) if nums else None, "max": max(nums) if nums else None, "runs": vals}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="short steps, low levels: a smoke run")
    ap.add_argument("--out", default=str(ROOT / "perf" / "results"))
    args = ap.parse_args()
    for tool in ("sipp", "taskset", "tcpdump"):
        if not shutil.which(tool):
            print(f"missing tool: {tool}", file=sys.stderr)
            return 1
    if sippy_b2bua.sippy_version() is None:
        print("sippy is not installed: .venv/bin/pip install -e '.[perf]'", file=sys.stderr)
        return 1
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "machine": bench.machine(),
                               "settings": {"b2bua_cpu": bench.B2BUA_CPU, "load_cpu": bench.LOAD_CPU,
                                            "quick": args.quick, "runs": args.runs,
                                            "b2bua_config_extra": bench.BENCH_CONFIG.strip(),
                                            "concurrency_goal": CONCURRENCY_GOAL},
                               "runs": []}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}.json"
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix=f"b2bua-bench-{i}-") as tmp:
            results["runs"].append(one_run(Path(tmp), args.quick))
        results["summary"] = summarise(results["runs"])
        path.write_text(json.dumps(results, indent=2))  # a run that dies later still leaves the earlier ones
        print(f"run {i + 1}/{args.runs} done: {path}", flush=True)
    print(json.dumps({k: v["median"] for k, v in results["summary"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
