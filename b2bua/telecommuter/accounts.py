"""Users and their API tokens: provisioning, settings changes, deletion, and what the portal shows of a user.

A token is shown once, at creation or rotation; only its hash is stored. Numbers are normalised and checked
here, so that everything downstream (the SIP thread's directory, the planners) sees E.164 or an extension.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from b2bua.control.runner import CallRunner
from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.desks import Desks
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.directory import LiveDirectory
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.mailbox import Mailbox
from b2bua.telecommuter.profiles import ProfileBook
from b2bua.telecommuter.users import Conflict, Mode, User, UserRepository, new_token, token_hash


class Accounts:
    def __init__(self, repository: UserRepository, rules: DiallingRules, desks: Desks, mailbox: Mailbox,
                 directory: LiveDirectory, runner: CallRunner, bus: EventBus, profiles: ProfileBook, *,
                 default_class_of_service: str, voicemail_by_default: bool) -> None:
        self.repository = repository
        self.rules = rules
        self.desks = desks
        self.mailbox = mailbox
        self.directory = directory
        self.runner = runner
        self.bus = bus
        self.profiles = profiles
        self.default_class_of_service = default_class_of_service
        self.voicemail_by_default = voicemail_by_default
        self._log = get_logger("telecommuter")

    # ------------------------------------------------------------------------------------------ reading
    def get(self, user_id: str) -> User:
        user = self.repository.get_user(user_id)
        if user is None:
            raise Refused(404, "no-user", f"no user {user_id!r}")
        return user

    def list(self) -> list[User]:
        return self.repository.list_users()

    def by_token(self, token: str) -> User | None:
        return self.repository.user_by_token_hash(token_hash(token))

    def view(self, user: User) -> dict[str, Any]:
        """What the portal shows for a user: settings, where calls ring now, voicemail counts."""
        desk = self.desks.of(user.id)
        total, unread = self.mailbox.counts(user.id)
        if user.mode is not Mode.OFF:
            rings = "telecommuter"
        else:
            rings = "desk" if desk else "voicemail" if user.voicemail else "busy"
        return {**user.public(), "desk": desk.extension if desk else None, "rings": rings,
                "voicemail_messages": {"total": total, "unread": unread}}

    # ------------------------------------------------------------------------------------------ changing
    def create(self, *, name: str, extension: str, business_number: str, class_of_service: str | None = None,
               confirm_digit: str = "", privacy: bool = False, telecommuter_number: str = "",
               voicemail: bool | None = None, call_waiting: bool = False, home_number: str = "") -> tuple[User, str]:
        """A new user (telecommuter mode off) and their token, with the built-in profiles (``home_number``: where
        the Home profile forwards to)."""
        cos = self.rules.require_class(class_of_service or self.default_class_of_service)
        business = self.rules.public_number(business_number, "business_number")
        ext = self.rules.extension(extension)
        self.desks.ensure_not_a_desk(ext)
        user = User(id=uuid.uuid4().hex[:12], name=name, extension=ext, business_number=business,
                    telecommuter_number="", mode=Mode.OFF, class_of_service=cos, confirm_digit=confirm_digit,
                    privacy=privacy, created_at=time.time(),
                    voicemail=self.voicemail_by_default if voicemail is None else voicemail,
                    call_waiting=call_waiting)
        if telecommuter_number:
            user = replace(user, telecommuter_number=self.rules.check_target(user, telecommuter_number).normalised)
        home = self.profiles.settings.number(user, "home_number", home_number)
        token, hashed = new_token()
        try:
            self.repository.add_user(user, hashed)
        except Conflict as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        self.directory.rebuild()
        self.profiles.seed(user, home)
        self._log.info("user created", user_id=user.id, extension=user.extension, cos=cos)
        return user, token

    def update(self, user: User, **fields: Any) -> User:
        if "class_of_service" in fields:
            self.rules.require_class(fields["class_of_service"])
        if "business_number" in fields:
            fields["business_number"] = self.rules.public_number(fields["business_number"], "business_number")
        if "extension" in fields:
            fields["extension"] = self.rules.extension(fields["extension"])
            self.desks.ensure_not_a_desk(fields["extension"])
        try:
            updated = self.repository.update_user(user.id, **fields)
        except Conflict as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        if updated is None:
            raise Refused(404, "no-user", f"no user {user.id!r}")
        self.directory.rebuild()
        return updated

    def rotate_token(self, user: User) -> str:
        token, hashed = new_token()
        self.repository.set_token_hash(user.id, hashed)
        return token

    def delete(self, user: User) -> None:
        """The user's calls end first, then their rows, desk login and messages go."""
        for call in self.runner.calls_of(user.id):
            self.runner.terminate(call.id, "user deleted")
        self.repository.delete_user(user.id)
        self.mailbox.boxes.delete_box(user.id)
        self.directory.rebuild()
        self.bus.forget(user.id)
