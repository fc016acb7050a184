"""The caller identity we present on each leg we place, and the headers that explain it to the far carrier."""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.sip import message
from b2bua.sip.types import Headers
from b2bua.telecommuter.users import User

# RFC 4458 causes for History-Info, by RFC 5806 Diversion reason (anything else: 302, unconditional)
_HISTORY_CAUSE = {"user-busy": 486, "no-answer": 408, "unavailable": 404, "do-not-disturb": 480}


@dataclass(frozen=True, slots=True)
class Presentation:
    host: str
    callback_number: str  # "" = the user's business number

    def number_for(self, user: User) -> str:
        """The number the user's own phone sees when we call it (callbacks, lines, test calls)."""
        return self.callback_number or user.business_number

    def toward_user(self, user: User, target: str) -> str:
        return f'"{target}" <sip:{self.number_for(user)}@{self.host}>'

    def line_from(self, user: User) -> str:
        return f'"{user.name} (line)" <sip:{self.number_for(user)}@{self.host}>'

    def test_call_from(self, user: User) -> str:
        return f'"Test call" <sip:{self.number_for(user)}@{self.host}>'

    def redirected(self, user: User, caller: str, caller_name: str, inbound: Headers, reason: str,
                   styles: list[str], target: str = "") -> tuple[str, Headers]:
        """From/PAI keep the original caller; Diversion/History-Info name the business number that was called
        (RFC 5806 / RFC 7044), so the carrier of ``target`` (default: the telecommuter number; a twin or forward
        number) accepts a caller ID that is not ours."""
        from_uri = self.caller(caller, caller_name)
        headers: list[tuple[str, str]] = [
            ("P-Asserted-Identity", message.header(inbound, "P-Asserted-Identity") or from_uri)]
        privacy = message.header(inbound, "Privacy")
        if privacy:
            headers.append(("Privacy", privacy))
        business = f"sip:{user.business_number}@{self.host}"
        if "diversion" in styles:
            headers.append(("Diversion", f"<{business}>;reason={reason};counter=1;privacy=off"))
        if "history-info" in styles:
            uri = f"sip:{target or user.telecommuter_number}@{self.host}"
            cause = _HISTORY_CAUSE.get(reason, 302)
            headers.append(("History-Info", f"<{business}>;index=1, "
                                            f"<{uri}?Reason=SIP%3Bcause%3D{cause}>;index=1.1;mp=1"))
        return from_uri, tuple(headers)

    def caller(self, caller: str, caller_name: str) -> str:
        """The original caller as a From URI of ours (display name kept, quotes removed)."""
        name = caller_name.replace('"', "")
        ident = f"<sip:{caller or 'anonymous'}@{self.host}>"
        return f'"{name}" {ident}' if name else ident

    def toward_target(self, user: User) -> tuple[str, Headers]:
        pai = ("P-Asserted-Identity", f'"{user.name}" <sip:{user.business_number}@{self.host}>')
        if user.privacy:
            return '"Anonymous" <sip:anonymous@anonymous.invalid>', (pai, ("Privacy", "id"))
        return f'"{user.name}" <sip:{user.business_number}@{self.host}>', (pai,)
