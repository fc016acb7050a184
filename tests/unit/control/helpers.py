"""Small helpers shared by the in-process tests of call control and of the telecommuter domain's rooms."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from b2bua.control.active import ActiveCall
from b2bua.media.sounds import write_notes
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import Mode, User
from tests.support.fake_engine import Command
from tests.support.inprocess import InProcess, in_process

CARRIER = "127.0.0.2"  # the "carrier" trunk's source address (class of service "standard")
PBX = "127.0.0.5"  # the "pbx" trunk's source address (may call extensions)
OUT = "127.0.0.3:5060"  # where the catch-all route sends calls (the carrier's host)

BUSINESS = "+493012345678"
MOBILE = "+491711234567"
CALLER = "+493098765432"


GREETING_S = 0.12  # the voicemail greeting the tests configure: recording starts this long after the answer


@functools.cache
def _sounds() -> tuple[str, str]:
    """A short greeting and hold music, written once per test run: the built-in ones are synthesised at every
    start (most of an in-process node's start-up time), and a short greeting keeps voicemail tests fast."""
    folder = Path(tempfile.mkdtemp(prefix="b2bua-unit-sounds-"))
    atexit.register(shutil.rmtree, folder, True)
    greeting, music = folder / "greeting.wav", folder / "music.wav"
    write_notes(greeting, ((1000, GREETING_S),))
    write_notes(music, ((440, 0.2),))
    return str(greeting), str(music)


def node(tmp_path: Path, *, voicemail: str = "", keep_connected: str = "", telecommuter: str = "",
         extra: str = "") -> AbstractAsyncContextManager[InProcess]:
    """``in_process`` with the short sounds; lines for the [voicemail], [keep_connected] and [telecommuter]
    tables go in by name (a TOML table may appear only once), anything else in ``extra``."""
    greeting, music = _sounds()
    text = (f'[voicemail]\ngreeting_wav = "{greeting}"\n{voicemail}\n'
            f'[keep_connected]\nmusic_wav = "{music}"\n{keep_connected}\n'
            f"[telecommuter]\n{telecommuter}\n{extra}")
    return in_process(tmp_path, text)


def metric(t: InProcess, name: str, **labels: str) -> float:
    """A sample of the node's metrics registry (0.0 when it was never set)."""
    value = t.node.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def make_user(t: InProcess, extension: str = "201", business: str = BUSINESS, *, mode: Mode = Mode.OFF,
              number: str = "", **fields: Any) -> User:
    """A user created through the domain (as the API does); ``mode``/``number`` applied through ``Modes``."""
    user, _token = t.domain.accounts.create(name=f"User {extension}", extension=extension, business_number=business,
                                            **fields)
    if mode is not Mode.OFF or number:
        user, _ = t.domain.modes.set(user, mode, number or None, False)
    assert isinstance(user, User)
    return user


def user(t: InProcess, user_id: str) -> User:
    found = t.domain.accounts.get(user_id)
    assert isinstance(found, User)
    return found


def placed(t: InProcess, uri_start: str = "") -> list[Command]:
    """make_call commands, optionally only those to URIs starting so."""
    return [c for c in t.engine.calls_placed() if str(c.args[0]).startswith(uri_start)]


def last_placed(t: InProcess) -> Command:
    calls = t.engine.calls_placed()
    assert calls, "no call placed"
    return calls[-1]


def only_call(t: InProcess) -> ActiveCall:
    calls = list(t.runner.calls.values())
    assert len(calls) == 1, calls
    found = calls[0]
    assert isinstance(found, ActiveCall)
    return found


def headers_of(cmd: Command) -> dict[str, str]:
    """The headers a make_call/respond/hangup command carried, by name."""
    hdrs = cmd.args[-1]
    return {n: v for n, v in hdrs}


def events(t: InProcess, user_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The user's recent bus events (as the SSE stream would send them), optionally of one kind."""
    return [{"kind": e.kind, **e.data} for e in t.node.bus.recent(user_id) if kind is None or e.kind == kind]


def refused(status: int, rule: str) -> pytest.RaisesExc[Refused]:
    """Expect the domain to refuse with this HTTP status, naming this rule."""
    return pytest.raises(Refused, check=lambda e: (e.status, e.rule) == (status, rule))
