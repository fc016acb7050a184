"""One running call as the runner keeps it: its machine, which engine leg plays which role, and its timers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from b2bua.calls.machine import CallKind, Machine
from b2bua.ops.logging import Logger
from b2bua.sip.types import InboundInvite


@dataclass
class ActiveCall:
    id: str
    kind: CallKind
    machine: Machine
    legs: dict[str, str]  # role -> engine leg id, filled as legs are placed or attached
    created: float  # wall clock, for the API
    log: Logger
    user_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    invite: InboundInvite | None = None  # the INVITE that created it (calls from a trunk)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    last_notify: str = ""
    admitted_roles: set[str] = field(default_factory=set)  # party legs holding their own admission

    def summary(self) -> dict[str, Any]:
        """What the API shows of a live call."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "user_id": self.user_id or None,
            "state": self.machine.state_name,
            "status": self.last_notify or None,
            **self.info,
            "legs": dict(self.legs),
            "started": self.created,
            "answered": self.machine.answered_at is not None,
        }
