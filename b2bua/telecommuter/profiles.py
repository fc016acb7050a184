"""Profiles: named sets of a user's routing settings. Office, Mobile and Home exist for every user (made with the
user, or on first use for users from before profiles) and are never deleted; up to ``MAX_CUSTOM`` more may be
created, renamed and deleted.

Which profile is active is computed, never stored: the one whose settings match the live settings (the one last
selected if several do), else "Detected" (the live settings were changed since, e.g. forwarding from a phone).
Every change that moves the active profile sends one ``profile`` event on the user's stream.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.routing_settings import SettingsRules, effective, sets_desk
from b2bua.telecommuter.users import Conflict, LiveRouting, Mode, Profile, RoutingSettings, User, UserRepository

MAX_CUSTOM = 4
DETECTED = "detected"  # the id (and, capitalised, the name) shown when no saved profile matches


@dataclass(frozen=True, slots=True)
class Active:
    """The active profile (None: Detected) and the live settings."""

    profile: Profile | None
    live: RoutingSettings

    @property
    def id(self) -> str:
        return self.profile.id if self.profile else DETECTED

    @property
    def name(self) -> str:
        return self.profile.name if self.profile else DETECTED.capitalize()

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "detected": self.profile is None, "settings": self.live.public()}


class ProfileBook:
    def __init__(self, repository: UserRepository, settings: SettingsRules, bus: EventBus) -> None:
        self.repository = repository
        self.settings = settings
        self.bus = bus
        self._log = get_logger("telecommuter")

    # ------------------------------------------------------------------------------------------ the live row
    def seed(self, user: User, home_number: str = "") -> LiveRouting:
        """The built-in profiles and the live row, where missing. The live settings start as the built-in
        profile the user's state matches: Home if telecommuter mode is on, else Office."""
        now = time.time()
        defaults = self.settings.builtins(user, home_number)
        profiles = [Profile(pid, user.id, pid.capitalize(), s, i, now, now)
                    for i, (pid, s) in enumerate(defaults.items())]
        base = "home" if user.mode is not Mode.OFF else "office"
        live = defaults[base].with_telecommuter(user.mode, user.telecommuter_number)
        self.repository.seed_routing(user.id, LiveRouting(live, base), profiles)
        stored = self.repository.live_routing(user.id)
        if stored is None:  # the user is gone
            raise Refused(404, "no-user", f"no user {user.id!r}")
        return stored

    def live(self, user: User) -> LiveRouting:
        """The live settings (made first for a user from before profiles)."""
        live = self.repository.live_routing(user.id)
        if live is not None:
            return live
        if self.repository.get_user(user.id) is None:
            raise Refused(404, "no-user", f"no user {user.id!r}")
        return self.seed(user)

    # ------------------------------------------------------------------------------------------ reading
    def all(self, user: User) -> list[Profile]:
        self.live(user)
        return self.repository.profiles(user.id)

    def get(self, user: User, profile_id: str) -> Profile:
        found = next((p for p in self.all(user) if p.id == profile_id), None)
        if found is None:
            raise Refused(404, "no-profile", f"no profile {profile_id!r}")
        return found

    def active(self, user: User) -> Active:
        live = self.live(user)
        now = effective(live.settings, user)
        matching = [p for p in self.repository.profiles(user.id) if effective(p.settings, user) == now]
        chosen = next((p for p in matching if p.id == live.selected), matching[0] if matching else None)
        return Active(chosen, live.settings)

    # ------------------------------------------------------------------------------------------ changing
    def create(self, user: User, name: str, changes: dict[str, Any]) -> Profile:
        """A custom profile: the live settings with ``changes``; 409 beyond ``MAX_CUSTOM`` or for a name taken."""
        with self.watching(user.id, "profile-created"):
            existing = self.all(user)
            if sum(1 for p in existing if not p.builtin) >= MAX_CUSTOM:
                raise Refused(409, "custom-profile-limit",
                              f"at most {MAX_CUSTOM} custom profiles; delete one before creating another")
            settings = self.settings.check(user, self.live(user).settings.merged(changes), desk=sets_desk(changes))
            now = time.time()
            profile = Profile(uuid.uuid4().hex[:8], user.id, self._name(name, existing, None), settings,
                              max(p.position for p in existing) + 1, now, now)
            try:
                self.repository.add_profile(profile)
            except Conflict:
                raise Refused(409, "profile-name-taken", f"a profile is named {name!r} already") from None
        self._log.info("profile created", user_id=user.id, profile_id=profile.id)
        return profile

    def update(self, user: User, profile_id: str, name: str | None, changes: dict[str, Any]) -> Profile:
        """Rename (custom profiles only) and change settings (every profile)."""
        with self.watching(user.id, "profile-changed"):
            profile = self.get(user, profile_id)
            if name is not None and name != profile.name and profile.builtin:
                raise Refused(409, "builtin-profile", f"{profile.name} is a built-in profile: it keeps its name")
            settings = (self.settings.check(user, profile.settings.merged(changes), desk=sets_desk(changes))
                        if changes else profile.settings)
            new_name = profile.name if name is None else self._name(name, self.all(user), profile.id)
            updated = replace(profile, name=new_name, settings=settings, updated_at=time.time())
            try:
                if not self.repository.update_profile(updated):
                    raise Refused(404, "no-profile", f"no profile {profile_id!r}")
            except Conflict:
                raise Refused(409, "profile-name-taken", f"a profile is named {name!r} already") from None
        return updated

    def delete(self, user: User, profile_id: str) -> None:
        with self.watching(user.id, "profile-deleted"):
            profile = self.get(user, profile_id)
            if profile.builtin:
                raise Refused(409, "builtin-profile",
                              f"{profile.name} is a built-in profile: it can be changed, never deleted")
            self.repository.delete_profile(user.id, profile.id)
        self._log.info("profile deleted", user_id=user.id, profile_id=profile.id)

    def _name(self, name: str, existing: list[Profile], own_id: str | None) -> str:
        name = " ".join(name.split())
        if not name:
            raise Refused(422, "invalid-profile-name", "a profile needs a name")
        taken = {p.name.casefold() for p in existing if p.id != own_id}
        if name.casefold() in taken | {DETECTED}:
            raise Refused(409, "profile-name-taken", f"a profile is named {name!r} already (or the name is reserved)")
        return name

    # ------------------------------------------------------------------------------------------ events
    @contextlib.contextmanager
    def watching(self, user_id: str, cause: str) -> Iterator[None]:
        """Around a change that may move the active profile: one ``profile`` event if it did."""
        before = self._active_of(user_id)
        yield
        after = self._active_of(user_id)
        if before is not None and after is not None and before.id != after.id:
            self.announce(user_id, after, cause)

    def announce(self, user_id: str, active: Active, cause: str) -> None:
        self.bus.publish(user_id, "profile", {**active.view(), "cause": cause})
        self._log.info("active profile", user_id=user_id, profile_id=active.id, cause=cause)

    def _active_of(self, user_id: str) -> Active | None:
        user = self.repository.get_user(user_id)
        return self.active(user) if user is not None else None
