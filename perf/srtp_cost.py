"""What SRTP support costs plain (non-SRTP) bridged calls: the same load on several pjsua2 builds, side by side.

Each build is a Python interpreter with that pjsua2 installed (a venv); the B2BUA runs under it. Per build:
``perf.leg_resources`` (RSS, pjsip pools and sockets per bridged call while calls are up) and, ``--rounds``
times with the builds alternating, ``perf.rtp_concurrency`` (B2BUA CPU with RTP both ways through every call,
and the delivered share). CPU per packet is the process's CPU over the window divided by the RTP packets it
received and sent (each call: 2 legs, 50 in + 50 out a second at 20 ms): all media work, bridge included.

Typical: the build before SRTP, the build with SRTP and patch 0008, and one with SRTP but without 0008 (upstream
pjsua: an SRTP adapter on every leg), to show what the patch keeps off plain calls::

    python -m perf.srtp_cost --build old=/tmp/venv-old/bin/python --build new=.venv/bin/python \\
        --build unpatched=/tmp/venv-nopatch/bin/python --level 300 --rounds 3 --out perf/results
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PKTS_PER_CALL_S = 2 * (50 + 50)  # two legs, 20 ms packets in and out


def _run(python: str, module: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    p = subprocess.run([python, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{python} -m {module} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return dict(json.loads(p.stdout))


def _build_id(python: str) -> str:
    code = "import pjsua2; print(getattr(pjsua2, '__b2bua_build__', '?'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _media(python: str, level: int, hold: int) -> dict[str, Any]:
    row = _run(python, "perf.rtp_concurrency", "--levels", str(level), "--no-direct", "--hold", str(hold))
    c = row["concurrency"][0]
    pps = PKTS_PER_CALL_S * level
    return {"b2bua_cpu_pct": c["b2bua_cpu_pct"], "us_per_packet": round(c["b2bua_cpu_pct"] / 100 * 1e6 / pps, 3),
            "to_far_end": c["to_far_end"], "to_trunk": c["to_trunk"], "rss_kb_per_call": c["rss_kb_per_call"],
            "core_busy_pct": c["b2bua_core_busy_pct"], "setup_p99_ms": c["setup_p99_ms"]}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(float(statistics.median(r[key] for r in rows)), 3)

    return {"runs": len(rows), "b2bua_cpu_pct_median": med("b2bua_cpu_pct"),
            "us_per_packet_median": med("us_per_packet"),
            "us_per_packet_range": [min(r["us_per_packet"] for r in rows), max(r["us_per_packet"] for r in rows)],
            "rss_kb_per_call_median": med("rss_kb_per_call")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="label=path/to/python (repeat)")
    ap.add_argument("--level", type=int, default=300, help="concurrent bridged calls with RTP")
    ap.add_argument("--legres-level", type=int, default=200, help="concurrent calls for the per-call census")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=int, default=15)
    ap.add_argument("--out", default="", help="a directory for srtp-<time>.json")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit: each leg holds two sockets
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out: dict[str, Any] = {"started": started, "level": args.level, "legres_level": args.legres_level,
                           "builds": {k: {"python": v, "pjsua2": _build_id(v)} for k, v in builds.items()}}
    for label, python in builds.items():
        lr = _run(python, "perf.leg_resources", "--levels", str(args.legres_level), "--hold", "8")["levels"][0]
        out["builds"][label]["per_call"] = lr["per_call"]
        out["builds"][label]["offer_m_lines"] = lr["offer_m_lines"]
        print(label, "per call", json.dumps(lr["per_call"]), file=sys.stderr, flush=True)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in builds}
    for r in range(args.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))  # drift spreads over all builds
        for label in order:
            runs[label].append(_media(builds[label], args.level, args.hold))
            print(label, "media", json.dumps(runs[label][-1]), file=sys.stderr, flush=True)
    for label in builds:
        out["builds"][label]["media_runs"] = runs[label]
        out["builds"][label]["media"] = _summary(runs[label])
    text = json.dumps(out, indent=2)
    if args.out:
        Path(args.out, f"srtp-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
