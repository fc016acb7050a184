/* pjproject limits for a B2BUA. Copied to pjlib/include/pj/config_site.h by scripts/build-pjsua2.sh.
 * Changing this file changes the build cache key, so the library is rebuilt. */
#ifndef B2BUA_CONFIG_SITE_H
#define B2BUA_CONFIG_SITE_H

/* Calls are legs: a bridged call uses two. PyPI wheels have 4. */
#define PJSUA_MAX_CALLS             2048
#define PJSUA_MAX_ACC               64
/* Every leg holds an RTP and an RTCP socket (a bridged call: 4), plus SIP transports and spares. */
#define PJ_IOQUEUE_MAX_HANDLES      (4 * PJSUA_MAX_CALLS + 64)
/* One port per leg plus players (ringback, music on hold, tones) and recorders (voicemail). */
#define PJSUA_MAX_PLAYERS           256
#define PJSUA_MAX_RECORDERS         256
#define PJSUA_MAX_CONF_PORTS        (PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + PJSUA_MAX_RECORDERS + 16)

#define PJSIP_MAX_TSX_COUNT         (16 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT      (16 * 1024 - 1)

/* One thread polls each ioqueue, so EPOLLEXCLUSIVE/EPOLLONESHOT (for several pollers) buy nothing and
 * cost epoll_ctl() calls per packet: level-triggered epoll instead (see patch 0003). With ~1000 RTP sockets
 * readable per 20 ms, handle more of them per epoll_wait(). */
#define PJ_IOQUEUE_DEFAULT_EPOLL_FLAGS      0
#define PJ_IOQUEUE_MAX_EVENTS_IN_SINGLE_POLL 64

/* A server: no video, no sound device, no assertions that abort the process. */
#define PJMEDIA_HAS_VIDEO           0
/* SDES-SRTP (RFC 4568) for trunks that ask for it (trunk setting srtp), with Debian's libsrtp2
 * (--with-external-srtp). Upstream pjsua would then wrap every leg's RTP in an SRTP adapter, idle on plain calls
 * (a 6 kB pool per leg, one more call per packet): patch 0008 makes it only for accounts that use SRTP. No
 * DTLS-SRTP (pjproject's default, stated here): keys come in the SDP over TLS signalling. */
#define PJMEDIA_HAS_SRTP            1
#define PJMEDIA_SRTP_HAS_SDES       1
#define PJMEDIA_SRTP_HAS_DTLS       0
/* IPv6 carriers (sip.listen_ip = "::1"): pjlib's default is no IPv6, and pjsua then refuses an account that
 * binds RTP to an IPv6 address (ipv6Use, PJ_EINVAL). */
#define PJ_HAS_IPV6                 1
#define PJ_ENABLE_EXTRA_CHECK       1
#define PJ_DEBUG                    0

#endif
