"""Paired set-up and teardown of the long-lived parts (async context managers for one ``AsyncExitStack``), and the
shutdown signals: the first SIGTERM/SIGINT stops gracefully, a second one forces the process out at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Protocol

import uvicorn

from b2bua.control.admission import AdmissionGate
from b2bua.control.runner import CallRunner
from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import BuildLimits, EngineEvent, InboundInvite, ScreenResult
from b2bua.store.opening import StoreUnusable, open_existing
from b2bua.store.sqlite import Store

FORCED_EXIT_CODE = 130


class StartupError(Exception):
    """A part could not start; ``fields`` go to the log line, ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = 1, **fields: Any) -> None:
        super().__init__(message)
        self.message, self.code, self.fields = message, code, fields


class ShutdownSignals:
    """``stopping`` is set by the first signal; the second one exits without cleaning up (an operator who asks
    twice wants the process gone, even if a call or the SIP thread is stuck)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stopping = asyncio.Event()
        self._loop = loop
        self._log = get_logger("b2bua")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signalled, sig)

    def _signalled(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():
            self._log.warning("second signal: forced exit", signal=sig.name)
            os._exit(FORCED_EXIT_CODE)
        self._log.info("signal: shutting down", signal=sig.name)
        self.stopping.set()

    def close(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.remove_signal_handler(sig)


@contextlib.contextmanager
def store_open(path: Path, metrics: Metrics, config_path: str) -> Iterator[Store]:
    """The existing database (a missing one is an error: ``b2bua init`` makes it), closed on the way out."""
    try:
        store = open_existing(path, metrics, f"b2bua init -c {config_path}")
    except StoreUnusable as e:
        raise StartupError("database not usable", 2, path=str(path), reason=e.reason) from e
    try:
        yield store
    finally:
        store.close()


class StartableEngine(Protocol):
    def start(self, screen: Callable[[InboundInvite], ScreenResult], emit: Callable[[EngineEvent], None],
              timeout: float = ...) -> BuildLimits: ...
    def stop(self, timeout: float = ...) -> None: ...


@contextlib.asynccontextmanager
async def engine_running(engine: StartableEngine, screen: Callable[[InboundInvite], ScreenResult],
                         emit: Callable[[EngineEvent], None], where: str) -> AsyncIterator[BuildLimits]:
    """Start the SIP thread; on the way out stop it and join it (it owns every pjsua2 object)."""
    try:
        limits: BuildLimits = await asyncio.to_thread(engine.start, screen, emit)
    except Exception as e:
        await asyncio.to_thread(engine.stop)
        raise StartupError("SIP engine failed to start", 1, error=str(e), listen=where) from e
    try:
        yield limits
    finally:
        await asyncio.to_thread(engine.stop)


@contextlib.asynccontextmanager
async def calls_drained(runner: CallRunner, gate: AdmissionGate, grace_s: float = 2.0,
                        hangup_s: float = 5.0) -> AsyncIterator[None]:
    """On the way out: refuse new calls, let running ones finish for a moment, then end the rest."""
    try:
        yield
    finally:
        gate.close()
        get_logger("b2bua").info("shutting down", active_calls=len(runner.calls))
        if not await runner.wait_idle(grace_s):
            runner.terminate_all("service shutting down")
            await runner.wait_idle(hangup_s)


class _QuietServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to ``ShutdownSignals``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def http_serving(app: Any, host: str, port: int, bus: EventBus) -> AsyncIterator[asyncio.Task[None]]:
    """Serve the API; yields the server task (it ends early only if the server fails, e.g. port in use)."""
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any loopback peer as the client, and
    # the API's per-source limits would believe it (trusted proxies are the API's setting: [http] trusted_proxies)
    server = _QuietServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                         lifespan="off", timeout_graceful_shutdown=3, proxy_headers=False))
    task = asyncio.create_task(server.serve())
    try:
        yield task
    finally:
        bus.close()  # ends the live event streams, which would otherwise hold the server open
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def background(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    """A task that lives no longer than the block."""
    task: asyncio.Task[Any] = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
