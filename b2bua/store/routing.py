"""Tables of the live routing settings, the profiles and presence (mixed into ``Store``).

The telecommuter mode and number and voicemail on/off stay the ``users`` columns they always were: the live row
holds every other routing setting, and reading the live settings joins the two, so there is one source of truth
for each value. Applying settings (a profile selected) writes both, and the desk a user leaves for telecommuting,
in one transaction: a failure leaves the previous settings whole.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

from b2bua.store.faults import conflicts
from b2bua.telecommuter.users import (
    LiveRouting,
    PresenceState,
    PresenceStatus,
    Profile,
    RoutingSettings,
    User,
)

SCHEMA = """
    CREATE TABLE routing_live (
        user_id  TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        selected TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE profiles (
        user_id    TEXT NOT NULL,
        id         TEXT NOT NULL,
        name       TEXT NOT NULL,
        name_key   TEXT NOT NULL,
        position   INTEGER NOT NULL,
        settings   TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (user_id, id),
        UNIQUE (user_id, name_key)
    );
    CREATE TABLE presence (
        user_id    TEXT PRIMARY KEY,
        status     TEXT NOT NULL,
        message    TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL
    );
"""

_PROFILE_COLS = "id, user_id, name, settings, position, created_at, updated_at"


class RoutingTables:
    """SQL for routing settings, profiles and presence; ``Store`` provides the connection and transactions."""

    _db: sqlite3.Connection

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def get_user(self, user_id: str) -> User | None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ live settings
    def live_routing(self, user_id: str) -> LiveRouting | None:
        """None: no such user, or their live row is not made yet (a user from before profiles existed)."""
        r = self._db.execute("SELECT u.mode, u.telecommuter_number, u.voicemail, r.settings, r.selected FROM users u"
                             " JOIN routing_live r ON r.user_id = u.id WHERE u.id = ?", (user_id,)).fetchone()
        if r is None:
            return None
        stored = RoutingSettings.from_dict(json.loads(r[3]))
        settings = stored.merged({"telecommuter": {"mode": r[0], "number": r[1]}, "voicemail": {"enabled": bool(r[2])}})
        return LiveRouting(settings, r[4])

    def seed_routing(self, user_id: str, live: LiveRouting, profiles: list[Profile]) -> None:
        """The built-in profiles and the first live row, each only where missing (one transaction)."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO routing_live (user_id, settings, selected) VALUES (?, ?, ?)",
                             (user_id, _live_json(live.settings), live.selected))
            for p in profiles:
                self._db.execute(f"INSERT OR IGNORE INTO profiles ({_PROFILE_COLS}, name_key) VALUES"
                                 " (?, ?, ?, ?, ?, ?, ?, ?)", (*_profile_row(p), p.name.casefold()))

    def apply_routing(self, user_id: str, live: LiveRouting, *, leave_desk: bool) -> User | None:
        """Every live setting at once: the user's columns, the live row and, entering telecommuter mode, the desk
        left (remembered as ``restore_desk``). One transaction; None if there is no such user."""
        s = live.settings
        with self._transaction():
            fields: dict[str, Any] = {"mode": s.telecommuter.mode.value, "number": s.telecommuter.number,
                                      "voicemail": int(s.voicemail.enabled), "id": user_id}
            sets = "mode = :mode, telecommuter_number = :number, voicemail = :voicemail"
            if leave_desk:
                r = self._db.execute("SELECT extension FROM desks WHERE occupant = ?", (user_id,)).fetchone()
                self._db.execute("UPDATE desks SET occupant = NULL WHERE occupant = ?", (user_id,))
                fields["restore_desk"] = r[0] if r else ""
                sets += ", restore_desk = :restore_desk"
            if self._db.execute(f"UPDATE users SET {sets} WHERE id = :id", fields).rowcount != 1:
                return None
            self._db.execute("INSERT OR REPLACE INTO routing_live (user_id, settings, selected) VALUES (?, ?, ?)",
                             (user_id, _live_json(s), live.selected))
        return self.get_user(user_id)

    # ------------------------------------------------------------------------------------ profiles
    def profiles(self, user_id: str) -> list[Profile]:
        rows = self._db.execute(f"SELECT {_PROFILE_COLS} FROM profiles WHERE user_id = ? ORDER BY position",
                                (user_id,)).fetchall()
        return [_profile(r) for r in rows]

    def add_profile(self, profile: Profile) -> None:
        """Raises ``Conflict`` for a name (case-insensitive) or id the user has already."""
        with conflicts():
            self._db.execute(f"INSERT INTO profiles ({_PROFILE_COLS}, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (*_profile_row(profile), profile.name.casefold()))

    def update_profile(self, profile: Profile) -> bool:
        """Name and settings; raises ``Conflict`` for a name the user has already."""
        with conflicts():
            return self._db.execute(
                "UPDATE profiles SET name = ?, name_key = ?, settings = ?, updated_at = ? WHERE user_id = ? AND id = ?",
                (profile.name, profile.name.casefold(), json.dumps(profile.settings.to_dict()), profile.updated_at,
                 profile.user_id, profile.id)).rowcount == 1

    def delete_profile(self, user_id: str, profile_id: str) -> bool:
        return self._db.execute("DELETE FROM profiles WHERE user_id = ? AND id = ?",
                                (user_id, profile_id)).rowcount == 1

    # ------------------------------------------------------------------------------------ presence
    def presence(self, user_id: str) -> PresenceState | None:
        r = self._db.execute("SELECT user_id, status, message, updated_at FROM presence WHERE user_id = ?",
                             (user_id,)).fetchone()
        return _presence(r) if r else None

    def presences(self) -> list[PresenceState]:
        rows = self._db.execute("SELECT user_id, status, message, updated_at FROM presence").fetchall()
        return [_presence(r) for r in rows]

    def set_presence(self, state: PresenceState) -> None:
        self._db.execute("INSERT OR REPLACE INTO presence (user_id, status, message, updated_at) VALUES (?, ?, ?, ?)",
                         (state.user_id, state.status.value, state.message, state.updated_at))

    def _delete_routing(self, user_id: str) -> None:
        """Part of deleting a user (inside their transaction)."""
        for table in ("routing_live", "profiles", "presence"):
            self._db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))



def _live_json(settings: RoutingSettings) -> str:
    """The live row without what the ``users`` columns hold (they are the source of truth)."""
    data = settings.to_dict()
    del data["telecommuter"]
    del data["voicemail"]["enabled"]
    return json.dumps(data)


def _profile_row(p: Profile) -> tuple[Any, ...]:
    return (p.id, p.user_id, p.name, json.dumps(p.settings.to_dict()), p.position, p.created_at, p.updated_at)


def _profile(r: tuple[Any, ...]) -> Profile:
    return Profile(r[0], r[1], r[2], RoutingSettings.from_dict(json.loads(r[3])), int(r[4]), float(r[5]),
                   float(r[6]))


def _presence(r: tuple[Any, ...]) -> PresenceState:
    return PresenceState(r[0], PresenceStatus(r[1]), r[2], float(r[3]))

