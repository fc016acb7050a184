"""/v1/users/{id}/voicemail: a user's messages (recorded through the domain's mailbox, as the incoming-call
machine would), their recordings, read/unread and deletion, and the message-waiting events every change sends."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from tests.support.inprocess import InProcess
from tests.unit.api.helpers import TARGET, assert_invalid, assert_problem, assert_unauthenticated, business, user


def record(t: InProcess, user_id: str, message_id: str, seconds: float = 0.5, caller: str = TARGET) -> Path:
    """A finished recording, handed to the mailbox like the incoming-call machine does."""
    path = Path(t.domain.mailbox.boxes.dir) / user_id / f"{message_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * int(8000 * seconds))
    t.domain.mailbox.recorded(user_id, {"message_id": message_id, "path": str(path), "caller": caller,
                                        "caller_name": "Alice", "called": business("201"), "duration_s": 9.0})
    return path


def mwi(t: InProcess, user_id: str) -> list[dict[str, Any]]:
    """The message-waiting events of a user (without the message details)."""
    return [{k: e.data[k] for k in ("change", "total", "unread", "waiting")}
            for e in t.node.bus.recent(user_id) if e.kind == "voicemail"]


async def test_list_messages(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1")
    record(t, uid, "m2", seconds=1.0)
    for who, path in ((token, "/v1/users/me/voicemail"), (None, f"/v1/users/{uid}/voicemail")):
        r = await (t.call("GET", path, token=who) if who else t.call("GET", path))
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["total"] == 2 and data["unread"] == 2
        assert {m["id"] for m in data["messages"]} == {"m1", "m2"}
    m1 = next(m for m in data["messages"] if m["id"] == "m1")
    assert m1["caller"] == TARGET and m1["caller_name"] == "Alice" and m1["called"] == business("201")
    assert m1["duration_s"] == 0.5 and m1["read"] is False  # the file's own length, not the call's timing
    assert (await t.call("GET", "/v1/users/me", token=token)).json()["voicemail_messages"] == {"total": 2,
                                                                                               "unread": 2}


async def test_empty_box(t: InProcess) -> None:
    _, token = await user(t)
    r = await t.call("GET", "/v1/users/me/voicemail", token=token)
    assert r.status_code == 200 and r.json() == {"messages": [], "total": 0, "unread": 0}


async def test_get_message(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1")
    r = await t.call("GET", "/v1/users/me/voicemail/m1", token=token)
    assert r.status_code == 200
    assert r.json()["id"] == "m1" and r.json()["read"] is False and "path" not in r.json()


async def test_message_audio_is_the_recording(t: InProcess) -> None:
    uid, token = await user(t)
    path = record(t, uid, "m1")
    r = await t.call("GET", "/v1/users/me/voicemail/m1/audio", token=token)
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert 'filename="voicemail-m1.wav"' in r.headers["content-disposition"]
    assert r.content == path.read_bytes()


async def test_audio_of_a_recording_gone_from_disk_is_410(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1").unlink()
    assert_problem(await t.call("GET", "/v1/users/me/voicemail/m1/audio", token=token), 410, "recording-gone")
    # the message itself is still listed
    assert (await t.call("GET", "/v1/users/me/voicemail/m1", token=token)).status_code == 200


async def test_mark_read_and_unread(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1")
    record(t, uid, "m2")
    r = await t.call("PATCH", "/v1/users/me/voicemail/m1", token=token, json={"read": True})
    assert r.status_code == 200 and r.json()["id"] == "m1" and r.json()["read"] is True
    listing = (await t.call("GET", "/v1/users/me/voicemail", token=token)).json()
    assert (listing["total"], listing["unread"]) == (2, 1)
    r = await t.call("PATCH", f"/v1/users/{uid}/voicemail/m1", json={"read": False})
    assert r.status_code == 200 and r.json()["read"] is False
    assert t.domain.mailbox.counts(uid) == (2, 2)
    assert mwi(t, uid) == [
        {"change": "new", "total": 1, "unread": 1, "waiting": True},
        {"change": "new", "total": 2, "unread": 2, "waiting": True},
        {"change": "read", "total": 2, "unread": 1, "waiting": True},
        {"change": "unread", "total": 2, "unread": 2, "waiting": True},
    ]


async def test_mark_refuses_invalid_bodies(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1")
    for body in ({}, {"read": "perhaps"}, {"read": True, "starred": True}):
        assert_invalid(await t.call("PATCH", "/v1/users/me/voicemail/m1", token=token, json=body), case=body)
    assert t.domain.mailbox.counts(uid) == (1, 1)


async def test_delete_message_removes_row_and_file(t: InProcess) -> None:
    uid, token = await user(t)
    path = record(t, uid, "m1")
    record(t, uid, "m2")
    r = await t.call("DELETE", "/v1/users/me/voicemail/m1", token=token)
    assert r.status_code == 204 and r.content == b""
    assert not path.exists()
    assert [m["id"] for m in (await t.call("GET", "/v1/users/me/voicemail", token=token)).json()["messages"]] == ["m2"]
    assert mwi(t, uid)[-1] == {"change": "deleted", "total": 1, "unread": 1, "waiting": True}
    assert_problem(await t.call("DELETE", "/v1/users/me/voicemail/m1", token=token), 404, "no-message")


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None), ("GET", "/m1", None), ("GET", "/m1/audio", None), ("PATCH", "/m1", {"read": True}),
    ("DELETE", "/m1", None)]


async def test_unknown_message_is_404(t: InProcess) -> None:
    uid, token = await user(t)
    record(t, uid, "m1")
    for method, suffix, body in ROUTES[1:]:
        path = f"/v1/users/me/voicemail{suffix.replace('m1', 'm9')}"
        assert_problem(await t.call(method, path, token=token, json=body), 404, "no-message", path)
    assert t.domain.mailbox.counts(uid) == (1, 1)


async def test_voicemail_auth(t: InProcess) -> None:
    owner, _ = await user(t, "201")
    _, other_token = await user(t, "202")
    record(t, owner, "m1")
    for method, suffix, body in ROUTES:
        path = f"/v1/users/{owner}/voicemail{suffix}"
        case = (method, path)
        assert_unauthenticated(await t.call(method, path, token=None, json=body))
        assert_problem(await t.call(method, path, token="wrong", json=body), 403, "forbidden", case)
        assert_problem(await t.call(method, path, token=other_token, json=body), 403, "not-your-user", case)
        if suffix:  # another user's message is not found through one's own box either
            assert_problem(await t.call(method, f"/v1/users/me/voicemail{suffix}", token=other_token, json=body),
                           404, "no-message", case)
        assert_problem(await t.call(method, f"/v1/users/nobody/voicemail{suffix}", json=body), 404, "no-user", case)
    assert t.domain.mailbox.counts(owner) == (1, 1)
    assert (Path(t.domain.mailbox.boxes.dir) / owner / "m1.wav").exists()
