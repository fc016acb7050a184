"""Hot desking: desk extensions, who is logged in where, and the desk restored when telecommuter mode ends.

One desk per user and one user per desk; the store's transactions keep that true under concurrent logins.
Every change reaches the SIP thread's directory (a desk rings its occupant) and the user's event stream.
"""

from __future__ import annotations

from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.directory import LiveDirectory
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import Conflict, Desk, Mode, User, UserRepository


class Desks:
    def __init__(self, repository: UserRepository, rules: DiallingRules, directory: LiveDirectory,
                 bus: EventBus) -> None:
        self.repository = repository
        self.rules = rules
        self.directory = directory
        self.bus = bus
        self._log = get_logger("telecommuter")

    def create(self, extension: str, contact: str, name: str = "") -> Desk:
        ext = self.rules.extension(extension, "desk extension")
        if any(u.extension == ext for u in self.repository.list_users()):
            raise Refused(409, "conflict", f"extension {ext} belongs to a user")
        desk = Desk(ext, name, contact)
        try:
            self.repository.add_desk(desk)
        except Conflict:
            raise Refused(409, "conflict", f"desk {ext} exists") from None
        self.directory.rebuild()
        return desk

    def get(self, extension: str) -> Desk:
        desk = self.repository.get_desk(extension)
        if desk is None:
            raise Refused(404, "no-desk", f"no desk {extension!r}")
        return desk

    def list(self) -> list[Desk]:
        return self.repository.list_desks()

    def of(self, user_id: str) -> Desk | None:
        return self.repository.desk_of(user_id)

    def update(self, extension: str, *, name: str | None, contact: str | None) -> Desk:
        self.get(extension)
        desk = self.repository.update_desk(extension, name=name, contact=contact)
        if desk is None:
            raise Refused(404, "no-desk", f"no desk {extension!r}")
        return desk

    def delete(self, extension: str) -> None:
        desk = self.get(extension)
        self.repository.delete_desk(extension)
        if desk.occupant:
            self._publish(desk.occupant, None, restored=False, logged_out=True)
        self.directory.rebuild()

    def ensure_not_a_desk(self, extension: str) -> None:
        if self.repository.get_desk(extension) is not None:
            raise Refused(409, "conflict", f"extension {extension} is a desk extension")

    def login(self, user: User, extension: str) -> Desk:
        desk = self.get(extension)
        if user.mode is not Mode.OFF:
            raise Refused(409, "telecommuter-mode-on", "leave telecommuter mode before logging in at a desk")
        if not self.repository.set_occupant(desk.extension, user.id, only_if_free=True):
            raise Refused(409, "desk-occupied", f"desk {desk.extension} is in use by another user")
        self.repository.update_user(user.id, restore_desk="")
        self.directory.rebuild()
        self._publish(user.id, desk.extension, restored=False, logged_out=False)
        self._log.info("desk login", user_id=user.id, desk=desk.extension)
        return self.get(extension)

    def logout(self, user: User) -> None:
        desk = self.repository.clear_occupant(user.id)
        self.repository.update_user(user.id, restore_desk="")
        self.directory.rebuild()
        self._publish(user.id, None, restored=False, logged_out=True)
        self._log.info("desk logout", user_id=user.id, desk=desk)

    def leave_for_telecommuting(self, user: User) -> str:
        """Telecommuter mode takes the user off their desk phone; returns the desk to restore later."""
        return self.repository.clear_occupant(user.id)

    def restore(self, user: User) -> User:
        """Back from telecommuter mode: log in at the remembered desk again if nobody else took it."""
        desk = user.restore_desk
        restored = bool(desk) and self.repository.set_occupant(desk, user.id, only_if_free=True)
        updated = self.repository.update_user(user.id, restore_desk="") or user
        if desk:
            self._log.info("desk restore", user_id=user.id, desk=desk, restored=restored)
            self._publish(user.id, desk if restored else None, restored=restored, logged_out=not restored)
        return updated

    def _publish(self, user_id: str, desk: str | None, *, restored: bool, logged_out: bool) -> None:
        self.bus.publish(user_id, "desk", {"desk": desk, "restored": restored, "logged_out": logged_out})
