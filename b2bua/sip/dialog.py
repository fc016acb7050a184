"""A dialog as plain data, read from the message that confirmed it, and the BYE that ends it from a fresh process.

The SIP thread reads a ``Dialog`` when a leg is confirmed (pjsua2 does not hand over tags or the route set), so
that after a crash the next start can end every dialog the dead process held (RFC 3261 §12.2.1.1, §15.1.1) before
its SIP engine takes the port. Plain text in and out: no pjsua2, no I/O.
"""

from __future__ import annotations

import ipaddress
import re

from b2bua.sip import message
from b2bua.sip.streams import Transport
from b2bua.sip.types import Dialog, Headers

# pjsip starts a dialog's local CSeq below 2**15 and adds one per request it sends in the dialog (re-INVITE, UPDATE
# for a session refresh, INFO): a BYE from a fresh process uses this much more than the highest CSeq we saw, so it
# stays above whatever the dead process sent later (a million in-dialog requests) and below 2**31.
CSEQ_FLOOR = 0x7FFF
CSEQ_HEADROOM = 1 << 20
RESTART_REASON = 'SIP;cause=500;text="restart after failure"'

_TAG = re.compile(r";\s*tag\s*=\s*([^;,\s]+)", re.IGNORECASE)
_SENT_BY_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_TRANSPORT_PARAM = re.compile(r";\s*transport\s*=\s*(tcp|tls)\b", re.IGNORECASE)
_HOST_PORT = re.compile(r"^(?:sips?):(?:[^@;>?]*@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ reading headers
def split_values(value: str) -> list[str]:
    """One header line's comma-separated values (Route: <a>, <b>); commas inside <> or quotes do not split."""
    out: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [v for v in out if v]


def all_values(headers: Headers, name: str) -> list[str]:
    lname = name.lower()
    return [v for n, v in headers if n.lower() == lname for v in split_values(v)]


def uri_and_tag(value: str) -> tuple[str, str]:
    """A From/To value as (URI, tag): ``"A" <sip:a@h>;tag=1`` gives ``("sip:a@h", "1")``."""
    value = value.strip()
    if "<" in value:
        uri, _, params = value.partition("<")[2].partition(">")
    else:  # addr-spec: every parameter belongs to the header (RFC 3261 §20.10)
        uri, _, rest = value.partition(";")
        params = ";" + rest if rest else ""
    m = _TAG.search(params)
    return uri.strip(), m.group(1) if m else ""


def bare_uri(value: str) -> str:
    """The URI of a name-addr or addr-spec (Contact, Route), without header parameters."""
    value = value.strip()
    if "<" in value:
        return value.partition("<")[2].partition(">")[0].strip()
    return value.partition(";")[0].strip()


def host_port(uri: str) -> tuple[str, int] | None:
    """Where a SIP URI points (host without brackets, port; when none is given 5061 for TLS, else 5060)."""
    m = _HOST_PORT.match(bare_uri(uri))
    if m is None:
        return None
    return m.group(1).strip("[]"), int(m.group(2)) if m.group(2) else (5061 if uri_transport(uri) == "tls" else 5060)


def uri_transport(value: str) -> Transport:
    """The transport a SIP URI (bare, or in a name-addr) asks for: sips: or ;transport=tls is TLS, ;transport=tcp
    TCP, anything else UDP (as pjsip resolves a target with a port: no NAPTR/SRV)."""
    value = value.strip()
    uri = value.partition("<")[2].partition(">")[0] if "<" in value else value
    if uri.lower().startswith("sips:"):
        return "tls"
    m = _TRANSPORT_PARAM.search(uri)
    return "tls" if m and m.group(1).lower() == "tls" else "tcp" if m else "udp"


def transport_of(dialog: Dialog) -> Transport:
    """Where in-dialog requests go and how: the first loose Route's transport, else the remote target's."""
    first = dialog.route_set[0] if dialog.route_set and _loose(dialog.route_set[0]) else dialog.request_uri
    return uri_transport(first)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(address: str) -> tuple[str, int] | None:
    """``"1.2.3.4:5060"`` or ``"[::1]:5060"`` as (host, port)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _cseq_number(headers: Headers) -> int:
    number = (message.header(headers, "CSeq") or "").split(" ", 1)[0]
    return int(number) if number.isdigit() else 0


def _bye_cseq(seen: int) -> int:
    return max(seen, CSEQ_FLOOR) + CSEQ_HEADROOM


def _loose(route: str) -> bool:
    return ";lr" in bare_uri(route).lower()


# ------------------------------------------------------------------------------------------ reading dialogs
def from_sent_ack(ack: str, sent_to: str) -> Dialog | None:
    """An outbound leg: the ACK we sent for the 2xx carries the dialog as pjsip will use it (Request-URI, Route
    set, tags, the INVITE's CSeq); ``sent_to`` is where it went ("" if pjsip had not resolved it yet)."""
    request_line, headers = message.request_line_and_headers(ack)
    if not request_line.startswith("ACK "):
        return None
    local_uri, local_tag = uri_and_tag(message.header(headers, "From") or "")
    remote_uri, remote_tag = uri_and_tag(message.header(headers, "To") or "")
    request_uri = message.request_uri(request_line)
    routes = tuple(all_values(headers, "Route"))
    destination = sent_to if split_host_port(sent_to) else _next_hop(request_uri, routes)
    return _checked(Dialog(message.header(headers, "Call-ID") or "", local_uri, local_tag, remote_uri, remote_tag,
                           request_uri, routes, destination, _bye_cseq(_cseq_number(headers))))


def from_received_ack(ack: str, invite_headers: Headers, remote_contact: str, received_from: str) -> Dialog | None:
    """An inbound leg: tags from the ACK the caller sent; the remote target (pjsua's current view of the caller's
    Contact, else the INVITE's) and the route set (the INVITE's Record-Route, in order) from the INVITE."""
    request_line, headers = message.request_line_and_headers(ack)
    if not request_line.startswith("ACK "):
        return None
    remote_uri, remote_tag = uri_and_tag(message.header(headers, "From") or "")
    local_uri, local_tag = uri_and_tag(message.header(headers, "To") or "")
    target = bare_uri(remote_contact) or bare_uri(message.header(invite_headers, "Contact") or "")
    routes = all_values(invite_headers, "Record-Route")
    if routes and not _loose(routes[0]):  # a strict router (RFC 2543): it becomes the Request-URI (§12.2.1.1)
        request_uri, route_set = bare_uri(routes[0]), (*routes[1:], f"<{target}>")
        destination = _next_hop(request_uri, ())
    else:
        request_uri, route_set = target, tuple(routes)
        destination = _next_hop(request_uri, route_set)
    destination = destination or received_from
    return _checked(Dialog(message.header(headers, "Call-ID") or "", local_uri, local_tag, remote_uri, remote_tag,
                           request_uri, route_set, destination, _bye_cseq(0)))


def _next_hop(request_uri: str, routes: tuple[str, ...]) -> str:
    """The first loose Route, else the Request-URI. (For an ACK pjsip sent through a strict router, ``routes``
    would start with the router after it: only used when pjsip had not resolved the ACK's destination itself.)"""
    first = routes[0] if routes and _loose(routes[0]) else request_uri
    found = host_port(first)
    return join_host_port(*found) if found else ""


def _checked(dialog: Dialog) -> Dialog | None:
    """Only a dialog a BYE can be built for: Call-ID, both tags, a target and a destination."""
    needed = (dialog.sip_call_id, dialog.local_tag, dialog.remote_tag, dialog.request_uri, dialog.destination)
    return dialog if all(needed) else None


# ------------------------------------------------------------------------------------------ the BYE
def build_bye(dialog: Dialog, *, via_host: str, via_port: int, branch: str, user_agent: str = "",
              reason: str = RESTART_REASON, transport: Transport = "udp") -> bytes:
    """An in-dialog BYE (RFC 3261 §15.1.1) sent over ``transport`` from ``via_host:via_port``, with ``rport`` so
    the response comes back to the port (or connection) it was sent from."""
    lines = [
        f"BYE {dialog.request_uri} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {join_host_port(via_host, via_port)};rport;branch={branch}",
        "Max-Forwards: 70",
        f"From: <{dialog.local_uri}>;tag={dialog.local_tag}",
        f"To: <{dialog.remote_uri}>;tag={dialog.remote_tag}",
        f"Call-ID: {dialog.sip_call_id}",
        f"CSeq: {dialog.cseq} BYE",
        *(f"Route: {r}" for r in dialog.route_set),
        f"Reason: {reason}",
        *([f"User-Agent: {user_agent}"] if user_agent else []),
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def read_response(data: bytes) -> tuple[int, str] | None:
    """A response to one of our BYEs as (status, Via branch); None for anything else (a request, garbage)."""
    text = data.decode("utf-8", "replace")
    status_line, _, _ = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    _, headers = message.request_line_and_headers(text)
    if not (message.header(headers, "CSeq") or "").upper().endswith(" BYE"):
        return None
    m = _SENT_BY_BRANCH.search(message.header(headers, "Via") or "")
    return (int(parts[1]), m.group(1)) if m else None
