"""Creating and configuring the pjsua2 Endpoint and our account's configuration, on the SIP thread.

One Endpoint per process, driven by the engine thread alone (``threadCnt=0``, ``mainThreadOnly``): pjsua2
callbacks then arrive on that thread only, and no pjsua2 object is ever touched by two threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pjsua2 as pj

from b2bua.sip import edge
from b2bua.sip.build_info import has_ipv6
from b2bua.sip.config import AccountPlan, AccountSpec, EngineConfig, uri_host
from b2bua.sip.legs import PjLogWriter


def create_endpoint(c: EngineConfig, writer: PjLogWriter,
                    log: Callable[[int, str], None]) -> tuple[pj.Endpoint, dict[str, int]]:
    """A started Endpoint with our SIP listeners (and their transport ids by name: "udp", "tcp", "tls"), a null
    sound device, the configured codecs, and the edge (what we advertise, whose requests we take: ``edge``).

    The caller keeps ``writer`` alive as long as the Endpoint: pjsua2 holds it only by a raw pointer.
    """
    if c.ipv6 and not has_ipv6():
        raise RuntimeError(f"listen_ip {c.listen_ip} is IPv6, but this pjsua2 build has no IPv6 (PJ_HAS_IPV6 0): "
                           "rebuild it with scripts/build-pjsua2.sh (its config_site.h enables IPv6)")
    before = _thread_ids()
    ep = pj.Endpoint()
    ep.libCreate()
    ep.libInit(_ep_config(c, writer))
    # before any listener exists: no request is ever answered with pjsua's full Allow or from an untrusted source
    edge.advertise(ep, log)
    edge.filter_sources(ep, c.edge, log)
    transports = _create_transports(ep, c)
    ep.libStart()
    # no sound device, but a clock for the conference bridge
    ep.audDevManager().setNullDev()
    if c.media_nice:
        _deprioritise(_thread_ids() - before, c.media_nice, log)
    _select_codecs(ep, c, log)
    _check_srtp_suites(ep, c)
    return ep, transports


def account_configs(c: EngineConfig, transports: dict[str, int], plan: AccountPlan) -> dict[str, pj.AccountConfig]:
    """The plan's accounts by name, each with the fixed Contact of its transport: pjsua would otherwise write the
    interface address into TCP/TLS Contacts, not ``public_host``. TLS and TCP accounts are bound to their
    transport, so pjsua picks their inbound account for requests arriving over TLS/TCP (it prefers an account
    whose transport matches, then priority, then the first made); UDP accounts are not bound, so pjsip may still
    move a large request to TCP. Inbound accounts get the higher priority (see ``AccountPlan``)."""
    host = uri_host(c.public_host or c.listen_ip)
    uris = {"udp": f"sip:b2bua@{host}:{c.listen_port}"}
    if c.tls is not None:
        # sips: identity and Contact: a sips: request requires a sips: Contact (RFC 5630; else pjsip's 480)
        uris["tls"] = f"sips:b2bua@{host}:{c.tls.port}"
    if c.tcp:
        uris["tcp"] = f"sip:b2bua@{host}:{c.listen_port};transport=tcp"
    out: dict[str, pj.AccountConfig] = {}
    for spec in plan.accounts:
        bound = transports[spec.transport] if spec.transport != "udp" else None
        acfg = _account_config(c, uris[spec.transport], bound)
        acfg.priority = 1 if spec.inbound else 0
        _set_srtp(acfg, spec)
        out[spec.name] = acfg
    return out


def _account_config(c: EngineConfig, uri: str, transport_id: int | None) -> pj.AccountConfig:
    """An account: its RTP port range and SDP address, a fixed Contact, the credentials for trunks that
    challenge us."""
    acfg = pj.AccountConfig()
    acfg.idUri = uri.split(";", 1)[0]
    acfg.sipConfig.contactForced = f"<{uri}>"
    if transport_id is not None:
        acfg.sipConfig.transportId = transport_id
    acfg.mediaConfig.transportConfig.port = c.rtp_port_start
    acfg.mediaConfig.transportConfig.portRange = c.rtp_port_count
    acfg.mediaConfig.transportConfig.boundAddress = c.listen_ip
    # IPv6: RTP sockets of that family and c=IN IP6 in SDP (pjsua would otherwise make IPv4 ones). IPv4: stated,
    # since a build with IPv6 defaults to "prefer IPv4", which would try IPv6 media on listen_ip for an IPv6 offer
    use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY if c.ipv6 else pj.PJSUA_IPV6_DISABLED
    acfg.mediaConfig.ipv6Use = acfg.sipConfig.ipv6Use = use
    if c.media_public_address:  # SDP c=/o= (pjmedia's "mapped" address); RTP stays bound to listen_ip
        acfg.mediaConfig.transportConfig.publicAddress = c.media_public_address
    # otherwise pjsua sends a codec-locking re-INVITE that simple peers (SIPp scenarios) reject
    acfg.mediaConfig.lockCodecEnabled = False
    for realm, user, password in c.credentials:  # pjsua answers 401/407 itself; never with a wildcard realm
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", realm, user, 0, password))
    return acfg


def _set_srtp(acfg: pj.AccountConfig, spec: AccountSpec) -> None:
    """SDES-SRTP as the account's spec says. Keys travel in the SDP, so with ``secure_signaling`` pjsua refuses
    SRTP on a call whose INVITE did not go over TLS (488) rather than send keys in clear text."""
    mc = acfg.mediaConfig
    mc.srtpUse = _SRTP_USE[spec.srtp]
    mc.srtpSecureSignaling = 1 if spec.secure_signaling else 0
    if spec.srtp == "off":
        return
    cryptos = pj.SrtpCryptoVector()
    for name in spec.suites:
        crypto = pj.SrtpCrypto()
        crypto.name, crypto.key, crypto.flags = name, "", 0  # no key: a fresh random one per call
        cryptos.append(crypto)
    mc.srtpOpt.cryptos = cryptos
    keyings = pj.IntVector()
    keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)  # no DTLS-SRTP
    mc.srtpOpt.keyings = keyings


_SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
             "mandatory": pj.PJMEDIA_SRTP_MANDATORY}


def _check_srtp_suites(ep: pj.Endpoint, c: EngineConfig) -> None:
    """Refuse to start with a suite the SRTP library lacks (libsrtp2 without OpenSSL has no AES-GCM, say): pjsua
    would otherwise drop it silently and a trunk asking for only that suite would fail every call."""
    wanted = {s for t in c.trunks if t.srtp != "off" for s in t.srtp_suites}
    if not wanted:
        return
    have = {str(x) for x in ep.srtpCryptoEnum()}  # empty in a build without SRTP
    missing = sorted(wanted - have)
    if missing:
        raise RuntimeError(f"SRTP suites {', '.join(missing)} are not in this pjsua2 build "
                           f"(it has: {', '.join(sorted(have)) or 'no SRTP'})")


def _create_transports(ep: pj.Endpoint, c: EngineConfig) -> dict[str, int]:
    """Exactly the configured listeners: UDP (always), TCP on the same port, TLS on its own port.

    A TCP listener also lets pjsip send a request of 1300 bytes or more over TCP instead of UDP (RFC 3261
    §18.1.1, PJSIP_UDP_SIZE_THRESHOLD). pjsip binds a listener to one address family, named by its type: an
    IPv6 ``listen_ip`` takes the ...6 types (their names stay "udp", "tcp", "tls": the plan's transports)."""
    udp, tcp, tls_type = _TYPES[c.ipv6]
    ids = {"udp": ep.transportCreate(udp, _transport_config(c, c.listen_port))}
    if c.tcp:
        ids["tcp"] = ep.transportCreate(tcp, _transport_config(c, c.listen_port))
    if c.tls is not None:
        tcfg = _transport_config(c, c.tls.port)
        tls = tcfg.tlsConfig
        tls.certFile, tls.privKeyFile, tls.CaListFile = c.tls.cert_file, c.tls.key_file, c.tls.ca_file
        tls.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3  # no SSLv3/TLS 1.0/1.1
        tls.verifyServer = c.tls.verify_server
        tls.verifyClient = tls.requireClientCert = c.tls.verify_client
        ids["tls"] = ep.transportCreate(tls_type, tcfg)
    return {k: int(v) for k, v in ids.items()}


_TYPES = {False: (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP, pj.PJSIP_TRANSPORT_TLS),
          True: (pj.PJSIP_TRANSPORT_UDP6, pj.PJSIP_TRANSPORT_TCP6, pj.PJSIP_TRANSPORT_TLS6)}


def _transport_config(c: EngineConfig, port: int) -> pj.TransportConfig:
    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = c.listen_ip
    if c.public_host:
        tcfg.publicAddress = c.public_host
    return tcfg


def _ep_config(c: EngineConfig, writer: PjLogWriter) -> pj.EpConfig:
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = cfg.uaConfig.maxCalls  # the compiled maximum
    cfg.uaConfig.userAgent = c.user_agent
    cfg.logConfig.level = c.log_level
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.writer = writer
    cfg.logConfig.decor = 0
    cfg.medConfig.threadCnt = c.media_threads
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.channelCount = 1
    # The bridge's work is per frame and per port: a 40 ms frame halves it (and a 40 ms packet halves the
    # sends), for 20 ms more mouth-to-ear delay.
    cfg.medConfig.audioFramePtime = c.ptime_ms
    return cfg


def _select_codecs(ep: pj.Endpoint, c: EngineConfig, log: Callable[[int, str], None]) -> None:
    """Only the configured codecs are offered (priority 0 disables the rest); they get the configured ptime."""
    wanted = {x.lower() for x in c.codecs}
    for ci in ep.codecEnum2():
        cid = str(ci.codecId)
        name = cid.rsplit("/", 1)[0] if cid.count("/") >= 2 else cid
        ep.codecSetPriority(cid, 200 if name.lower() in wanted else 0)
        if name.lower() in wanted and c.ptime_ms != 20:
            _set_ptime(ep, cid, c.ptime_ms, log)


def _set_ptime(ep: pj.Endpoint, cid: str, ptime_ms: int, log: Callable[[int, str], None]) -> None:
    """Packets of ``ptime_ms`` (whole codec frames; G.711 frames are 10 ms). pjmedia's SDP names no a=ptime,
    so peers keep sending their own packetisation, which the jitter buffer takes as it comes."""
    param = ep.codecGetParam(cid)
    frame_ms = max(1, int(param.info.frameLen))
    param.setting.frmPerPkt = max(1, ptime_ms // frame_ms)
    ep.codecSetParam(cid, param)
    log(4, f"{cid}: {param.setting.frmPerPkt} frames of {frame_ms} ms per packet")


def _deprioritise(tids: set[int], nice: int, log: Callable[[int, str], None]) -> None:
    """Lower the threads pjmedia started (RTP ioqueue, conference clock): under heavy media load they must
    not starve the SIP thread and asyncio, which would turn into slow call set-up and retransmissions."""
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError as e:
            log(2, f"cannot renice media thread {tid}: {e}")
    log(4, f"media threads {sorted(tids)} at nice {nice}")


def _thread_ids() -> set[int]:
    """This process's threads, to find the ones pjmedia starts."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux: nothing to renice
        return set()
