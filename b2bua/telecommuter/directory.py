"""Which called numbers are ours: users' business numbers (DIDs) and extensions, desk extensions, owned ranges.

The SIP thread asks this for every INVITE, so it is an immutable snapshot (rebuilt whenever users or desks
change, then swapped in with one assignment by ``LiveDirectory``) and a lookup is a few dict probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from b2bua.control.interfaces import Local
from b2bua.telecommuter.dialplan import Dialplan, Number
from b2bua.telecommuter.readings import NumberingPlan
from b2bua.telecommuter.users import Desk, User, UserRepository

AMBIGUOUS = ""  # a reading two users' numbers share: refused (485), never guessed


@dataclass(frozen=True)
class Directory:
    dialplan: Dialplan
    by_number: dict[str, str] = field(default_factory=dict)  # every accepted reading of a DID -> user id
    by_extension: dict[str, str] = field(default_factory=dict)  # user extension -> user id
    desks: dict[str, str] = field(default_factory=dict)  # desk extension -> occupant ("" if free)
    owned: tuple[str, ...] = ()  # every marked reading of our DID-range prefixes
    extension_trunks: frozenset[str] = frozenset()
    owned_national: tuple[str, ...] = ()  # their bare national significant numbers: only at a possible length
    national_lengths: frozenset[int] = frozenset()

    @classmethod
    def build(cls, dialplan: Dialplan, users: list[User], desks: list[Desk], owned: list[str],
              extension_trunks: frozenset[str]) -> Directory:
        """Readings are computed here, once, so that no INVITE pays for phone-number parsing."""
        plan = NumberingPlan.for_region(dialplan.home_country)
        by_number: dict[str, str] = {}
        for u in users:
            marked, bare = plan.readings(u.business_number)
            for r in (*marked, *bare):
                if by_number.setdefault(r, u.id) != u.id:
                    by_number[r] = AMBIGUOUS
        prefixes = [plan.readings(prefix) for prefix in owned]
        return cls(dialplan, by_number, {u.extension: u.id for u in users},
                   {d.extension: d.occupant for d in desks}, tuple(r for m, _ in prefixes for r in m),
                   extension_trunks, tuple(r for _, b in prefixes for r in b), plan.national_lengths)

    def lookup(self, called: str, trunk: str) -> Local | None:
        """A user, a refusal (a number of ours that reaches nobody), or None: not ours, route it onwards.
        Parameters (``;npdi``, ``;rn=``: RFC 4694's routing number is the ported-to switch, not the number
        dialled) and visual separators are dropped; then a few dict probes."""
        number = called.partition(";")[0]
        raw = "".join(ch for ch in number if ch.isdigit() or ch == "+")
        if trunk in self.extension_trunks and self.dialplan.looks_internal(raw):
            n = self.dialplan.classify(number)  # short: cheap; tells an emergency number from an extension
            if isinstance(n, Number) and n.category == "internal":
                return self._internal(n.normalised)
        uid = self.by_number.get(raw)
        if uid is not None:
            return Local(uid) if uid != AMBIGUOUS else Local("", 485, "ambiguous-number")
        if raw.startswith(self.owned) or (len(raw) in self.national_lengths and raw.startswith(self.owned_national)):
            return Local("", 404, "unknown-number")
        return None

    def _internal(self, ext: str) -> Local:
        if ext in self.by_extension:
            return Local(self.by_extension[ext])
        if ext in self.desks:
            occupant = self.desks[ext]
            return Local(occupant) if occupant else Local("", 480, "desk-free")
        return Local("", 404, "unknown-extension")


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
