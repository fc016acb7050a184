"""Voicemail and its disk (issue 24, finding 3): a full or read-only voicemail directory degrades voicemail only —
callers get busy instead of a greeting that records nothing, the user hears why, /health says so, and it recovers
by itself; a finished recording is measured from the file (an empty or cut-off file is never listed with the
clock's duration); recordings left without a row are adopted at start. The disks are real (a small tmpfs)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from b2bua.calls.events import Ended, Role
from b2bua.calls.incoming import IncomingCall
from b2bua.media.sounds import write_notes
from b2bua.sip.types import Admit
from b2bua.telecommuter.users import Message
from tests.support.disks import fill, free, read_only, tmpfs
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess, in_process
from tests.unit.control.helpers import BUSINESS, CALLER, GREETING_S, events, make_user, node, only_call

SMALL = "max_message_s = 2"  # a message needs 2 s x 16 kB/s plus the margin: about 290 kB free


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "vm", "1m") as where:
        yield where


def call_in(t: InProcess, leg: str) -> None:
    assert isinstance(t.far.call_in(invite(leg, called=BUSINESS, from_user="03098765432")), Admit)


def greeted(t: InProcess, leg: str) -> bool:
    return t.engine.responses(leg) == [200] and any(c.leg == leg for c in t.engine.named("play_file"))


async def hung_up(t: InProcess, leg: str) -> None:
    """The caller's leg ends (after a final response); nothing of the call may be left."""
    t.far.ended(leg, 486)
    await t.settle()
    assert not t.runner.calls and t.node.gate.admitted == 0


async def health(t: InProcess) -> dict[str, Any]:
    r = await t.call("GET", "/health", token=None)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


# ------------------------------------------------------------------------------------------ before the offer
async def test_a_full_voicemail_disk_gives_callers_busy_and_the_user_why_then_recovers(tmp_path: Path,
                                                                                      disk: Path) -> None:
    async with node(tmp_path, voicemail=f'dir = "{disk}"\n{SMALL}') as t:
        u = make_user(t)
        call_in(t, "A0")
        assert greeted(t, "A0"), "room on the disk: voicemail takes the call"
        t.runner.terminate(only_call(t).id)
        t.far.ended("A0")
        fill(disk)
        call_in(t, "A1")
        assert t.engine.responses("A1") == [486], "busy, not a greeting and a beep that record nothing"
        assert not [c for c in t.engine.named("play_file") if c.leg == "A1"] and not t.engine.named("record")
        await hung_up(t, "A1")
        (ev,) = events(t, u.id, "voicemail")
        assert (ev["change"], ev["caller"]) == ("unavailable", CALLER)
        assert ev["why"].startswith("voicemail disk full") and str(disk) in ev["why"]
        h = await health(t)
        assert h["status"] == "degraded" and h["checks"]["voicemail"].startswith("degraded: voicemail disk full")
        assert h["checks"]["store"] == "ok", "the rest of the service is fine"

        free(disk)
        call_in(t, "A2")
        assert greeted(t, "A2"), "usable again: voicemail recovers by itself"
        assert (await health(t))["checks"]["voicemail"] == "ok"


async def test_a_read_only_voicemail_directory_gives_callers_busy_and_recovers(tmp_path: Path, disk: Path) -> None:
    async with node(tmp_path, voicemail=f'dir = "{disk}"\n{SMALL}') as t:
        u = make_user(t)
        read_only(disk)
        try:
            call_in(t, "A1")
            assert t.engine.responses("A1") == [486] and not t.engine.named("play_file")
            await hung_up(t, "A1")
            assert "read-only" in events(t, u.id, "voicemail")[-1]["why"]
            assert "read-only" in (await health(t))["checks"]["voicemail"]
        finally:
            read_only(disk, False)
        call_in(t, "A2")
        assert greeted(t, "A2")


async def test_an_unusable_voicemail_directory_at_start_degrades_voicemail_only(tmp_path: Path, disk: Path) -> None:
    """Issue 24: a restart with the directory full or read-only exited ("voicemail directory not usable")."""
    read_only(disk)
    try:
        async with in_process(tmp_path, f'[voicemail]\ndir = "{disk}"\n{SMALL}\n') as t:  # the built-in greeting
            boxes = t.domain.mailbox.boxes
            assert "read-only" in boxes.readiness() and not boxes.greeting.exists()
            make_user(t)
            call_in(t, "A1")
            assert t.engine.responses("A1") == [486]
            await hung_up(t, "A1")
            read_only(disk, False)
            assert boxes.readiness() == "ok" and boxes.greeting.exists(), "the greeting is written once it can be"
            call_in(t, "A2")
            assert greeted(t, "A2")
    finally:
        read_only(disk, False)


# ------------------------------------------------------------------------------------------ after the recording
def wav_bytes(seconds: float, declared_s: float | None = None) -> bytes:
    """An 8 kHz mono 16-bit WAV holding ``seconds`` of audio whose header declares ``declared_s`` (the recorder's
    header promises what the disk may not hold)."""
    data = b"\x10\x00" * int(8000 * seconds)
    declared = len(data) if declared_s is None else int(8000 * declared_s) * 2
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + declared) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", declared) + data)


def recorded(t: InProcess, user_id: str, content: bytes, clock_s: float = 4.26) -> Path:
    """The incoming-call machine reports a recording of ``clock_s`` (by its clock); the file holds ``content``."""
    path = Path(t.domain.mailbox.boxes.dir) / user_id / "m1.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    t.domain.mailbox.recorded(user_id, {"message_id": "m1", "path": str(path), "caller": CALLER, "caller_name": "Bob",
                                        "called": BUSINESS, "duration_s": clock_s})
    return path


@pytest.mark.parametrize(("content", "why"), [
    (b"", "the recording is empty (0 bytes)"),
    (wav_bytes(0.0), "the recording holds no audio"),
    (wav_bytes(0.0, declared_s=4.0), "the recording holds no audio"),
    (wav_bytes(0.2), "only 0.20 s of the 4.3 s message reached the disk"),
    (b"RIFF\x00", "the recording is not a WAV file"),
])
async def test_a_recording_without_a_message_is_no_row_no_file_and_the_user_hears_it_failed(
        t: InProcess, content: bytes, why: str) -> None:
    """Issue 24: a full disk produced a 0-byte WAV listed as a 4.26 s message (download: 200 with 0 bytes)."""
    u = make_user(t)
    path = recorded(t, u.id, content)
    assert t.domain.mailbox.messages(u.id) == [] and not path.exists()
    (ev,) = events(t, u.id, "voicemail")
    assert (ev["change"], ev["why"], ev["caller"], ev["total"]) == ("failed", why, CALLER, 0)


@pytest.mark.parametrize(("content", "listed_s"), [
    (wav_bytes(1.1, declared_s=3.0), 1.1),  # cut short on disk: the header promises more than there is
    (wav_bytes(1.0, declared_s=0.0), 1.0),  # header never finalised: the audio present counts
    (wav_bytes(2.0, declared_s=1.5), 1.5),  # more bytes than declared: only what the header says is audio
])
async def test_a_message_is_listed_with_what_its_file_holds(t: InProcess, content: bytes, listed_s: float) -> None:
    """Issue 24: a nearly full disk cut a 20 s message to 11 s, but it was listed as 18.3 s."""
    u = make_user(t)
    path = recorded(t, u.id, content)
    (m,) = t.domain.mailbox.messages(u.id)
    assert (m.duration_s, m.path) == (listed_s, str(path)) and path.exists()
    assert events(t, u.id, "voicemail")[-1]["change"] == "new"


async def test_a_disk_filled_during_the_message_ends_the_call_cleanly_with_no_message(t: InProcess) -> None:
    """The whole call: greeting, recording, the recorder's file empty (the disk filled meanwhile), hang-up."""
    u = make_user(t)
    call_in(t, "A1")
    call = only_call(t)
    await asyncio.sleep(GREETING_S + 0.05)
    (rec,) = t.engine.named("record")
    Path(rec.args[0]).write_bytes(b"")  # all the recorder could write
    machine = call.machine
    assert isinstance(machine, IncomingCall)
    t.runner.drive(call.id, lambda now: machine.handle(Ended(Role.CALLER, 200), now + 3.0))
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert t.domain.mailbox.messages(u.id) == [] and not Path(rec.args[0]).exists()
    assert [e["change"] for e in events(t, u.id, "voicemail")] == ["failed"]
    (cdr,) = t.domain.records.recent(5)
    assert cdr["outcome"] == "voicemail"


# ------------------------------------------------------------------------------------------ at start
async def test_recordings_without_a_row_are_adopted_at_start(t: InProcess) -> None:
    """The node stopped before the database took a row (or died mid-message): the file becomes a message."""
    u = make_user(t)
    boxes = t.domain.mailbox.boxes
    folder = boxes.dir / u.id
    folder.mkdir(parents=True, exist_ok=True)
    write_notes(folder / "kept.wav", ((440, 1.0),))
    (folder / "empty.wav").write_bytes(b"")
    write_notes(folder / "listed.wav", ((440, 1.0),))
    t.store.add_message(Message("listed", u.id, CALLER, "", BUSINESS, 1.0, 1.0, str(folder / "listed.wav")))
    gone_user = boxes.dir / "nobody"
    gone_user.mkdir()
    write_notes(gone_user / "x.wav", ((440, 1.0),))
    assert boxes.adopt_orphans() == 1
    by_id = {m.id: m for m in t.domain.mailbox.messages(u.id)}
    assert set(by_id) == {"kept", "listed"} and by_id["listed"].caller == CALLER
    kept = by_id["kept"]
    assert (kept.caller, kept.called, kept.duration_s, kept.read) == ("", BUSINESS, 1.0, False)
    assert not (folder / "empty.wav").exists() and not (gone_user / "x.wav").exists()
    assert boxes.adopt_orphans() == 0
