"""Just enough SIP text parsing for what pjsua2 does not hand over parsed (Request-URI, raw headers)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from b2bua.sip.types import Headers

_COMPACT = {"f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "v": "Via", "l": "Content-Length",
            "c": "Content-Type", "k": "Supported", "e": "Content-Encoding", "s": "Subject"}
_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")  # RFC 3261 7.3.1: a folded line is one SP
_URI_USER = re.compile(r"^(?:sips?|tel):([^@;>?]+)", re.IGNORECASE)
_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>')


def request_line_and_headers(whole: str) -> tuple[str, Headers]:
    head = _FOLD.sub(" ", whole.split("\r\n\r\n", 1)[0])
    lines = head.split("\r\n")
    out: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        out.append((_COMPACT.get(name.lower(), name), value.strip()))
    return lines[0], tuple(out)


def request_uri(request_line: str) -> str:
    """The Request-URI; runs of spaces between the parts are read as one, as pjsip's parser reads them
    (RFC 4475 §3.1.2.9: the request is taken, so the number must be too)."""
    parts = request_line.split()
    return parts[1] if len(parts) >= 3 else ""


def uri_user(uri: str) -> str:
    uri = uri.strip()
    m = _NAME_ADDR.match(uri)
    if m:
        uri = m.group(3)
    u = _URI_USER.match(uri.strip("<>"))
    return u.group(1) if u else ""


_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_VISUAL = re.compile(r"[-.()]")  # RFC 3966 visual separators
_PHONE = re.compile(r"\+?[0-9*#]+")


def called_number(request_uri: str) -> str:
    """The number a Request-URI calls (``sip:``/``sips:`` user part or ``tel:`` subscriber), as dialled: the
    part before any parameter (``;npdi``, ``;rn=``: RFC 4694's routing number names the ported-to switch, not
    the destination), visual separators removed, a global ``phone-context`` (RFC 3966) put in front of a local
    number. A user part that is no phone number ("alice") comes back as it is."""
    uri = request_uri.strip().strip("<>")
    m = _SCHEME.match(uri)
    if not m:
        return ""
    rest = uri[m.end():]
    if m.group(1).lower() == "tel":
        user = rest.partition("?")[0]
    else:
        user, at, _ = rest.partition("@")
        if not at:
            return ""  # sip:host: no user part
    number, _, params = user.partition(";")
    number = unquote(number)
    plain = _VISUAL.sub("", number)
    if not _PHONE.fullmatch(plain):
        return number
    if not plain.startswith("+"):
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "phone-context" and value.startswith("+"):
                return _VISUAL.sub("", unquote(value)) + plain
    return plain


def display_name(name_addr: str) -> str:
    m = _NAME_ADDR.match(name_addr)
    if not m:
        return ""
    return (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()


def header(headers: Headers, name: str) -> str | None:
    lname = name.lower()
    for n, v in headers:
        if n.lower() == lname:
            return v
    return None


def body(whole: str) -> str:
    """The message body (SDP), capped: only a few attributes are ever read from it."""
    _, sep, rest = whole.partition("\r\n\r\n")
    return rest[:4096] if sep else ""


_AUTO_ANSWER = re.compile(r"auto-?answer|answer-after|intercom", re.IGNORECASE)


def is_paging(headers: Headers, sdp: str) -> bool:
    """A page: asks for auto-answer (Alert-Info/Call-Info, as paging servers and phones use them) and offers
    one-way audio. An intercom call asks for auto-answer too but talks both ways: that is a normal call."""
    hint = any(n.lower() in ("alert-info", "call-info") and _AUTO_ANSWER.search(v) for n, v in headers)
    return hint and bool(re.search(r"^a=sendonly\s*$", sdp, re.MULTILINE))
