"""Accounts: provisioning users (numbers checked and normalised), their tokens, what the portal shows, changes
reaching the SIP thread's directory, and deletion ending the user's calls first."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.sip.types import Admit, Reject
from b2bua.telecommuter.users import Mode
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, CARRIER, MOBILE, PBX, make_user, node, placed, refused


async def test_create_normalises_numbers_and_shows_the_token_once(t: InProcess) -> None:
    accounts = t.domain.accounts
    u, token = accounts.create(name="Ann", extension="201", business_number="030 1234-5678")
    assert u.business_number == BUSINESS and u.extension == "201"
    assert (u.mode, u.class_of_service, u.voicemail, u.telecommuter_number) == (Mode.OFF, "standard", True, "")
    assert token.startswith("u_") and accounts.by_token(token) == u
    assert accounts.by_token(token + "x") is None
    assert accounts.get(u.id) == u and accounts.list() == [u]
    assert t.domain.policy.lookup("03012345678", "carrier").user_id == u.id, "the directory knows the user"


async def test_create_takes_the_settings_it_is_given(t: InProcess) -> None:
    u, _ = t.domain.accounts.create(name="Bo", extension="202", business_number=BUSINESS,
                                    class_of_service="international", confirm_digit="1", privacy=True,
                                    telecommuter_number="0171 1234567", voicemail=False, call_waiting=True)
    assert (u.class_of_service, u.confirm_digit, u.privacy, u.voicemail, u.call_waiting) == (
        "international", "1", True, False, True)
    assert u.telecommuter_number == MOBILE and u.mode is Mode.OFF


async def test_voicemail_default_comes_from_the_settings(tmp_path: Path) -> None:
    async with node(tmp_path, voicemail="enabled_by_default = false") as t:
        assert make_user(t).voicemail is False


@pytest.mark.parametrize(("fields", "status", "rule"), [
    ({"class_of_service": "gold"}, 422, "unknown-class-of-service"),
    ({"business_number": "12"}, 422, "invalid-number"),
    ({"business_number": "110"}, 422, "invalid-number"),  # an emergency number is nobody's DID
    ({"extension": "2"}, 422, "invalid-extension"),
    ({"extension": "+493012345678"}, 422, "invalid-extension"),
    ({"telecommuter_number": "+499001234567"}, 403, "class-of-service:standard:premium"),
    ({"telecommuter_number": "not a number"}, 422, "invalid-number"),
])
async def test_create_refuses_bad_settings(t: InProcess, fields: dict[str, str], status: int, rule: str) -> None:
    args = {"name": "X", "extension": "201", "business_number": BUSINESS, **fields}
    with refused(status, rule):
        t.domain.accounts.create(**args)
    assert t.domain.accounts.list() == []


async def test_create_refuses_taken_numbers_and_desk_extensions(t: InProcess) -> None:
    make_user(t, "201", BUSINESS)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    with refused(409, "conflict"):
        t.domain.accounts.create(name="X", extension="201", business_number="+493012345679")
    with refused(409, "conflict"):
        t.domain.accounts.create(name="X", extension="202", business_number="03012345678")
    with refused(409, "conflict"):
        t.domain.accounts.create(name="X", extension="300", business_number="+493012345679")
    assert len(t.domain.accounts.list()) == 1


async def test_get_unknown_user_is_404(t: InProcess) -> None:
    with refused(404, "no-user"):
        t.domain.accounts.get("nobody")


async def test_view_says_where_calls_ring_now(t: InProcess) -> None:
    accounts = t.domain.accounts
    u = make_user(t)
    assert accounts.view(u)["rings"] == "voicemail"
    assert accounts.view(u)["voicemail_messages"] == {"total": 0, "unread": 0}
    u = accounts.update(u, voicemail=False)
    assert accounts.view(u)["rings"] == "busy"
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    v = accounts.view(u)
    assert (v["rings"], v["desk"]) == ("desk", "300")
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)
    v = accounts.view(u)
    assert (v["rings"], v["desk"], v["mode"], v["restore_desk"]) == ("telecommuter", None, "on-demand", "300")


async def test_update_normalises_and_rebuilds_the_directory(t: InProcess) -> None:
    accounts = t.domain.accounts
    u = make_user(t, "201", BUSINESS)
    u = accounts.update(u, business_number="030 12345679", extension="205", name="New")
    assert (u.business_number, u.extension, u.name) == ("+493012345679", "205", "New")
    lookup = t.domain.policy.lookup
    assert lookup("493012345678", "carrier") is None, "the old number is no longer ours"
    assert lookup("493012345679", "carrier").user_id == u.id
    assert lookup("205", "pbx").user_id == u.id and lookup("201", "pbx").reason == "unknown-extension"


async def test_update_refusals(t: InProcess) -> None:
    accounts = t.domain.accounts
    u = make_user(t, "201", BUSINESS)
    make_user(t, "202", "+493012345679")
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    with refused(409, "conflict"):
        accounts.update(u, extension="202")
    with refused(409, "conflict"):
        accounts.update(u, business_number="+493012345679")
    with refused(409, "conflict"):
        accounts.update(u, extension="300")
    with refused(422, "unknown-class-of-service"):
        accounts.update(u, class_of_service="gold")
    with refused(422, "invalid-number"):
        accounts.update(u, business_number="112")
    assert accounts.get(u.id) == u
    accounts.delete(u)
    with refused(404, "no-user"):
        accounts.update(u, name="Ghost")


async def test_rotate_token_retires_the_old_one(t: InProcess) -> None:
    accounts = t.domain.accounts
    u, old = accounts.create(name="Ann", extension="201", business_number=BUSINESS)
    new = accounts.rotate_token(u)
    assert new != old and accounts.by_token(old) is None and accounts.by_token(new) == u


async def test_delete_ends_the_users_calls_then_forgets_them(t: InProcess) -> None:
    accounts = t.domain.accounts
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    call = t.domain.outgoing.start_callback(u, "+493098765432")
    user_leg = placed(t)[0].leg
    t.far.answered(user_leg)
    folder = t.domain.mailbox.boxes.dir / u.id
    folder.mkdir()
    (folder / "m1.wav").write_bytes(b"RIFF")
    assert t.node.bus.recent(u.id)
    accounts.delete(u)
    assert {c.leg for c in t.engine.named("hangup")} >= {user_leg}
    assert t.runner.get(call.id).machine.state_name == "ending"
    assert accounts.list() == [] and not folder.exists()
    assert t.node.bus.recent(u.id) == []
    assert t.domain.policy.lookup(BUSINESS, "carrier") is None
    routed = t.node.screen.screen(invite("A1", called=BUSINESS, src_ip=CARRIER))
    assert isinstance(routed, Admit) and routed.target_trunk == "carrier"  # now just a number, routed on


async def test_extension_call_reaches_a_new_user_at_once(t: InProcess) -> None:
    """The SIP thread's directory is rebuilt on creation: no restart, no stale snapshot."""
    before = t.node.screen.screen(invite("P1", called="201", src_ip=PBX))
    assert isinstance(before, Reject) and before.code == 404
    u = make_user(t, "201")
    after = t.node.screen.screen(invite("P2", called="201", src_ip=PBX))
    assert isinstance(after, Admit) and after.user_id == u.id
