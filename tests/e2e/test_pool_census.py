"""pjsip's per-call memory, read from the running B2BUA with perf/pool_census.py: each bridged call holds one
media stream, one media transport and one conference port per leg while it is up, and every one of them is
given back when the calls end (no leaked pjsip state behind a call the product already forgot)."""

from __future__ import annotations

import time

import pytest

from perf.pool_census import Kind, census
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e

CALLS = 4
PER_LEG = ("strm#", "udp#")  # the media stream and its RTP transport


def _pools(kinds: list[Kind], name: str) -> int:
    return sum(k.pools for k in kinds if k.name == name)


def _conf_ports(kinds: list[Kind]) -> int:
    """pjsua names a leg's conference port after the remote URI."""
    return sum(k.pools for k in kinds if k.name.startswith("sip:"))


def test_each_call_holds_its_media_pools_and_gives_them_back(b2bua: B2bua) -> None:
    assert b2bua.proc is not None
    before = census(b2bua.proc.pid)
    base = {name: _pools(before, name) for name in PER_LEG}
    far = uas(b2bua, "uas_answer.xml", calls=CALLS)
    caller = uac(b2bua, "uac_call.xml", calls=CALLS, hold_ms=4000, rate=20, limit=CALLS).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b2bua.metric("b2bua_active_calls") < CALLS:
        time.sleep(0.1)
    time.sleep(0.5)
    during = census(b2bua.proc.pid)
    for name in PER_LEG:
        assert _pools(during, name) - base[name] == 2 * CALLS, (name, during[:15])
    assert _conf_ports(during) - _conf_ports(before) == 2 * CALLS, during[:15]
    dialogs = _pools(during, "dlg#") - _pools(before, "dlg#")
    assert dialogs == 2 * CALLS, during[:15]

    assert caller.wait(30).rc == 0
    far.wait(20)
    b2bua.wait_idle()
    after: list[Kind] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # pjsua destroys a call's media a moment after its last state change
        after = census(b2bua.proc.pid)
        if all(_pools(after, n) == base[n] for n in PER_LEG) and _conf_ports(after) == _conf_ports(before):
            break
        time.sleep(0.2)
    for name in PER_LEG:
        assert _pools(after, name) == base[name], (name, after[:15])
    assert _conf_ports(after) == _conf_ports(before), after[:15]
