"""A user's voicemail: messages kept from finished recordings, read/unread, deletion, and the message-waiting
event every change sends to the user's stream (never with file paths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from b2bua.media.sounds import write_notes
from b2bua.telecommuter.users import Message
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, CALLER, GREETING_S, events, make_user, refused


def recording(t: InProcess, user_id: str, seconds: float = 0.6, msg_id: str = "m1") -> dict[str, Any]:
    """What the incoming-call machine reports once a message is recorded (the engine wrote the file)."""
    folder = t.domain.mailbox.boxes.dir / user_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{msg_id}.wav"
    write_notes(path, ((440, seconds),))
    return {"message_id": msg_id, "path": str(path), "caller": CALLER, "caller_name": "Bob", "called": BUSINESS,
            "duration_s": 9.99}


def kept(t: InProcess, user_id: str, **kw: Any) -> Message:
    t.domain.mailbox.recorded(user_id, recording(t, user_id, **kw))
    (m,) = [m for m in t.domain.mailbox.messages(user_id) if m.id == kw.get("msg_id", "m1")]
    assert isinstance(m, Message)
    return m


async def test_a_recorded_message_is_kept_and_announced(t: InProcess) -> None:
    u = make_user(t)
    m = kept(t, u.id)
    assert (m.caller, m.caller_name, m.called, m.read) == (CALLER, "Bob", BUSINESS, False)
    assert m.duration_s == 0.6, "the file's own length beats the call's timing"
    assert t.domain.mailbox.counts(u.id) == (1, 1)
    (ev,) = events(t, u.id, "voicemail")
    assert (ev["change"], ev["total"], ev["unread"], ev["waiting"]) == ("new", 1, 1, True)
    assert ev["message"] == m.public() and "path" not in ev["message"]


async def test_a_recording_that_never_reached_the_disk_is_not_a_message(t: InProcess) -> None:
    u = make_user(t)
    detail = recording(t, u.id)
    Path(detail["path"]).unlink()
    t.domain.mailbox.recorded(u.id, detail)
    assert t.domain.mailbox.messages(u.id) == []
    (ev,) = events(t, u.id, "voicemail")
    assert (ev["change"], ev["caller"], ev["total"]) == ("failed", CALLER, 0) and "could not be read" in ev["why"]


async def test_mark_read_and_unread_update_the_indicator(t: InProcess) -> None:
    u = make_user(t)
    m = kept(t, u.id)
    assert t.domain.mailbox.mark(m, True).read is True
    assert events(t, u.id, "voicemail")[-1] == {"kind": "voicemail", "change": "read", "total": 1, "unread": 0,
                                                "waiting": False}
    assert t.domain.mailbox.mark(m, False).read is False
    assert events(t, u.id, "voicemail")[-1]["waiting"] is True
    assert t.domain.accounts.view(t.domain.accounts.get(u.id))["voicemail_messages"] == {"total": 1, "unread": 1}


async def test_delete_removes_row_and_file(t: InProcess) -> None:
    u = make_user(t)
    m = kept(t, u.id)
    keep = kept(t, u.id, msg_id="m2")
    t.domain.mailbox.delete(m)
    assert not Path(m.path).exists() and Path(keep.path).exists()
    assert [x.id for x in t.domain.mailbox.messages(u.id)] == ["m2"]
    assert events(t, u.id, "voicemail")[-1] == {"kind": "voicemail", "change": "deleted", "total": 1, "unread": 1,
                                                "waiting": True}


async def test_messages_are_per_user_and_unknown_ones_are_404(t: InProcess) -> None:
    ann, bo = make_user(t, "201"), make_user(t, "202", "+493012345679")
    m = kept(t, ann.id)
    assert t.domain.mailbox.message(ann.id, m.id) == m
    with refused(404, "no-message"):
        t.domain.mailbox.message(bo.id, m.id)
    with refused(404, "no-message"):
        t.domain.mailbox.message(ann.id, "nope")
    assert t.domain.mailbox.messages(bo.id) == [] and t.domain.mailbox.counts(bo.id) == (0, 0)


async def test_audio_of_a_message_whose_file_is_gone_is_410(t: InProcess) -> None:
    u = make_user(t)
    m = kept(t, u.id)
    assert t.domain.mailbox.audio(m) == Path(m.path)
    Path(m.path).unlink()
    with refused(410, "recording-gone"):
        t.domain.mailbox.audio(m)


async def test_a_discarded_recording_leaves_no_file(t: InProcess) -> None:
    u = make_user(t)
    detail = recording(t, u.id)
    t.domain.mailbox.discarded(detail)
    assert not Path(detail["path"]).exists()
    t.domain.mailbox.discarded(detail)  # already gone: no error
    assert t.domain.mailbox.messages(u.id) == [] and events(t, u.id) == []


async def test_voicemail_slots_follow_the_users_setting(t: InProcess) -> None:
    u = make_user(t)
    plan = t.domain.mailbox.boxes.plan_for(u)
    assert plan is not None and Path(plan.record_path).parent == t.domain.mailbox.boxes.dir / u.id
    assert plan.greeting_s == GREETING_S and plan.max_message_s == t.settings.voicemail.max_message_s
    off = t.domain.accounts.update(u, voicemail=False)
    assert t.domain.mailbox.boxes.plan_for(off) is None
