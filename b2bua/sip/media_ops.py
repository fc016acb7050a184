"""Media operations on legs, run on the SIP thread: conference links, tones, file players, recorders, RTP watch.

A leg may be asked for a tone, a file or a recording before it has audio (early in the call, or while a
re-INVITE renegotiates): the wish is stored on the leg and ``attach`` starts it once the audio port exists.
Media wrappers are dropped here, in the SIP thread: their destructors remove conference ports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pjsua2 as pj

from b2bua.media.tones import TONES
from b2bua.sip.legs import Leg, LegTable, call_op

# how often watched legs' RTP counters are read
_WATCH_INTERVAL_S = 0.5


class MediaOps:
    def __init__(self, legs: LegTable, log: Callable[[int, str], None]) -> None:
        self._legs = legs
        self._log = log
        self._watched: set[str] = set()  # legs with an RTP timeout (persistent lines: few)
        self._next_watch = 0.0

    # ---------------------------------------------------------------------------------- leg audio life
    def attach(self, leg: Leg) -> None:
        """The leg's audio port (re)appeared: reconnect its peer and start whatever was wanted meanwhile."""
        self._connect(leg)
        if leg.audio is not None:
            if leg.tone_name:
                self._start_tone(leg)
            if leg.play_path and leg.player is None:
                self._start_player(leg)
            if leg.record_path:
                self._start_recorder(leg)

    def release(self, leg: Leg) -> None:
        """The leg disconnected: forget its link, audio, tone, files and watch.

        Called before LegEnded is emitted: a recording is complete when the app hears the leg ended.
        """
        self._unlink_ended(leg)
        self._drop_tone(leg)
        self._drop_files(leg)
        self._watched.discard(leg.leg_id)

    # ---------------------------------------------------------------------------------- links
    def link(self, a: str, b: str) -> None:
        """Bridge two legs' audio both ways, breaking any other link either had."""
        la, lb = self._legs.get(a), self._legs.get(b)
        if la is None or lb is None:
            return
        if la.peer != b:
            self.unlink(a)
        if lb.peer != a:
            self.unlink(b)
        la.peer, lb.peer = b, a
        self._connect(la)

    def unlink(self, leg_id: str) -> None:
        """Break a leg's link both ways (a persistent line moving from one call to another)."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.peer is None:
            return
        peer = self._legs.get(leg.peer)
        if peer is not None:
            if leg.audio is not None and peer.audio is not None:
                with contextlib.suppress(pj.Error):
                    leg.audio.stopTransmit(peer.audio)
                    peer.audio.stopTransmit(leg.audio)
            if peer.peer == leg_id:
                peer.peer = None
        leg.peer = None

    def _connect(self, leg: Leg) -> None:
        peer = self._legs.get(leg.peer)
        if peer is None or leg.audio is None or peer.audio is None:
            return
        leg.audio.startTransmit(peer.audio)
        peer.audio.startTransmit(leg.audio)

    def _unlink_ended(self, leg: Leg) -> None:
        """Forget an ended leg's link (both ways) and its audio port, which went with the call."""
        peer = self._legs.get(leg.peer)
        if peer is not None and peer.peer == leg.leg_id:
            peer.peer = None
        leg.peer = None
        leg.audio = None

    # ---------------------------------------------------------------------------------- tones
    def play_tone(self, leg_id: str, name: str) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        if name not in TONES:
            raise ValueError(f"unknown tone {name!r}")
        leg.tone_name = name
        if leg.audio is not None:
            self._start_tone(leg)

    def stop_tone(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        leg.tone_name = ""
        if leg.tone is not None:
            leg.tone.stop()
            if leg.audio is not None:
                leg.tone.stopTransmit(leg.audio)

    def _start_tone(self, leg: Leg) -> None:
        if leg.tone is None:
            leg.tone = pj.ToneGenerator()
            leg.tone.createToneGenerator(8000, 1)
        vec = pj.ToneDescVector()
        for seg in TONES[leg.tone_name]:
            td = pj.ToneDesc()
            td.freq1, td.freq2, td.on_msec, td.off_msec, td.volume = seg.freq1, seg.freq2, seg.on_ms, seg.off_ms, 0
            vec.append(td)
        leg.tone.play(vec, True)
        assert leg.audio is not None
        leg.tone.startTransmit(leg.audio)

    def _drop_tone(self, leg: Leg) -> None:
        if leg.tone is not None:
            leg.tone.stop()
            leg.tone = None  # the wrapper's destructor removes its conference port, here in the SIP thread
        leg.tone_name = ""

    # ---------------------------------------------------------------------------------- files
    def play_file(self, leg_id: str, path: str, loop: bool) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        self.stop_file(leg_id)
        leg.play_path, leg.play_loop = path, loop
        if leg.audio is not None:
            self._start_player(leg)

    def stop_file(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        if leg.player is not None and leg.audio is not None:
            with contextlib.suppress(pj.Error):
                leg.player.stopTransmit(leg.audio)
        leg.player = None
        leg.play_path = ""

    def record(self, leg_id: str, path: str) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        leg.record_path = path
        if leg.audio is not None:
            self._start_recorder(leg)

    def _start_player(self, leg: Leg) -> None:
        player = pj.AudioMediaPlayer()
        player.createPlayer(leg.play_path, 0 if leg.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
        assert leg.audio is not None
        player.startTransmit(leg.audio)
        leg.player = player

    def _start_recorder(self, leg: Leg) -> None:
        if leg.recorder is None:
            leg.recorder = pj.AudioMediaRecorder()
            leg.recorder.createRecorder(leg.record_path)
        assert leg.audio is not None
        leg.audio.startTransmit(leg.recorder)

    def _drop_files(self, leg: Leg) -> None:
        # dropping the wrappers here, in the SIP thread, destroys the ports; the recorder finalises its WAV header
        leg.player = None
        leg.recorder = None
        leg.play_path = leg.record_path = ""

    # ---------------------------------------------------------------------------------- RTP watch
    def watch(self, leg_id: str, timeout_s: float) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        leg.rtp_timeout_s = timeout_s
        leg.rx_pkts, leg.rx_changed = -1, time.monotonic()
        self._watched.add(leg_id)

    def check_rtp(self) -> None:
        """RTP timeout for watched legs: a phone that died without a BYE stops sending audio.

        Called every loop turn; reads the counters at most every ``_WATCH_INTERVAL_S``, and costs nothing when no
        leg is watched.
        """
        if not self._watched:
            return
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + _WATCH_INTERVAL_S
        for leg_id in list(self._watched):
            leg = self._legs.live(leg_id)
            if leg is None:
                self._watched.discard(leg_id)
                continue
            pkts = leg.rx_pkts
            if leg.audio_idx >= 0:
                with contextlib.suppress(pj.Error):
                    pkts = int(leg.getStreamStat(leg.audio_idx).rtcp.rxStat.pkt)
            if pkts != leg.rx_pkts or leg.remote_hold:
                leg.rx_pkts, leg.rx_changed = pkts, now
            elif now - leg.rx_changed >= leg.rtp_timeout_s:
                self._watched.discard(leg_id)
                self._log(2, f"RTP timeout on {leg_id}: nothing for {leg.rtp_timeout_s:.0f} s")
                leg.hangup(call_op(0, (("Reason", 'SIP;cause=408;text="RTP timeout"'),)))
