"""The telecommuter domain assembled from its rooms, with every collaborator passed in. The API and the
composition root reach the domain through ``Domain`` only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from b2bua.calls.routing import Router
from b2bua.control.admission import AdmissionGate
from b2bua.control.runner import CallRunner
from b2bua.eventbus import EventBus
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings
from b2bua.telecommuter.accounts import Accounts
from b2bua.telecommuter.call_records import CallRecordRepository, CallRecords
from b2bua.telecommuter.desks import Desks
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.dialplan import ClassOfService, Dialplan
from b2bua.telecommuter.directory import LiveDirectory
from b2bua.telecommuter.incoming_planner import IncomingPlanner
from b2bua.telecommuter.live_settings import LiveSettings
from b2bua.telecommuter.mailbox import Mailbox
from b2bua.telecommuter.modes import Modes
from b2bua.telecommuter.outgoing import OutgoingCalls
from b2bua.telecommuter.pending_writes import PendingWrites
from b2bua.telecommuter.policy import TelecommuterPolicy
from b2bua.telecommuter.presence import Presence
from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.profiles import ProfileBook
from b2bua.telecommuter.routing_settings import SettingsRules
from b2bua.telecommuter.sessions import Sessions
from b2bua.telecommuter.users import UserRepository
from b2bua.telecommuter.voicemail import VoicemailBoxes


@dataclass(frozen=True)
class Domain:
    accounts: Accounts
    desks: Desks
    modes: Modes
    outgoing: OutgoingCalls
    sessions: Sessions
    mailbox: Mailbox
    records: CallRecords
    policy: TelecommuterPolicy
    bus: EventBus
    profiles: ProfileBook
    live: LiveSettings
    presence: Presence


@dataclass(frozen=True)
class Foundations:
    """What exists before the call runner: the runner reports to ``records``, which needs the mailbox and
    presence (a user on a call shows as busy)."""

    rules: DiallingRules
    mailbox: Mailbox
    records: CallRecords
    presence: Presence


def classes_of_service(settings: Settings) -> dict[str, ClassOfService]:
    return {name: ClassOfService(name, frozenset(c.allow), tuple(c.blocked_prefixes), c.max_concurrent_calls,
                                 c.max_calls_per_minute) for name, c in settings.classes_of_service.items()}


def build_foundations(settings: Settings, users: UserRepository, cdrs: CallRecordRepository, bus: EventBus,
                      metrics: Metrics, var_dir: Path) -> Foundations:
    """A voicemail directory that cannot be used now degrades voicemail only (``VoicemailBoxes.readiness``)."""
    tc = settings.telecommuter
    rules = DiallingRules(Dialplan(tc.home_country, tc.internal_pattern), classes_of_service(settings), metrics)
    boxes = VoicemailBoxes(settings.voicemail, users, var_dir / "voicemail")
    pending = PendingWrites(metrics)  # records and messages the database refused for now
    mailbox = Mailbox(users, boxes, bus, pending)
    presence = Presence(users, bus)
    return Foundations(rules, mailbox, CallRecords(cdrs, users, mailbox, bus, pending, presence), presence)


def build_domain(settings: Settings, base: Foundations, users: UserRepository, runner: CallRunner,
                 gate: AdmissionGate, router: Router, bus: EventBus, var_dir: Path) -> Domain:
    tc = settings.telecommuter
    sip = settings.sip
    rules = base.rules
    directory = LiveDirectory(rules.dialplan, users, list(tc.owned_numbers),
                              frozenset(t.name for t in settings.trunks if t.extensions))
    presentation = Presentation(sip.uri_host, tc.callback_presentation)
    desks = Desks(users, rules, directory, bus)
    settings_rules = SettingsRules(rules, users, tc.ring_timeout_s)
    profiles = ProfileBook(users, settings_rules, bus)
    accounts = Accounts(users, rules, desks, base.mailbox, directory, runner, bus, profiles,
                        default_class_of_service=tc.default_class_of_service,
                        voicemail_by_default=settings.voicemail.enabled_by_default)
    sessions = Sessions(runner, gate, router, rules, presentation, users, settings.keep_connected, tc,
                        target_answer_timeout_s=sip.no_answer_timeout_s, media_dir=var_dir / "media")
    outgoing = OutgoingCalls(runner, gate, router, rules, presentation, tc,
                             target_answer_timeout_s=sip.no_answer_timeout_s)
    modes = Modes(users, rules, desks, sessions, outgoing, directory, gate, bus)
    live = LiveSettings(profiles, settings_rules, modes, base.presence)
    planner = IncomingPlanner(users, rules, sessions, base.mailbox, runner, router, presentation, tc, profiles,
                              base.presence)
    trunk_classes = {t.name: t.class_of_service for t in settings.trunks if t.class_of_service}
    policy = TelecommuterPolicy(directory, rules, trunk_classes, planner)
    return Domain(accounts, desks, modes, outgoing, sessions, base.mailbox, base.records, policy, bus, profiles, live,
                  base.presence)
