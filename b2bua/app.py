"""Composition root: settings -> logging -> store -> engine -> call control -> HTTP; two-stage shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import uvicorn

from b2bua import __version__
from b2bua.callcontrol import ActiveCall, AdmissionGate, CallControl
from b2bua.calls.events import Finished, Notify
from b2bua.calls.routing import Router
from b2bua.calls.trunkauth import TrunkAuthenticator
from b2bua.eventbus import EventBus
from b2bua.ops import logging as blog
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings
from b2bua.sip.types import EngineEvent
from b2bua.store.sqlite import Store
from b2bua.telecommuter.dialplan import ClassOfService
from b2bua.telecommuter.service import Presentation, TelecommuterService
from b2bua.telecommuter.voicemail import VoicemailBoxes

# pjsip log levels -> structlog methods
# legs kept back from PJSUA_MAX_CALLS for announcements, test calls and races between count and create
LEG_MARGIN = 4

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


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[[EngineEvent], None], ev: EngineEvent) -> None:
    loop.call_soon_threadsafe(fn, ev)


class _QuietServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the composition root, which shuts down in two stages."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: Settings, config_path: str) -> int:
    from b2bua.sip.engine import EngineConfig, SipEngine  # the only pjsua2 import, kept lazy for the CLI

    log = blog.get("b2bua")
    pjlog = blog.get("pjsip")
    loop = asyncio.get_running_loop()
    # The SIP thread needs the GIL back after every libHandleEvents and in every pjsua2 callback; with the default
    # 5 ms switch interval it may wait that long whenever asyncio is busy (a lever for the benchmark).
    sys.setswitchinterval(settings.sip.gil_switch_interval_ms / 1000)
    metrics = Metrics()
    store = Store(settings.store.path)
    token = admin_token(settings, settings.store.path.parent)
    router = Router(settings.trunks, settings.routes)
    gate = AdmissionGate(0, retry_after_s=settings.sip.retry_after_s)  # opened once the build's limits are known

    bus = EventBus()
    service: TelecommuterService | None = None  # set below; the hooks run only once calls exist

    def on_finished(call: ActiveCall, fin: Finished) -> None:
        info = call.info
        user = store.get_user(call.user_id) if call.user_id else None
        store.add_cdr({
            "id": call.id, "sip_call_id": info.get("sip_call_id", ""), "kind": call.kind, "user_id": call.user_id,
            "caller": info.get("caller") or (user.business_number if user else ""),
            "called": info.get("called") or info.get("target") or info.get("user_number", ""),
            "trunk_in": info.get("trunk_in", ""), "trunk_out": info.get("trunk_out", ""),
            "outcome": fin.outcome, "final_code": fin.code, "started_at": call.created,
            "duration_s": (fin.ended_at - fin.answered_at) if fin.answered_at is not None else 0.0,
        })

    def on_notify(call: ActiveCall, n: Notify) -> None:
        metrics.user_events.labels(call.kind, n.state).inc()
        if not call.user_id:
            return
        if call.kind == "incoming" and service is not None:
            service.on_call_notify(call, n.state, dict(n.detail))
            if n.state in ("voicemail-recorded", "voicemail-discarded"):
                return  # the mailbox event says it, without file paths
        kind = {"test": "test-call", "session": "session"}.get(call.kind, "call")
        bus.publish(call.user_id, kind, {"call_id": call.id, "state": n.state, **n.detail})
        if call.kind == "test" and n.detail.get("status") == "done" and service is not None:
            service.record_test_result(call.user_id, str(n.detail.get("result", "")))

    sip = settings.sip
    tc = settings.telecommuter
    classes = {name: ClassOfService(name, frozenset(c.allow), tuple(c.blocked_prefixes), c.max_concurrent_calls,
                                    c.max_calls_per_minute) for name, c in settings.classes_of_service.items()}
    trunk_cos = {t.name: t.class_of_service for t in settings.trunks if t.class_of_service}

    def transit_check(trunk: str, called: str) -> tuple[str, str] | None:
        cos = trunk_cos.get(trunk)
        return None if cos is None or service is None else service.transit_refusal(cos, called)

    our_host = sip.public_host or sip.listen_ip
    trunk_auth = TrunkAuthenticator(router, settings.trunks, sip.auth_realm, sip.auth_nonce_secret.get_secret_value(),
                                    sip.auth_nonce_ttl_s, max_failures=sip.auth_max_failures,
                                    block_s=sip.auth_block_s)
    calls = CallControl(
        router, trunk_auth, gate, metrics, our_host=our_host,
        no_answer_timeout_s=sip.no_answer_timeout_s, on_finished=on_finished,
        on_notify=on_notify, transit_check=transit_check,
        local_lookup=lambda called, trunk: service.lookup(called, trunk) if service is not None else None,
    )
    try:
        boxes = VoicemailBoxes(settings.voicemail, store, settings.store.path.parent / "voicemail")
    except OSError as e:
        log.error("voicemail directory not usable", error=str(e))
        store.close()
        return 2
    service = TelecommuterService(tc, classes, store, calls, gate, router, metrics,
                                  Presentation(our_host, tc.callback_presentation), sip.no_answer_timeout_s,
                                  boxes, bus, settings.keep_connected, settings.store.path.parent / "media",
                                  frozenset(t.name for t in settings.trunks if t.extensions))
    calls.user_calls = service.incoming_call

    def pj_log(level: int, msg: str) -> None:
        getattr(pjlog, _PJ_LEVEL.get(level, "debug"))(msg)

    engine = SipEngine(
        EngineConfig(
            listen_ip=sip.listen_ip, listen_port=sip.listen_port, public_host=sip.public_host,
            rtp_port_start=sip.rtp_port_start, rtp_port_count=sip.rtp_port_count, codecs=tuple(sip.codecs),
            user_agent=f"{sip.user_agent}/{__version__}", poll_ms=sip.poll_ms, log_level=sip.pjsip_log_level,
            media_threads=sip.media_threads, media_nice=sip.media_thread_nice, ptime_ms=sip.ptime_ms,
            credentials=tuple((t.outbound_auth_realm, t.outbound_auth_username,
                               t.outbound_auth_password.get_secret_value())
                              for t in settings.trunks if t.outbound_auth_username),
        ),
        screen=calls.screen,
        emit=lambda ev: _post(loop, calls.on_event, ev),
        log=pj_log,
    )
    calls.engine = engine
    try:
        limits = await asyncio.to_thread(engine.start)
    except Exception as e:
        log.error("SIP engine failed to start", error=str(e), listen=f"{sip.listen_ip}:{sip.listen_port}")
        store.close()
        return 1
    gate.ceiling = bridged_call_ceiling(limits.max_calls, sip.max_bridged_calls)
    gate.set_rate(sip.max_call_rate, sip.max_call_burst)

    async def resume_sessions() -> None:
        assert service is not None
        resumed = await service.sessions.resume_all()
        if resumed:
            log.info("keep-connected sessions resumed", sessions=resumed)

    resuming = asyncio.create_task(resume_sessions())
    shown = {"max_calls": limits.max_calls, "max_conf_ports": limits.max_conf_ports,
             "max_accounts": limits.max_accounts, "ioqueue_max_handles": limits.ioqueue_max_handles,
             "max_bridged_calls": gate.ceiling, "max_call_rate": gate.rate, "max_call_burst": gate.burst}
    for name, value in shown.items():
        metrics.limit.labels(name).set(value)
    metrics.info.info({"version": __version__, "pjsip": limits.pjsip_version, "build": limits.build})
    metrics.bind_engine(
        legs=lambda: float(engine.leg_count),
        lag=lambda: max(0.0, time.monotonic() - engine.last_turn),
        up=lambda: 1.0 if engine.alive and time.monotonic() - engine.last_turn < 2.0 else 0.0,
    )
    if limits.max_calls <= 4:
        log.warning("pjsua2 build is capped at 4 calls (PyPI wheel?): only 2 bridged calls possible",
                    build=limits.build)
    log.info("pjsua2 limits", max_calls=limits.max_calls, max_conf_ports=limits.max_conf_ports,
             max_accounts=limits.max_accounts, ioqueue_max_handles=limits.ioqueue_max_handles,
             pjsip=limits.pjsip_version, build=limits.build, max_bridged_calls=gate.ceiling,
             max_call_rate=gate.rate, max_call_burst=gate.burst)

    from b2bua.api.http import create_app

    def engine_health() -> dict[str, Any]:
        lag = time.monotonic() - engine.last_turn
        return {"up": engine.alive and lag < 2.0, "loop_lag_s": round(lag, 4), "legs": engine.leg_count,
                "turns": engine.turns}

    app = create_app(admin_token=token, calls=calls, gate=gate, metrics=metrics, limits=limits, store=store,
                     service=service, bus=bus, engine_health=engine_health)
    server = _QuietServer(uvicorn.Config(
        app, host=settings.http.listen_ip, port=settings.http.port, log_level="warning", access_log=False,
        lifespan="off", timeout_graceful_shutdown=3,
    ))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(server.serve())
    log.info("b2bua started", config=config_path, sip=f"{sip.listen_ip}:{sip.listen_port}",
             http=f"{settings.http.listen_ip}:{settings.http.port}", store=str(settings.store.path),
             node=settings.node.name)

    stop_wait = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({http_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    rc = 0
    if http_task in done and not stop.is_set():
        log.error("HTTP server stopped unexpectedly", error=repr(http_task.exception()))
        rc = 1

    # stage 1: refuse new calls, let running ones finish for a moment; stage 2: end the rest
    gate.closed = True
    resuming.cancel()
    log.info("shutting down", active_calls=len(calls.calls))
    if not await calls.wait_idle(2.0):
        calls.terminate_all("service shutting down")
        await calls.wait_idle(5.0)
    bus.close()  # ends the live event streams, which would otherwise hold the HTTP server open
    server.should_exit = True
    stop_wait.cancel()
    await asyncio.gather(http_task, return_exceptions=True)
    await asyncio.to_thread(engine.stop)
    store.close()
    log.info("b2bua stopped", rc=rc)
    return rc
