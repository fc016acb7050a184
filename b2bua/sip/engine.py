"""The SIP engine: one thread that owns every pjsua2 object.

Rules that prevent pjsua2's known crashes: the thread creates the Endpoint and makes every pjsua2 call; it runs
``libHandleEvents`` then drains a command queue. asyncio talks to it only through the typed methods below,
which return ``concurrent.futures.Future``; events leave as frozen dataclasses through the ``emit`` given to
``start`` (the app posts them with ``loop.call_soon_threadsafe``). Call wrappers are dropped on the turn after
DISCONNECTED, never inside a callback, and all of them before ``libDestroy`` (``legs.LegTable``). Callback
bodies are wrapped (``CallOps.guard``): pjsua2 would swallow errors.

The thread is not a daemon: ``stop`` hangs up, destroys the library and joins it, so the process never exits
with pjsua2 half torn down.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import queue
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import pjsua2 as pj

from b2bua.sip import edge
from b2bua.sip.build_info import read_build_limits
from b2bua.sip.call_ops import CallOps
from b2bua.sip.config import AccountPlan, EngineConfig
from b2bua.sip.endpoint import account_configs, create_endpoint
from b2bua.sip.legs import LegTable, PjLogWriter
from b2bua.sip.media_ops import MediaOps
from b2bua.sip.types import BuildLimits, EngineEvent, EngineFault, Headers, InboundInvite, ScreenResult

__all__ = ["EngineCommandError", "EngineConfig", "SipEngine", "read_build_limits"]

T = TypeVar("T")
_Command = tuple[Callable[[], Any], concurrent.futures.Future[Any]]


class EngineCommandError(RuntimeError):
    """A pjsua2 call made for a command failed."""

    def __init__(self, status: int, reason: str, title: str) -> None:
        super().__init__(f"{title}: {reason} (status {status})")
        self.status = status


class SipEngine:
    """Owns the pjsua2 Endpoint in its own thread. Methods are safe to call from any thread.

    Built with its configuration and a log sink only; ``start`` names where INVITEs are screened and events go,
    so the composition root can build what consumes the events (which needs the engine) first.
    """

    def __init__(self, config: EngineConfig, log: Callable[[int, str], None]) -> None:
        self._cfg = config
        self._log = log
        self._screen_fn: Callable[[InboundInvite], ScreenResult] | None = None
        self._emit_fn: Callable[[EngineEvent], None] | None = None
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sip-engine")
        self._ready: concurrent.futures.Future[BuildLimits] = concurrent.futures.Future()
        self._stopping = threading.Event()
        self._legs = LegTable()
        self._media = MediaOps(self._legs, log)
        self._calls = CallOps(self._legs, self._media, self._screen, self._emit, log, self.submit)
        self._writer: PjLogWriter | None = None  # must outlive the Endpoint
        # Waking the thread: it sleeps in epoll inside libHandleEvents, which pjsua2 gives no way to interrupt.
        # A datagram of bare CRLF to our own SIP socket (a keep-alive, which pjsip consumes without a trace)
        # ends the wait, so a command runs at once instead of after up to poll_ms.
        self._sleeping = False
        self._wake_sent = False
        self._wake_sock = socket.socket(socket.AF_INET6 if ":" in config.listen_ip else socket.AF_INET,
                                        socket.SOCK_DGRAM)
        self._wake_sock.setblocking(False)
        wake_ip = config.listen_ip
        if ipaddress.ip_address(wake_ip).is_unspecified:
            wake_ip = "::1" if ":" in wake_ip else "127.0.0.1"
        self._wake_addr = (wake_ip, config.listen_port)
        self.wakes = 0
        # out-of-dialog requests the source filter refused, as last read on the SIP thread (a counter's source)
        self.untrusted_refused: dict[str, int] = {"rejected": 0, "dropped": 0}
        self._edge_read_at = 0.0
        self.last_turn = time.monotonic()
        self.turns = 0

    # ---------------------------------------------------------------------------------- lifecycle
    def start(
        self,
        screen: Callable[[InboundInvite], ScreenResult],
        emit: Callable[[EngineEvent], None],
        timeout: float = 15.0,
    ) -> BuildLimits:
        """Start the thread and wait for the Endpoint. ``screen`` and ``emit`` are called on the SIP thread.

        If the Endpoint is not up within ``timeout`` the engine is told to stop, so a late start does not leave
        a non-daemon thread running; call ``stop`` to wait for it.
        """
        if self._thread.ident is not None:
            raise RuntimeError("SIP engine already started")
        self._screen_fn, self._emit_fn = screen, emit
        self._thread.start()
        try:
            return self._ready.result(timeout)
        except BaseException:
            self._stopping.set()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every leg, destroy the library and join the thread (up to ``timeout``)."""
        self._stopping.set()
        self._wake()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._wake_sock.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    @property
    def leg_count(self) -> int:
        """Legs the SIP thread holds (read from other threads, for a gauge)."""
        return self._legs.count

    @property
    def transfers_refused(self) -> dict[str, int]:
        """REFERs and Replaces INVITEs refused so far, by kind (read from other threads, for a counter)."""
        return dict(self._calls.transfers_refused)

    def new_leg_id(self) -> str:
        return self._legs.new_id()

    # ---------------------------------------------------------------------------------- commands
    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the SIP thread; its result or exception (pjsua2's as ``EngineCommandError``) comes back
        in the future."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError("SIP engine is not running"))
            return fut
        self._commands.put((fn, fut))
        if self._sleeping and not self._wake_sent:
            self._wake()
        return fut

    def _wake(self) -> None:
        self._wake_sent = True
        self.wakes += 1
        with contextlib.suppress(OSError):  # a full socket buffer means the thread is busy anyway
            self._wake_sock.sendto(b"\r\n\r\n", self._wake_addr)

    def make_call(self, leg_id: str, uri: str, from_uri: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._calls.make_call(leg_id, uri, from_uri, headers))

    def respond(self, leg_id: str, code: int, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._calls.respond(leg_id, code, headers))

    def hangup(self, leg_id: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._calls.hangup(leg_id, headers))

    def set_hold(self, leg_id: str, held: bool) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._calls.set_hold(leg_id, held))

    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int = 160) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._calls.send_dtmf(leg_id, digits, duration_ms))

    def link(self, a: str, b: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.link(a, b))

    def unlink(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.unlink(leg_id))

    def play_tone(self, leg_id: str, name: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.play_tone(leg_id, name))

    def stop_tone(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.stop_tone(leg_id))

    def play_file(self, leg_id: str, path: str, loop: bool = False) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.play_file(leg_id, path, loop))

    def stop_file(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.stop_file(leg_id))

    def record(self, leg_id: str, path: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.record(leg_id, path))

    def watch_media(self, leg_id: str, timeout_s: float) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._media.watch(leg_id, timeout_s))

    # ---------------------------------------------------------------------------------- event emission
    def _screen(self, invite: InboundInvite) -> ScreenResult:
        assert self._screen_fn is not None  # set by start(), before the thread runs
        return self._screen_fn(invite)

    def _emit(self, event: EngineEvent) -> None:
        assert self._emit_fn is not None  # set by start(), before the thread runs
        self._emit_fn(event)

    # ---------------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        try:
            ep = self._init()
        except BaseException as e:
            # the half-made Endpoint in the traceback's frames dies here, in this thread, not where the error is read
            traceback.clear_frames(e.__traceback__)
            self._ready.set_exception(_readable(e))
            return
        self._ready.set_result(read_build_limits())
        poll = self._cfg.poll_ms
        try:
            while not self._stopping.is_set():
                self._sleeping = True  # before looking at the queue: a command put after the look wakes us
                ep.libHandleEvents(0 if not self._commands.empty() else poll)
                self._sleeping = False
                self._wake_sent = False
                self._drain()
                self._legs.reap()
                self._media.check_rtp()
                self._read_edge(ep)
                self.turns += 1
                self.last_turn = time.monotonic()
            self._shutdown(ep)
        except BaseException as e:  # the engine dying must be visible
            self._log(1, f"SIP engine thread died: {e!r}")
            self._emit(EngineFault("engine-thread", repr(e)))
            raise

    def _read_edge(self, ep: pj.Endpoint) -> None:
        """The source filter's counters, at most once a second (reading them takes pjsua2, so this thread)."""
        now = time.monotonic()
        if now - self._edge_read_at >= 1.0:
            self._edge_read_at = now
            self.untrusted_refused = edge.refused_counts(ep)

    def _init(self) -> pj.Endpoint:
        self._writer = PjLogWriter(self._log)
        ep, transports = create_endpoint(self._cfg, self._writer, self._log)
        plan = AccountPlan(self._cfg)
        self._calls.open_accounts(account_configs(self._cfg, transports, plan), lambda uri: plan.for_uri(uri).name)
        return ep

    def _drain(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except pj.Error as e:  # SWIG's proxy says nothing useful: keep the status and reason
                fut.set_exception(EngineCommandError(int(e.status), str(e.reason), str(e.title)))
            except BaseException as e:
                fut.set_exception(e)

    def _shutdown(self, ep: pj.Endpoint) -> None:
        """Hang up, give the BYEs up to 3 s, drop every wrapper here, then destroy the library."""
        self._drain()
        for leg in self._legs.all():
            if not leg.ended:
                with contextlib.suppress(Exception):
                    leg.hangup(pj.CallOpParam())
        deadline = time.monotonic() + 3.0
        while any(not leg.ended for leg in self._legs.all()) and time.monotonic() < deadline:
            ep.libHandleEvents(20)
        for _ in range(10):
            ep.libHandleEvents(10)
        self._legs.clear()
        self._calls.close_accounts()
        ep.libDestroy()
        self._drain()  # fail whatever arrived meanwhile
        while True:
            try:
                _, fut = self._commands.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("SIP engine stopped"))


def _readable(e: BaseException) -> BaseException:
    """pjsua2's Error prints as an empty string: name the operation and pjlib's reason (e.g. address in use)."""
    reason = getattr(e, "reason", None)
    if not isinstance(e, pj.Error) or reason is None:
        return e
    return RuntimeError(f"{e.title}: {reason} (pj status {e.status})")
