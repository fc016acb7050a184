/* rtpload: a light RTP source/echo for concurrency benchmarks (one thread, epoll, non-blocking UDP).
 *
 * SIPp's play_pcap_audio runs one thread per call and saturates its core near 400 calls, so the benchmark
 * of concurrent bridged calls lets SIPp do only the signalling and this tool own the media ports.
 * It binds --count UDP ports on --ip (from --first-port, every --step). Each port latches to the source
 * address of the first packet it receives and from then on sends one 160-byte PCMU packet (PT 0) every
 * 20 ms carrying a --tone Hz sine. Direct mode (--peer-ip/--peer-first-port): port i sends to peer port i
 * from the start, for the baseline without a B2BUA. Ports are spread over 10 slots of 2 ms so the load
 * is smooth, not one burst per 20 ms, as it would be with real calls.
 * Counters per port: received, "loud" received (mean |sample| above --threshold after mu-law decoding,
 * i.e. the other side's tone rather than the B2BUA's silence frames), sent.
 * SIGUSR1: reset the counters (window start). SIGUSR2: one JSON line on stdout. SIGTERM/SIGINT: exit.
 * Build: make -C perf rtpload. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 10          /* sub-ticks per 20 ms frame */
#define PAYLOAD 160       /* 20 ms of 8 kHz PCMU */
#define BATCH 8           /* datagrams per recvmmsg */
#define MAX_CATCHUP (SLOTS * 5)  /* more than 100 ms behind: drop the backlog instead of bursting */

struct port {
    int fd, latched;
    uint16_t seq;
    uint32_t ts, ssrc;
    uint64_t nsent;                 /* since start: tone phase */
    uint64_t rx, loud, tx;          /* since the window start; rx and loud in 20 ms frames, whatever the ptime */
    unsigned fpp;                   /* 20 ms frames per packet received last */
    int64_t seq_max, seq_first;     /* extended RTP sequence numbers received: highest ever, first in window */
};

static struct port *ports;
static int nports;
static uint8_t tone[8000 + PAYLOAD]; /* one whole period of the tone, plus one payload of wrap-around */
static int period;
static int16_t ulaw_dec[256];
static long threshold = 1000;
static uint64_t late_ticks;

static uint8_t ulaw_encode(int s) {
    int sign = s < 0 ? 0x80 : 0, exp = 7, mask = 0x4000;
    if (s < 0) s = -s;
    s = (s > 32635 ? 32635 : s) + 0x84;
    while (exp > 0 && !(s & mask)) { exp--; mask >>= 1; }
    return (uint8_t)~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F));
}

static int16_t ulaw_decode(uint8_t b) {
    b = (uint8_t)~b;
    int exp = (b >> 4) & 7, s = ((((b & 0x0F) << 3) + 0x84) << exp) - 0x84;
    return (int16_t)((b & 0x80) ? -s : s);
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + (double)r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

/* A connected socket skips the route lookup on every send and ignores other sources from then on. */
static void latch(struct port *p, const struct sockaddr_in *peer) {
    p->latched = connect(p->fd, (const struct sockaddr *)peer, sizeof *peer) == 0;
}

static void send_frame(struct port *p) {
    uint8_t pkt[12 + PAYLOAD];
    pkt[0] = 0x80;
    pkt[1] = p->nsent == 0 ? 0x80 : 0x00; /* marker on the first packet, PT 0 */
    uint16_t seq = htons(p->seq);
    uint32_t ts = htonl(p->ts), ssrc = htonl(p->ssrc);
    memcpy(pkt + 2, &seq, 2);
    memcpy(pkt + 4, &ts, 4);
    memcpy(pkt + 8, &ssrc, 4);
    memcpy(pkt + 12, tone + (p->nsent * PAYLOAD) % (uint64_t)period, PAYLOAD);
    if (send(p->fd, pkt, sizeof pkt, 0) == (ssize_t)sizeof pkt)
        p->tx++;
    p->seq++;
    p->ts += PAYLOAD;
    p->nsent++;
}

static void receive(struct port *p) {
    static uint8_t buf[BATCH][2048];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in src[BATCH];
    memset(m, 0, sizeof m);
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){buf[i], sizeof buf[i]};
        m[i].msg_hdr = (struct msghdr){.msg_name = &src[i], .msg_namelen = sizeof src[i], .msg_iov = &iov[i],
                                       .msg_iovlen = 1};
    }
    int n = recvmmsg(p->fd, m, BATCH, MSG_DONTWAIT, NULL);
    for (int i = 0; i < n; i++) {
        unsigned len = m[i].msg_len;
        const uint8_t *b = buf[i];
        if (len < 12 || (b[0] & 0xC0) != 0x80) continue; /* not RTP */
        if (!p->latched) latch(p, &src[i]);
        /* the span of sequence numbers counts frames the sender emitted in the window, without the +-1 frame
         * that the window edges cut from a count of arrivals (the B2BUA sends every port's frame in one burst) */
        uint16_t seq = (uint16_t)(b[2] << 8 | b[3]);
        int64_t ext = p->seq_max < 0 ? seq : p->seq_max + (int16_t)(seq - (uint16_t)p->seq_max);
        if (ext > p->seq_max) p->seq_max = ext;
        if (p->seq_first < 0) p->seq_first = ext;
        unsigned hdr = 12 + 4 * (b[0] & 0x0F);
        unsigned body = len > hdr ? len - hdr : 0, frames = body / PAYLOAD;
        if (frames == 0) frames = 1; /* a short packet still counts as one */
        p->fpp = frames;
        p->rx += frames;
        if ((b[1] & 0x7F) != 0 || body < PAYLOAD / 2) continue; /* PCMU only */
        /* each 20 ms of a longer packet (ptime 40) is judged on its own */
        for (unsigned f = 0; f < frames; f++) {
            unsigned a = hdr + f * PAYLOAD, z = f + 1 == frames ? len : a + PAYLOAD;
            long sum = 0;
            for (unsigned j = a; j < z; j++) sum += abs(ulaw_dec[b[j]]);
            if (sum > threshold * (long)(z - a)) p->loud++;
        }
    }
}

static void report(double t0, double cpu0) {
    double win = now_s() - t0, expect = win / 0.020;
    uint64_t rx = 0, loud = 0, tx = 0, span = 0, loud_min = UINT64_MAX, loud_max = 0;
    int latched = 0, lt99 = 0, lt999 = 0, silent = 0;
    for (int i = 0; i < nports; i++) {
        struct port *p = &ports[i];
        rx += p->rx; loud += p->loud; tx += p->tx;
        if (p->seq_first >= 0) span += (uint64_t)(p->seq_max - p->seq_first + 1) * (p->fpp ? p->fpp : 1);
        if (!p->latched) continue;
        latched++;
        if (p->loud < loud_min) loud_min = p->loud;
        if (p->loud > loud_max) loud_max = p->loud;
        lt99 += p->loud + 1 < 0.99 * expect; /* one frame of slack: the window edges cut frames */
        lt999 += p->loud + 1 < 0.999 * expect;
        silent += p->loud == 0;
    }
    printf("{\"window_s\": %.3f, \"ports\": %d, \"latched\": %d, \"sent\": %lu, \"received\": %lu, "
           "\"loud\": %lu, \"seq_span\": %lu, \"expected_per_port\": %.1f, \"loud_min\": %lu, \"loud_max\": %lu, "
           "\"ports_loud_lt_99\": %d, \"ports_loud_lt_999\": %d, \"ports_no_loud\": %d, \"late_ticks\": %lu, "
           "\"cpu_s\": %.3f}\n", win, nports, latched, (unsigned long)tx, (unsigned long)rx,
           (unsigned long)loud, (unsigned long)span, expect, (unsigned long)(latched ? loud_min : 0), (unsigned long)loud_max, lt99,
           lt999, silent, (unsigned long)late_ticks, cpu_s() - cpu0);
    fflush(stdout);
}

static int usage(const char *me) {
    fprintf(stderr, "usage: %s --ip A --first-port P --count N [--step 2] [--tone 1000] [--threshold 1000]\n"
                    "          [--peer-ip B --peer-first-port Q]\n", me);
    return 2;
}

int main(int argc, char **argv) {
    const char *ip = NULL, *peer_ip = NULL;
    int first = 0, step = 2, tone_hz = 1000, peer_first = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--ip")) ip = v;
        else if (!strcmp(k, "--first-port")) first = atoi(v);
        else if (!strcmp(k, "--count")) nports = atoi(v);
        else if (!strcmp(k, "--step")) step = atoi(v);
        else if (!strcmp(k, "--tone")) tone_hz = atoi(v);
        else if (!strcmp(k, "--threshold")) threshold = atol(v);
        else if (!strcmp(k, "--peer-ip")) peer_ip = v;
        else if (!strcmp(k, "--peer-first-port")) peer_first = atoi(v);
        else return usage(argv[0]);
    }
    if (argc % 2 == 0 || !ip || first <= 0 || nports <= 0 || step <= 0 || tone_hz <= 0 || tone_hz >= 4000 ||
        first + (long)step * (nports - 1) > 65535)
        return usage(argv[0]);

    for (int b = 0; b < 256; b++) ulaw_dec[b] = ulaw_decode((uint8_t)b);
    period = 8000 / gcd(8000, tone_hz); /* samples until the sine repeats exactly */
    for (int i = 0; i < period + PAYLOAD; i++)
        tone[i] = ulaw_encode((int)lround(8000.0 * sin(2 * M_PI * tone_hz * (i % period) / 8000.0)));

    struct rlimit rl; /* one socket per port: lift the soft limit to the hard one */
    if (!getrlimit(RLIMIT_NOFILE, &rl)) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    int ep = epoll_create1(0);
    ports = calloc((size_t)nports, sizeof *ports);
    srandom((unsigned)(getpid() ^ time(NULL)));
    for (int i = 0; i < nports; i++) {
        struct port *p = &ports[i];
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(first + i * step))};
        inet_pton(AF_INET, ip, &a.sin_addr);
        p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&a, sizeof a) < 0) {
            fprintf(stderr, "rtpload: %s:%d: %s\n", ip, first + i * step, strerror(errno));
            return 1;
        }
        p->seq = (uint16_t)random();
        p->ts = (uint32_t)random();
        p->ssrc = (uint32_t)random();
        p->seq_max = p->seq_first = -1;
        if (peer_ip) {
            struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(peer_first + i * step))};
            inet_pton(AF_INET, peer_ip, &peer.sin_addr);
            latch(p, &peer);
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
    }
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1); sigaddset(&ss, SIGUSR2); sigaddset(&ss, SIGTERM); sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK), tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec it = {{0, 20000000 / SLOTS}, {0, 20000000 / SLOTS}};
    timerfd_settime(tfd, 0, &it, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)nports};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    ev.data.u32 = (uint32_t)nports + 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    fprintf(stderr, "rtpload: %d ports on %s from %d step %d, tone %d Hz (period %d samples)%s\n", nports, ip,
            first, step, tone_hz, period, peer_ip ? ", direct mode" : "");

    double t0 = now_s(), cpu0 = cpu_s();
    unsigned slot = 0;
    static struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int e = 0; e < n; e++) {
            uint32_t id = evs[e].data.u32;
            if (id < (uint32_t)nports) {
                receive(&ports[id]);
            } else if (id == (uint32_t)nports) {
                uint64_t exp = 0;
                if (read(tfd, &exp, sizeof exp) != sizeof exp) continue;
                if (exp > MAX_CATCHUP) { /* whole frames dropped: a sign the tool itself is overloaded */
                    late_ticks += exp - MAX_CATCHUP;
                    slot = (unsigned)((slot + exp - MAX_CATCHUP) % SLOTS);
                    exp = MAX_CATCHUP;
                }
                for (; exp > 0; exp--, slot = (slot + 1) % SLOTS)
                    for (int i = (int)slot; i < nports; i += SLOTS)
                        if (ports[i].latched) send_frame(&ports[i]);
            } else {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR1) {
                        for (int i = 0; i < nports; i++) {
                            ports[i].rx = ports[i].loud = ports[i].tx = 0;
                            ports[i].seq_first = -1;
                        }
                        t0 = now_s(); cpu0 = cpu_s(); late_ticks = 0;
                    } else if (si.ssi_signo == SIGUSR2) {
                        report(t0, cpu0);
                    } else {
                        return 0;
                    }
                }
            }
        }
    }
}
