"""Voicemail boxes: where messages live on disk, the greeting, and the rows that list them.

Files are ``<dir>/<user id>/<message id>.wav`` (8 kHz mono 16-bit, written by the SIP engine's recorder); the
store holds who called and when. Disk faults stop here: voicemail is offered only while the directory can take a
whole message (checked before each offer with statvfs and access, nothing slower), and a finished recording is
measured from the file itself, so an empty or cut-off file is never listed with the clock's duration. A full or
read-only directory degrades voicemail only (callers get busy/unavailable) and recovers once it is usable again.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import suppress
from pathlib import Path

from b2bua.calls.incoming import MIN_MESSAGE_S, VoicemailPlan
from b2bua.media.recordings import inspect_recording
from b2bua.media.sounds import GREETING, notes_seconds, wav_seconds, write_notes
from b2bua.ops.logging import get_logger
from b2bua.ops.settings import VoicemailSettings
from b2bua.telecommuter.users import Message, User, UserRepository

BYTES_PER_S = 8000 * 2  # what the recorder writes: 8 kHz, 16-bit, mono
SPACE_MARGIN = 256 * 1024  # beyond one longest message: the header, directory blocks, another writer meanwhile
CUT_SHORT_S = 1.0  # a file this much shorter than the call's timing lost audio on the way to the disk


class VoicemailUnavailable(Exception):
    """Voicemail cannot take a message now; ``why`` is for the user's event and the log."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class RecordingFailed(VoicemailUnavailable):
    """A finished recording holds no message (empty, cut off before any audio, unreadable); its file is gone."""


class VoicemailBoxes:
    def __init__(self, settings: VoicemailSettings, store: UserRepository, default_dir: Path) -> None:
        self.cfg = settings
        self.store = store
        self.dir = Path(settings.dir) if settings.dir else default_dir
        self.builtin_greeting = not settings.greeting_wav
        self.greeting = self.dir / "default-greeting.wav" if self.builtin_greeting else Path(settings.greeting_wav)
        self.greeting_s = notes_seconds(GREETING) if self.builtin_greeting else wav_seconds(self.greeting)
        self.needed_bytes = int(settings.max_message_s * BYTES_PER_S) + SPACE_MARGIN
        self._why = ""
        self._log = get_logger("voicemail")
        self.readiness()  # a full or read-only directory at start is logged, not fatal

    # ------------------------------------------------------------------------------------------ readiness
    def readiness(self) -> str:
        """"ok", or "degraded: <why>" while the directory cannot take a message (logged when that changes)."""
        why = self._problem()
        if why != self._why:
            if why:
                self._log.warning("voicemail unavailable: callers get busy/unavailable", why=why, dir=str(self.dir))
            else:
                self._log.info("voicemail available again", dir=str(self.dir))
            self._why = why
        return f"degraded: {why}" if why else "ok"

    def _problem(self) -> str:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            st = os.statvfs(self.dir)
        except OSError as e:
            return f"voicemail directory {self.dir} not usable: {e.strerror or e}"
        if st.f_flag & os.ST_RDONLY:
            return f"voicemail directory {self.dir} is on a read-only file system"
        if not os.access(self.dir, os.W_OK | os.X_OK):
            return f"voicemail directory {self.dir} is not writable"
        free = st.f_bavail * st.f_frsize
        if free < self.needed_bytes:
            return (f"voicemail disk full: {free} bytes free in {self.dir}, a message of up to "
                    f"{self.cfg.max_message_s:g} s needs {self.needed_bytes}")
        if self.builtin_greeting and not self.greeting.exists():
            try:
                write_notes(self.greeting, GREETING)
            except OSError as e:
                return f"cannot write the greeting {self.greeting}: {e.strerror or e}"
        return ""

    # ------------------------------------------------------------------------------------------ messages
    def plan_for(self, user: User) -> VoicemailPlan | None:
        """A message slot for a caller; None when the user has no voicemail. Raises ``VoicemailUnavailable``
        when the box is full or the disk cannot take a message now."""
        if not user.voicemail:
            return None
        total, _ = self.store.message_counts(user.id)
        if total >= self.cfg.max_messages:
            raise VoicemailUnavailable(f"the voicemail box is full ({total} messages)")
        self.readiness()
        if self._why:
            raise VoicemailUnavailable(self._why)
        folder = self.dir / user.id
        try:
            folder.mkdir(exist_ok=True)
        except OSError as e:
            raise VoicemailUnavailable(f"cannot create {folder}: {e.strerror or e}") from e
        msg_id = uuid.uuid4().hex[:16]
        return VoicemailPlan(msg_id, str(self.greeting), self.greeting_s, str(folder / f"{msg_id}.wav"),
                             self.cfg.max_message_s)

    def recorded(self, user_id: str, message_id: str, path: str, caller: str, caller_name: str, called: str,
                 clock_s: float) -> Message:
        """The message a finished recording makes (the engine closed the file before reporting the leg ended),
        its duration from the file. Raises ``RecordingFailed``, the file removed, when it holds no message."""
        rec = inspect_recording(Path(path))
        why = rec.problem
        if not why and rec.seconds < MIN_MESSAGE_S:
            why = f"only {rec.seconds:.2f} s of the {clock_s:.1f} s message reached the disk"
        if why:
            with suppress(OSError):
                Path(path).unlink(missing_ok=True)
            disk = self._problem()
            raise RecordingFailed(f"{why} ({disk})" if disk else why)
        if clock_s - rec.seconds > CUT_SHORT_S:
            self._log.warning("voicemail cut short on disk", user_id=user_id, message_id=message_id,
                              recorded_s=round(rec.seconds, 2), spoken_s=round(clock_s, 2), why=self._problem())
        return Message(message_id, user_id, caller, caller_name, called, time.time(), round(rec.seconds, 2), path)

    def delete(self, m: Message) -> None:
        """File first: a row left by a failed delete can be deleted again, a file left without a row is lost."""
        Path(m.path).unlink(missing_ok=True)
        self.store.delete_message(m.user_id, m.id)

    def delete_box(self, user_id: str) -> None:
        folder = self.dir / user_id
        if folder.is_dir():
            for f in folder.glob("*.wav"):
                f.unlink(missing_ok=True)
            with suppress(OSError):
                folder.rmdir()

    def adopt_orphans(self) -> int:
        """At start (no recording runs yet): a recording with no row — the node stopped before the database took
        it, or died mid-message — becomes a message from an unknown caller, or goes if it holds no message or its
        user is gone. Returns how many were adopted."""
        adopted = 0
        folders = [f for f in self.dir.iterdir() if f.is_dir()] if self.dir.is_dir() else []
        for folder in folders:
            user = self.store.get_user(folder.name)
            known = {m.id for m in self.store.messages(folder.name)} if user else set()
            for wav in sorted(folder.glob("*.wav")):
                if wav.stem in known:
                    continue
                rec = inspect_recording(wav)
                if user is None or rec.problem or rec.seconds < MIN_MESSAGE_S:
                    wav.unlink(missing_ok=True)
                    continue
                self.store.add_message(Message(wav.stem, user.id, "", "", user.business_number, wav.stat().st_mtime,
                                               round(rec.seconds, 2), str(wav)))
                adopted += 1
        if adopted:
            self._log.warning("recordings without a row adopted as messages from unknown callers", adopted=adopted)
        return adopted
