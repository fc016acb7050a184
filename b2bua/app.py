"""Composition root: settings -> store -> call runner and domain -> SIP engine -> HTTP, each part entered into
one ``AsyncExitStack`` so that there is one teardown path, in reverse order: new calls refused and running ones
drained, HTTP stopped, the SIP thread stopped and joined, the store closed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from b2bua import __version__
from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from b2bua.api.limits import ApiLimits
from b2bua.api.models import Health
from b2bua.calls.routing import Router
from b2bua.calls.trunkauth import TrunkAuthenticator
from b2bua.control.admission import AdmissionGate
from b2bua.control.dispatch import EventDispatcher
from b2bua.control.inbound import InboundCalls
from b2bua.control.interfaces import Engine
from b2bua.control.journal import LiveDialogs
from b2bua.control.runner import CallRunner
from b2bua.control.screening import InviteScreen
from b2bua.control.trunkmonitor import TrunkMonitor
from b2bua.control.watchdog import AdmissionWatchdog
from b2bua.eventbus import EventBus
from b2bua.lifecycle import (
    ShutdownSignals,
    StartupError,
    background,
    calls_drained,
    engine_running,
    http_serving,
    store_open,
)
from b2bua.ops.carrier_settings import invites_from_anywhere, trusted_sources
from b2bua.ops.filemodes import tighten
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings
from b2bua.outbound_tls import client_tls
from b2bua.recovery import crash_recovered
from b2bua.sip.config import EdgeConfig, TlsConfig, TrunkMedia
from b2bua.sip.engine import EngineConfig, SipEngine, read_build_limits
from b2bua.sip.options import pinger
from b2bua.sip.types import BuildLimits, EngineEvent
from b2bua.store.sqlite import Store
from b2bua.telecommuter.domain import Domain, build_domain, build_foundations
from b2bua.upkeep import readiness, store_upkeep

LEG_MARGIN = 4  # legs kept back from PJSUA_MAX_CALLS for announcements, test calls and count/create races
_PJ_LEVEL = {0: "error", 1: "error", 2: "warning", 3: "info", 4: "debug", 5: "debug", 6: "debug"}


def bridged_call_ceiling(max_calls: int, configured: int) -> int:
    """The configured ceiling, never above what the build allows (two legs per call, a few kept back)."""
    build_cap = max(0, (max_calls - LEG_MARGIN) // 2)
    return build_cap if configured <= 0 else min(configured, build_cap)


def admin_token(settings: Settings, var_dir: Path) -> str:
    """The configured token, or one generated once and kept (0600) beside the database."""
    if settings.http.admin_token:
        return settings.http.admin_token
    path = var_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


async def serve(settings: Settings, config_path: str) -> int:
    log = get_logger("b2bua")
    # The SIP thread needs the GIL back after every libHandleEvents and in every pjsua2 callback; with the default
    # 5 ms switch interval it may wait that long whenever asyncio is busy (a lever for the benchmark).
    sys.setswitchinterval(settings.sip.gil_switch_interval_ms / 1000)
    signals = ShutdownSignals(asyncio.get_running_loop())
    try:
        async with contextlib.AsyncExitStack() as stack:
            http_task = await _start(settings, config_path, stack)
            rc = await _until_stopped(signals, http_task)
    except StartupError as e:
        log.error(e.message, **e.fields)
        rc = e.code
    finally:
        signals.close()
    log.info("b2bua stopped", rc=rc)
    return rc


async def _until_stopped(signals: ShutdownSignals, http_task: asyncio.Task[None]) -> int:
    stop_wait = asyncio.create_task(signals.stopping.wait())
    done, _ = await asyncio.wait({http_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if http_task in done and not signals.stopping.is_set():
        get_logger("b2bua").error("HTTP server stopped unexpectedly", error=repr(http_task.exception()))
        return 1
    return 0


@dataclass(frozen=True)
class Node:
    """Everything but the SIP engine's thread and the HTTP server, wired: what tests build around a fake engine."""

    metrics: Metrics
    gate: AdmissionGate
    bus: EventBus
    runner: CallRunner
    domain: Domain
    screen: InviteScreen
    dispatcher: EventDispatcher
    trunks: TrunkMonitor


def compose(settings: Settings, store: Store, engine: Engine, limits: BuildLimits, metrics: Metrics) -> Node:
    """Wire the parts; raises StartupError for a part that cannot work with these settings."""
    sip = settings.sip
    var_dir = settings.store.path.parent
    gate = AdmissionGate(bridged_call_ceiling(limits.max_calls, sip.max_bridged_calls), sip.max_call_rate,
                         sip.max_call_burst, retry_after_s=sip.retry_after_s)
    trunks = TrunkMonitor(settings.trunks, metrics)
    router = Router(settings.trunks, settings.routes, trunks.health)
    bus = EventBus()
    try:
        base = build_foundations(settings, store, store, bus, metrics, var_dir)
    except OSError as e:
        raise StartupError("voicemail greeting not usable", 2, error=str(e)) from e
    runner = CallRunner(engine, gate, metrics, base.records)
    domain = build_domain(settings, base, store, runner, gate, router, bus, var_dir)
    screen = InviteScreen(_trunk_auth(settings, router), router, domain.policy, gate,
                          frozenset(t.name for t in settings.trunks if t.srtp == "mandatory"))
    inbound = InboundCalls(runner, domain.policy, metrics, our_host=sip.uri_host,
                           no_answer_timeout_s=sip.no_answer_timeout_s)
    dialogs = LiveDialogs(store.journal, runner, metrics)
    return Node(metrics, gate, bus, runner, domain, screen, EventDispatcher(runner, inbound, metrics, dialogs), trunks)


async def _start(settings: Settings, config_path: str, stack: contextlib.AsyncExitStack) -> asyncio.Task[None]:
    """Build and start every part; each one's teardown is on ``stack``. Returns the HTTP server's task."""
    sip = settings.sip
    limits = read_build_limits()
    metrics = Metrics()
    tighten(_private_paths(settings), settings.node.umask)
    store = stack.enter_context(store_open(settings.store.path, metrics, config_path))
    token = admin_token(settings, settings.store.path.parent)
    engine = SipEngine(_engine_config(settings), log=_pjsip_log)
    node = compose(settings, store, engine, limits, metrics)
    await stack.enter_async_context(store_upkeep(store, node.domain, settings.store.upkeep_s))  # exits after calls
    loop = asyncio.get_running_loop()

    def emit(event: EngineEvent) -> None:  # SIP thread -> asyncio, one loop turn
        loop.call_soon_threadsafe(node.dispatcher.on_event, event)

    where = f"{sip.listen_ip}:{sip.listen_port}"
    await stack.enter_async_context(crash_recovered(store, settings, metrics))  # before the engine takes the port
    await stack.enter_async_context(engine_running(engine, node.screen.screen, emit, where))
    _publish_limits(metrics, limits, node.gate, engine)
    health = functools.partial(_health, engine, limits, node.gate, node.runner,
                               functools.partial(readiness, store, node.domain), node.trunks.views)
    api_limits = ApiLimits.from_settings(settings.http)
    app = create_app(ApiContext(token, node.domain, node.runner, metrics, health, limits=api_limits))
    http = settings.http
    http_task = await stack.enter_async_context(http_serving(app, http.listen_ip, http.port, node.bus))
    await stack.enter_async_context(calls_drained(node.runner, node.gate))
    await stack.enter_async_context(background(_resume_sessions(node.domain)))
    await stack.enter_async_context(background(AdmissionWatchdog(node.runner, node.gate, metrics).run()))
    await stack.enter_async_context(background(_monitor_trunks(node.trunks, settings)))
    get_logger("b2bua").info("b2bua started", config=config_path, sip=where, http=f"{http.listen_ip}:{http.port}",
                           store=str(settings.store.path), node=settings.node.name)
    return http_task


def _private_paths(settings: Settings) -> list[Path]:
    """What we wrote before the umask was ours to set: state, token, recordings (tightened at start)."""
    db = settings.store.path
    var_dir = db.parent
    voicemail = Path(settings.voicemail.dir) if settings.voicemail.dir else var_dir / "voicemail"
    return [var_dir, db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), var_dir / "admin-token",
            var_dir / "media", voicemail]


def _engine_config(settings: Settings) -> EngineConfig:
    sip = settings.sip
    return EngineConfig(
        listen_ip=sip.listen_ip, listen_port=sip.listen_port, public_host=sip.public_host,
        rtp_port_start=sip.rtp_port_start, rtp_port_count=sip.rtp_port_count, codecs=tuple(sip.codecs),
        user_agent=f"{sip.user_agent}/{__version__}", poll_ms=sip.poll_ms, log_level=sip.pjsip_log_level,
        media_threads=sip.media_threads, media_nice=sip.media_thread_nice, ptime_ms=sip.ptime_ms,
        credentials=tuple((t.outbound_auth_realm, t.outbound_auth_username, t.outbound_auth_password.get_secret_value())
                          for t in settings.trunks if t.outbound_auth_username),
        tcp="tcp" in sip.transports, tls=_tls_config(settings), media_public_address=sip.media_public_address,
        trunks=tuple(TrunkMedia(t.transport, t.host, t.port, t.srtp, t.srtp_secure_signaling, tuple(t.srtp_suites))
                     for t in settings.trunks),
        edge=_edge_config(settings),
    )


def _edge_config(settings: Settings) -> EdgeConfig:
    """Whose out-of-dialog requests reach pjsua: the trunks' (and operators' trusted_sources); the rest are
    refused statelessly (patch 0009)."""
    trusted = trusted_sources(settings.trunks)
    trusted += [n for n in settings.sip.trusted_sources if n not in trusted]
    return EdgeConfig(tuple(trusted), drop=settings.sip.untrusted == "drop",
                      pass_invites=invites_from_anywhere(settings.trunks))


def _tls_config(settings: Settings) -> TlsConfig | None:
    sip = settings.sip
    if "tls" not in sip.transports:
        return None
    return TlsConfig(sip.tls_port, sip.tls_cert_file, sip.tls_key_file, sip.tls_ca_file,
                     verify_server=sip.tls_verify_server, verify_client=sip.tls_verify_client)


def _trunk_auth(settings: Settings, router: Router) -> TrunkAuthenticator:
    sip = settings.sip
    return TrunkAuthenticator(router, settings.trunks, sip.auth_realm, sip.auth_nonce_secret.get_secret_value(),
                              sip.auth_nonce_ttl_s, max_failures=sip.auth_max_failures, block_s=sip.auth_block_s)


def _pjsip_log(level: int, msg: str) -> None:
    getattr(get_logger("pjsip"), _PJ_LEVEL.get(level, "debug"))(msg)


class _EngineGauges:
    """What operators read of the SIP thread (the engine's counters are plain ints, safe to read anywhere)."""

    def __init__(self, engine: SipEngine) -> None:
        self.engine = engine

    def lag(self) -> float:
        return max(0.0, time.monotonic() - self.engine.last_turn)

    def up(self) -> bool:
        return bool(self.engine.alive) and self.lag() < 2.0


def _publish_limits(metrics: Metrics, limits: BuildLimits, gate: AdmissionGate, engine: SipEngine) -> None:
    shown = {"max_calls": limits.max_calls, "max_conf_ports": limits.max_conf_ports,
             "max_accounts": limits.max_accounts, "ioqueue_max_handles": limits.ioqueue_max_handles,
             "max_bridged_calls": gate.ceiling, "max_call_rate": gate.rate, "max_call_burst": gate.burst}
    for name, value in shown.items():
        metrics.limit.labels(name).set(value)
    metrics.info.info({"version": __version__, "pjsip": limits.pjsip_version, "build": limits.build})
    gauges = _EngineGauges(engine)
    metrics.bind_engine(legs=lambda: float(engine.leg_count), lag=gauges.lag, up=lambda: float(gauges.up()))
    metrics.bind_untrusted(lambda: engine.untrusted_refused)
    metrics.bind_transfers_refused(lambda: engine.transfers_refused)
    log = get_logger("b2bua")
    if limits.max_calls <= 4:
        log.warning("pjsua2 build is capped at 4 calls (PyPI wheel?): only 2 bridged calls possible",
                    build=limits.build)
    log.info("pjsua2 limits", pjsip=limits.pjsip_version, build=limits.build, **{k: v for k, v in shown.items()})


def _health(engine: SipEngine, limits: BuildLimits, gate: AdmissionGate, runner: CallRunner,
            checks: Callable[[], dict[str, str]], trunks: Callable[[], dict[str, dict[str, Any]]]) -> Health:
    gauges = _EngineGauges(engine)
    up = gauges.up()
    parts = checks()
    return Health.model_validate({
        "status": "ok" if up and all(v == "ok" for v in parts.values()) else "degraded", "version": __version__,
        "engine": {"up": up, "loop_lag_s": round(gauges.lag(), 4), "legs": engine.leg_count, "turns": engine.turns},
        "limits": asdict(limits),
        "admission": {"ceiling": gate.ceiling, "admitted": gate.admitted, "closed": gate.closed,
                      "rate": gate.rate, "burst": gate.burst},
        "active_calls": len(runner.calls), "checks": parts, "trunks": trunks(),
    })


async def _monitor_trunks(monitor: TrunkMonitor, settings: Settings) -> None:
    """OPTIONS pings from their own socket on the SIP listen address (pjsua owns the SIP port)."""
    if not monitor.trunks:
        return
    try:
        async with pinger(settings.sip.listen_ip, user_agent=f"{settings.sip.user_agent}/{__version__}",
                          tls=client_tls(settings)) as p:
            await monitor.run(p)
    except OSError as e:
        get_logger("trunks").error("trunk monitoring not started: cannot bind its socket", error=str(e))


async def _resume_sessions(domain: Domain) -> None:
    resumed = await domain.sessions.resume_all()
    if resumed:
        get_logger("b2bua").info("keep-connected sessions resumed", sessions=resumed)
