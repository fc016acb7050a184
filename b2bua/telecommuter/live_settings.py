"""A user's live routing settings: what routing uses now. Changed whole by selecting a profile, or in part (the
API's settings PATCH, which phones' feature codes will use too); either way through ``Modes.apply``, so the
telecommuter mode's consequences (desk, persistent line) follow and everything is written in one transaction."""

from __future__ import annotations

from typing import Any

from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.modes import Modes
from b2bua.telecommuter.presence import Presence
from b2bua.telecommuter.profiles import DETECTED, Active, ProfileBook
from b2bua.telecommuter.routing_settings import SettingsRules, sets_desk
from b2bua.telecommuter.users import LiveRouting, User


class LiveSettings:
    def __init__(self, profiles: ProfileBook, rules: SettingsRules, modes: Modes, presence: Presence) -> None:
        self.profiles = profiles
        self.rules = rules
        self.modes = modes
        self.presence = presence

    def view(self, user: User) -> dict[str, Any]:
        """The routing-facing view: the live settings, the active profile, and do-not-disturb (presence)."""
        active = self.profiles.active(user)
        return {"settings": active.live.public(), "active_profile": _summary(active),
                "dnd": self.presence.dnd(user.id)}

    def change(self, user: User, changes: dict[str, Any]) -> dict[str, Any]:
        """Some live settings (nested like ``RoutingSettings.to_dict``, only what changes), checked as when a
        profile is saved. The active profile may become Detected (or a saved one again): one event says so."""
        with self.profiles.watching(user.id, "settings-changed"):
            live = self.profiles.live(user)
            settings = self.rules.check(user, live.settings.merged(changes), desk=sets_desk(changes))
            updated = self.modes.apply(user, LiveRouting(settings, live.selected))
        return self.view(updated)

    def select(self, user: User, profile_id: str) -> Active:
        """Apply every setting of the profile at once (its numbers checked again: the user's class of service may
        have changed) and tell the user's stream, once, which profile is active now."""
        if profile_id == DETECTED:
            raise Refused(409, "detected-not-selectable",
                          "Detected shows live settings that match no profile; select a saved profile")
        profile = self.profiles.get(user, profile_id)
        settings = self.rules.check(user, profile.settings, desk=False)
        updated = self.modes.apply(user, LiveRouting(settings, profile.id))
        active = self.profiles.active(updated)
        self.profiles.announce(user.id, active, "selected")
        return active


def _summary(active: Active) -> dict[str, Any]:
    return {"id": active.id, "name": active.name, "detected": active.profile is None}
