"""The SIP edge, set on the Endpoint at start on the SIP thread: what we advertise and who may open requests.

Advertised capabilities (patch 0010): pjsua registers Allow, Supported and Accept for all it can do (presence,
instant messages, transfer, ...). The product handles calls only, so the Endpoint keeps just what is handled here;
an out-of-dialog request of a method taken out of Allow then gets 405 before a pjsua module could make a
subscription or answer a MESSAGE.

Source filter (patch 0009): out-of-dialog requests from outside the trusted sources are refused statelessly (403,
or dropped) before pjsua makes a call, a dialog and a media transport for them, so a flood from an untrusted
address costs no memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pjsua2 as pj

from b2bua.sip.config import EdgeConfig

# INFO: DTMF in SIP INFO (application/dtmf-relay) reaches onDtmfDigit like RFC 4733 events; UPDATE and PRACK:
# pjsip's invite session (offer/answer before the answer, reliable provisionals)
ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO")
# 100rel (RFC 3262) and timer (session timers, RFC 4028): both run in pjsip's invite session
SUPPORTED = ("100rel", "timer")
ACCEPT = ("application/sdp",)


def advertise(ep: pj.Endpoint, log: Callable[[int, str], None]) -> None:
    """Keep only what the product handles in the Endpoint's Allow, Supported and Accept; after ``libInit`` (the
    modules have registered theirs), before ``libStart``."""
    if not hasattr(ep, "keepCapabilities"):
        log(2, "this pjsua2 build lacks patch 0010: Allow and Supported name what the product does not handle")
        return
    for htype, tags in ((pj.PJSIP_H_ALLOW, ALLOW), (pj.PJSIP_H_SUPPORTED, SUPPORTED), (pj.PJSIP_H_ACCEPT, ACCEPT)):
        ep.keepCapabilities(htype, _strings(tags))
    log(4, f"Allow: {', '.join(ep.getCapabilities(pj.PJSIP_H_ALLOW))}; "
           f"Supported: {', '.join(ep.getCapabilities(pj.PJSIP_H_SUPPORTED))}")


def filter_sources(ep: pj.Endpoint, edge: EdgeConfig | None, log: Callable[[int, str], None]) -> None:
    """Turn the source filter on (``edge`` None: leave it off)."""
    if edge is None:
        return
    if not hasattr(ep, "setSourceFilter"):
        log(2, "this pjsua2 build lacks patch 0009: requests from untrusted sources reach pjsua and cost a call each")
        return
    cfg = pj.SourceFilterConfig()
    cfg.enabled = True
    cfg.trusted = _strings(edge.trusted)
    cfg.drop = edge.drop
    cfg.passInvites = edge.pass_invites
    ep.setSourceFilter(cfg)


def refused_counts(ep: pj.Endpoint) -> dict[str, int]:
    """Out-of-dialog requests the source filter refused so far: {"rejected": n, "dropped": n}."""
    if not hasattr(ep, "getSourceFilterStat"):
        return {"rejected": 0, "dropped": 0}
    stat = ep.getSourceFilterStat()
    return {"rejected": int(stat.rejected), "dropped": int(stat.dropped)}


def _strings(items: Iterable[str]) -> pj.StringVector:
    vec = pj.StringVector()
    for item in items:
        vec.append(item)
    return vec
