"""Which called numbers are ours: users' business numbers (DIDs) and extensions, desk extensions, owned ranges.

The SIP thread asks this for every INVITE, so it is an immutable snapshot (rebuilt whenever users or desks
change, then swapped in with one assignment by ``LiveDirectory``) and a lookup is a few dict probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from b2bua.control.interfaces import Local
from b2bua.telecommuter.dialplan import Dialplan, Number
from b2bua.telecommuter.users import Desk, User, UserRepository


@dataclass(frozen=True)
class Directory:
    dialplan: Dialplan
    by_number: dict[str, str] = field(default_factory=dict)  # every accepted reading of a DID -> user id
    by_extension: dict[str, str] = field(default_factory=dict)  # user extension -> user id
    desks: dict[str, str] = field(default_factory=dict)  # desk extension -> occupant ("" if free)
    owned: tuple[str, ...] = ()  # every reading of our DID-range prefixes
    extension_trunks: frozenset[str] = frozenset()

    @classmethod
    def build(cls, dialplan: Dialplan, users: list[User], desks: list[Desk], owned: list[str],
              extension_trunks: frozenset[str]) -> Directory:
        """Readings are computed here, once, so that no INVITE pays for phone-number parsing."""
        by_number = {r: u.id for u in users for r in _readings(u.business_number, dialplan)}
        owned_readings = tuple(r for prefix in owned for r in _readings(prefix, dialplan))
        return cls(dialplan, by_number, {u.extension: u.id for u in users},
                   {d.extension: d.occupant for d in desks}, owned_readings, extension_trunks)

    def lookup(self, called: str, trunk: str) -> Local | None:
        """A user, a refusal (a number of ours that reaches nobody), or None: not ours, route it onwards."""
        raw = "".join(ch for ch in called if ch.isdigit() or ch == "+")
        if self.dialplan.looks_internal(raw):
            n = self.dialplan.classify(called)  # short: cheap; tells an emergency number from an extension
            if isinstance(n, Number) and n.category == "internal":
                return self._internal(n.normalised, trunk)
        uid = self.by_number.get(raw)
        if uid is not None:
            return Local(uid)
        if raw.startswith(self.owned):
            return Local("", 404, "unknown-number")
        return None

    def _internal(self, ext: str, trunk: str) -> Local | None:
        if trunk not in self.extension_trunks:
            return None
        if ext in self.by_extension:
            return Local(self.by_extension[ext])
        if ext in self.desks:
            occupant = self.desks[ext]
            return Local(occupant) if occupant else Local("", 480, "desk-free")
        return Local("", 404, "unknown-extension")


def _readings(e164: str, dialplan: Dialplan) -> list[str]:
    """How carriers send a number (or a prefix) of ours: E.164, E.164 without the plus, 00-international, and
    national (home country only, with its trunk prefix)."""
    digits = e164.removeprefix("+")
    out = [e164, digits, "00" + digits]
    home = str(dialplan.home_code)
    if digits.startswith(home):
        out.append(dialplan.national_prefix + digits[len(home):])
    return out


class LiveDirectory:
    """The current ``Directory``: the domain calls ``rebuild`` after every change to users or desks; the SIP
    thread calls ``lookup`` and always sees one whole snapshot (the swap is a single reference assignment)."""

    def __init__(self, dialplan: Dialplan, repository: UserRepository, owned: list[str],
                 extension_trunks: frozenset[str]) -> None:
        self.dialplan = dialplan
        self.repository = repository
        self.owned = owned
        self.extension_trunks = extension_trunks
        self.current = Directory(dialplan)
        self.rebuild()

    def rebuild(self) -> None:
        self.current = Directory.build(self.dialplan, self.repository.list_users(), self.repository.list_desks(),
                                       self.owned, self.extension_trunks)

    def lookup(self, called: str, trunk: str) -> Local | None:
        """Runs on the SIP thread."""
        return self.current.lookup(called, trunk)
