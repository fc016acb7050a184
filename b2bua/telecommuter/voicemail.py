"""Voicemail boxes: where messages live on disk, the greeting, and the rows that list them.

Files are ``<dir>/<user id>/<message id>.wav`` (8 kHz mono 16-bit, written by the SIP engine's recorder); the
store holds who called and when. A row is written only once the recording is complete and long enough.
"""

from __future__ import annotations

import time
import uuid
import wave
from contextlib import suppress
from pathlib import Path

from b2bua.calls.incoming import VoicemailPlan
from b2bua.media.sounds import GREETING, wav_seconds, write_notes
from b2bua.ops.settings import VoicemailSettings
from b2bua.telecommuter.users import Message, User, UserRepository


class VoicemailBoxes:
    def __init__(self, settings: VoicemailSettings, store: UserRepository, default_dir: Path) -> None:
        self.cfg = settings
        self.store = store
        self.dir = Path(settings.dir) if settings.dir else default_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        if settings.greeting_wav:
            self.greeting = Path(settings.greeting_wav)
        else:
            self.greeting = self.dir / "default-greeting.wav"
            write_notes(self.greeting, GREETING)
        self.greeting_s = wav_seconds(self.greeting)

    def plan_for(self, user: User) -> VoicemailPlan | None:
        """A message slot for a caller, or None when the user has no voicemail or the box is full."""
        if not user.voicemail:
            return None
        total, _ = self.store.message_counts(user.id)
        if total >= self.cfg.max_messages:
            return None
        msg_id = uuid.uuid4().hex[:16]
        folder = self.dir / user.id
        folder.mkdir(parents=True, exist_ok=True)
        return VoicemailPlan(msg_id, str(self.greeting), self.greeting_s, str(folder / f"{msg_id}.wav"),
                             self.cfg.max_message_s)

    def recorded(self, user_id: str, message_id: str, path: str, caller: str, caller_name: str, called: str,
                 duration_s: float) -> Message | None:
        """Keep a finished recording (the engine closed the file before reporting the leg ended)."""
        p = Path(path)
        if not p.exists():
            return None
        with suppress(OSError, EOFError, wave.Error):
            duration_s = wav_seconds(p)  # the file's own length beats the call's timing
        m = Message(message_id, user_id, caller, caller_name, called, time.time(), round(duration_s, 2), path)
        self.store.add_message(m)
        return m

    def delete(self, m: Message) -> None:
        self.store.delete_message(m.user_id, m.id)
        Path(m.path).unlink(missing_ok=True)

    def delete_box(self, user_id: str) -> None:
        folder = self.dir / user_id
        if folder.is_dir():
            for f in folder.glob("*.wav"):
                f.unlink(missing_ok=True)
            with suppress(OSError):
                folder.rmdir()
