"""RFC 4475 (SIP torture messages) and RFC 5118 (the IPv6 ones) as cases for the B2BUA: which message, what the RFC
says an element does with it, and what it takes to send it over IPv4 loopback.

The messages are files in ``tests/e2e/torture/`` (see the README there for where the bytes come from). They are sent
as they are, with two exceptions, both stated per case:

- ``own_branch`` (and ``own_call_id``): the RFCs reuse branch values across messages (``z9hG4bKkdjuw`` in 21 of
  them) and pjsip keys a server transaction by branch and method only (not by sent-by, RFC 3261 17.2.3): within one
  B2BUA process a later INVITE reusing a branch would meet the earlier one's transaction (it is answered 400). Such a
  case gets ``.<case>`` appended to its top Via's branch. RFC 5118's messages also share Call-ID, From tag and CSeq,
  which RFC 3261 8.2.2.2 treats as one request arriving twice (482): those get ``.<case>`` on the Call-ID as well.
- ``reply_port``: responses go to the source address at the Via's port (5060 when it names none, RFC 3261 18.2.2), so
  the test socket is bound to that port instead of the Via being rewritten.

Request-URIs keep the RFCs' hosts: the B2BUA answers whatever host a request names. Messages from the carrier trunk
(127.0.0.2, trusted by address) go through number lookup, so a well-formed INVITE to ``user`` gets 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "e2e" / "torture"
TRUSTED = "127.0.0.2"  # the carrier trunk's inbound_acl in tests/support/procs.py
UNTRUSTED = "127.0.0.66"
NOT_A_REGISTRAR = (405, 501)  # RFC 4475 3.3.7: "Endpoints choosing not to act as registrars will simply reject"


@dataclass(frozen=True)
class Case:
    rfc: str
    section: str
    name: str
    expect: tuple[int, ...]  # the final statuses the RFC allows; () for a message that must go unanswered
    says: str  # what the RFC says a compliant element does
    gap: str = ""  # what the product does instead (the case is then a strict xfail)
    own_branch: bool = False
    own_call_id: bool = False
    src: str = TRUSTED
    reply_port: int = 5060
    match: str = ""  # what identifies the responses: the Call-ID unless given (or the branch, with own_branch)
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # headers the final response carries, with these values
    unanswered: str = ""  # a Call-ID nothing may come back for
    called: str | None = None  # the number the B2BUA must have read from the Request-URI ("invite rejected" in its log)

    @property
    def id(self) -> str:
        return f"rfc{self.rfc}-{self.section}-{self.name}"

    @property
    def is_response(self) -> bool:
        return self.raw().startswith(b"SIP/2.0 ")

    def raw(self) -> bytes:
        return (DATA / f"rfc{self.rfc}" / f"{self.name}.dat").read_bytes()

    def wire(self) -> bytes:
        """The bytes sent: the RFC's, with the top Via's branch (and the Call-ID) made this case's own where asked."""
        raw = self.raw()
        if self.own_branch:
            raw = re.sub(rb"branch=([^;,\s]+)", rb"branch=\1." + self.name.encode(), raw, count=1)
        if self.own_call_id:
            raw = re.sub(rb"\r\nCall-ID: (\S+)", rb"\r\nCall-ID: \1." + self.name.encode(), raw, count=1)
        return raw

    def token(self) -> bytes:
        """What every response to this message carries and no other response does."""
        if self.match:
            return self.match.encode()
        if self.own_branch:
            found = re.search(rb"branch=([^;,\s]+)", self.wire())
            assert found, f"{self.id}: no branch"
            return found.group(1)
        assert self.call_id(), f"{self.id}: nothing to match responses by"
        return self.call_id().encode("latin-1")

    def call_id(self) -> str:
        """The (first) Call-ID, long or compact form, as sent."""
        found = re.search(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)", self.wire().split(b"\r\n\r\n", 1)[0])
        return found.group(1).decode("latin-1") if found else ""

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=self.gap)] if self.gap else []
        return pytest.param(self, id=self.id, marks=marks)


def _c(rfc: str, section: str, name: str, expect: tuple[int, ...], says: str, **kw: Any) -> Case:
    return Case(rfc, section, name, expect, says, **kw)


VALID_4475 = [  # RFC 4475 3.1.1: well-formed; each must be parsed and answered for what it is
    _c("4475", "3.1.1.1", "wsinv", (481,), "well-formed (folding, LWS, escapes, compact forms); its To tag makes it "
       "a re-INVITE in a dialog we do not have: 481 (RFC 3261 12.2.2)"),
    _c("4475", "3.1.1.2", "intmeth", (501,), "unknown method: endpoints generate a 501 listing the methods they "
       "understand in an Allow header field", headers=(("Allow", ("INVITE",)),)),
    _c("4475", "3.1.1.3", "esc01", (404,), "a parser must accept it, and treat %HEX HEX as the character; to the "
       "trunk: an unknown number, 404", own_branch=True, called="sips:user@example.com"),
    _c("4475", "3.1.1.4", "escnull", NOT_A_REGISTRAR, "well formed, parsers must accept it; not a registrar: "
       "REGISTER refused for what it is", own_branch=True),
    _c("4475", "3.1.1.5", "esc02", (501,), "unknown method RE%47IST%45R (not REGISTER): an endpoint rejects it 501"),
    _c("4475", "3.1.1.6", "lwsdisp", (200,), "no LWS before <: elements should accept it as well formed",
       own_branch=True),
    _c("4475", "3.1.1.7", "longreq", (403,), "long values and 34 Vias: well formed; sent from an untrusted "
       "source: 403", src=UNTRUSTED),
    _c("4475", "3.1.1.8", "dblreq", NOT_A_REGISTRAR, "the REGISTER is handled normally; the INVITE octets after "
       "it are noise that must be ignored (RFC 3261 18.3)", unanswered="dblreq.0ha0isnda977644900765@192.0.2.15"),
    _c("4475", "3.1.1.9", "semiuri", (200,), "user part 'user;par=u@example.net': accepted as well formed",
       own_branch=True),
    _c("4475", "3.1.1.10", "transports", (200,), "SCTP, TLS and unknown transports in Via: accepted as well formed",
       own_branch=True),
    _c("4475", "3.1.1.11", "mpart01", (200, 202, 405, 415, 501), "multipart MESSAGE with NUL octets: parsers must "
       "accept it even if the application does not support the body"),
    _c("4475", "3.1.1.12", "unreason", (), "a 200 with a UTF-8 reason phrase is well formed; unsolicited, so "
       "discarded without an answer"),
    _c("4475", "3.1.1.13", "noreason", (), "a 100 with an empty reason phrase is well formed; unsolicited, so "
       "discarded without an answer"),
]

INVALID_4475 = [  # RFC 4475 3.1.2: syntactically invalid
    _c("4475", "3.1.2.1", "badinv01", (400,), "extra ; and , in Via and Contact: should respond 400"),
    _c("4475", "3.1.2.2", "clerr", (400,), "Content-Length larger than the datagram's body, over UDP: should "
       "respond 400"),
    _c("4475", "3.1.2.3", "ncl", (400,), "negative Content-Length: should respond with an error", own_branch=True),
    _c("4475", "3.1.2.4", "scalar02", (400,), "CSeq above 2**32-1 (and other scalars out of range): should respond "
       "400 due to the CSeq"),
    _c("4475", "3.1.2.5", "scalarlg", (), "a response with scalars out of range: simply discarded"),
    _c("4475", "3.1.2.6", "quotbal", (400, 404), "unterminated quote in To: should return 400 (or infer the quote "
       "and process it: 404)", reply_port=5050),
    _c("4475", "3.1.2.7", "ltgtruri", (400, 404), "Request-URI in <>: reasonable always to reject 400 (or ignore "
       "the brackets: 404)"),
    _c("4475", "3.1.2.8", "lwsruri", (400, 481), "LWS inside the Request-URI: should respond 400 (or ignore the LWS: "
       "its To tag then gives 481)"),
    _c("4475", "3.1.2.9", "lwsstart", (400, 404), "several SP in the Request-Line: acceptable to reject as malformed "
       "(or ignore them: 404 for 'user')", called="user"),
    _c("4475", "3.1.2.10", "trws", (400, 200), "SP after SIP-Version: acceptable to reject (or ignore it: 200)"),
    _c("4475", "3.1.2.11", "escruri", (400, 404), "escaped headers in the Request-URI: acceptable to reject 400 (or "
       "ignore them: 404)", own_branch=True),
    _c("4475", "3.1.2.12", "baddate", (400, 404), "non-GMT Date: may be rejected, but an element not using Date "
       "should ignore it (404)", own_branch=True, called="user"),
    _c("4475", "3.1.2.13", "regbadct", (400, *NOT_A_REGISTRAR), "escaped header in an addr-spec Contact: reasonable "
       "to respond 400 (or infer the <>)", own_branch=True),
    _c("4475", "3.1.2.14", "badaspec", (400, 200), "spaces in the To addr-spec: must not break; 400 reasonable (or "
       "ignore the spaces: 200)"),
    _c("4475", "3.1.2.15", "baddn", (400, 200), "unquoted display names with non-token characters: 400 (or infer "
       "the quotes: 200)", own_branch=True),
    _c("4475", "3.1.2.16", "badvers", (505,), "SIP/7.0: should respond 505 Version Not Supported", own_branch=True),
    _c("4475", "3.1.2.17", "mismatch01", (400,), "CSeq method unlike the Request-Line's: any element responds 400",
       own_branch=True),
    _c("4475", "3.1.2.18", "mismatch02", (501, 400), "unknown method and a CSeq mismatch: 501 (400 also acceptable)"),
    _c("4475", "3.1.2.19", "bigcode", (), "a response code above 699: simply dropped"),
]

SEMANTICS_4475 = [  # RFC 4475 3.2 (transaction layer), 3.3 (application layer), 3.4 (backward compatibility)
    _c("4475", "3.2.1", "badbranch", (400, 200), "branch 'z9hG4bK' with no identifier: must not break; 400 or fall "
       "back to RFC 2543 matching (200)"),
    _c("4475", "3.3.1", "insuf", (400,), "no Call-ID, From or To: must not break; ideally 400",
       match="z9hG4bKkdj.insuf",
       gap="no response at all: without a Call-ID a 400 has nothing to correlate with; patches 0001/0011 answer "
           "only a request whose Via and Call-ID they can copy (RFC 4475 allows dropping it)"),
    _c("4475", "3.3.2", "unkscm", (416,), "unknown Request-URI scheme: accepted by the parser, rejected 416",
       own_branch=True),
    _c("4475", "3.3.3", "novelsc", (416,), "soap.beep: Request-URI an element never accepts: 416", own_branch=True),
    _c("4475", "3.3.4", "unksm2", (400, *NOT_A_REGISTRAR), "isbn:, http: and name: URIs in headers: parsers must not "
       "fail; a registrar would reject 400", own_branch=True),
    _c("4475", "3.3.5", "bext01", (420,), "Require (and Proxy-Require) nobody supports: 420 with Unsupported; a UA "
       "lists the Require ones", own_branch=True,
       headers=(("Unsupported", ("nothingSupportsThis", "nothingSupportsThisEither")),)),
    _c("4475", "3.3.6", "invut", (415,), "unknown Content-Type: an endpoint rejects it 415", own_branch=True),
    _c("4475", "3.3.7", "regaut01", NOT_A_REGISTRAR, "unknown Authorization scheme: parsers must not fail; endpoints "
       "not acting as registrars reject it, 405 appropriate", own_branch=True,
       gap="'400 Bad Request': pjsip's parser refuses an Authorization whose scheme is neither Digest nor PGP"),
    _c("4475", "3.3.8", "multi01", (400,), "several Call-ID, To, From, Max-Forwards and CSeq: must not break; 400",
       own_branch=True, match="multi01.98asdh"),
    _c("4475", "3.3.9", "mcl01", (400,), "conflicting Content-Length values: should respond with an error"),
    _c("4475", "3.3.10", "bcast", (), "a 200 with a broadcast Via: an endpoint simply discards it"),
    _c("4475", "3.3.11", "zeromf", (200,), "Max-Forwards 0: an endpoint processes it as if the value were positive "
       "(no 483)"),
    _c("4475", "3.3.12", "cparam01", NOT_A_REGISTRAR, "REGISTER with a contact-param: should succeed at a registrar",
       own_branch=True),
    _c("4475", "3.3.13", "cparam02", NOT_A_REGISTRAR, "REGISTER with a uri-param: should succeed at a registrar",
       own_branch=True),
    _c("4475", "3.3.14", "regescrt", NOT_A_REGISTRAR, "REGISTER with an escaped Route in the Contact URI: should "
       "succeed at a registrar", own_branch=True),
    _c("4475", "3.3.15", "sdp01", (406, 400, 404), "Accept without application/sdp: 406 with a Warning, or 400; "
       "the 404 for an unknown number has no body for Accept to refuse (RFC 3261 8.2.2.1 comes first)",
       own_branch=True, called="user"),
    _c("4475", "3.4.1", "inv2543", (404,), "RFC 2543 syntax (no branch, no From tag, no Content-Length, no "
       "Max-Forwards): accepted for backward compatibility; an unknown number, 404",
       gap="'400 Bad Request' with 'Warning: 399 vm \"Bad/missing Contact header\"': pjsip_inv_verify_request "
           "wants the Contact RFC 2543 did not require"),
]

IPV6_5118 = [  # RFC 5118 section 4, sent over IPv4: the IPv6 references are in headers and SDP only
    _c("5118", "4.1", "ipv6-good", NOT_A_REGISTRAR, "IPv6 references in Request-URI, Via, Contact: well formed",
       own_branch=True, own_call_id=True),
    _c("5118", "4.2", "ipv6-bad", (400,), "IPv6 Request-URI host without [ ]: should respond 400", own_branch=True,
       own_call_id=True),
    _c("5118", "4.3", "port-ambiguous", NOT_A_REGISTRAR, "[2001:db8::10:5070] is an address, no port: well formed",
       own_branch=True, own_call_id=True),
    _c("5118", "4.4", "port-unambiguous", NOT_A_REGISTRAR, "[2001:db8::10]:5070: well formed", own_branch=True,
       own_call_id=True),
    _c("5118", "4.5", "via-received-param-with-delim", (481,), "received=[...]: robust implementations parse the "
       "top Via and go on (a BYE with no dialog: 481)", own_branch=True),
    _c("5118", "4.5", "via-received-param-no-delim", (200,), "received=2001:db8::9:255: valid", own_branch=True),
    _c("5118", "4.6", "ipv6-in-sdp", (404, 488), "IPv6 in the SDP (c=IN IP6): valid; an unknown number (404), or "
       "488 for an offer (G726-32, H.263) with no codec we take", own_branch=True),
    _c("5118", "4.7", "mult-ip-in-header", (481,), "IPv4 and IPv6 Vias: valid (a BYE with no dialog: 481)",
       own_branch=True, reply_port=6050),
    _c("5118", "4.8", "mult-ip-in-sdp", (404, 488), "IP4 and IP6 media lines: valid; an unknown number, 404 (or 488)",
       own_branch=True,
       gap="'400 Bad SDP' with 'Warning: 399 vm \"SDP name/subject line is empty (PJMEDIA_SDP_EINNAME)\"': pjmedia "
           "refuses the RFC's empty 's=' line (RFC 4566 5.3 asks for 's= ')"),
    _c("5118", "4.9", "ipv4-mapped-ipv6", (404, 488), "::ffff:192.0.2.x in Via, Contact, SDP: must be parsed; 404, or "
       "488 for an offer (G726-32, H.263) with no codec we take", own_branch=True, reply_port=19823),
    _c("5118", "4.10", "ipv6-bug-abnf-3-colons", (200,), "[2001:db8:::192.0.2.1]: an implementation must tolerate "
       "both constructs", own_branch=True, own_call_id=True),
    _c("5118", "4.10", "ipv6-correct-abnf-2-colons", (200,), "[2001:db8::192.0.2.1]: valid", own_branch=True,
       own_call_id=True),
]

CASES = VALID_4475 + INVALID_4475 + SEMANTICS_4475 + IPV6_5118
