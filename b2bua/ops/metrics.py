"""The Prometheus metrics catalogue: every metric the B2BUA exports is declared here, on one registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

_SETUP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.info = Info("b2bua", "version and pjsua2 build", registry=r)
        self.calls = Counter("b2bua_calls", "finished bridged calls by outcome", ["outcome"], registry=r)
        self.rejected = Counter(
            "b2bua_invites_rejected", "INVITEs refused before a call was created", ["code", "reason"],
            registry=r,
        )
        self.active_calls = Gauge("b2bua_active_calls", "bridged calls in progress", registry=r)
        self.active_legs = Gauge("b2bua_active_legs", "SIP dialogs held by the engine", registry=r)
        self.setup_forward = Histogram(
            "b2bua_call_setup_forward_seconds", "inbound INVITE received -> outbound INVITE sent",
            buckets=_SETUP_BUCKETS, registry=r,
        )
        self.answer_relay = Histogram(
            "b2bua_call_answer_relay_seconds", "B leg answered -> 200 OK sent on A",
            buckets=_SETUP_BUCKETS, registry=r,
        )
        self.dialling_refused = Counter(
            "b2bua_dialling_refused", "call requests refused by the dialling rules", ["kind", "rule"], registry=r,
        )
        self.user_events = Counter("b2bua_user_call_events", "telecommuter call state changes", ["kind", "state"],
                                   registry=r)
        self.limit = Gauge("b2bua_limit", "limits of the loaded pjsua2 build and admission", ["limit"],
                           registry=r)
        self.engine_up = Gauge("b2bua_engine_up", "1 while the SIP thread is turning", registry=r)
        self.engine_lag = Gauge("b2bua_engine_loop_lag_seconds", "time since the SIP thread's last turn",
                                registry=r)
        self.call_faults = Counter("b2bua_call_faults", "calls ended because handling them raised, by stage",
                                   ["stage"], registry=r)
        self.admission_drift = Gauge("b2bua_admission_drift", "admissions held with no live call or INVITE in "
                                     "flight to own them, at the last check (given back when seen twice)",
                                     registry=r)
        self.engine_faults = Counter("b2bua_engine_faults", "errors raised inside pjsua2 callbacks", ["where"],
                                     registry=r)
        self.store_errors = Counter("b2bua_store_errors", "database operations that failed (disk full, read-only, "
                                    "file gone), by operation (\"insert:cdr\", \"commit\", ...)", ["operation"],
                                    registry=r)
        self.pending_writes = Gauge("b2bua_pending_writes", "call records (cdr) and voicemail rows the database "
                                    "refused, kept in memory and retried", ["kind"], registry=r)
        self.event_streams = Gauge("b2bua_event_streams", "live event streams open", registry=r)
        self.event_streams_refused = Counter("b2bua_event_streams_refused", "event streams refused (429) by the "
                                             "limit reached: per user or in all", ["limit"], registry=r)
        self.api_auth_failures = Counter("b2bua_api_auth_failures", "API requests refused for authentication: "
                                         "missing-token, invalid-token, or blocked (source throttled, 429)",
                                         ["reason"], registry=r)
        self.api_auth_blocked_sources = Gauge("b2bua_api_auth_blocked_sources", "client addresses blocked now "
                                              "for failed API authentication", registry=r)
        self.log_lines_suppressed = Counter("b2bua_log_lines_suppressed", "repeated log lines left out by "
                                            "rate limiting, by what they were about", ["what"], registry=r)
        self._crash_recovery(r)
        self._trunks(r)

    def _trunks(self, r: CollectorRegistry) -> None:
        """Carrier trunks: OPTIONS monitoring and failover between a route's trunks."""
        self.trunk_up = Gauge("b2bua_trunk_up", "1 while the trunk answers its OPTIONS pings (monitored trunks "
                              "only)", ["trunk"], registry=r)
        self.trunk_state_changes = Counter("b2bua_trunk_state_changes", "monitored trunks marked up or down, by "
                                           "the state entered", ["trunk", "state"], registry=r)
        self.trunk_pings = Counter("b2bua_trunk_pings", "OPTIONS pings sent, by result: alive (any final "
                                   "response but 408/503) or failed", ["trunk", "result"], registry=r)
        self.trunk_failovers = Counter("b2bua_trunk_failovers", "trunk calls moved to a route's next trunk, by the "
                                       "trunk that failed and why (503, 408, 0: transport error, timeout)",
                                       ["trunk", "reason"], registry=r)

    def _crash_recovery(self, r: CollectorRegistry) -> None:
        """The live-dialog journal and what a start cleaned up after an unclean stop."""
        self.unclean_start = Gauge("b2bua_unclean_start", "1 if this run started after an unclean stop (crash, "
                                   "kill, forced exit)", registry=r)
        self.recovery_byes = Counter("b2bua_recovery_byes", "BYEs sent at start for dialogs the last run left up, "
                                     "by result: answered (2xx), gone (481), failed (other or none)", ["result"],
                                     registry=r)
        self.recovery_cdrs = Counter("b2bua_recovery_cdrs_closed", "call records written at start (outcome "
                                     "aborted) for calls the last run left up", registry=r)
        self.recovery_seconds = Gauge("b2bua_recovery_seconds", "how long ending the last run's dialogs took at "
                                      "start", registry=r)
        self.journal_errors = Counter("b2bua_dialog_journal_errors", "writes to the live-dialog journal that "
                                      "failed (those dialogs are not ended after a crash)", registry=r)

    def bind_untrusted(self, counts: Callable[[], dict[str, int]]) -> None:
        """The SIP edge's refusals, kept in C (patch 0009) and read on each scrape."""
        self.registry.register(_ReadCounter(
            "b2bua_untrusted_requests", "out-of-dialog requests from untrusted sources refused statelessly, before "
            "any call existed, by action: rejected (403) or dropped (sip.untrusted = \"drop\")", "action", counts))

    def bind_transfers_refused(self, counts: Callable[[], dict[str, int]]) -> None:
        """Transfers the SIP engine refused (this release performs none), counted on its thread."""
        self.registry.register(_ReadCounter(
            "b2bua_transfers_refused", "transfer attempts refused with the call left as it was, by kind: refer (an "
            "in-dialog REFER, 405) or replaces (an INVITE with Replaces naming a live dialog, 403)", "kind", counts))

    def bind_engine(self, legs: Callable[[], float], lag: Callable[[], float], up: Callable[[], float]) -> None:
        self.active_legs.set_function(legs)
        self.engine_lag.set_function(lag)
        self.engine_up.set_function(up)


class _ReadCounter(Collector):
    """A counter kept elsewhere (another thread, C code), read when scraped."""

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], dict[str, int]]) -> None:
        self._name, self._doc, self._label, self._read = name, doc, label, read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=[self._label])
        for value, count in sorted(self._read().items()):
            family.add_metric([value], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._doc, labels=[self._label])
