/*
 * kafka-storm: N SSE clients for bench/kafka.sh's reconnect storm.
 *
 * Each client reads an SSE stream (HTTP/1.1, chunked) whose records carry
 * "t=<unix ns> p=<partition> s=<sequence>" (one sequence per partition, from
 * 0, made by kafka.sh's producer), and checks that it gets every record of
 * every partition once and in order: across a reconnection too, which it
 * makes with the Last-Event-ID of the last event it got, after a random delay
 * within --jitter seconds (a browser's EventSource after a reload).
 *
 *   kafka-storm --url http://127.0.0.1:PORT/PATH -n N [--rate R] [--jitter S]
 *               [--parts P] [--duration S] [--pin-cpu C] [--src-ips K]
 *               [--dump FILE]   (per client: close, open, first record,
 *                                live, in ms after the mark)
 *
 * Lines on stdout (key=value):
 *   connected n= secs=       every client has its first stream
 *   all_seen n= secs=        every client has a record of every partition
 *   mark t=<ns>              SIGUSR2 handled (kafka.sh sends it just before
 *                            nginx -s reload)
 *   all_live n= ms=          every client reconnected after the mark and got,
 *                            on its new stream, a record produced after it
 *   summary ...              at SIGTERM or --duration: records, missed,
 *                            repeated, streams, live_* (ms from the mark to
 *                            a client's first new record on its new
 *                            stream), handshake_* (connect() to the 200, of
 *                            the streams opened after the mark), last_min/
 *                            last_max (per partition, over the clients)
 *
 * A record's sequence: s = last + 1 is in order; s <= last is a repeat;
 * s > last + 1 misses s - last - 1 records.  The first record of a
 * partition a client gets sets where it starts; kafka.sh marks only after
 * all_seen, so every record after the mark is checked.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAXP        16
#define LINE_MAX_   256
#define ID_MAX      256
#define HDR_MAX     4096
#define RBUF        (256 * 1024)

enum { S_WAIT = 0, S_CONNECTING, S_HEADERS, S_OPEN };
enum { F_SEEN_ALL = 1, F_EVER_OPEN = 2, F_REPEAT = 4, F_MISS = 8 };
enum { CH_SIZE = 0, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF };

struct client {
    int       fd;
    uint8_t   state;
    uint8_t   cstate;          /* chunked decoding */
    uint8_t   flags;           /* F_* */
    uint8_t   live;            /* live again after the mark */
    uint8_t   after_mark;      /* this stream was opened after the mark */
    uint8_t   ev_goaway;
    uint16_t  line_len;
    uint16_t  hdr_len;
    uint16_t  id_len, pend_id_len;
    uint32_t  seen_mask;
    uint64_t  chunk_left;
    double    due;             /* S_WAIT: when to connect */
    double    closed_at;       /* last close */
    double    conn_start;      /* connect() of this stream */
    double    m_close;         /* after the mark, 0 = not yet: first close, */
    double    m_open;          /* first 200 on a new stream, */
    double    m_rec;           /* first record on it, */
    double    m_live;          /* live again (monotonic s) */
    int64_t   last[MAXP];      /* last sequence per partition, -1: none */
    uint64_t  records;
    char     *hdr;
    char      line[LINE_MAX_];
    char      data[LINE_MAX_];
    uint16_t  data_len;
    char      id[ID_MAX];
    char      pend_id[ID_MAX];
};

static const char *opt_url;
static long        opt_n = 1000;
static double      opt_rate = 2000, opt_jitter = 1.0, opt_duration = 120;
static int         opt_parts = 4, opt_pin = -1, opt_src_ips = 4;
static const char *opt_dump;

static struct sockaddr_in  dst;
static char                host[300], path[2048];
static struct client      *cl;
static int                 ep;
static volatile sig_atomic_t  stop_flag, mark_flag;

static double   t0, mark_mono;
static int64_t  mark_ns;
static long     n_connected_once, n_seen_all, n_live;
static int      said_connected, said_seen, said_live;
static uint64_t st_records, st_missed, st_repeated, st_unchecked, st_goaway;
static uint64_t st_streams, st_conn_fail, st_http_err, st_closed;
static uint64_t st_after_mark_streams, st_parse_err;
static long     cl_missed, cl_repeated;
static double  *live_ms, *recon_ms, *live_tmp;
static long     n_recon;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;


static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int64_t
real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static double
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double) (rng >> 11) / (double) (1ULL << 53);
}


static void
on_signal(int sig)
{
    if (sig == SIGUSR2) {
        mark_flag = 1;
    } else {
        stop_flag = 1;
    }
}


static void
parse_url(const char *url)
{
    const char *p = url, *h, *c, *s;
    char        hostname[256];
    int         port = 80;
    size_t      n;

    if (strncmp(p, "http://", 7) != 0) {
        fprintf(stderr, "kafka-storm: --url http://HOST:PORT/PATH\n");
        exit(2);
    }
    h = p + 7;
    s = strchr(h, '/');
    if (s == NULL) {
        s = h + strlen(h);
    }
    c = memchr(h, ':', (size_t) (s - h));
    n = (size_t) ((c ? c : s) - h);
    if (n == 0 || n >= sizeof(hostname)) {
        fprintf(stderr, "kafka-storm: bad host in %s\n", url);
        exit(2);
    }
    memcpy(hostname, h, n);
    hostname[n] = '\0';
    if (c) {
        port = atoi(c + 1);
    }
    snprintf(host, sizeof(host), "%.*s", (int) (s - h), h);
    snprintf(path, sizeof(path), "%s", *s ? s : "/");
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, hostname, &dst.sin_addr) != 1
        || (ntohl(dst.sin_addr.s_addr) >> 24) != 127)
    {
        fprintf(stderr, "kafka-storm: the host must be a 127.x.x.x address\n");
        exit(2);
    }
}


static void
cl_close(struct client *c, int reconnect)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    free(c->hdr);
    c->hdr = NULL;
    c->hdr_len = 0;
    c->line_len = 0;
    c->data_len = 0;
    c->pend_id_len = 0;
    c->ev_goaway = 0;
    c->state = S_WAIT;
    c->closed_at = mono();
    if (mark_ns && c->m_close == 0) {
        c->m_close = c->closed_at;
    }
    c->due = reconnect ? c->closed_at + rnd() * opt_jitter : 1e30;
}


static void
cl_connect(struct client *c, long i)
{
    struct sockaddr_in  src;
    struct epoll_event  ev;
    int                 one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        st_conn_fail++;
        cl_close(c, 1);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt_src_ips > 1) {
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t) (i % opt_src_ips));
        if (bind(c->fd, (struct sockaddr *) &src, sizeof(src)) < 0) {
            st_conn_fail++;
            cl_close(c, 1);
            return;
        }
    }
    if (connect(c->fd, (struct sockaddr *) &dst, sizeof(dst)) < 0
        && errno != EINPROGRESS)
    {
        st_conn_fail++;
        cl_close(c, 1);
        return;
    }
    c->state = S_CONNECTING;
    c->conn_start = mono();
    c->after_mark = mark_ns != 0;
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u64 = (uint64_t) i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}


static void
cl_send_request(struct client *c)
{
    char                req[4096];
    int                 n;
    struct epoll_event  ev;

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "Accept: text/event-stream\r\n"
                 "Cache-Control: no-cache\r\n%s%.*s%s\r\n",
                 path, host, c->id_len ? "Last-Event-ID: " : "",
                 (int) c->id_len, c->id, c->id_len ? "\r\n" : "");
    /* a fresh socket's buffer takes it whole */
    if (write(c->fd, req, (size_t) n) != n) {
        st_conn_fail++;
        cl_close(c, 1);
        return;
    }
    c->state = S_HEADERS;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) (c - cl);
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}


static void
record(struct client *c, double now)
{
    const char *p;
    int64_t     t = 0, s = 0;
    long        part = -1;
    char        buf[LINE_MAX_ + 1];

    memcpy(buf, c->data, c->data_len);
    buf[c->data_len] = '\0';
    p = buf;
    if (sscanf(p, "t=%" SCNd64 " p=%ld s=%" SCNd64, &t, &part, &s) != 3
        || part < 0 || part >= opt_parts)
    {
        st_parse_err++;
        return;
    }
    c->records++;
    st_records++;
    if (c->after_mark && c->m_rec == 0) {
        c->m_rec = now;
    }

    if (c->last[part] < 0) {
        if (mark_ns) {
            st_unchecked++;     /* started after the mark: not checkable */
        }
        c->last[part] = s;
    } else if (s == c->last[part] + 1) {
        c->last[part] = s;
    } else if (s <= c->last[part]) {
        if (st_repeated++ == 0) {
            fprintf(stderr, "kafka-storm: client %ld: partition %ld: "
                    "%" PRId64 " after %" PRId64 " (repeat)\n",
                    (long) (c - cl), part, s, c->last[part]);
        }
        if (!(c->flags & F_REPEAT)) {
            c->flags |= F_REPEAT;
            cl_repeated++;
        }
    } else {
        if (st_missed == 0) {
            fprintf(stderr, "kafka-storm: client %ld: partition %ld: "
                    "%" PRId64 " after %" PRId64 " (missed)\n",
                    (long) (c - cl), part, s, c->last[part]);
        }
        st_missed += (uint64_t) (s - c->last[part] - 1);
        if (!(c->flags & F_MISS)) {
            c->flags |= F_MISS;
            cl_missed++;
        }
        c->last[part] = s;
    }

    if (!(c->flags & F_SEEN_ALL)) {
        c->seen_mask |= 1u << part;
        if (c->seen_mask == (1u << opt_parts) - 1) {
            c->flags |= F_SEEN_ALL;
            n_seen_all++;
        }
    }

    if (mark_ns && !c->live && c->after_mark && t >= mark_ns) {
        c->live = 1;
        c->m_live = now;
        live_ms[n_live++] = (now - mark_mono) * 1e3;
    }
}


static void
sse_line(struct client *c, double now)
{
    char  *l = c->line;
    size_t n = c->line_len, k;

    if (n == 0) {
        /* dispatch */
        if (c->ev_goaway) {
            st_goaway++;
        } else if (c->data_len) {
            record(c, now);
        }
        if (c->pend_id_len) {
            memcpy(c->id, c->pend_id, c->pend_id_len);
            c->id_len = c->pend_id_len;
        }
        c->pend_id_len = 0;
        c->data_len = 0;
        c->ev_goaway = 0;
        return;
    }
    if (l[0] == ':') {
        return;
    }
    if (n > 4 && memcmp(l, "id: ", 4) == 0) {
        k = n - 4;
        if (k >= ID_MAX) {
            st_parse_err++;
            k = ID_MAX - 1;
        }
        memcpy(c->pend_id, l + 4, k);
        c->pend_id_len = (uint16_t) k;
    } else if (n >= 6 && memcmp(l, "data: ", 6) == 0) {
        k = n - 6;
        memcpy(c->data, l + 6, k);
        c->data_len = (uint16_t) k;
    } else if (n == 13 && memcmp(l, "event: goaway", 13) == 0) {
        c->ev_goaway = 1;
    }
}


static void
sse_bytes(struct client *c, const char *p, size_t n, double now)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '\n') {
            sse_line(c, now);
            c->line_len = 0;
        } else if (p[i] != '\r' && c->line_len < LINE_MAX_ - 1) {
            c->line[c->line_len++] = p[i];
        }
    }
}


/* HTTP/1.1 chunked body -> SSE bytes; 0 at the last chunk */

static int
chunked(struct client *c, const char *p, size_t n, double now)
{
    size_t i = 0, k;
    int    d;

    while (i < n) {
        switch (c->cstate) {
        case CH_SIZE:
            if (p[i] == '\r') {
                c->cstate = CH_SIZE_LF;
            } else if (p[i] != ';') {
                d = (p[i] >= '0' && p[i] <= '9') ? p[i] - '0'
                    : (p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f'
                      ? (p[i] | 0x20) - 'a' + 10 : -1;
                if (d < 0) {
                    st_parse_err++;
                    return -1;
                }
                c->chunk_left = c->chunk_left * 16 + (uint64_t) d;
            }
            i++;
            break;
        case CH_SIZE_LF:
            i++;
            if (c->chunk_left == 0) {
                return 0;
            }
            c->cstate = CH_DATA;
            break;
        case CH_DATA:
            k = n - i;
            if (k > c->chunk_left) {
                k = c->chunk_left;
            }
            sse_bytes(c, p + i, k, now);
            i += k;
            c->chunk_left -= k;
            if (c->chunk_left == 0) {
                c->cstate = CH_DATA_CR;
            }
            break;
        case CH_DATA_CR:
            i++;
            c->cstate = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            i++;
            c->cstate = CH_SIZE;
            break;
        }
    }
    return 1;
}


static void
cl_headers_done(struct client *c, long i, double now, const char *rest,
    size_t rest_len)
{
    int status = 0;

    if (sscanf(c->hdr, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        st_http_err++;
        if (st_http_err <= 3) {
            fprintf(stderr, "kafka-storm: client %ld: status %d\n", i, status);
        }
        cl_close(c, 1);
        return;
    }
    free(c->hdr);
    c->hdr = NULL;
    c->state = S_OPEN;
    c->cstate = CH_SIZE;
    c->chunk_left = 0;
    st_streams++;
    if (c->after_mark) {
        st_after_mark_streams++;
        if (c->m_open == 0) {
            c->m_open = now;
        }
        if (n_recon < opt_n * 4) {
            recon_ms[n_recon++] = (now - c->conn_start) * 1e3;
        }
    }
    if (!(c->flags & F_EVER_OPEN)) {
        c->flags |= F_EVER_OPEN;
        n_connected_once++;
    }
    if (rest_len && chunked(c, rest, rest_len, now) <= 0) {
        st_closed++;
        cl_close(c, 1);
    }
}


static void
cl_readable(struct client *c, long i, char *buf, double now)
{
    ssize_t  n;
    char    *e;
    size_t   room, take, old;

    for ( ;; ) {
        n = read(c->fd, buf, RBUF);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            st_closed++;
            cl_close(c, 1);
            return;
        }
        if (c->state == S_HEADERS) {
            if (c->hdr == NULL) {
                c->hdr = malloc(HDR_MAX + 1);
                if (c->hdr == NULL) {
                    exit(1);
                }
            }
            /*
             * The first read may bring the header and many events: only
             * the header is kept here, the events after it are parsed
             * straight from buf.
             */
            room = HDR_MAX - c->hdr_len;
            take = (size_t) n < room ? (size_t) n : room;
            old = c->hdr_len;
            memcpy(c->hdr + c->hdr_len, buf, take);
            c->hdr_len += (uint16_t) take;
            c->hdr[c->hdr_len] = '\0';
            e = strstr(c->hdr, "\r\n\r\n");
            if (e) {
                size_t used = (size_t) (e + 4 - c->hdr) - old;

                cl_headers_done(c, i, now, buf + used, (size_t) n - used);
            } else if (c->hdr_len == HDR_MAX) {
                st_parse_err++;
                cl_close(c, 1);
                return;
            }
            if (c->state != S_OPEN) {
                return;
            }
            continue;
        }
        if (chunked(c, buf, (size_t) n, now) <= 0) {
            st_closed++;
            cl_close(c, 1);
            return;
        }
    }
}


static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
pct(double *v, long n, double q)
{
    if (n == 0) {
        return -1;
    }
    return v[(long) ((double) (n - 1) * q)];
}


/* " NAME_p50_ms= NAME_max_ms=" of a per-client time after the mark */

static void
print_times(const char *name, size_t off)
{
    long    i, n = 0;
    double  t;

    for (i = 0; i < opt_n; i++) {
        t = *(double *) ((char *) &cl[i] + off);
        if (t > 0) {
            live_tmp[n++] = (t - mark_mono) * 1e3;
        }
    }
    qsort(live_tmp, (size_t) n, sizeof(double), cmp_d);
    printf(" %s_n=%ld %s_min_ms=%.1f %s_p50_ms=%.1f %s_max_ms=%.1f", name, n,
           name, pct(live_tmp, n, 0), name, pct(live_tmp, n, 0.5), name,
           pct(live_tmp, n, 1.0));
}


static void
print_summary(void)
{
    long     i, p, not_live = 0, open = 0;
    int64_t  mn[MAXP], mx[MAXP];

    for (p = 0; p < opt_parts; p++) {
        mn[p] = INT64_MAX;
        mx[p] = -1;
    }
    for (i = 0; i < opt_n; i++) {
        if (cl[i].state == S_OPEN) {
            open++;
        }
        if (mark_ns && !cl[i].live) {
            not_live++;
        }
        for (p = 0; p < opt_parts; p++) {
            if (cl[i].last[p] < mn[p]) {
                mn[p] = cl[i].last[p];
            }
            if (cl[i].last[p] > mx[p]) {
                mx[p] = cl[i].last[p];
            }
        }
    }
    qsort(live_ms, (size_t) n_live, sizeof(double), cmp_d);
    qsort(recon_ms, (size_t) n_recon, sizeof(double), cmp_d);

    printf("summary n=%ld open=%ld records=%" PRIu64 " missed=%" PRIu64
           " repeated=%" PRIu64 " clients_missed=%ld clients_repeated=%ld"
           " unchecked=%" PRIu64 " streams=%" PRIu64
           " streams_after_mark=%" PRIu64 " goaway=%" PRIu64
           " closed=%" PRIu64 " conn_fail=%" PRIu64 " http_err=%" PRIu64
           " parse_err=%" PRIu64 " live=%ld not_live=%ld"
           " live_p50_ms=%.1f live_p99_ms=%.1f live_max_ms=%.1f"
           " handshake_p50_ms=%.1f handshake_p99_ms=%.1f handshake_max_ms=%.1f",
           opt_n, open, st_records, st_missed, st_repeated, cl_missed,
           cl_repeated, st_unchecked, st_streams, st_after_mark_streams,
           st_goaway, st_closed, st_conn_fail, st_http_err, st_parse_err,
           n_live, not_live, pct(live_ms, n_live, 0.5),
           pct(live_ms, n_live, 0.99), pct(live_ms, n_live, 1.0),
           pct(recon_ms, n_recon, 0.5), pct(recon_ms, n_recon, 0.99),
           pct(recon_ms, n_recon, 1.0));
    if (mark_ns) {
        print_times("close", offsetof(struct client, m_close));
        print_times("open", offsetof(struct client, m_open));
        print_times("first_record", offsetof(struct client, m_rec));
    }
    printf(" last_min=");
    for (p = 0; p < opt_parts; p++) {
        printf("%s%" PRId64, p ? "," : "", mn[p]);
    }
    printf(" last_max=");
    for (p = 0; p < opt_parts; p++) {
        printf("%s%" PRId64, p ? "," : "", mx[p]);
    }
    printf("\n");
    fflush(stdout);
}


static void
usage(void)
{
    fprintf(stderr,
            "usage: kafka-storm --url http://127.0.0.1:PORT/PATH -n N "
            "[--rate 2000] [--jitter 1.0]\n"
            "       [--parts 4] [--duration 120] [--pin-cpu C] "
            "[--src-ips 4]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    static struct option opts[] = {
        { "url", 1, 0, 'u' }, { "n", 1, 0, 'n' }, { "rate", 1, 0, 'r' },
        { "jitter", 1, 0, 'j' }, { "parts", 1, 0, 'p' },
        { "duration", 1, 0, 'd' }, { "pin-cpu", 1, 0, 'c' },
        { "src-ips", 1, 0, 's' }, { "dump", 1, 0, 'D' }, { 0, 0, 0, 0 }
    };
    struct epoll_event  evs[1024];
    struct sigaction    sa;
    struct rlimit       rl;
    char               *buf;
    long                i, started = 0, p;
    double              now, next_scan = 0;
    int                 o, k, nev, err;
    socklen_t           len;

    while ((o = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (o) {
        case 'u': opt_url = optarg; break;
        case 'n': opt_n = atol(optarg); break;
        case 'r': opt_rate = atof(optarg); break;
        case 'j': opt_jitter = atof(optarg); break;
        case 'p': opt_parts = atoi(optarg); break;
        case 'd': opt_duration = atof(optarg); break;
        case 'c': opt_pin = atoi(optarg); break;
        case 's': opt_src_ips = atoi(optarg); break;
        case 'D': opt_dump = optarg; break;
        default: usage();
        }
    }
    if (opt_url == NULL || opt_n < 1 || opt_parts < 1 || opt_parts > MAXP
        || opt_src_ips < 1 || opt_src_ips > 250)
    {
        usage();
    }
    parse_url(opt_url);

    if (opt_pin >= 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(opt_pin, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long) rl.rlim_cur < opt_n + 64) {
            fprintf(stderr, "kafka-storm: RLIMIT_NOFILE %ld < n + 64\n",
                    (long) rl.rlim_cur);
            return 1;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rng ^= (uint64_t) real_ns() ^ ((uint64_t) getpid() << 32);
    cl = calloc((size_t) opt_n, sizeof(struct client));
    live_ms = calloc((size_t) opt_n, sizeof(double));
    live_tmp = calloc((size_t) opt_n, sizeof(double));
    recon_ms = calloc((size_t) opt_n * 4, sizeof(double));
    buf = malloc(RBUF);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cl == NULL || live_ms == NULL || live_tmp == NULL || recon_ms == NULL || buf == NULL
        || ep < 0)
    {
        return 1;
    }
    for (i = 0; i < opt_n; i++) {
        cl[i].fd = -1;
        cl[i].due = 1e30;
        for (p = 0; p < MAXP; p++) {
            cl[i].last[p] = -1;
        }
    }

    t0 = mono();

    while (!stop_flag) {
        now = mono();
        if (now - t0 > opt_duration) {
            break;
        }
        if (mark_flag && !mark_ns) {
            mark_ns = real_ns();
            mark_mono = mono();
            printf("mark t=%" PRId64 "\n", mark_ns);
            fflush(stdout);
        }

        /* first connections, at --rate */
        while (started < opt_n && started < (now - t0) * opt_rate + 1) {
            cl_connect(&cl[started], started);
            started++;
        }

        /* reconnections due */
        if (now >= next_scan) {
            for (i = 0; i < started; i++) {
                if (cl[i].state == S_WAIT && cl[i].due <= now) {
                    cl_connect(&cl[i], i);
                }
            }
            next_scan = now + 0.002;
        }

        nev = epoll_wait(ep, evs, 1024, 2);
        now = mono();
        for (k = 0; k < nev; k++) {
            struct client *c = &cl[evs[k].data.u64];

            i = (long) evs[k].data.u64;
            if (c->fd < 0) {
                continue;
            }
            if (c->state == S_CONNECTING) {
                err = 0;
                len = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
                    st_conn_fail++;
                    cl_close(c, 1);
                    continue;
                }
                cl_send_request(c);
                continue;
            }
            cl_readable(c, i, buf, now);
        }

        if (!said_connected && n_connected_once >= opt_n) {
            said_connected = 1;
            printf("connected n=%ld secs=%.3f\n", opt_n, now - t0);
            fflush(stdout);
        }
        if (!said_seen && n_seen_all >= opt_n) {
            said_seen = 1;
            printf("all_seen n=%ld secs=%.3f\n", opt_n, now - t0);
            fflush(stdout);
        }
        if (mark_ns && !said_live && n_live >= opt_n) {
            said_live = 1;
            printf("all_live n=%ld ms=%.1f\n", opt_n, (now - mark_mono) * 1e3);
            fflush(stdout);
        }
    }

    print_summary();

    if (opt_dump && mark_ns) {
        FILE *f = fopen(opt_dump, "w");

        if (f) {
            fprintf(f, "client close_ms open_ms first_record_ms live_ms\n");
            for (i = 0; i < opt_n; i++) {
                fprintf(f, "%ld %.1f %.1f %.1f %.1f\n", i,
                        cl[i].m_close ? (cl[i].m_close - mark_mono) * 1e3 : -1,
                        cl[i].m_open ? (cl[i].m_open - mark_mono) * 1e3 : -1,
                        cl[i].m_rec ? (cl[i].m_rec - mark_mono) * 1e3 : -1,
                        cl[i].m_live ? (cl[i].m_live - mark_mono) * 1e3 : -1);
            }
            fclose(f);
        }
    }

    /* reset, no TIME_WAIT left for the next run */
    for (i = 0; i < opt_n; i++) {
        if (cl[i].fd >= 0) {
            struct linger lg = { 1, 0 };

            setsockopt(cl[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(cl[i].fd);
        }
    }
    return 0;
}
