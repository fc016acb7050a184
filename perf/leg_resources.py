"""What each bridged call holds while it is up: open descriptors (sockets above all), RSS and pjsip pools.

Every media stream a leg negotiates costs an RTP and an RTCP socket, a media transport and a stream; a stream
offered but never used (pjsua2's default T.140 ``m=text``) costs the same. This holds ``calls`` concurrent
calls (trunk SIPp -> B2BUA -> far-end SIPp, signalling only: the B2BUA still sends its own RTP) in one of two
phases: ``ringing`` (the far end rings and never answers; the trunk cancels after the hold time: an offer's
streams are all open until the answer) and ``answered`` (bridged; a stream the answer refused is closed by
then). It reads ``/proc/PID/fd``, ``/proc/PID/status`` and the pool census (``perf.pool_census``) at idle, at
the level and after the calls ended, and reports the differences per call. It also records the m-lines of one INVITE the
far end received, so a results file says which offer it measured.

``bash -c 'ulimit -n $(ulimit -Hn); .venv/bin/python -m perf.leg_resources --levels 100,200 --label after'``
(JSON on stdout; ``--out perf/results`` also writes ``leg-resources-<label>-<time>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from perf.bench import Load, final_stats, rss_kb, settle, start_b2bua
from perf.pool_census import census
from tests.support.procs import B2bua, stop_process

UP_TIMEOUT_S = 30.0


def descriptors(pid: int) -> dict[str, int]:
    """Open descriptors of ``pid`` by kind: sockets (pjmedia's RTP/RTCP and pjsip's own), files, the rest."""
    kinds: Counter[str] = Counter()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        kinds["socket" if target.startswith("socket:") else "file" if target.startswith("/") else "other"] += 1
    return {"total": sum(kinds.values()), "sockets": kinds["socket"], "files": kinds["file"], "other": kinds["other"]}


def snapshot(pid: int) -> dict[str, Any]:
    rss, hwm = rss_kb(pid)
    pools = census(pid)
    return {"fds": descriptors(pid), "rss_kb": rss, "hwm_kb": hwm,
            "pool_kb": round(sum(k.capacity for k in pools) / 1024, 1),
            "pools": {k.name: k.pools for k in pools}}


def _per_call(during: dict[str, Any], idle: dict[str, Any], calls: int) -> dict[str, Any]:
    kinds = set(during["pools"]) | set(idle["pools"])
    pools = {k: round((during["pools"].get(k, 0) - idle["pools"].get(k, 0)) / calls, 2) for k in kinds}
    return {"sockets": round((during["fds"]["sockets"] - idle["fds"]["sockets"]) / calls, 2),
            "fds": round((during["fds"]["total"] - idle["fds"]["total"]) / calls, 2),
            "rss_kb": round((during["rss_kb"] - idle["rss_kb"]) / calls, 1),
            "pool_kb": round((during["pool_kb"] - idle["pool_kb"]) / calls, 1),
            "pools": {k: v for k, v in sorted(pools.items(), key=lambda kv: -abs(kv[1])) if v}}


def offered_m_lines(msg_file: Path) -> list[str]:
    """The m-lines of the first INVITE in a SIPp message trace (what the B2BUA offered the far end)."""
    text = msg_file.read_text(errors="replace") if msg_file.exists() else ""
    start = text.find("INVITE sip:")
    if start < 0:
        return []
    invite = re.split(r"\n-{10,}", text[start:], maxsplit=1)[0]
    return [ln.strip() for ln in invite.splitlines() if ln.startswith("m=")]


SCENARIOS = {"answered": ("uac_cps.xml", "uas_cps.xml"), "ringing": ("uac_cancel_ringing.xml", "uas_noanswer.xml")}


def level(b: B2bua, load: Load, work: Path, calls: int, hold_s: int, phase: str) -> dict[str, Any]:
    """Hold ``calls`` calls in ``phase``, measure at the level, let them end, measure again."""
    assert b.proc is not None
    pid = b.proc.pid
    idle = snapshot(pid)
    load.n += 1
    msg_file = work / f"uas-{phase}-{calls}.msg"
    trunk_scenario, far_scenario = SCENARIOS[phase]
    far = load._sipp(f"uas{load.n}", ["-sf", far_scenario, "-i", "127.0.0.3", "-p", str(load.far_port),
                                      "-mi", "127.0.0.3", "-mp", str(load.far_port + 2000), "-m", str(calls),
                                      "-trace_msg", "-message_file", str(msg_file)])
    time.sleep(0.3)
    uac, stat = load.trunk(trunk_scenario, rate=min(100, calls), calls=calls, hold_ms=hold_s * 1000, limit=calls)
    t0 = time.monotonic()
    up = 0
    while time.monotonic() - t0 < UP_TIMEOUT_S:
        up = int(b.health()["active_calls"])
        if up >= calls:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # media set up on the last calls
    during = snapshot(pid)
    uac.wait(hold_s + UP_TIMEOUT_S + 30)
    stop_process(far, 10)
    clear_s = settle(b, 60)
    time.sleep(1.0)  # pjsua destroys a call's media a moment after its last state change
    after = snapshot(pid)
    return {"phase": phase, "calls": calls, "up": up, **final_stats(stat), "offer_m_lines": offered_m_lines(msg_file),
            "per_call": _per_call(during, idle, calls),
            "left_after_end": {"sockets": after["fds"]["sockets"] - idle["fds"]["sockets"],
                               "rss_kb": after["rss_kb"] - idle["rss_kb"]},
            "idle": {k: v for k, v in idle.items() if k != "pools"},
            "during": {k: v for k, v in during.items() if k != "pools"}, "clear_s": clear_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="100,200", help="comma-separated numbers of concurrent bridged calls")
    ap.add_argument("--hold", type=int, default=8, help="how long each call is held (or rings), s")
    ap.add_argument("--phases", default="ringing,answered", help="ringing, answered or both")
    ap.add_argument("--label", default="", help="names the run in the results file (e.g. before, after)")
    ap.add_argument("--out", default="", help="a directory for leg-resources-<label>-<time>.json")
    args = ap.parse_args()
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "label": args.label}
    with tempfile.TemporaryDirectory(prefix="b2bua-legres-") as tmp:
        work = Path(tmp)
        b = start_b2bua(work / "b2bua")
        try:
            load = Load(work, f"127.0.0.1:{b.sip_port}", b.far_port, b.sip_port)
            results["levels"] = []
            for phase, n in ((p, int(x)) for p in args.phases.split(",") for x in args.levels.split(",") if x):
                row = level(b, load, work, n, args.hold, phase)
                results["levels"].append(row)
                print("leg-resources", phase, n, json.dumps(row["per_call"]), file=sys.stderr, flush=True)
        finally:
            b.stop()
    text = json.dumps(results, indent=2)
    if args.out:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        Path(args.out, f"leg-resources-{args.label or 'run'}-{stamp}.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
