/*
 * loadgen: WebSocket / SSE subscriber load generator and HTTP publisher
 * for benchmarking fan-out servers (ngx_gravitee_module, Nchan), with an
 * MQTT-over-WebSocket subscriber mode (--mode mqtt-ws) and an MQTT
 * publisher (--publish mqtt://...) for bench/mqtt.sh.
 *
 * Single-threaded, non-blocking, epoll (level-triggered).
 *
 *   loadgen --mode ws|sse|mqtt-ws --url URL -n N [options]  subscribers
 *   loadgen --publish URL [--rate R --count C --size S] publisher
 *   loadgen --get URL -n N --count C [--header "H: v"]...  HTTP GET load
 *
 * mqtt-ws: the RFC 6455 handshake with "Sec-WebSocket-Protocol: mqtt", then
 * MQTT 3.1.1 CONNECT (clean session, --keepalive, default 0) and SUBSCRIBE
 * --topic at QoS 0 in binary frames; a subscriber is established at its
 * SUBACK (granted QoS < 0x80). The binary frames' payloads are one byte
 * stream of MQTT packets (a packet may span frames, a frame hold several);
 * each PUBLISH is one message, its payload's start read for the "t=<ns> "
 * stamp exactly as a ws message's.
 * --publish mqtt://HOST:PORT/TOPIC: one TCP connection, MQTT 3.1.1 CONNECT,
 * CONNACK, then PUBLISH QoS 0 of --size bytes ("t=<ns> " + 'x') at --rate
 * until --count (0 = until SIGTERM or --duration), then DISCONNECT.
 *
 * Lines printed on stdout (one line each, key=value):
 *   setup_done ...   once every subscriber is established or has failed
 *   stats ...        on SIGUSR1 (SIGUSR2 opens the --window)
 *   window_open t=   once the SIGUSR2 has been handled (t = window start, ns)
 *   summary ...      at the end
 *   publish ...      at the end of --publish
 *   get_ready ..., get ...   --get: connections open, and at the end
 * Diagnostics go to stderr.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_EVENTS        1024
#define RBUF_SIZE         (256 * 1024)
#define HDR_MAX           8192
#define PREFIX_MAX        32
#define LINE_KEEP         48
#define LAT_CAP_DEFAULT   (4u * 1024 * 1024)
#define MAX_SRC_IPS       250

enum { MODE_WS = 0, MODE_SSE = 1, MODE_MQTTWS = 2 };

/* mqtt-ws and ws share the WebSocket framing */
#define IS_WS()  (opt_mode == MODE_WS || opt_mode == MODE_MQTTWS)

enum {
    C_NEW = 0,        /* not opened yet */
    C_CONNECTING,     /* connect() in progress */
    C_HANDSHAKE,      /* request (being) sent, waiting for response headers */
    C_OPEN,           /* established, reading */
    C_SLOW_WAIT,      /* slow connection: request sent, never reads */
    C_CLOSED,         /* closed after having been established */
    C_FAILED          /* never established */
};

enum {
    CS_SIZE = 0, CS_EXT, CS_DATA, CS_DATA_END, CS_END
};

struct ws_parser {
    uint8_t   hdr[14];
    uint8_t   hdr_have;
    uint8_t   hdr_need;
    uint8_t   in_payload;
    uint8_t   opcode;
    uint8_t   fin;
    uint8_t   masked;
    uint8_t   in_msg;          /* a text/binary message is in progress */
    uint8_t   mask[4];
    uint8_t   ctrl_len;
    uint8_t   close_sent;
    uint64_t  remaining;
    uint64_t  frame_pos;
    uint8_t   ctrl[125];
};

struct sse_parser {
    uint8_t   chunked;
    uint8_t   cstate;
    uint8_t   cr;              /* previous byte was CR */
    uint8_t   has_data;
    uint8_t   size_digits;
    uint16_t  line_len;        /* saturating */
    uint64_t  chunk_left;
    char      line[LINE_KEEP];
};

/* MQTT packets in the binary frames' payload stream (mqtt-ws) */
enum { MQ_FIXED = 0, MQ_LEN, MQ_BODY };

struct mqtt_parser {
    uint8_t   phase;
    uint8_t   type;            /* fixed header byte */
    uint8_t   len_shift;       /* remaining-length varint: bits so far */
    uint8_t   small[4];        /* first body bytes (CONNACK, SUBACK, topic len) */
    uint8_t   subscribed;      /* SUBACK seen */
    uint8_t   ws_up;           /* WebSocket handshake done */
    uint32_t  remaining;       /* body length */
    uint32_t  pos;             /* body bytes seen */
    uint32_t  payload_at;      /* PUBLISH: body offset of the payload */
};

struct conn {
    int       fd;
    uint8_t   state;
    uint8_t   slow;
    uint8_t   counted_done;    /* reached --expect */
    uint8_t   epout;           /* EPOLLOUT currently requested */
    uint32_t  msgs;
    uint32_t  wmsgs;           /* --window: messages stamped in the window */
    double    t_start;         /* connect start, monotonic seconds */
    char     *out;             /* pending output */
    uint32_t  out_len;
    uint32_t  out_off;
    char     *hdr;             /* response header accumulation (handshake) */
    uint32_t  hdr_len;
    uint8_t   prefix_len;
    char      prefix[PREFIX_MAX];   /* start of the message in progress */
    char      accept[29];           /* expected Sec-WebSocket-Accept */
    union {
        struct ws_parser   ws;
        struct sse_parser  sse;
    } p;
    struct mqtt_parser  mq;    /* mqtt-ws only */
};

/* options */
static int        opt_mode = MODE_WS;
static char      *opt_url;
static long       opt_n = 1;
static double     opt_rate;          /* connections/s (subscribers) or msgs/s */
static long       opt_expect;
static double     opt_duration;
static int        opt_idle;
static int        opt_spin;       /* --spin: never sleep in epoll_wait */
static int        opt_hold;
static int        summary_printed;
static long       opt_slow;
static int        opt_latency;
static int        opt_window;
static int        opt_pin = -1;
static int        opt_src_ips;       /* 0 = auto */
static int        opt_any_dest;      /* allow a non-loopback destination */
static long       opt_max_pending = 200;
static double     opt_hs_timeout = 10.0;
static int        opt_http10;
static int        opt_linger0 = 1;
static int        opt_quiet;
static char      *opt_publish;
static long       opt_count = 200;
static long       opt_size = 100;
static long       opt_slow_rcvbuf = 4096;
static const char *opt_topic = "bench/t";   /* mqtt-ws subscription */
static long       opt_keepalive;             /* mqtt-ws CONNECT keepalive, s */

/* target */
static struct sockaddr_in  dst;
static char       host_hdr[300];
static char       path[2048];

/* state */
static struct conn  *conns;
static long          nconns;
static int           ep;
static char         *rbuf;
static volatile sig_atomic_t  stop_flag;
static volatile sig_atomic_t  stats_flag;
static volatile int64_t       win_start_ns;   /* --window, set by SIGUSR2 */
static uint64_t      rng_state;

static long   st_opened, st_pending, st_established, st_failed, st_closed;
static long   st_done, st_slow_sent, st_slow_dropped, st_slow_failed;
static long   st_proto_err, st_ws_pings, st_ws_close_rcvd;
static long   st_mq_other;                 /* MQTT packets neither PUBLISH nor acks */
static uint64_t  st_msgs, st_msgs_at_setup, st_wmsgs;
static int64_t   st_first_ns, st_last_ns;   /* CLOCK_REALTIME, any message */
static int    setup_reported;
static int    window_reported;
static double t0, t_setup;

static int64_t  *lat;
static size_t    lat_n, lat_cap = LAT_CAP_DEFAULT;
static uint64_t  lat_skipped;


static double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static int64_t
real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}


static void
warnx_(const char *fmt, ...)
{
    va_list ap;

    if (opt_quiet) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}


static uint64_t
rng_next(void)
{
    /* xorshift64*: good enough for masks and keys of a benchmark client */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}


/* ---------------------------------------------------------------- SHA-1 */

struct sha1 {
    uint32_t  h[5];
    uint64_t  len;
    uint8_t   buf[64];
    size_t    blen;
};


static uint32_t
rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}


static void
sha1_block(struct sha1 *s, const uint8_t *p)
{
    uint32_t  w[80], a, b, c, d, e, f, k, t;
    int       i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
               | (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
    }
    for (i = 16; i < 80; i++) {
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }

    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];

    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }

    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}


static void
sha1_init(struct sha1 *s)
{
    s->h[0] = 0x67452301;
    s->h[1] = 0xEFCDAB89;
    s->h[2] = 0x98BADCFE;
    s->h[3] = 0x10325476;
    s->h[4] = 0xC3D2E1F0;
    s->len = 0;
    s->blen = 0;
}


static void
sha1_update(struct sha1 *s, const void *data, size_t n)
{
    const uint8_t  *p = data;

    s->len += n;
    while (n > 0) {
        size_t take = 64 - s->blen;

        if (take > n) {
            take = n;
        }
        memcpy(s->buf + s->blen, p, take);
        s->blen += take;
        p += take;
        n -= take;
        if (s->blen == 64) {
            sha1_block(s, s->buf);
            s->blen = 0;
        }
    }
}


static void
sha1_final(struct sha1 *s, uint8_t out[20])
{
    uint64_t  bits = s->len * 8;
    uint8_t   pad = 0x80, zero = 0, lenb[8];
    int       i;

    sha1_update(s, &pad, 1);
    while (s->blen != 56) {
        sha1_update(s, &zero, 1);
    }
    for (i = 0; i < 8; i++) {
        lenb[i] = (uint8_t) (bits >> (56 - 8 * i));
    }
    sha1_update(s, lenb, 8);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t) (s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t) (s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t) (s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t) s->h[i];
    }
}


static void
base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char  tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t  i;

    for (i = 0; i + 2 < n; i += 3) {
        *out++ = tbl[in[i] >> 2];
        *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = tbl[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *out++ = tbl[in[i + 2] & 63];
    }
    if (n - i == 1) {
        *out++ = tbl[in[i] >> 2];
        *out++ = tbl[(in[i] & 3) << 4];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        *out++ = tbl[in[i] >> 2];
        *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = tbl[(in[i + 1] & 15) << 2];
        *out++ = '=';
    }
    *out = '\0';
}


/* -------------------------------------------------------------- helpers */

static int
dst_is_loopback(void)
{
    return (ntohl(dst.sin_addr.s_addr) >> 24) == 127;
}


static void
parse_url(const char *url)
{
    const char      *p = url, *h, *colon, *slash;
    char             host[256];
    size_t           hl;
    long             port = 80;
    struct addrinfo  hints, *res;

    if (strncmp(p, "ws://", 5) == 0) {
        p += 5;
    } else if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strstr(p, "://") != NULL) {
        die("unsupported URL scheme (only ws:// and http://): %s", url);
    }

    h = p;
    slash = strchr(h, '/');
    if (slash == NULL) {
        slash = h + strlen(h);
    }
    colon = memchr(h, ':', (size_t) (slash - h));
    hl = (size_t) ((colon ? colon : slash) - h);
    if (hl == 0 || hl >= sizeof(host)) {
        die("bad host in URL: %s", url);
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (colon) {
        port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535) {
            die("bad port in URL: %s", url);
        }
    }
    snprintf(path, sizeof(path), "%s", *slash ? slash : "/");
    snprintf(host_hdr, sizeof(host_hdr), "%s:%ld", host, port);

    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
            die("cannot resolve %s", host);
        }
        dst.sin_addr = ((struct sockaddr_in *) res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    /* a load generator aimed at a remote host by mistake would flood it:
     * outside 127.0.0.0/8 only when asked (run.sh --net veth) */
    if (!dst_is_loopback() && !opt_any_dest) {
        die("refusing non-loopback destination %s (127.0.0.0/8 only; "
            "--any-dest to allow)", host);
    }
}


static void
raise_nofile(rlim_t need)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        die("getrlimit: %s", strerror(errno));
    }
    if (rl.rlim_cur >= need) {
        return;
    }
    if (rl.rlim_max < need) {
        rl.rlim_max = need;   /* works as root, up to fs.nr_open */
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < need) {
            die("RLIMIT_NOFILE is %lu, need %lu (run as root or ulimit -n)",
                (unsigned long) rl.rlim_cur, (unsigned long) need);
        }
    }
}


static void
pin_cpu(int cpu)
{
    cpu_set_t  set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        die("sched_setaffinity(%d): %s", cpu, strerror(errno));
    }
}


static void
on_signal(int sig)
{
    if (sig == SIGUSR1) {
        stats_flag = 1;
    } else if (sig == SIGUSR2) {
        struct timespec ts;     /* clock_gettime is async-signal-safe */

        clock_gettime(CLOCK_REALTIME, &ts);
        if (win_start_ns == 0) {
            win_start_ns = (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
    } else {
        stop_flag = 1;
    }
}


static void
setup_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;               /* no SA_RESTART: interrupt epoll_wait */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}


static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

    return (x > y) - (x < y);
}


/* ---------------------------------------------------------- connection */

static void
conn_epoll(struct conn *c, uint32_t events, int op)
{
    struct epoll_event  ev;

    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(ep, op, c->fd, &ev) != 0) {
        warnx_("epoll_ctl: %s", strerror(errno));
    }
}


static uint32_t
conn_events(struct conn *c)
{
    uint32_t  ev = 0;

    switch (c->state) {
    case C_CONNECTING:
        return EPOLLOUT;
    case C_SLOW_WAIT:
        return EPOLLRDHUP | (c->out != NULL ? EPOLLOUT : 0);
    default:
        break;
    }
    if (!c->slow) {
        ev |= EPOLLIN | EPOLLRDHUP;
    } else {
        ev |= EPOLLRDHUP;
    }
    if (c->out != NULL) {
        ev |= EPOLLOUT;
    }
    return ev;
}


static void
conn_update_events(struct conn *c)
{
    conn_epoll(c, conn_events(c), EPOLL_CTL_MOD);
}


static void
conn_free_bufs(struct conn *c)
{
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    free(c->hdr);
    c->hdr = NULL;
    c->hdr_len = 0;
}


static void
conn_close(struct conn *c, int failed, const char *why)
{
    if (c->fd < 0) {
        return;
    }

    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    conn_free_bufs(c);

    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
        st_pending--;
    }

    if (c->slow) {
        if (c->state == C_SLOW_WAIT) {
            st_slow_dropped++;
        } else {
            st_slow_failed++;
        }
        c->state = failed ? C_FAILED : C_CLOSED;
        return;
    }

    if (c->state == C_OPEN) {
        st_closed++;
        c->state = C_CLOSED;
        if (!c->counted_done) {
            c->counted_done = 1;
            st_done++;
        }
        if (why && st_closed <= 10) {
            warnx_("conn %ld closed: %s", (long) (c - conns), why);
        }
        return;
    }

    st_failed++;
    c->state = C_FAILED;
    if (why && st_failed <= 10) {
        warnx_("conn %ld failed: %s", (long) (c - conns), why);
    }
}


/* try to write pending output; returns -1 if the connection was closed */
static int
conn_flush(struct conn *c)
{
    ssize_t  n;
    int      guard;

    for (guard = 0; c->out != NULL && guard < 64; guard++) {
        n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                 MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            conn_close(c, 1, strerror(errno));
            return -1;
        }
        c->out_off += (uint32_t) n;
        if (c->out_off == c->out_len) {
            free(c->out);
            c->out = NULL;
            c->out_len = c->out_off = 0;
        }
    }
    return 0;
}


static int
conn_send(struct conn *c, const void *data, size_t len)
{
    char  *nb;
    int    had_out = c->out != NULL;

    if (c->out != NULL) {
        size_t rest = c->out_len - c->out_off;

        nb = malloc(rest + len);
        if (nb == NULL) {
            die("out of memory");
        }
        memcpy(nb, c->out + c->out_off, rest);
        memcpy(nb + rest, data, len);
        free(c->out);
        c->out = nb;
        c->out_off = 0;
        c->out_len = (uint32_t) (rest + len);
    } else {
        c->out = malloc(len);
        if (c->out == NULL) {
            die("out of memory");
        }
        memcpy(c->out, data, len);
        c->out_len = (uint32_t) len;
        c->out_off = 0;
    }
    if (conn_flush(c) < 0) {
        return -1;
    }
    if ((c->out != NULL) != had_out && c->state != C_CONNECTING) {
        conn_update_events(c);
    }
    return 0;
}


/* masked client frame (RFC 6455 5.3) */
static int
ws_send_frame(struct conn *c, int opcode, const uint8_t *payload, size_t len)
{
    uint8_t   frame[14 + 125];
    uint8_t  *buf = frame, *m;
    size_t    h = 0, i;
    uint64_t  r;
    int       rc;

    if (len > 125) {
        buf = malloc(14 + len);
        if (buf == NULL) {
            die("out of memory");
        }
    }
    buf[h++] = (uint8_t) (0x80 | (opcode & 0x0f));
    if (len < 126) {
        buf[h++] = (uint8_t) (0x80 | len);
    } else if (len < 65536) {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t) (len >> 8);
        buf[h++] = (uint8_t) len;
    } else {
        buf[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            buf[h++] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
    }
    r = rng_next();
    m = buf + h;
    memcpy(m, &r, 4);
    h += 4;
    for (i = 0; i < len; i++) {
        buf[h + i] = payload[i] ^ m[i & 3];
    }
    rc = conn_send(c, buf, h + len);
    if (buf != frame) {
        free(buf);
    }
    return rc;
}


static void
record_message(struct conn *c)
{
    const char  *p;
    int64_t      t = 0, d, w;
    uint32_t     got;
    int          i;

    c->msgs++;
    st_msgs++;

    /* first_ns/last_ns: the receive window of a throughput test */
    st_last_ns = real_ns();
    if (st_first_ns == 0) {
        st_first_ns = st_last_ns;
    }

    /* the "t=<ns> " stamp at the payload start, 0 if none */
    p = c->prefix;
    if ((opt_latency || opt_window) && c->prefix_len >= 3
        && p[0] == 't' && p[1] == '=')
    {
        for (i = 2; i < c->prefix_len && isdigit((unsigned char) p[i]); i++) {
            if (t > (INT64_MAX - 9) / 10) {
                t = 0;
                break;
            }
            t = t * 10 + (p[i] - '0');
        }
        if (i == 2) {
            t = 0;
        }
    }

    /*
     * --window: only messages stamped at or after the SIGUSR2 count
     * (towards --expect, lost, latency): a source that was already
     * running before the window (a shared mock) is measured over the same
     * kind of messages as a publisher that starts inside it
     */
    got = c->msgs;
    if (opt_window) {
        w = win_start_ns;
        if (w == 0 || t == 0 || t < w) {
            return;
        }
        c->wmsgs++;
        st_wmsgs++;
        got = c->wmsgs;
    }

    if (opt_expect > 0 && !c->counted_done && got >= (uint32_t) opt_expect)
    {
        c->counted_done = 1;
        st_done++;
    }

    if (!opt_latency || t == 0) {
        return;
    }
    d = real_ns() - t;
    if (d < 0) {
        d = 0;
    }
    if (lat_n < lat_cap) {
        lat[lat_n++] = d;
    } else {
        lat_skipped++;
    }
}


static void
prefix_add(struct conn *c, const uint8_t *p, size_t n, const uint8_t *mask,
    uint64_t pos)
{
    size_t  i;

    for (i = 0; i < n && c->prefix_len < PREFIX_MAX; i++) {
        c->prefix[c->prefix_len++] =
            (char) (mask ? p[i] ^ mask[(pos + i) & 3] : p[i]);
    }
}


/* ------------------------------------------------------- MQTT (mqtt-ws) */

static size_t
mqtt_varint(uint8_t *out, size_t v)
{
    size_t  n = 0;

    do {
        out[n] = (uint8_t) (v & 0x7f);
        v >>= 7;
        if (v > 0) {
            out[n] |= 0x80;
        }
        n++;
    } while (v > 0 && n < 4);
    return n;
}


/* an MQTT string: 2-byte length, bytes */
static size_t
mqtt_str(uint8_t *out, const char *str, size_t len)
{
    out[0] = (uint8_t) (len >> 8);
    out[1] = (uint8_t) len;
    memcpy(out + 2, str, len);
    return 2 + len;
}


/* MQTT 3.1.1 CONNECT: clean session, keepalive, client id */
static size_t
mqtt_connect_packet(uint8_t *out, const char *client_id, long keepalive)
{
    uint8_t  body[300];
    size_t   b = 0, h = 0, idl = strlen(client_id);

    if (idl > 200) {
        idl = 200;
    }
    b += mqtt_str(body + b, "MQTT", 4);
    body[b++] = 4;                          /* protocol level 3.1.1 */
    body[b++] = 0x02;                       /* clean session */
    body[b++] = (uint8_t) (keepalive >> 8);
    body[b++] = (uint8_t) keepalive;
    b += mqtt_str(body + b, client_id, idl);
    out[h++] = 0x10;
    h += mqtt_varint(out + h, b);
    memcpy(out + h, body, b);
    return h + b;
}


/* SUBSCRIBE packet id 1, one filter at QoS 0 */
static size_t
mqtt_subscribe_packet(uint8_t *out, const char *topic)
{
    size_t  tl = strlen(topic), h = 0, b = 2 + 2 + tl + 1;

    out[h++] = 0x82;
    h += mqtt_varint(out + h, b);
    out[h++] = 0;
    out[h++] = 1;
    h += mqtt_str(out + h, topic, tl);
    out[h++] = 0;                           /* requested QoS 0 */
    return h;
}


/* the WebSocket is up: CONNECT and SUBSCRIBE, one binary frame each */
static int
mqtt_start(struct conn *c)
{
    uint8_t  pkt[600];
    char     id[64];
    size_t   n;

    snprintf(id, sizeof(id), "lg%ld-%ld", (long) getpid(), (long) (c - conns));
    n = mqtt_connect_packet(pkt, id, opt_keepalive);
    if (ws_send_frame(c, 0x2, pkt, n) < 0) {
        return -1;
    }
    n = mqtt_subscribe_packet(pkt, opt_topic);
    return ws_send_frame(c, 0x2, pkt, n);
}


/* returns -1 if the connection was closed */
static int
mqtt_packet_done(struct conn *c)
{
    struct mqtt_parser  *m = &c->mq;

    m->phase = MQ_FIXED;
    switch (m->type >> 4) {
    case 3:     /* PUBLISH */
        record_message(c);
        break;
    case 2:     /* CONNACK: flags, return code */
        if (m->remaining < 2 || m->small[1] != 0) {
            st_proto_err++;
            conn_close(c, 1, "mqtt: CONNACK refused");
            return -1;
        }
        break;
    case 9:     /* SUBACK: packet id, granted QoS */
        if (m->remaining < 3 || m->small[2] >= 0x80) {
            st_proto_err++;
            conn_close(c, 1, "mqtt: SUBACK refused");
            return -1;
        }
        if (!m->subscribed && c->state == C_HANDSHAKE) {
            m->subscribed = 1;
            c->state = C_OPEN;
            st_pending--;
            st_established++;
        }
        break;
    case 13:    /* PINGRESP */
        break;
    default:
        st_mq_other++;
        break;
    }
    return 0;
}


/* the (unmasked) payload bytes of binary frames: a stream of MQTT packets */
static int
mqtt_bytes(struct conn *c, const uint8_t *p, size_t n)
{
    struct mqtt_parser  *m = &c->mq;
    size_t               take;
    uint8_t              b;

    while (n > 0) {
        switch (m->phase) {
        case MQ_FIXED:
            m->type = *p++;
            n--;
            m->remaining = 0;
            m->len_shift = 0;
            m->pos = 0;
            m->payload_at = UINT32_MAX;
            m->phase = MQ_LEN;
            break;

        case MQ_LEN:
            b = *p++;
            n--;
            m->remaining |= (uint32_t) (b & 0x7f) << m->len_shift;
            m->len_shift += 7;
            if (b & 0x80) {
                if (m->len_shift >= 28) {
                    st_proto_err++;
                    conn_close(c, 0, "mqtt: bad remaining length");
                    return -1;
                }
                break;
            }
            m->phase = MQ_BODY;
            c->prefix_len = 0;
            if (m->remaining == 0 && mqtt_packet_done(c) < 0) {
                return -1;
            }
            break;

        default:    /* MQ_BODY */
            /* header bytes one at a time: the topic length, then where
             * the payload starts (QoS > 0 adds a packet id) */
            while (n > 0 && m->pos < m->remaining && m->pos < m->payload_at) {
                if (m->pos < sizeof(m->small)) {
                    m->small[m->pos] = *p;
                }
                m->pos++;
                p++;
                n--;
                if (m->pos == 2 && (m->type >> 4) == 3) {
                    m->payload_at = 2 + ((uint32_t) m->small[0] << 8
                                         | m->small[1])
                                    + (((m->type >> 1) & 3) ? 2 : 0);
                }
            }
            take = m->remaining - m->pos;
            if (take > n) {
                take = n;
            }
            if (take > 0) {
                /* only a PUBLISH's payload gets here */
                prefix_add(c, p, take, NULL, 0);
                m->pos += (uint32_t) take;
                p += take;
                n -= take;
            }
            if (m->pos == m->remaining && mqtt_packet_done(c) < 0) {
                return -1;
            }
            break;
        }
    }
    return 0;
}


/* returns -1 if the connection was closed */
static int
ws_frame_done(struct conn *c)
{
    struct ws_parser  *w = &c->p.ws;
    uint8_t            body[125];

    if (w->opcode >= 8) {
        switch (w->opcode) {
        case 0x9:   /* ping -> pong with the same payload */
            st_ws_pings++;
            memcpy(body, w->ctrl, w->ctrl_len);
            if (ws_send_frame(c, 0xA, body, w->ctrl_len) < 0) {
                return -1;
            }
            break;
        case 0xA:   /* pong */
            break;
        case 0x8:   /* close: echo the status code, then the server closes */
            st_ws_close_rcvd++;
            if (!w->close_sent) {
                w->close_sent = 1;
                if (ws_send_frame(c, 0x8, w->ctrl,
                                  w->ctrl_len >= 2 ? 2 : 0) < 0)
                {
                    return -1;
                }
            }
            break;
        default:
            st_proto_err++;
            conn_close(c, 0, "unknown ws control opcode");
            return -1;
        }
    } else if (w->fin) {
        w->in_msg = 0;
        if (opt_mode == MODE_WS) {
            record_message(c);
        }
    }

    w->hdr_have = 0;
    w->hdr_need = 2;
    w->in_payload = 0;
    return 0;
}


static int
ws_parse(struct conn *c, const uint8_t *p, size_t n)
{
    struct ws_parser  *w = &c->p.ws;
    size_t             take, i;
    uint8_t            len7;
    int                off;

    while (n > 0) {
        if (!w->in_payload) {
            while (n > 0 && w->hdr_have < w->hdr_need) {
                w->hdr[w->hdr_have++] = *p++;
                n--;
                if (w->hdr_have == 2) {
                    len7 = w->hdr[1] & 0x7f;
                    w->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0)
                                  + ((w->hdr[1] & 0x80) ? 4 : 0);
                }
            }
            if (w->hdr_have < w->hdr_need) {
                return 0;
            }

            w->fin = w->hdr[0] >> 7;
            w->opcode = w->hdr[0] & 0x0f;
            w->masked = w->hdr[1] >> 7;
            len7 = w->hdr[1] & 0x7f;
            off = 2;
            if (len7 == 126) {
                w->remaining = (uint64_t) w->hdr[2] << 8 | w->hdr[3];
                off = 4;
            } else if (len7 == 127) {
                w->remaining = 0;
                for (i = 0; i < 8; i++) {
                    w->remaining = w->remaining << 8 | w->hdr[2 + i];
                }
                off = 10;
            } else {
                w->remaining = len7;
            }
            if (w->masked) {
                memcpy(w->mask, w->hdr + off, 4);
            }
            w->frame_pos = 0;
            w->in_payload = 1;

            if (w->opcode >= 8) {
                if (!w->fin || w->remaining > 125) {
                    st_proto_err++;
                    conn_close(c, 0, "bad ws control frame");
                    return -1;
                }
                w->ctrl_len = 0;
            } else if (w->opcode == 0) {
                if (!w->in_msg) {
                    st_proto_err++;
                    conn_close(c, 0, "ws continuation without message");
                    return -1;
                }
            } else if (w->opcode == 1 || w->opcode == 2) {
                if (w->in_msg) {
                    st_proto_err++;
                    conn_close(c, 0, "ws new message inside fragmented one");
                    return -1;
                }
                w->in_msg = 1;
                if (opt_mode == MODE_WS) {
                    c->prefix_len = 0;
                }
            } else {
                st_proto_err++;
                conn_close(c, 0, "unknown ws data opcode");
                return -1;
            }

            if (w->remaining == 0) {
                if (ws_frame_done(c) < 0) {
                    return -1;
                }
            }
            continue;
        }

        take = n < w->remaining ? n : (size_t) w->remaining;
        if (w->opcode >= 8) {
            for (i = 0; i < take; i++) {
                w->ctrl[w->ctrl_len++] = w->masked
                    ? p[i] ^ w->mask[(w->frame_pos + i) & 3] : p[i];
            }
        } else if (opt_mode == MODE_MQTTWS) {
            if (w->masked) {     /* servers do not mask; rbuf is ours */
                for (i = 0; i < take; i++) {
                    ((uint8_t *) p)[i] ^= w->mask[(w->frame_pos + i) & 3];
                }
            }
            if (mqtt_bytes(c, p, take) < 0) {
                return -1;
            }
        } else if (c->prefix_len < PREFIX_MAX) {
            prefix_add(c, p, take, w->masked ? w->mask : NULL, w->frame_pos);
        }
        w->frame_pos += take;
        w->remaining -= take;
        p += take;
        n -= take;
        if (w->remaining == 0) {
            if (ws_frame_done(c) < 0) {
                return -1;
            }
        }
    }
    return 0;
}


/* one complete SSE line (without terminator) */
static void
sse_line(struct conn *c)
{
    struct sse_parser  *s = &c->p.sse;
    size_t              kept = s->line_len < LINE_KEEP ? s->line_len : LINE_KEEP;
    const char         *v;
    size_t              vl;

    if (s->line_len == 0) {
        if (s->has_data) {
            record_message(c);
        }
        s->has_data = 0;
        c->prefix_len = 0;
        return;
    }
    if (s->line[0] == ':') {
        return;                    /* comment */
    }
    if (kept >= 4 && memcmp(s->line, "data", 4) == 0
        && (kept == 4 || s->line[4] == ':'))
    {
        if (!s->has_data) {
            s->has_data = 1;
            v = s->line + 5;
            vl = kept > 5 ? kept - 5 : 0;
            if (vl > 0 && *v == ' ') {
                v++;
                vl--;
            }
            c->prefix_len = 0;
            prefix_add(c, (const uint8_t *) v, vl, NULL, 0);
        }
    }
    /* event:, id:, retry: and unknown fields are ignored */
}


static void
sse_bytes(struct conn *c, const uint8_t *p, size_t n)
{
    struct sse_parser  *s = &c->p.sse;
    size_t              i;
    uint8_t             ch;

    for (i = 0; i < n; i++) {
        ch = p[i];
        if (ch == '\n' && s->cr) {
            s->cr = 0;
            continue;              /* second half of CRLF */
        }
        s->cr = 0;
        if (ch == '\r' || ch == '\n') {
            s->cr = (ch == '\r');
            sse_line(c);
            s->line_len = 0;
            continue;
        }
        if (s->line_len < LINE_KEEP) {
            s->line[s->line_len] = (char) ch;
        }
        if (s->line_len < UINT16_MAX) {
            s->line_len++;
        }
    }
}


static int
sse_parse(struct conn *c, const uint8_t *p, size_t n)
{
    struct sse_parser  *s = &c->p.sse;
    size_t              take;
    int                 d;

    if (!s->chunked) {
        sse_bytes(c, p, n);
        return 0;
    }

    while (n > 0) {
        switch (s->cstate) {
        case CS_SIZE:
            if (isxdigit(*p)) {
                d = isdigit(*p) ? *p - '0' : (tolower(*p) - 'a' + 10);
                if (++s->size_digits > 15) {
                    st_proto_err++;
                    conn_close(c, 0, "bad chunk size");
                    return -1;
                }
                s->chunk_left = s->chunk_left * 16 + (uint64_t) d;
            } else if (*p == ';') {
                s->cstate = CS_EXT;
            } else if (*p == '\n') {
                if (s->size_digits == 0) {
                    st_proto_err++;
                    conn_close(c, 0, "bad chunk header");
                    return -1;
                }
                s->cstate = s->chunk_left ? CS_DATA : CS_END;
            } else if (*p != '\r' && *p != ' ') {
                st_proto_err++;
                conn_close(c, 0, "bad chunk header");
                return -1;
            }
            p++;
            n--;
            break;
        case CS_EXT:
            if (*p == '\n') {
                s->cstate = s->chunk_left ? CS_DATA : CS_END;
            }
            p++;
            n--;
            break;
        case CS_DATA:
            take = n < s->chunk_left ? n : (size_t) s->chunk_left;
            sse_bytes(c, p, take);
            s->chunk_left -= take;
            p += take;
            n -= take;
            if (s->chunk_left == 0) {
                s->cstate = CS_DATA_END;
            }
            break;
        case CS_DATA_END:
            if (*p == '\n') {
                s->cstate = CS_SIZE;
                s->size_digits = 0;
                s->chunk_left = 0;
            }
            p++;
            n--;
            break;
        default:   /* CS_END: last chunk seen, ignore trailers */
            return 0;
        }
    }
    return 0;
}


static char *
find_header(char *hdrs, const char *name)
{
    size_t  nl = strlen(name);
    char   *p = hdrs;

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            return p;
        }
    }
    return NULL;
}


static void
maybe_setup_done(void)
{
    if (setup_reported) {
        return;
    }
    if (st_opened < nconns || st_pending > 0) {
        return;
    }
    setup_reported = 1;
    t_setup = mono_now();
    st_msgs_at_setup = st_msgs;
    printf("setup_done established=%ld failed=%ld slow_sent=%ld secs=%.3f "
           "msgs=%" PRIu64 "\n",
           st_established, st_failed, st_slow_sent, t_setup - t0, st_msgs);
    fflush(stdout);
}


/*
 * handshake response headers complete at c->hdr[0..hlen); the bytes after
 * them, if any, are rest[0..rest_len) (the tail of the last read)
 */
static int
handshake_done(struct conn *c, size_t hlen, const char *rest, size_t rest_len)
{
    char    *h = c->hdr, *v;
    int      status = 0;
    char     save;

    save = h[hlen - 1];
    h[hlen - 1] = '\0';

    if (strncmp(h, "HTTP/1.", 7) != 0 || sscanf(h + 8, " %d", &status) != 1) {
        h[hlen - 1] = save;
        conn_close(c, 1, "bad status line");
        return -1;
    }

    if (IS_WS()) {
        if (status != 101) {
            h[hlen - 1] = save;
            conn_close(c, 1, "ws handshake: status is not 101");
            return -1;
        }
        v = find_header(h, "Sec-WebSocket-Accept");
        if (v == NULL || strncmp(v, c->accept, 28) != 0) {
            h[hlen - 1] = save;
            conn_close(c, 1, "ws handshake: bad Sec-WebSocket-Accept");
            return -1;
        }
        memset(&c->p.ws, 0, sizeof(c->p.ws));
        c->p.ws.hdr_need = 2;
        if (opt_mode == MODE_MQTTWS) {
            /* established at the SUBACK (mqtt_packet_done); until then
             * the connection stays C_HANDSHAKE, under --hs-timeout */
            h[hlen - 1] = save;
            memset(&c->mq, 0, sizeof(c->mq));
            c->mq.ws_up = 1;
            free(c->hdr);
            c->hdr = NULL;
            c->hdr_len = 0;
            if (mqtt_start(c) < 0) {
                return -1;
            }
            if (rest_len > 0) {
                return ws_parse(c, (const uint8_t *) rest, rest_len);
            }
            return 0;
        }
    } else {
        if (status != 200) {
            h[hlen - 1] = save;
            conn_close(c, 1, "sse: status is not 200");
            return -1;
        }
        memset(&c->p.sse, 0, sizeof(c->p.sse));
        v = find_header(h, "Transfer-Encoding");
        if (v != NULL && strncasecmp(v, "chunked", 7) == 0) {
            c->p.sse.chunked = 1;
        }
    }
    h[hlen - 1] = save;

    c->state = C_OPEN;
    st_pending--;
    st_established++;
    c->prefix_len = 0;

    free(c->hdr);
    c->hdr = NULL;
    c->hdr_len = 0;

    if (rest_len > 0) {
        if (IS_WS()) {
            return ws_parse(c, (const uint8_t *) rest, rest_len);
        }
        return sse_parse(c, (const uint8_t *) rest, rest_len);
    }
    return 0;
}


static int
handshake_bytes(struct conn *c, const char *p, size_t n)
{
    char    *end;
    size_t   hlen, copy, after;

    if (c->hdr == NULL) {
        c->hdr = malloc(HDR_MAX + 1);
        if (c->hdr == NULL) {
            die("out of memory");
        }
        c->hdr_len = 0;
    }
    copy = HDR_MAX - c->hdr_len;
    if (copy > n) {
        copy = n;
    }
    memcpy(c->hdr + c->hdr_len, p, copy);
    c->hdr_len += (uint32_t) copy;
    c->hdr[c->hdr_len] = '\0';

    end = memmem(c->hdr, c->hdr_len, "\r\n\r\n", 4);
    if (end != NULL) {
        hlen = (size_t) (end - c->hdr) + 4;
    } else {
        end = memmem(c->hdr, c->hdr_len, "\n\n", 2);
        if (end == NULL) {
            if (c->hdr_len == HDR_MAX) {
                conn_close(c, 1, "response headers too large");
                return -1;
            }
            return 0;
        }
        hlen = (size_t) (end - c->hdr) + 2;
    }
    /*
     * earlier reads had no end of headers, so whatever follows it came in
     * this read: it is the tail of p
     */
    after = c->hdr_len - hlen + (n - copy);
    return handshake_done(c, hlen, p + (n - after), after);
}


static void
conn_send_request(struct conn *c)
{
    char     req[4096];
    uint8_t  key[16], digest[20];
    char     key64[32];
    uint64_t r1 = rng_next(), r2 = rng_next();
    struct sha1  s;
    int      len;
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    if (IS_WS()) {
        memcpy(key, &r1, 8);
        memcpy(key + 8, &r2, 8);
        base64_encode(key, 16, key64);
        sha1_init(&s);
        sha1_update(&s, key64, strlen(key64));
        sha1_update(&s, guid, sizeof(guid) - 1);
        sha1_final(&s, digest);
        base64_encode(digest, 20, c->accept);
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\n"
                       "Host: %s\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "%s"
                       "\r\n", path, host_hdr, key64,
                       opt_mode == MODE_MQTTWS
                       ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    } else {
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.%c\r\n"
                       "Host: %s\r\n"
                       "Accept: text/event-stream\r\n"
                       "Cache-Control: no-cache\r\n"
                       "\r\n", path, opt_http10 ? '0' : '1', host_hdr);
    }
    if (len <= 0 || (size_t) len >= sizeof(req)) {
        die("request too long");
    }
    c->state = c->slow ? C_SLOW_WAIT : C_HANDSHAKE;
    if (c->slow) {
        st_pending--;   /* a slow connection is "set up" once its request is out */
    }
    if (conn_send(c, req, (size_t) len) < 0) {
        return;
    }
    if (c->slow) {
        st_slow_sent++;
    }
    conn_update_events(c);
}


static void
conn_open(struct conn *c, struct sockaddr_in *src)
{
    int  fd, one = 1, rc;

    c->t_start = mono_now();
    st_opened++;
    st_pending++;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->fd = -1;
        c->state = C_FAILED;
        st_pending--;
        if (c->slow) {
            st_slow_failed++;
        } else {
            st_failed++;
        }
        warnx_("socket: %s", strerror(errno));
        return;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->slow && opt_slow_rcvbuf > 0) {
        int sz = (int) opt_slow_rcvbuf;

        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    if (src != NULL) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) src, sizeof(*src)) != 0) {
            conn_close(c, 1, strerror(errno));
            return;
        }
    }

    rc = connect(fd, (struct sockaddr *) &dst, sizeof(dst));
    if (rc == 0) {
        conn_epoll(c, EPOLLOUT, EPOLL_CTL_ADD);
        conn_send_request(c);
        return;
    }
    if (errno != EINPROGRESS) {
        conn_close(c, 1, strerror(errno));
        return;
    }
    conn_epoll(c, EPOLLOUT, EPOLL_CTL_ADD);
}


static void
conn_readable(struct conn *c)
{
    ssize_t  n;
    int      i;

    for (i = 0; i < 8 && c->fd >= 0; i++) {
        n = recv(c->fd, rbuf, RBUF_SIZE, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            if (c->state == C_OPEN && IS_WS()
                && c->p.ws.close_sent)
            {
                conn_close(c, 0, NULL);          /* reset after ws close */
            } else {
                conn_close(c, 1, strerror(errno));
            }
            return;
        }
        if (n == 0) {
            if (c->state == C_OPEN && IS_WS()
                && c->p.ws.close_sent)
            {
                conn_close(c, 0, NULL);          /* normal ws close */
            } else {
                conn_close(c, 1, c->state == C_OPEN ? "closed by server"
                                                   : "EOF during handshake");
            }
            return;
        }
        if (c->state == C_HANDSHAKE && opt_mode == MODE_MQTTWS
            && c->mq.ws_up)
        {
            if (ws_parse(c, (uint8_t *) rbuf, (size_t) n) < 0) {
                return;
            }
        } else if (c->state == C_HANDSHAKE) {
            if (handshake_bytes(c, rbuf, (size_t) n) < 0) {
                return;
            }
        } else if (c->state == C_OPEN) {
            if (IS_WS()) {
                if (ws_parse(c, (uint8_t *) rbuf, (size_t) n) < 0) {
                    return;
                }
            } else if (sse_parse(c, (uint8_t *) rbuf, (size_t) n) < 0) {
                return;
            }
        }
        if ((size_t) n < RBUF_SIZE) {
            return;
        }
    }
}


static void
conn_event(struct conn *c, uint32_t ev)
{
    int       err = 0;
    socklen_t el = sizeof(err);

    if (c->fd < 0) {
        return;
    }

    if (c->state == C_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err != 0) {
                conn_close(c, 1, strerror(err));
                return;
            }
            conn_send_request(c);
        }
        return;
    }

    if (c->state == C_SLOW_WAIT) {
        if (ev & EPOLLOUT) {
            if (conn_flush(c) < 0) {
                return;
            }
            conn_update_events(c);
        }
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            conn_close(c, 0, NULL);
        }
        return;
    }

    if (ev & EPOLLOUT) {
        if (conn_flush(c) < 0) {
            return;
        }
        if (c->out == NULL) {
            conn_update_events(c);
        }
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        conn_readable(c);
    }
}


static void
check_timeouts(double now)
{
    long  i;

    for (i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];

        if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE)
            && now - c->t_start > opt_hs_timeout)
        {
            conn_close(c, 1, "handshake timeout");
        }
    }
}


static void
print_line(const char *tag)
{
    long      i, readers = 0;
    uint32_t  mn = UINT32_MAX, mx = 0, got;
    uint64_t  lost = 0;
    double    p50 = -1, p99 = -1, now = mono_now();

    for (i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];

        if (c->slow || (c->state != C_OPEN && c->state != C_CLOSED)) {
            continue;
        }
        readers++;
        got = opt_window ? c->wmsgs : c->msgs;
        if (got < mn) {
            mn = got;
        }
        if (got > mx) {
            mx = got;
        }
        if (opt_expect > 0 && got < (uint32_t) opt_expect) {
            lost += (uint64_t) opt_expect - got;
        }
    }
    if (readers == 0) {
        mn = 0;
    }

    if (opt_latency && lat_n > 0) {
        qsort(lat, lat_n, sizeof(int64_t), cmp_i64);
        p50 = (double) lat[(size_t) ((double) (lat_n - 1) * 0.50)] / 1e6;
        p99 = (double) lat[(size_t) ((double) (lat_n - 1) * 0.99)] / 1e6;
    }

    printf("%s mode=%s n=%ld slow=%ld connected=%ld failed=%ld "
           "closed=%ld msgs=%" PRIu64 " msgs_after_setup=%" PRIu64
           " min=%u max=%u expect=%ld lost=%" PRIu64,
           tag, opt_mode == MODE_WS ? "ws"
                : opt_mode == MODE_MQTTWS ? "mqtt-ws" : "sse", opt_n, opt_slow,
           st_established, st_failed, st_closed, st_msgs,
           setup_reported ? st_msgs - st_msgs_at_setup : 0,
           mn, mx, opt_expect, lost);
    if (opt_window) {
        printf(" window=%s msgs_window=%" PRIu64,
               win_start_ns ? "on" : "waiting", st_wmsgs);
    }
    if (opt_latency) {
        if (lat_n > 0) {
            printf(" lat_n=%zu lat_p50_ms=%.3f lat_p99_ms=%.3f", lat_n, p50,
                   p99);
        } else {
            printf(" lat_n=0 lat_p50_ms=- lat_p99_ms=-");
        }
    }
    if (opt_mode == MODE_MQTTWS) {
        printf(" mqtt_other=%ld", st_mq_other);
    }
    printf(" slow_sent=%ld slow_dropped=%ld proto_err=%ld pings=%ld "
           "ws_close=%ld setup_s=%.3f elapsed_s=%.3f first_ns=%" PRId64
           " last_ns=%" PRId64 "\n",
           st_slow_sent, st_slow_dropped, st_proto_err, st_ws_pings,
           st_ws_close_rcvd, setup_reported ? t_setup - t0 : -1.0, now - t0,
           st_first_ns, st_last_ns);
    fflush(stdout);
}


static int
run_subscribers(void)
{
    struct epoll_event   evs[MAX_EVENTS];
    struct sockaddr_in  *srcs = NULL;
    long                 total = opt_n + opt_slow, i, allowed;
    int                  nsrc, nev, timeout_ms;
    double               now, t_conn0, last_to = 0, next;

    nconns = total;
    conns = calloc((size_t) total, sizeof(struct conn));
    rbuf = malloc(RBUF_SIZE);
    if (conns == NULL || rbuf == NULL) {
        die("out of memory");
    }
    for (i = 0; i < total; i++) {
        conns[i].fd = -1;
        conns[i].slow = (i >= opt_n);   /* slow ones come last */
    }
    if (opt_latency) {
        if ((uint64_t) opt_n * (uint64_t) (opt_expect > 0 ? opt_expect : 1000)
            < lat_cap)
        {
            lat_cap = (size_t) opt_n * (size_t) (opt_expect > 0
                                                 ? opt_expect : 1000) + 16;
        }
        lat = malloc(lat_cap * sizeof(int64_t));
        if (lat == NULL) {
            die("out of memory");
        }
    }

    /* the extra source addresses are 127.0.0.2.., which only reach a
     * loopback destination */
    nsrc = opt_src_ips;
    if (nsrc == 0) {
        nsrc = dst_is_loopback() ? (int) (total / 20000) + 1 : 1;
    }
    if (!dst_is_loopback() && opt_src_ips > 0) {
        die("--src-ips needs a loopback destination");
    }
    if (nsrc > MAX_SRC_IPS) {
        nsrc = MAX_SRC_IPS;
    }
    if (nsrc > 1 || opt_src_ips > 0) {
        srcs = calloc((size_t) nsrc, sizeof(*srcs));
        if (srcs == NULL) {
            die("out of memory");
        }
        for (i = 0; i < nsrc; i++) {
            srcs[i].sin_family = AF_INET;
            srcs[i].sin_port = 0;
            srcs[i].sin_addr.s_addr = htonl(0x7f000001u + (uint32_t) i);
        }
    }

    raise_nofile((rlim_t) total + 64);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }

    t0 = t_conn0 = mono_now();
    i = 0;

    for (;;) {
        now = mono_now();

        if (stop_flag) {
            break;
        }
        if (opt_duration > 0 && now - t0 >= opt_duration) {
            warnx_("duration reached");
            break;
        }

        /* open connections: by rate, at most max_pending in handshake */
        allowed = total;
        if (opt_rate > 0) {
            allowed = (long) ((now - t_conn0) * opt_rate) + 1;
            if (allowed > total) {
                allowed = total;
            }
        }
        while (st_opened < allowed && st_pending < opt_max_pending) {
            struct conn *c = &conns[st_opened];

            conn_open(c, srcs ? &srcs[st_opened % nsrc] : NULL);
        }

        maybe_setup_done();

        if (stats_flag) {
            stats_flag = 0;
            print_line("stats");
        }

        /* run.sh starts a publisher only after this line: one that stamps
         * its first message before the signal is handled loses it */
        if (win_start_ns != 0 && !window_reported) {
            window_reported = 1;
            printf("window_open t=%" PRId64 "\n", (int64_t) win_start_ns);
            fflush(stdout);
        }

        if (setup_reported && !opt_idle && !summary_printed) {
            if (opt_expect > 0 && st_done >= st_established) {
                if (!opt_hold) {
                    break;  /* every reader got its messages or closed */
                }
                print_line("summary");     /* then hold until signal */
                summary_printed = 1;
                continue;
            }
            if (opt_expect == 0 && opt_duration <= 0
                && st_closed >= st_established)
            {
                break;      /* nothing left to wait for */
            }
        }

        if (now - last_to >= 0.5) {
            last_to = now;
            check_timeouts(now);
        }

        timeout_ms = 100;
        if (opt_rate > 0 && st_opened < total) {
            next = t_conn0 + (double) st_opened / opt_rate;
            timeout_ms = (int) ((next - now) * 1000.0);
            if (timeout_ms < 0) {
                timeout_ms = 0;
            } else if (timeout_ms > 100) {
                timeout_ms = 100;
            }
        }

        if (opt_spin) {
            timeout_ms = 0;
        }

        nev = epoll_wait(ep, evs, MAX_EVENTS, timeout_ms);
        if (nev < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < nev; k++) {
            conn_event(evs[k].data.ptr, evs[k].events);
        }
    }

    if (!summary_printed) {
        print_line("summary");
    }

    /* teardown: abortive close avoids 10k sockets in TIME_WAIT */
    for (i = 0; i < total; i++) {
        if (conns[i].fd >= 0) {
            if (opt_linger0) {
                struct linger lg = { 1, 0 };

                setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg,
                           sizeof(lg));
            }
            close(conns[i].fd);
            conns[i].fd = -1;
        }
        conn_free_bufs(&conns[i]);
    }
    close(ep);
    return (st_failed > 0) ? 1 : 0;
}


/* ----------------------------------------------------------- publisher */

static int
pub_connect(void)
{
    int             fd, one = 1;
    struct timeval  tv = { 5, 0 };

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *) &dst, sizeof(dst)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}


/*
 * Reads one HTTP response. Returns the status (>0), or -1 on error.
 * *keep is set to 0 if the server will close the connection.
 */
static int
pub_read_response(int fd, char *buf, size_t cap, int *keep)
{
    size_t   have = 0, hlen, body;
    ssize_t  n;
    char    *end, *v;
    int      status, chunked = 0, guard;
    long     clen = -1;

    *keep = 1;
    for (guard = 0; guard < 1000; guard++) {
        if (have == cap - 1) {
            return -1;
        }
        n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0) {
            return -1;
        }
        have += (size_t) n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            break;
        }
    }
    end = strstr(buf, "\r\n\r\n");
    if (end == NULL) {
        return -1;
    }
    hlen = (size_t) (end - buf) + 4;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        return -1;
    }
    *end = '\0';
    if (strncmp(buf, "HTTP/1.0", 8) == 0) {
        *keep = 0;
    }
    v = find_header(buf, "Connection");
    if (v != NULL && strncasecmp(v, "close", 5) == 0) {
        *keep = 0;
    }
    v = find_header(buf, "Content-Length");
    if (v != NULL) {
        clen = strtol(v, NULL, 10);
    }
    v = find_header(buf, "Transfer-Encoding");
    if (v != NULL && strncasecmp(v, "chunked", 7) == 0) {
        chunked = 1;
    }
    *end = '\r';

    if (clen >= 0) {
        body = have - hlen;
        while (body < (size_t) clen && guard++ < 2000) {
            n = recv(fd, buf, cap - 1, 0);
            if (n <= 0) {
                return -1;
            }
            body += (size_t) n;
        }
        return status;
    }
    if (chunked) {
        /* bodies here are small: read until the last-chunk marker */
        memmove(buf, buf + hlen, have - hlen);
        have -= hlen;
        buf[have] = '\0';
        while (guard++ < 2000) {
            if (strstr(buf, "0\r\n\r\n") != NULL
                && (buf[0] == '0' || strstr(buf, "\r\n0\r\n\r\n") != NULL))
            {
                return status;
            }
            if (have >= cap - 1) {
                memmove(buf, buf + have - 16, 16);
                have = 16;
            }
            n = recv(fd, buf + have, cap - 1 - have, 0);
            if (n <= 0) {
                return -1;
            }
            have += (size_t) n;
            buf[have] = '\0';
        }
        return -1;
    }
    if (status == 204 || status == 304 || status / 100 == 1) {
        return status;
    }
    /* close-delimited */
    *keep = 0;
    while (guard++ < 2000) {
        n = recv(fd, buf, cap - 1, 0);
        if (n <= 0) {
            break;
        }
    }
    return status;
}


static int
run_publisher(void)
{
    char            *req, *body, resp[16384];
    size_t           hdr_len, req_len;
    long             i, sent = 0, ok = 0, fail = 0, reconnects = 0;
    int              fd = -1, keep, status, hl;
    double           start, due, now;
    double          *rt;
    struct timespec  ts;
    char             tbuf[32];
    int              tl;
    ssize_t          n;
    size_t           off;

    if (opt_rate <= 0) {
        opt_rate = 50;
    }
    if (opt_size < 24) {
        opt_size = 24;     /* room for "t=<19 digits> " */
    }
    rt = calloc((size_t) opt_count + 1, sizeof(double));
    req = malloc(1024 + (size_t) opt_size);
    if (rt == NULL || req == NULL) {
        die("out of memory");
    }

    hl = snprintf(req, 1024,
                  "POST %s HTTP/1.1\r\n"
                  "Host: %s\r\n"
                  "Content-Type: text/plain\r\n"
                  "Content-Length: %ld\r\n"
                  "\r\n", path, host_hdr, opt_size);
    hdr_len = (size_t) hl;
    body = req + hdr_len;
    memset(body, 'x', (size_t) opt_size);
    req_len = hdr_len + (size_t) opt_size;

    start = mono_now();
    for (i = 0; i < opt_count && !stop_flag; i++) {
        due = start + (double) i / opt_rate;
        now = mono_now();
        if (opt_duration > 0 && now - start >= opt_duration) {
            warnx_("publisher: duration reached");
            break;
        }
        if (due > now) {
            ts.tv_sec = (time_t) (due - now);
            ts.tv_nsec = (long) ((due - now - (double) ts.tv_sec) * 1e9);
            nanosleep(&ts, NULL);
        }
        if (fd < 0) {
            fd = pub_connect();
            if (fd < 0) {
                fail++;
                warnx_("publisher: connect: %s", strerror(errno));
                continue;
            }
            if (i > 0) {
                reconnects++;
            }
        }

        tl = snprintf(tbuf, sizeof(tbuf), "t=%" PRId64 " ", real_ns());
        memcpy(body, tbuf, (size_t) tl);   /* rest stays 'x' padding */

        now = mono_now();
        for (off = 0; off < req_len; off += (size_t) n) {
            n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
            if (n <= 0) {
                break;
            }
        }
        sent++;
        if (off < req_len) {
            fail++;
            close(fd);
            fd = -1;
            continue;
        }
        status = pub_read_response(fd, resp, sizeof(resp), &keep);
        rt[ok] = mono_now() - now;
        if (status >= 200 && status < 300) {
            ok++;
        } else {
            fail++;
            warnx_("publisher: response status %d", status);
        }
        if (status < 0 || !keep) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }

    now = mono_now();
    {
        double p50 = 0, mx = 0;
        long   k, j;

        /* insertion sort: count is small */
        for (k = 1; k < ok; k++) {
            double v = rt[k];

            for (j = k - 1; j >= 0 && rt[j] > v; j--) {
                rt[j + 1] = rt[j];
            }
            rt[j + 1] = v;
        }
        if (ok > 0) {
            p50 = rt[(ok - 1) / 2];
            mx = rt[ok - 1];
        }
        printf("publish sent=%ld ok=%ld fail=%ld reconnects=%ld size=%ld "
               "rate=%.1f elapsed_s=%.3f resp_p50_ms=%.3f resp_max_ms=%.3f\n",
               sent, ok, fail, reconnects, opt_size, opt_rate, now - start,
               p50 * 1e3, mx * 1e3);
        fflush(stdout);
    }
    free(rt);
    free(req);
    return fail > 0 ? 1 : 0;
}


/* ------------------------------------------------------------ HTTP GET */

/*
 * --get URL: -n N keep-alive connections, each with one GET in flight,
 * --count requests in all (or until --duration), each with the --header
 * lines; a response is read to its end (Content-Length, chunked, or the
 * close), counted ok when its status is --status (200). For bench/jwt.sh:
 * the cost of a request through an access-phase check.
 */

#define GET_HDR_MAX  16384
#define GET_LINE_MAX 256

enum { G_HDR = 0, G_BODY_LEN, G_CH_SIZE, G_CH_DATA, G_CH_CRLF, G_CH_TRAILER,
       G_BODY_CLOSE };

struct gconn {
    int       fd;
    int       state;
    int       keep;
    int       status;
    double    t_sent;
    uint64_t  left;             /* body or chunk bytes still to come */
    size_t    hlen;
    size_t    llen;
    char      hdr[GET_HDR_MAX];
    char      line[GET_LINE_MAX];
};

static char   *opt_get;
static long    opt_get_status = 200;
static char   *get_headers;       /* "Name: value\r\n"... */
static size_t  get_headers_len;
static char   *get_req;
static size_t  get_req_len;
static long    g_sent, g_ok, g_fail, g_other, g_reconnects;
static int     g_first_other;
static double *g_rt;


static void
get_add_header(const char *h)
{
    size_t  n = strlen(h);

    if (strchr(h, ':') == NULL || strpbrk(h, "\r\n") != NULL) {
        die("--header \"Name: value\" (one line): %s", h);
    }
    get_headers = realloc(get_headers, get_headers_len + n + 3);
    if (get_headers == NULL) {
        die("out of memory");
    }
    memcpy(get_headers + get_headers_len, h, n);
    memcpy(get_headers + get_headers_len + n, "\r\n", 3);
    get_headers_len += n + 2;
}


static int
get_open(struct gconn *g)
{
    int  fl;

    g->fd = pub_connect();
    if (g->fd < 0) {
        return -1;
    }
    fl = fcntl(g->fd, F_GETFL);
    fcntl(g->fd, F_SETFL, fl | O_NONBLOCK);
    g->state = G_HDR;
    g->hlen = 0;
    return 0;
}


/* the request in one send: it is small, and the socket's buffer empty */
static int
get_send(struct gconn *g)
{
    ssize_t  n;

    g->state = G_HDR;
    g->hlen = 0;
    g->llen = 0;
    g->t_sent = mono_now();
    n = send(g->fd, get_req, get_req_len, MSG_NOSIGNAL);
    if (n != (ssize_t) get_req_len) {
        return -1;
    }
    g_sent++;
    return 0;
}


static void
get_done(struct gconn *g)
{
    g_rt[g_ok + g_other] = mono_now() - g->t_sent;
    if (g->status == opt_get_status) {
        g_ok++;
    } else {
        g_other++;
        if (!g_first_other) {
            g_first_other = g->status;
            warnx_("get: response status %d (not %ld)", g->status,
                   opt_get_status);
        }
    }
}


/*
 * Feeds a response's bytes. Returns 1 when the response is complete (the
 * bytes after it, if any, are a protocol error: one request in flight),
 * 0 when more are needed, -1 on a malformed response.
 */
static int
get_bytes(struct gconn *g, const char *p, size_t n)
{
    char    *end, *v;
    size_t   k, take;
    long     clen;

    while (n > 0) {
        switch (g->state) {

        case G_HDR:
            take = n < GET_HDR_MAX - 1 - g->hlen ? n : GET_HDR_MAX - 1 - g->hlen;
            if (take == 0) {
                return -1;
            }
            memcpy(g->hdr + g->hlen, p, take);
            g->hdr[g->hlen + take] = '\0';
            end = strstr(g->hdr + (g->hlen > 3 ? g->hlen - 3 : 0), "\r\n\r\n");
            if (end == NULL) {
                g->hlen += take;
                p += take;
                n -= take;
                break;
            }
            k = (size_t) (end + 4 - g->hdr) - g->hlen;   /* of this read */
            p += k;
            n -= k;
            g->hlen = (size_t) (end + 4 - g->hdr);
            end[2] = '\0';
            if (sscanf(g->hdr, "HTTP/1.%*d %d", &g->status) != 1) {
                return -1;
            }
            g->keep = strncmp(g->hdr, "HTTP/1.0", 8) != 0;
            v = find_header(g->hdr, "Connection");
            if (v != NULL && strncasecmp(v, "close", 5) == 0) {
                g->keep = 0;
            }
            clen = -1;
            v = find_header(g->hdr, "Content-Length");
            if (v != NULL) {
                clen = strtol(v, NULL, 10);
            }
            v = find_header(g->hdr, "Transfer-Encoding");
            if (v != NULL && strncasecmp(v, "chunked", 7) == 0) {
                g->state = G_CH_SIZE;
                g->llen = 0;
            } else if (clen >= 0) {
                g->left = (uint64_t) clen;
                g->state = G_BODY_LEN;
                if (clen == 0) {
                    return n ? -1 : 1;
                }
            } else if (g->status == 204 || g->status == 304) {
                return n ? -1 : 1;
            } else {
                g->keep = 0;
                g->state = G_BODY_CLOSE;
            }
            break;

        case G_BODY_LEN:
        case G_CH_DATA:
            take = n < g->left ? n : (size_t) g->left;
            g->left -= take;
            p += take;
            n -= take;
            if (g->left == 0) {
                if (g->state == G_BODY_LEN) {
                    return n ? -1 : 1;
                }
                g->state = G_CH_CRLF;
                g->llen = 0;
            }
            break;

        case G_BODY_CLOSE:
            return 0;         /* up to the close */

        case G_CH_SIZE:
        case G_CH_CRLF:
        case G_CH_TRAILER:
            /* a line: the size (extensions after ';'), the CRLF after a
             * chunk's data, or a trailer (the empty one ends it) */
            if (*p != '\n') {
                if (g->llen == GET_LINE_MAX - 1) {
                    return -1;
                }
                g->line[g->llen++] = *p;
                p++;
                n--;
                break;
            }
            p++;
            n--;
            if (g->llen > 0 && g->line[g->llen - 1] == '\r') {
                g->llen--;
            }
            g->line[g->llen] = '\0';
            if (g->state == G_CH_CRLF) {
                if (g->llen != 0) {
                    return -1;
                }
                g->state = G_CH_SIZE;
            } else if (g->state == G_CH_SIZE) {
                char  *e;
                unsigned long long  sz = strtoull(g->line, &e, 16);

                if (e == g->line) {
                    return -1;
                }
                if (sz == 0) {
                    g->state = G_CH_TRAILER;
                } else {
                    g->left = sz;
                    g->state = G_CH_DATA;
                }
            } else if (g->llen == 0) {
                return n ? -1 : 1;
            }
            g->llen = 0;
            break;
        }
    }
    return 0;
}


static int
run_getter(void)
{
    int                  i, nev, rc;
    long                 k, j, done;
    ssize_t              r;
    double               start, now, elapsed;
    struct gconn        *gs, *g;
    struct epoll_event   ev, evs[MAX_EVENTS];

    if (opt_n < 1 || opt_n > 10000 || opt_count < 1) {
        die("--get: -n 1..10000 connections, --count >= 1");
    }
    raise_nofile((rlim_t) opt_n + 64);

    get_req = malloc(2300 + sizeof(host_hdr) + get_headers_len);
    if (get_req == NULL) {
        die("out of memory");
    }
    get_req_len = (size_t) snprintf(get_req, 2300 + sizeof(host_hdr),
                                    "GET %s HTTP/1.1\r\n"
                                    "Host: %s\r\n"
                                    "Accept: application/json\r\n",
                                    path, host_hdr);
    if (get_headers_len) {
        memcpy(get_req + get_req_len, get_headers, get_headers_len);
        get_req_len += get_headers_len;
    }
    memcpy(get_req + get_req_len, "\r\n", 2);
    get_req_len += 2;

    g_rt = calloc((size_t) opt_count + 1, sizeof(double));
    gs = calloc((size_t) opt_n, sizeof(struct gconn));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_rt == NULL || gs == NULL || ep < 0) {
        die("out of memory, or epoll_create1");
    }

    for (k = 0; k < opt_n; k++) {
        if (get_open(&gs[k]) != 0) {
            die("get: connect: %s", strerror(errno));
        }
        ev.events = EPOLLIN;
        ev.data.ptr = &gs[k];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, gs[k].fd, &ev) != 0) {
            die("epoll_ctl: %s", strerror(errno));
        }
    }

    printf("get_ready n=%ld t=%" PRId64 "\n", opt_n, real_ns());
    fflush(stdout);

    start = mono_now();
    for (k = 0; k < opt_n && g_sent < opt_count; k++) {
        if (get_send(&gs[k]) != 0) {
            die("get: send: %s", strerror(errno));
        }
    }

    done = 0;
    while (!stop_flag && done < g_sent) {
        nev = epoll_wait(ep, evs, MAX_EVENTS, 1000);
        if (nev < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }
        now = mono_now();
        if (opt_duration > 0 && now - start >= opt_duration) {
            warnx_("get: duration reached");
            break;
        }
        for (i = 0; i < nev; i++) {
            g = evs[i].data.ptr;
            rc = 0;
            for (;;) {
                r = recv(g->fd, rbuf, RBUF_SIZE, 0);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    break;
                }
                if (r <= 0) {
                    rc = (g->state == G_BODY_CLOSE) ? 1 : -1;
                    g->keep = 0;
                    break;
                }
                rc = get_bytes(g, rbuf, (size_t) r);
                if (rc != 0) {
                    break;
                }
            }
            if (rc == 0) {
                continue;
            }
            done++;
            if (rc > 0) {
                get_done(g);
            } else {
                g_fail++;
                g->keep = 0;
            }
            if (!g->keep) {
                epoll_ctl(ep, EPOLL_CTL_DEL, g->fd, NULL);
                close(g->fd);
                if (g_sent >= opt_count || stop_flag) {
                    g->fd = -1;
                    continue;
                }
                if (get_open(g) != 0) {
                    die("get: reconnect: %s", strerror(errno));
                }
                g_reconnects++;
                ev.events = EPOLLIN;
                ev.data.ptr = g;
                epoll_ctl(ep, EPOLL_CTL_ADD, g->fd, &ev);
            }
            if (g_sent < opt_count && get_send(g) != 0) {
                g_fail++;
                warnx_("get: send: %s", strerror(errno));
            }
        }
    }
    elapsed = mono_now() - start;

    for (k = 0; k < opt_n; k++) {
        if (gs[k].fd >= 0) {
            close(gs[k].fd);
        }
    }
    close(ep);

    {
        double  p50 = 0, p99 = 0, mx = 0;
        long    m = g_ok + g_other;

        /* insertion sort would be quadratic: a shell sort, gaps 3k + 1 */
        long    gap = 1;

        while (gap < m / 3) {
            gap = 3 * gap + 1;
        }
        for (; gap > 0; gap /= 3) {
            for (k = gap; k < m; k++) {
                double  v = g_rt[k];

                for (j = k; j >= gap && g_rt[j - gap] > v; j -= gap) {
                    g_rt[j] = g_rt[j - gap];
                }
                g_rt[j] = v;
            }
        }
        if (m > 0) {
            p50 = g_rt[(m - 1) / 2];
            p99 = g_rt[(m - 1) * 99 / 100];
            mx = g_rt[m - 1];
        }
        printf("get n=%ld sent=%ld ok=%ld other=%ld fail=%ld reconnects=%ld "
               "status=%ld first_other=%d elapsed_s=%.3f rps=%.1f "
               "lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f\n",
               opt_n, g_sent, g_ok, g_other, g_fail, g_reconnects,
               opt_get_status, g_first_other, elapsed,
               elapsed > 0 ? (double) (g_ok + g_other) / elapsed : 0.0,
               p50 * 1e3, p99 * 1e3, mx * 1e3);
        fflush(stdout);
    }
    free(g_rt);
    free(gs);
    free(get_req);
    return (g_fail > 0 || g_other > 0 || g_ok < opt_count) ? 1 : 0;
}


/* ------------------------------------------------------ MQTT publisher */

static int
mqtt_pub_open(const char *client_id)
{
    uint8_t  pkt[300], ack[4];
    size_t   n, off;
    ssize_t  r;
    int      fd;

    fd = pub_connect();
    if (fd < 0) {
        return -1;
    }
    n = mqtt_connect_packet(pkt, client_id, 0);
    if (send(fd, pkt, n, MSG_NOSIGNAL) != (ssize_t) n) {
        close(fd);
        return -1;
    }
    for (off = 0; off < 4; off += (size_t) r) {   /* CONNACK 20 02 00 00 */
        r = recv(fd, ack + off, 4 - off, 0);
        if (r <= 0) {
            close(fd);
            return -1;
        }
    }
    if (ack[0] != 0x20 || ack[3] != 0) {
        warnx_("publisher: CONNACK %02x %02x %02x %02x", ack[0], ack[1],
               ack[2], ack[3]);
        close(fd);
        errno = ECONNREFUSED;
        return -1;
    }
    return fd;
}


/*
 * --publish mqtt://HOST:PORT/TOPIC: QoS 0 PUBLISH of --size bytes
 * ("t=<ns> " + 'x') at --rate, --count of them (0: until SIGTERM or
 * --duration). QoS 0 has no acknowledgement: ok = written to the socket.
 */
static int
run_mqtt_publisher(const char *topic)
{
    uint8_t         *pkt, *payload;
    size_t           tl = strlen(topic), h = 0, len;
    long             i, sent = 0, ok = 0, fail = 0, reconnects = 0;
    int              fd;
    double           start, due, now, late, late_max = 0;
    struct timespec  ts;
    char             tbuf[32], id[64];
    int              tln;
    ssize_t          n;
    size_t           off;

    if (opt_rate <= 0) {
        opt_rate = 50;
    }
    if (opt_size < 24) {
        opt_size = 24;
    }
    if (tl == 0 || tl > 1000 || strpbrk(topic, "+#") != NULL) {
        die("bad MQTT topic \"%s\"", topic);
    }
    pkt = malloc(16 + tl + (size_t) opt_size);
    if (pkt == NULL) {
        die("out of memory");
    }
    pkt[h++] = 0x30;                           /* PUBLISH, QoS 0 */
    h += mqtt_varint(pkt + h, 2 + tl + (size_t) opt_size);
    h += mqtt_str(pkt + h, topic, tl);
    payload = pkt + h;
    memset(payload, 'x', (size_t) opt_size);
    len = h + (size_t) opt_size;

    snprintf(id, sizeof(id), "lgpub-%ld", (long) getpid());
    fd = mqtt_pub_open(id);
    if (fd < 0) {
        die("publisher: cannot connect to the broker: %s", strerror(errno));
    }
    printf("publish_ready t=%" PRId64 "\n", real_ns());
    fflush(stdout);

    start = mono_now();
    for (i = 0; (opt_count == 0 || i < opt_count) && !stop_flag; i++) {
        due = start + (double) i / opt_rate;
        now = mono_now();
        if (opt_duration > 0 && now - start >= opt_duration) {
            break;
        }
        if (due > now) {
            ts.tv_sec = (time_t) (due - now);
            ts.tv_nsec = (long) ((due - now - (double) ts.tv_sec) * 1e9);
            nanosleep(&ts, NULL);
            if (stop_flag) {
                break;
            }
        } else {
            late = now - due;
            if (late > late_max) {
                late_max = late;
            }
        }
        if (fd < 0) {
            fd = mqtt_pub_open(id);
            if (fd < 0) {
                fail++;
                continue;
            }
            reconnects++;
        }
        tln = snprintf(tbuf, sizeof(tbuf), "t=%" PRId64 " ", real_ns());
        memcpy(payload, tbuf, (size_t) tln);
        for (off = 0; off < len; off += (size_t) n) {
            n = send(fd, pkt + off, len - off, MSG_NOSIGNAL);
            if (n <= 0) {
                break;
            }
        }
        sent++;
        if (off < len) {
            fail++;
            close(fd);
            fd = -1;
            continue;
        }
        ok++;
    }
    if (fd >= 0) {
        static const uint8_t  disc[2] = { 0xe0, 0x00 };

        n = send(fd, disc, 2, MSG_NOSIGNAL);
        (void) n;
        close(fd);
    }
    now = mono_now();
    printf("publish proto=mqtt topic=%s sent=%ld ok=%ld fail=%ld "
           "reconnects=%ld size=%ld rate=%.1f elapsed_s=%.3f "
           "late_max_ms=%.3f\n", topic, sent, ok, fail, reconnects,
           opt_size, opt_rate, now - start, late_max * 1e3);
    fflush(stdout);
    free(pkt);
    return fail > 0 ? 1 : 0;
}


/* ---------------------------------------------------------------- main */

static void
usage(void)
{
    fprintf(stderr,
"usage: loadgen-mqtt --mode ws|sse|mqtt-ws --url URL -n N [options]\n"
"       loadgen-mqtt --publish http://...|mqtt://HOST:PORT/TOPIC [--rate R]\n"
"                    [--count C] [--size S]\n"
"       loadgen-mqtt --get http://HOST:PORT/PATH -n N --count C\n"
"                    [--header \"H: v\"]... [--status S]\n"
"\n"
"subscribers:\n"
"  --mode ws|sse       WebSocket (RFC 6455) or Server-Sent Events (default ws)\n"
"  --mode mqtt-ws      MQTT 3.1.1 over WebSocket (subprotocol mqtt): CONNECT,\n"
"                      SUBSCRIBE --topic QoS 0; each PUBLISH is a message\n"
"  --topic T           mqtt-ws subscription (default bench/t)\n"
"  --keepalive S       mqtt-ws CONNECT keepalive (default 0: none)\n"
"  --url URL           ws://HOST:PORT/PATH or http://HOST:PORT/PATH\n"
"  -n N                number of reading subscribers (default 1)\n"
"  --rate R            connections per second ramp (default: unlimited)\n"
"  --max-pending P     at most P handshakes in flight (default 200)\n"
"  --expect M          exit when every reader has M messages (lost = M - got)\n"
"  --duration S        hard stop after S seconds (0 = none)\n"
"  --idle              hold connections until signal/duration (memory tests)\n"
"  --hold              with --expect: print the summary when done, then keep\n"
"                      the connections open until signal/duration\n"
"  --slow K            K extra connections that never read\n"
"  --slow-rcvbuf B     SO_RCVBUF of slow connections (default 4096, 0 = OS)\n"
"  --latency           p50/p99 of now - t=<ns> found at the payload start\n"
"  --window            count only messages stamped t=<ns> at or after the\n"
"                      SIGUSR2 (for --expect, lost, latency, min/max);\n"
"                      the summary adds msgs_window=\n"
"  --src-ips K         spread over source 127.0.0.1..127.0.0.K (0 = auto)\n"
"  --any-dest          allow a destination outside 127.0.0.0/8 (e.g. the\n"
"                      server end of a veth pair; no --src-ips then)\n"
"  --hs-timeout S      handshake timeout (default 10)\n"
"  --http10            SSE request as HTTP/1.0 (close-delimited response)\n"
"  --no-linger0        close normally at exit (default: RST, no TIME_WAIT)\n"
"publisher:\n"
"  --publish URL       POST messages to URL on one keep-alive connection;\n"
"                      mqtt://HOST:PORT/TOPIC: MQTT 3.1.1 PUBLISH QoS 0 on\n"
"                      one TCP connection (--count 0: until SIGTERM)\n"
"  --rate R            messages per second (default 50)\n"
"  --count C           number of messages (default 200)\n"
"  --size S            payload bytes: \"t=<ns> \" then 'x' padding (default 100)\n"
"HTTP GET (--get):\n"
"  --get URL           -n N keep-alive connections, one GET in flight on\n"
"                      each, --count requests in all (or --duration S);\n"
"                      a response is read to its end; ok = --status\n"
"  --header \"H: v\"     a request header (repeatable)\n"
"  --status S          the status counted ok (default 200)\n"
"common:\n"
"  --pin-cpu C         sched_setaffinity to CPU C\n"
"  --quiet             fewer diagnostics on stderr\n"
"output: 'setup_done ...' when all subscribers are set up, 'stats ...' on\n"
"SIGUSR1, 'summary ...' at exit (SIGINT/SIGTERM stop cleanly).\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    enum {
        O_MODE = 256, O_URL, O_RATE, O_EXPECT, O_DURATION, O_IDLE, O_SLOW,
        O_LATENCY, O_PIN, O_SRC, O_MAXP, O_HST, O_HTTP10, O_NOLINGER,
        O_PUBLISH, O_COUNT, O_SIZE, O_QUIET, O_SLOWRCV, O_HOLD, O_WINDOW,
        O_ANYDEST, O_TOPIC, O_KEEPALIVE, O_GET, O_HEADER, O_STATUS, O_SPIN
    };
    static const struct option  lo[] = {
        { "mode", required_argument, NULL, O_MODE },
        { "url", required_argument, NULL, O_URL },
        { "rate", required_argument, NULL, O_RATE },
        { "expect", required_argument, NULL, O_EXPECT },
        { "duration", required_argument, NULL, O_DURATION },
        { "idle", no_argument, NULL, O_IDLE },
        { "spin", no_argument, NULL, O_SPIN },
        { "hold", no_argument, NULL, O_HOLD },
        { "slow", required_argument, NULL, O_SLOW },
        { "slow-rcvbuf", required_argument, NULL, O_SLOWRCV },
        { "latency", no_argument, NULL, O_LATENCY },
        { "window", no_argument, NULL, O_WINDOW },
        { "pin-cpu", required_argument, NULL, O_PIN },
        { "src-ips", required_argument, NULL, O_SRC },
        { "any-dest", no_argument, NULL, O_ANYDEST },
        { "max-pending", required_argument, NULL, O_MAXP },
        { "hs-timeout", required_argument, NULL, O_HST },
        { "http10", no_argument, NULL, O_HTTP10 },
        { "no-linger0", no_argument, NULL, O_NOLINGER },
        { "publish", required_argument, NULL, O_PUBLISH },
        { "count", required_argument, NULL, O_COUNT },
        { "size", required_argument, NULL, O_SIZE },
        { "quiet", no_argument, NULL, O_QUIET },
        { "topic", required_argument, NULL, O_TOPIC },
        { "keepalive", required_argument, NULL, O_KEEPALIVE },
        { "get", required_argument, NULL, O_GET },
        { "header", required_argument, NULL, O_HEADER },
        { "status", required_argument, NULL, O_STATUS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int       ch;
    uint64_t  seed;

    while ((ch = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
        switch (ch) {
        case O_MODE:
            if (strcmp(optarg, "ws") == 0) {
                opt_mode = MODE_WS;
            } else if (strcmp(optarg, "sse") == 0) {
                opt_mode = MODE_SSE;
            } else if (strcmp(optarg, "mqtt-ws") == 0) {
                opt_mode = MODE_MQTTWS;
            } else {
                usage();
            }
            break;
        case O_URL:       opt_url = optarg; break;
        case 'n':         opt_n = strtol(optarg, NULL, 10); break;
        case O_RATE:      opt_rate = strtod(optarg, NULL); break;
        case O_EXPECT:    opt_expect = strtol(optarg, NULL, 10); break;
        case O_DURATION:  opt_duration = strtod(optarg, NULL); break;
        case O_IDLE:      opt_idle = 1; break;
        case O_SPIN:      opt_spin = 1; break;
        case O_HOLD:      opt_hold = 1; break;
        case O_SLOW:      opt_slow = strtol(optarg, NULL, 10); break;
        case O_SLOWRCV:   opt_slow_rcvbuf = strtol(optarg, NULL, 10); break;
        case O_LATENCY:   opt_latency = 1; break;
        case O_WINDOW:    opt_window = 1; break;
        case O_PIN:       opt_pin = (int) strtol(optarg, NULL, 10); break;
        case O_SRC:       opt_src_ips = (int) strtol(optarg, NULL, 10); break;
        case O_ANYDEST:   opt_any_dest = 1; break;
        case O_MAXP:      opt_max_pending = strtol(optarg, NULL, 10); break;
        case O_HST:       opt_hs_timeout = strtod(optarg, NULL); break;
        case O_HTTP10:    opt_http10 = 1; break;
        case O_NOLINGER:  opt_linger0 = 0; break;
        case O_PUBLISH:   opt_publish = optarg; break;
        case O_COUNT:     opt_count = strtol(optarg, NULL, 10); break;
        case O_SIZE:      opt_size = strtol(optarg, NULL, 10); break;
        case O_QUIET:     opt_quiet = 1; break;
        case O_TOPIC:     opt_topic = optarg; break;
        case O_KEEPALIVE: opt_keepalive = strtol(optarg, NULL, 10); break;
        case O_GET:       opt_get = optarg; break;
        case O_HEADER:    get_add_header(optarg); break;
        case O_STATUS:    opt_get_status = strtol(optarg, NULL, 10); break;
        default:          usage();
        }
    }
    if (optind != argc) {
        usage();
    }

    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
        seed = (uint64_t) real_ns();
    }
    rng_state = seed | 1;

    setup_signals();
    if (opt_pin >= 0) {
        pin_cpu(opt_pin);
    }

    if (opt_get != NULL) {
        rbuf = malloc(RBUF_SIZE);
        if (rbuf == NULL) {
            die("out of memory");
        }
        parse_url(opt_get);
        return run_getter();
    }

    if (opt_publish != NULL) {
        if (opt_count < 0 || opt_count > 10000000 || opt_size > 16 << 20) {
            die("--count or --size out of range");
        }
        if (strncmp(opt_publish, "mqtt://", 7) == 0) {
            char        u[2100];
            const char *hp = opt_publish + 7, *sl = strchr(hp, '/');

            if (sl == NULL || sl[1] == '\0'
                || memchr(hp, ':', (size_t) (sl - hp)) == NULL)
            {
                die("--publish mqtt://HOST:PORT/TOPIC (the port is required)");
            }
            snprintf(u, sizeof(u), "http://%.*s/", (int) (sl - hp), hp);
            parse_url(u);
            return run_mqtt_publisher(sl + 1);
        }
        parse_url(opt_publish);
        return run_publisher();
    }

    if (opt_url == NULL) {
        usage();
    }
    if (opt_n < 0 || opt_slow < 0 || opt_n + opt_slow < 1
        || opt_n + opt_slow > 1000000 || opt_max_pending < 1)
    {
        die("bad -n / --slow / --max-pending");
    }
    if (opt_expect < 0 || opt_expect > 100000000) {
        die("bad --expect");
    }
    if (opt_keepalive < 0 || opt_keepalive > 65535 || strlen(opt_topic) == 0
        || strlen(opt_topic) > 400)
    {
        die("bad --keepalive or --topic");
    }
    parse_url(opt_url);
    return run_subscribers();
}
