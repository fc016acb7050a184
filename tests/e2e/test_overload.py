"""Overload smoke test: above a small configured call rate new calls get 503 with Retry-After, over SIP and over
the API, while every admitted call completes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e

OFFERED = 30


def test_calls_above_the_rate_limit_get_503_and_admitted_calls_complete(
        start_b2bua: Callable[..., B2bua]) -> None:
    b = start_b2bua(max_call_rate=5, max_call_burst=2)
    admission = b.health()["admission"]
    assert (admission["rate"], admission["burst"]) == (5, 2)
    far = uas(b, "uas_cps.xml", calls=OFFERED)
    # 30 calls offered at 20 a second: four times the limit for 1.5 s
    r = uac(b, "uac_overload.xml", calls=OFFERED, rate=20, hold_ms=500).start().wait(40)
    assert r.rc == 0, r.out  # no call failed other than by the expected 503
    refusals = [m for m in r.messages if m.startswith("SIP/2.0 503")]
    admitted = r.statuses().count(200) - r.requests().count("BYE")  # 200s to INVITEs, not to BYEs
    assert len(refusals) + admitted == OFFERED
    # 2 at once plus 5 a second for ~1.5 s; generous bounds for a busy machine's timing
    assert 4 <= admitted <= 14, (admitted, len(refusals))
    assert all("Retry-After: 1" in m for m in refusals)
    time.sleep(1.0)
    f = far.stop()
    assert f.requests().count("INVITE") == admitted  # the refused calls were never dialled onward
    assert f.requests().count("BYE") == admitted
    b.wait_idle()
    assert b.metric("b2bua_invites_rejected_total", code="503", reason="over-rate") == len(refusals)
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == admitted

    # the API shares the same bucket: a burst of callback requests (six users, one each: a user may have only
    # two at once), after a second's refill of 2 tokens
    users = []
    for i in range(6):
        status, body = b.http("POST", "/v1/users", body={"name": f"Burst {i}", "extension": f"200{i}",
                                                         "business_number": f"+49301234567{i}"})
        assert status == 201, body
        uid, token = body["user"]["id"], body["token"]
        assert b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token,
                      body={"mode": "on-demand", "number": f"+49305550{i}"})[0] == 200
        users.append((uid, token))
    time.sleep(1.0)
    user_side = uas(b, "uas_noanswer.xml", calls=OFFERED, name="uas-user")
    outcomes = [b.http_full("POST", f"/v1/users/{uid}/calls", token=token, body={"target": "+493098765432"})
                for uid, token in users]
    accepted = [body for status, _, body in outcomes if status == 201]
    refused = [(headers, body) for status, headers, body in outcomes if status == 503]
    assert len(accepted) + len(refused) == 6, outcomes
    assert 1 <= len(accepted) <= 3 and len(refused) >= 3, outcomes
    for headers, body in refused:
        assert headers.get("retry-after") == "1"
        assert isinstance(body, dict) and body["rule"] == "over-rate" and "try again" in body["detail"]
    for call in accepted:
        assert isinstance(call, dict)
        assert b.http("DELETE", f"/v1/calls/{call['id']}")[0] == 202
    b.wait_idle()
    user_side.stop()
    assert b.health()["admission"]["admitted"] == 0  # every admission was given back
