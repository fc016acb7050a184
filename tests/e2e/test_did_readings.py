"""A business number (DID) reached in every form a carrier writes it, through the real B2BUA: E.164, country code
+ number, international prefix, trunk prefix + national number, the bare national significant number, ``tel:``
Request-URIs (RFC 3966, with visual separators and ``phone-context``) and number-portability parameters (RFC 4694
``;npdi;rn=``, also in a ``sip:`` user part). Each must ring the user's telecommuter phone; a free number in a
range we own must get 404. One B2BUA per home region (US, DE) serves all its readings.

Peers: raw UDP on loopback. The carrier's caller sends from 127.0.0.2; the telecommuter's phone (the "mobile"
trunk, 127.0.0.4) answers every INVITE 486 and keeps it, so each call proves it rang there and ends at once
(the user has no voicemail: the caller gets the 486)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.procs import B2bua
from tests.support.rawsip import header

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Plan:
    home: str
    business: str
    mobile: str
    owned: str
    readings: tuple[str, ...]  # Request-URIs ("@H" is the B2BUA's address) that must ring the user
    free: tuple[str, ...]  # in the owned range, nobody's: 404
    route: str  # the telecommuter number's route (TOML-escaped regex)


PLANS = {
    "US": Plan("US", "+12025550177", "+13105550100", "+1202555", (
        "sip:+12025550177@H", "sip:12025550177@H", "sip:01112025550177@H", "sip:2025550177@H",
        "tel:+12025550177;npdi;rn=+12025550000", "tel:2025550177;phone-context=+1", "tel:+1-202-555-0177",
        "tel:(202)555.0177;phone-context=+1", "sip:+12025550177;npdi;rn=+13125550000@H;user=phone",
        "sip:2025550177;rn=+12025550000;npdi@H;user=phone",
    ), ("sip:2025550999@H", "tel:+12025550999;npdi;rn=+12025550177", "sip:12025550999@H"), "\\\\+1310.*"),
    "DE": Plan("DE", "+493012345678", "+491711234567", "+4930123", (
        "sip:+493012345678@H", "sip:493012345678@H", "sip:00493012345678@H", "sip:03012345678@H",
        "sip:3012345678@H", "tel:+493012345678;npdi;rn=+493099990000", "tel:3012345678;phone-context=+49",
        "tel:+49-30-1234-5678", "sip:+493012345678;npdi;rn=+4989555@H;user=phone",
    ), ("sip:03012399999@H", "sip:3012399999@H", "tel:+49-30-1239-9999"), "\\\\+49171.*"),
}
CASES = [(home, ruri) for home, plan in PLANS.items() for ruri in plan.readings]
FREE = [(home, ruri) for home, plan in PLANS.items() for ruri in plan.free]


@dataclass
class BusyPhone:
    """The telecommuter's phone: answers every INVITE with 100 then 486, and keeps each new INVITE it saw."""

    port: int
    invites: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.4", self.port))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        seen: set[str] = set()
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            msg = data.decode("latin-1")
            method = msg.split(" ", 1)[0]
            if method == "INVITE":
                if header(msg, "Via") not in seen:  # not a retransmission
                    seen.add(header(msg, "Via"))
                    self.invites.append(msg)
                self.sock.sendto(_response(msg, "100 Trying"), addr)
                self.sock.sendto(_response(msg, "486 Busy Here", ";tag=busy"), addr)
            elif method not in ("ACK", "SIP/2.0"):
                self.sock.sendto(_response(msg, "200 OK", ";tag=ok"), addr)  # OPTIONS pings, a CANCEL

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()



def _response(req: str, status: str, to_tag: str = "") -> bytes:
    vias = [ln for ln in req.split("\r\n\r\n", 1)[0].split("\r\n") if ln.lower().startswith("via:")]
    lines = [f"SIP/2.0 {status}", *vias, f"From: {header(req, 'From')}", f"To: {header(req, 'To')}{to_tag}",
             f"Call-ID: {header(req, 'Call-ID')}", f"CSeq: {header(req, 'CSeq')}", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("latin-1")


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n"
       "a=rtpmap:0 PCMU/8000\r\n")


def trunk_call(port: int, ruri: str, timeout: float = 8.0) -> list[int]:
    """An INVITE from the carrier (127.0.0.2) to ``ruri``: every status that came back; a final non-2xx is
    ACKed so nothing is left retransmitting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.2", 0))
        s.settimeout(timeout)
        src = f"127.0.0.2:{s.getsockname()[1]}"
        branch, tag, call_id = "z9hG4bK-" + uuid.uuid4().hex[:10], uuid.uuid4().hex[:8], uuid.uuid4().hex
        common = [f"Via: SIP/2.0/UDP {src};branch={branch};rport", f"From: <sip:+15551230001@127.0.0.2>;tag={tag}",
                  f"Call-ID: {call_id}", f"Contact: <sip:+15551230001@{src}>", "Max-Forwards: 70"]
        invite = [f"INVITE {ruri} SIP/2.0", *common, f"To: <{ruri}>", "CSeq: 1 INVITE",
                  "Content-Type: application/sdp", f"Content-Length: {len(SDP)}", "", SDP]
        s.sendto("\r\n".join(invite).encode(), ("127.0.0.1", port))
        statuses: list[int] = []
        while not statuses or statuses[-1] < 200:
            data = s.recv(65535).decode("latin-1")
            statuses.append(int(data.split(" ", 2)[1]))
        if statuses[-1] >= 300:
            ack = [f"ACK {ruri} SIP/2.0", *common, f"To: {header(data, 'To')}", "CSeq: 1 ACK", "Content-Length: 0",
                   "", ""]
            s.sendto("\r\n".join(ack).encode(), ("127.0.0.1", port))
        return statuses
    finally:
        s.close()


@dataclass
class Node:
    b2bua: B2bua
    phone: BusyPhone
    plan: Plan

    def uri(self, reading: str) -> str:
        return reading.replace("@H", f"@127.0.0.1:{self.b2bua.sip_port}")


def _start(plan: Plan, workdir: Path) -> Node:
    config = f'\n[telecommuter]\nhome_country = "{plan.home}"\nowned_numbers = ["{plan.owned}"]\nring_timeout_s = 5\n'
    b = B2bua(workdir, extra_config=config,
              routes_before=f'[[routes]]\npattern = "{plan.route}"\ntrunk = "mobile"\n').start()
    status, body = b.http("POST", "/v1/users", body={"name": "Tele Worker", "extension": "2001",
                                                     "business_number": plan.business, "voicemail": False})
    assert status == 201, body
    uid, token = body["user"]["id"], body["token"]
    status, body = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token,
                          body={"mode": "on-demand", "number": plan.mobile})
    assert status == 200, body
    return Node(b, BusyPhone(b.far_port), plan)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    """One B2BUA per home region, started when a test first needs it; each must exit cleanly (rc 0)."""
    started: dict[str, Node] = {}

    class Lazy(dict[str, Node]):
        def __missing__(self, home: str) -> Node:
            started[home] = self[home] = _start(PLANS[home], tmp_path_factory.mktemp(f"did-{home}"))
            return started[home]

    yield Lazy()
    for node in started.values():
        node.phone.close()
        rc = node.b2bua.stop()
        assert rc == 0, f"B2BUA exit code {rc}\n{node.b2bua.log_tail()}"


@pytest.mark.parametrize(("home", "reading"), CASES, ids=[f"{h}:{r}" for h, r in CASES])
def test_every_reading_of_the_did_rings_the_telecommuter(nodes: dict[str, Node], home: str, reading: str) -> None:
    node = nodes[home]
    before = len(node.phone.invites)
    statuses = trunk_call(node.b2bua.sip_port, node.uri(reading))
    assert statuses[-1] == 486, f"{reading}: {statuses}\n{node.b2bua.log_tail(15)}"
    deadline = time.monotonic() + 2
    while len(node.phone.invites) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(node.phone.invites) == before + 1, f"{reading}: the telecommuter phone was not rung"
    invite = node.phone.invites[-1]
    assert invite.startswith(f"INVITE sip:{node.plan.mobile}@127.0.0.4"), invite.splitlines()[0]
    assert node.plan.business in header(invite, "Diversion"), "rung as a call to the business number"
    node.b2bua.wait_idle()


@pytest.mark.parametrize(("home", "reading"), FREE, ids=[f"{h}:{r}" for h, r in FREE])
def test_a_free_number_in_an_owned_range_is_404(nodes: dict[str, Node], home: str, reading: str) -> None:
    node = nodes[home]
    before_rejects = node.b2bua.metric("b2bua_invites_rejected_total", code="404", reason="unknown-number")
    before = len(node.phone.invites)
    statuses = trunk_call(node.b2bua.sip_port, node.uri(reading))
    assert statuses[-1] == 404, f"{reading}: {statuses}"
    assert node.b2bua.metric("b2bua_invites_rejected_total", code="404", reason="unknown-number") == (
        before_rejects + 1), "refused as a number of ours, not for want of a route"
    assert len(node.phone.invites) == before
