"""Which called numbers are ours: users' business numbers (DIDs) and extensions, desk extensions, owned ranges.

The SIP thread asks this for every INVITE, so it is an immutable snapshot (rebuilt by the service whenever users
or desks change, then swapped in with one assignment) and a lookup is a few dict probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from b2bua.callcontrol import Local
from b2bua.telecommuter.dialplan import Dialplan, Number
from b2bua.telecommuter.users import Desk, User


@dataclass(frozen=True)
class Directory:
    dialplan: Dialplan
    by_business_number: dict[str, str] = field(default_factory=dict)  # E.164 -> user id
    by_extension: dict[str, str] = field(default_factory=dict)  # user extension -> user id
    desks: dict[str, str] = field(default_factory=dict)  # desk extension -> occupant ("" if free)
    owned: tuple[str, ...] = ()  # E.164 prefixes of our DID ranges
    extension_trunks: frozenset[str] = frozenset()

    @classmethod
    def build(cls, dialplan: Dialplan, users: list[User], desks: list[Desk], owned: list[str],
              extension_trunks: frozenset[str]) -> Directory:
        return cls(dialplan, {u.business_number: u.id for u in users}, {u.extension: u.id for u in users},
                   {d.extension: d.occupant for d in desks}, tuple(owned), extension_trunks)

    def lookup(self, called: str, trunk: str) -> Local | None:
        """A user, a refusal (a number of ours that reaches nobody), or None: not ours, route it onwards."""
        n = self.dialplan.classify(called)
        if isinstance(n, Number) and n.category == "internal":
            if trunk not in self.extension_trunks:
                return None
            if n.normalised in self.by_extension:
                return Local(self.by_extension[n.normalised])
            if n.normalised in self.desks:
                occupant = self.desks[n.normalised]
                return Local(occupant) if occupant else Local("", 480, "desk-free")
            return Local("", 404, "unknown-extension")
        candidates = _candidates(called, n)
        for candidate in candidates:
            uid = self.by_business_number.get(candidate)
            if uid is not None:
                return Local(uid)
        if any(c.startswith(p) for c in candidates if c.startswith("+") for p in self.owned):
            return Local("", 404, "unknown-number")
        return None


def _candidates(called: str, n: object) -> list[str]:
    """Carriers send a DID as E.164, national, or E.164 without the plus: try each reading."""
    raw = "".join(ch for ch in called if ch.isdigit() or ch == "+")
    out = [raw]
    if isinstance(n, Number):
        out.append(n.normalised)
    if raw.isdigit() and len(raw) >= 8:
        out.append("+" + raw)
    return out
