"""The domain's answers to call control (``CallPolicy``): which numbers are ours, which trunk calls the dialling
rules refuse, and how a call to a user is planned."""

from __future__ import annotations

from b2bua.control.interfaces import Attach, Local, PlannedCall
from b2bua.sip.types import Admit, InboundInvite
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.directory import LiveDirectory
from b2bua.telecommuter.incoming_planner import IncomingPlanner


class TelecommuterPolicy:
    def __init__(self, directory: LiveDirectory, rules: DiallingRules, trunk_classes: dict[str, str],
                 planner: IncomingPlanner) -> None:
        self.directory = directory
        self.rules = rules
        self.trunk_classes = trunk_classes  # trunk name -> the class of service its calls are checked against
        self.planner = planner

    def lookup(self, called: str, trunk: str) -> Local | None:
        """SIP thread: a few dict probes in the current directory snapshot."""
        return self.directory.lookup(called, trunk)

    def transit_refusal(self, trunk: str, called: str) -> tuple[str, str] | None:
        """SIP thread: only trunks with a class of service pay for parsing the number (pure, no I/O)."""
        cos = self.trunk_classes.get(trunk)
        return None if cos is None else self.rules.transit_refusal(cos, called)

    def plan_user_call(self, invite: InboundInvite, admit: Admit) -> PlannedCall | Attach:
        return self.planner.plan(invite, admit)
