
/*
 * ngx_gravitee_module: fuzz target of the WebSocket entrypoint.
 *
 *   websocket   a client's bytes, any, in any split into reads, after a
 *               good handshake; each complete client message published and
 *               acknowledged now, later (NGX_AGAIN, then done() after some
 *               turns of the event loop) or refused, as the input says;
 *               messages from the endpoint, its end or failure, time
 *               passing (pings, idle and send timeouts), a client that
 *               does not read, a worker that shuts down
 *
 * Everything is real but the client's socket and the endpoint: the
 * entrypoint's handler answers the handshake through NGINX's header
 * filters, the stream detaches from a posted event, the reader reads from
 * c->recv.  The socket is made up: c->recv gives the input in the slices
 * it says, then NGX_AGAIN, c->send and c->send_chain take what the
 * client's window allows; the fd under them is one end of a socketpair,
 * for epoll and shutdown().  The endpoint is made up too, and checks the
 * rules of ngx_gravitee_connector.h.
 *
 * After the input, the client hangs up: the connection must close without
 * a timer, and leave nothing.  Then what the gateway did is compared with
 * what RFC 6455 says it must do with these bytes (ngx_gravitee_fuzz_ws_
 * expect): the messages published, the pongs, the close code, and the
 * frames it sent parse as a server's.
 *
 * The input (see README.md): 7 bytes of configuration, a byte N, N bytes
 * of actions, then the bytes the client sends.
 */


#include "ngx_gravitee_fuzz.h"


extern ngx_gravitee_entrypoint_t  ngx_gravitee_websocket_entrypoint;


#define NGX_GRAVITEE_FUZZ_WS_UNLIMITED  ((size_t) -1)

/* what the fake endpoint's record says of a publication */
#define NGX_GRAVITEE_FUZZ_PUB_CANCELLED  NGX_DONE


typedef struct {
    u_char                     *data;        /* a copy of the content */
    size_t                      len;
    ngx_int_t                   rc;          /* NGX_OK, NGX_ERROR, NGX_AGAIN
                                                (in flight), or cancelled */
} ngx_gravitee_fuzz_pub_t;


typedef struct {
    size_t                      size;        /* a message of the endpoint */
    ngx_uint_t                  kind;
    ngx_uint_t                  utf8;
    size_t                      out_len;     /* the output when it was sent */
} ngx_gravitee_fuzz_sent_t;


/* one input's client and endpoint */

typedef struct {
    ngx_pool_t                 *pool;
    ngx_connection_t           *connection;
    ngx_socket_t                peer;

    /* the client's bytes: delivered to the socket, then read */
    const u_char               *wire;
    size_t                      wire_len;
    size_t                      delivered;
    size_t                      read;
    size_t                      slice;       /* at most, per recv() */

    /* what the client is sent, and how much more it takes */
    u_char                     *out;
    size_t                      out_len;
    size_t                      out_size;
    size_t                      window;

    /* the endpoint */
    ngx_gravitee_sub_t         *sub;
    ngx_int_t                   subscribe_rc;
    ngx_uint_t                  subscribed;  /* subscribe() calls */
    ngx_gravitee_pub_t         *pending;
    ngx_uint_t                  pending_index;
    ngx_event_t                 ack;
    ngx_int_t                   ack_rc;
    ngx_uint_t                  ack_text;
    ngx_uint_t                  verdict;     /* for the next publications */
    ngx_uint_t                  verdict_text;
    ngx_array_t                 pubs;        /* ngx_gravitee_fuzz_pub_t */
    ngx_array_t                 sent;        /* ngx_gravitee_fuzz_sent_t */
    ngx_uint_t                  bind;        /* 0: no bind(); 1: bind;
                                                2: bind() declines */
    ngx_uint_t                  what;        /* what bind() must be told */
    void                       *binding;
    ngx_uint_t                  bindings;    /* alive */
    ngx_uint_t                  messages;    /* the endpoint's, for ids */

    unsigned                    eof:1;       /* the client hung up */
    unsigned                    left:1;      /* before the end: what it
                                                was sent may be cut */
    unsigned                    closed:1;    /* the connection is closed */
    unsigned                    blocked:1;   /* the window was ever shut */
    unsigned                    timed:1;     /* time went by */
    unsigned                    ended:1;     /* the endpoint ended, failed */
    unsigned                    shutdown:1;  /* the worker shut down */
    unsigned                    refused:1;   /* the handshake: 400 */
    unsigned                    down:1;
} ngx_gravitee_fuzz_ws_t;


/* what RFC 6455 says a server does with the client's bytes */

typedef struct {
    ngx_array_t                 messages;    /* ngx_str_t: published */
    ngx_array_t                 pongs;       /* ngx_str_t: their payloads */
    ngx_int_t                   close;       /* -1: no close frame; 0: one
                                                without a code; the code */
    ngx_uint_t                  cancelled;   /* the last was cancelled */
} ngx_gravitee_fuzz_ws_expect_t;


/* what the client got, read as a client reads a server's frames */

typedef struct {
    ngx_uint_t                  status;      /* of the handshake's answer */
    ngx_array_t                 data;        /* ngx_str_t, opcode below */
    ngx_array_t                 opcodes;     /* ngx_uint_t */
    ngx_array_t                 pongs;       /* ngx_str_t */
    ngx_uint_t                  pings;
    ngx_int_t                   close;       /* as above */
    ngx_str_t                   reason;
    size_t                      close_at;    /* the close frame's offset */
} ngx_gravitee_fuzz_ws_seen_t;


static ngx_int_t ngx_gravitee_fuzz_ws_init(ngx_cycle_t *cycle);
static int ngx_gravitee_fuzz_ws_run(const uint8_t *data, size_t size);
static ngx_int_t ngx_gravitee_fuzz_ws_conf(ngx_gravitee_fuzz_in_t *in,
    ngx_pool_t *pool, void **conf, ngx_uint_t *publisher,
    size_t *max_size);
static ngx_int_t ngx_gravitee_fuzz_ws_param(ngx_conf_t *cf, void *conf,
    const char *name, const char *value);
static ngx_connection_t *ngx_gravitee_fuzz_ws_connect(size_t pool_size,
    size_t preread);
static ngx_http_request_t *ngx_gravitee_fuzz_ws_request(ngx_connection_t *c,
    ngx_uint_t cursor);
static void ngx_gravitee_fuzz_ws_action(ngx_uint_t a);
static void ngx_gravitee_fuzz_ws_deliver(size_t n);
static void ngx_gravitee_fuzz_ws_window(size_t n);
static void ngx_gravitee_fuzz_ws_post(ngx_event_t *ev);
static void ngx_gravitee_fuzz_ws_endpoint_message(ngx_uint_t size,
    ngx_uint_t kind);
static void ngx_gravitee_fuzz_ws_turn(void);
static void ngx_gravitee_fuzz_ws_teardown(void);

static ssize_t ngx_gravitee_fuzz_ws_recv(ngx_connection_t *c, u_char *buf,
    size_t size);
static ssize_t ngx_gravitee_fuzz_ws_send(ngx_connection_t *c, u_char *buf,
    size_t size);
static ngx_chain_t *ngx_gravitee_fuzz_ws_send_chain(ngx_connection_t *c,
    ngx_chain_t *in, off_t limit);
static void ngx_gravitee_fuzz_ws_out(u_char *p, size_t n);
static void ngx_gravitee_fuzz_ws_request_handler(ngx_event_t *ev);

static ngx_int_t ngx_gravitee_fuzz_ws_bind(void *conf, ngx_http_request_t *r,
    ngx_uint_t what, void **binding, ngx_str_t *error);
static void ngx_gravitee_fuzz_ws_unbind(void *conf, void *binding);
static ngx_int_t ngx_gravitee_fuzz_ws_check_position(void *conf,
    ngx_str_t *pos, ngx_pool_t *pool, ngx_str_t *error);
static ngx_int_t ngx_gravitee_fuzz_ws_subscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static void ngx_gravitee_fuzz_ws_unsubscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_fuzz_ws_publish(void *conf,
    ngx_gravitee_pub_t *pub);
static void ngx_gravitee_fuzz_ws_cancel(void *conf, ngx_gravitee_pub_t *pub);
static void ngx_gravitee_fuzz_ws_ack(ngx_event_t *ev);

static void ngx_gravitee_fuzz_ws_expect(ngx_gravitee_fuzz_ws_expect_t *e,
    ngx_uint_t publisher, size_t max_size);
static void ngx_gravitee_fuzz_ws_seen(ngx_gravitee_fuzz_ws_seen_t *seen,
    ngx_uint_t whole, ngx_uint_t frame_type);
static void ngx_gravitee_fuzz_ws_compare(ngx_gravitee_fuzz_ws_expect_t *e,
    ngx_gravitee_fuzz_ws_seen_t *seen, ngx_uint_t frame_type,
    ngx_uint_t subscriber);
static u_char *ngx_gravitee_fuzz_ws_content(size_t size, ngx_uint_t kind);
static ngx_uint_t ngx_gravitee_fuzz_ws_code_valid(ngx_uint_t code);


ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_websocket = {
    "websocket", ngx_gravitee_fuzz_ws_init, ngx_gravitee_fuzz_ws_run
};


static ngx_gravitee_endpoint_t  ngx_gravitee_fuzz_ws_endpoint = {
    .name = ngx_string("fuzz"),
    .max_position = 64,
    .check_position = ngx_gravitee_fuzz_ws_check_position,
    .subscribe = ngx_gravitee_fuzz_ws_subscribe,
    .unsubscribe = ngx_gravitee_fuzz_ws_unsubscribe,
    .publish = ngx_gravitee_fuzz_ws_publish,
    .cancel = ngx_gravitee_fuzz_ws_cancel
};

static ngx_gravitee_loc_conf_t  ngx_gravitee_fuzz_ws_glcf = {
    .endpoint = &ngx_gravitee_fuzz_ws_endpoint,
    .started = 1,
    .name = ngx_string("/fuzz")
};


static ngx_gravitee_fuzz_ws_t  ngx_gravitee_fuzz_ws;


/* what an endpoint may say of a failure: short, long, cut in a character */

static ngx_str_t  ngx_gravitee_fuzz_ws_texts[] = {
    ngx_string("Refused by the fuzz endpoint"),
    ngx_string("A reason longer than what a close frame holds, 123 bytes: "
               "................................................"
               "................................................"),
    ngx_string("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
    ngx_string("not \xff UTF-8"),
    ngx_null_string
};

#define NGX_GRAVITEE_FUZZ_WS_TEXTS  5


/*
 * The endpoint's messages: sizes around the frame header's lengths and the
 * 4 KiB a framing is copied up to, made once
 */

static size_t  ngx_gravitee_fuzz_ws_sizes[] = {
    0, 1, 125, 126, 300, 4096, 4097, 65536
};

static u_char      *ngx_gravitee_fuzz_ws_contents[3];
static ngx_uint_t   ngx_gravitee_fuzz_ws_utf8[8][3];  /* whether UTF-8 */


/*
 * The configuration, 7 bytes:
 *
 *   0   bit 0 publisher=off, 1 subscriber=off, 2-3 subscribe(): 0, 1 OK,
 *       2 NGX_ERROR, 3 NGX_DECLINED; 4-5 frame_type auto, text, binary,
 *       auto; 6 slow_client=drop; 7 a connection pool of 1 KiB (the end
 *       record fits in it) rather than one that mallocs everything
 *   1   max_message_size: 0 the default (1m), 1-200 that minus 1 bytes,
 *       201-255 that minus 200 KiB
 *   2   bytes of the client's that come with the handshake (preread)
 *   3   bits 0-2 the most recv() returns: 4096, 1, 2, 3, 7, 13, 64, 1000;
 *       3-4 ping_interval and idle_timeout: 0 and 0, 1s and 0, 1s and
 *       2500ms, 0 and 1500ms; 5-7 max_queued_messages: 256, 1, 2, 3, 4,
 *       8, 16, 64
 *   4   the client's window: 0 unlimited, else that minus 1 bytes
 *   5   bits 0-1 bind(): none, OK, OK, declined; 2 a ?cursor= (4/2),
 *       3 one the endpoint refuses (4!)
 *   6   send_timeout: 0 the default (60s), else that times 100ms
 */

static int
ngx_gravitee_fuzz_ws_run(const uint8_t *data, size_t size)
{
    void                           *conf;
    size_t                          max_size, preread, pool_size;
    ngx_int_t                       rc;
    ngx_str_t                       actions;
    ngx_uint_t                      c0, c3, c5, i, n, publisher, exact;
    ngx_uint_t                      frame_type, subscriber;
    ngx_pool_t                     *pool;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_gravitee_fuzz_in_t          in;
    ngx_gravitee_fuzz_ws_t         *f;
    ngx_gravitee_fuzz_ws_seen_t     seen;
    ngx_gravitee_fuzz_ws_expect_t   expect;

    static size_t  slices[] = { 4096, 1, 2, 3, 7, 13, 64, 1000 };

    in.pos = data;
    in.last = data + size;

    f = &ngx_gravitee_fuzz_ws;
    ngx_memzero(f, sizeof(ngx_gravitee_fuzz_ws_t));

    f->peer = (ngx_socket_t) -1;
    f->ack.handler = ngx_gravitee_fuzz_ws_ack;
    f->ack.data = f;
    f->ack.log = ngx_gravitee_fuzz_log;

    pool = ngx_gravitee_fuzz_pool();
    f->pool = pool;

    if (ngx_array_init(&f->pubs, pool, 8, sizeof(ngx_gravitee_fuzz_pub_t))
        != NGX_OK
        || ngx_array_init(&f->sent, pool, 8,
                          sizeof(ngx_gravitee_fuzz_sent_t))
           != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    c0 = in.pos < in.last ? *in.pos : 0;

    if (ngx_gravitee_fuzz_ws_conf(&in, pool, &conf, &publisher, &max_size)
        != NGX_OK)
    {
        /* not a configuration nginx -t takes */
        ngx_destroy_pool(pool);
        return 0;
    }

    subscriber = !(c0 & 0x02) || (c0 & 0x01);
    frame_type = (c0 >> 4) & 3;

    f->what = (subscriber ? NGX_GRAVITEE_BIND_SUBSCRIBE : 0)
              | (publisher ? NGX_GRAVITEE_BIND_PUBLISH : 0);

    switch ((c0 >> 2) & 3) {
    case 2:
        f->subscribe_rc = NGX_ERROR;
        break;
    case 3:
        f->subscribe_rc = NGX_DECLINED;
        break;
    default:
        f->subscribe_rc = NGX_OK;
    }

    pool_size = (c0 & 0x80) ? 1024 : 0;

    preread = ngx_gravitee_fuzz_byte(&in);
    c3 = ngx_gravitee_fuzz_byte(&in);
    f->slice = slices[c3 & 7];

    n = ngx_gravitee_fuzz_byte(&in);
    f->window = n ? n - 1 : NGX_GRAVITEE_FUZZ_WS_UNLIMITED;
    f->blocked = (n != 0);

    c5 = ngx_gravitee_fuzz_byte(&in);

    switch (c5 & 3) {
    case 0:
        f->bind = 0;
        ngx_gravitee_fuzz_ws_endpoint.bind = NULL;
        ngx_gravitee_fuzz_ws_endpoint.unbind = NULL;
        break;
    default:
        f->bind = ((c5 & 3) == 3) ? 2 : 1;
        ngx_gravitee_fuzz_ws_endpoint.bind = ngx_gravitee_fuzz_ws_bind;
        ngx_gravitee_fuzz_ws_endpoint.unbind = ngx_gravitee_fuzz_ws_unbind;
    }

    /* c6 was read with the configuration; the actions, the client's bytes */

    (void) ngx_gravitee_fuzz_byte(&in);

    n = ngx_gravitee_fuzz_byte(&in);
    actions = ngx_gravitee_fuzz_bytes(&in, n);

    f->wire = in.pos;
    f->wire_len = in.last - in.pos;

    preread = ngx_min(preread, f->wire_len);

    c = ngx_gravitee_fuzz_ws_connect(pool_size, preread);
    r = ngx_gravitee_fuzz_ws_request(c, (c5 >> 2) & 3);

    ngx_gravitee_fuzz_assert(ngx_gravitee_websocket_entrypoint.match(r),
                             "a WebSocket handshake does not match");

    /* as the content phase does */

    rc = ngx_gravitee_websocket_entrypoint.handler(r, &ngx_gravitee_fuzz_ws_glcf,
                                                   conf);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);

    ngx_gravitee_fuzz_ws_turn();

    for (i = 0; i < actions.len; i++) {
        ngx_gravitee_fuzz_ws_action(actions.data[i]);
    }

    ngx_gravitee_fuzz_ws_teardown();

    /* what was done with the client's bytes, against what should be */

    f->refused = (f->bind == 2 || ((c5 >> 2) & 3) >= 2);

    exact = !f->timed && !f->ended && !f->shutdown;

    ngx_gravitee_fuzz_ws_seen(&seen, exact && !f->left, frame_type);

    if (f->refused) {
        /* (no status: the answer is cut, as it may be if time went by) */
        ngx_gravitee_fuzz_assert(seen.status == 400 || seen.status == 0,
                                 "a refused handshake is not a 400");
        ngx_gravitee_fuzz_assert(f->pubs.nelts == 0 && f->subscribed == 0,
                                 "a refused client publishes or subscribes");

    } else if (seen.status) {
        ngx_gravitee_fuzz_assert(seen.status == 101, "no 101 for a handshake");

        ngx_gravitee_fuzz_ws_expect(&expect, publisher, max_size);

        if (subscriber && f->subscribe_rc != NGX_OK) {
            /* the subscription failed: nothing is read */

            ngx_gravitee_fuzz_assert(f->pubs.nelts == 0,
                                     "a client whose subscription failed "
                                     "publishes");
            ngx_gravitee_fuzz_assert(seen.close
                                     == (f->subscribe_rc == NGX_DECLINED
                                         ? 1008 : 1011)
                                     || (seen.close == -1
                                         && (!exact || f->left)),
                                     "a failed subscription is not said "
                                     "with 1008 or 1011");

        } else {
            if (seen.close == 1008) {
                /* the slow client's goodbye */
                exact = 0;
            }

            if (!exact) {
                expect.close = -2;
            }

            ngx_gravitee_fuzz_ws_compare(&expect, &seen, frame_type,
                                         subscriber);
        }

        ngx_log_error(NGX_LOG_INFO, ngx_gravitee_fuzz_log, 0,
                      "fuzz websocket: %s, %ui of %uz bytes read, "
                      "published %ui (the model: %ui), pongs %ui (%ui), "
                      "pings %ui, data frames %ui of %ui sent, close %i "
                      "(the model: %i)", exact ? "exact" : "not exact",
                      f->read, f->wire_len, f->pubs.nelts,
                      expect.messages.nelts, seen.pongs.nelts,
                      expect.pongs.nelts, seen.pings, seen.data.nelts,
                      f->sent.nelts, seen.close, expect.close);
    }

    if (f->peer != (ngx_socket_t) -1) {
        (void) close(f->peer);
    }

    if (f->out) {
        ngx_free(f->out);
    }

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


/* the entrypoint's configuration, through its own parameter table */

static ngx_int_t
ngx_gravitee_fuzz_ws_conf(ngx_gravitee_fuzz_in_t *in, ngx_pool_t *pool,
    void **conf, ngx_uint_t *publisher, size_t *max_size)
{
    u_char             buf[32];
    ngx_uint_t         c0, c1, c3, c6, k;
    ngx_conf_t         cf;
    ngx_conf_file_t    file;

    static const char  *types[] = { "auto", "text", "binary", "auto" };
    static const char  *pings[][2] = {
        { "0", "0" }, { "1s", "0" }, { "1s", "2500ms" }, { "0", "1500ms" }
    };
    static const char  *queues[] = { "256", "1", "2", "3", "4", "8", "16",
                                     "64" };

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    ngx_memzero(&file, sizeof(ngx_conf_file_t));
    ngx_str_set(&file.file.name, "fuzz");

    cf.pool = pool;
    cf.temp_pool = pool;
    cf.cycle = (ngx_cycle_t *) ngx_cycle;
    cf.log = ngx_gravitee_fuzz_log;
    cf.conf_file = &file;

    c0 = ngx_gravitee_fuzz_byte(in);
    c1 = ngx_gravitee_fuzz_byte(in);

    /* the bytes after c1 are read by the caller, but c3 and c6 here */
    c3 = (in->last - in->pos > 1) ? in->pos[1] : 0;
    c6 = (in->last - in->pos > 4) ? in->pos[4] : 0;

    *conf = ngx_gravitee_websocket_entrypoint.create_conf(&cf);
    if (*conf == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    *publisher = !(c0 & 0x01);

    if (((c0 & 0x01) && ngx_gravitee_fuzz_ws_param(&cf, *conf, "publisher",
                                                   "off") != NGX_OK)
        || ((c0 & 0x02) && !(c0 & 0x01)
            && ngx_gravitee_fuzz_ws_param(&cf, *conf, "subscriber", "off")
               != NGX_OK)
        || ngx_gravitee_fuzz_ws_param(&cf, *conf, "frame_type",
                                      types[(c0 >> 4) & 3]) != NGX_OK
        || ((c0 & 0x40)
            && ngx_gravitee_fuzz_ws_param(&cf, *conf, "slow_client", "drop")
               != NGX_OK)
        || ngx_gravitee_fuzz_ws_param(&cf, *conf, "ping_interval",
                                      pings[(c3 >> 3) & 3][0]) != NGX_OK
        || ngx_gravitee_fuzz_ws_param(&cf, *conf, "idle_timeout",
                                      pings[(c3 >> 3) & 3][1]) != NGX_OK
        || ngx_gravitee_fuzz_ws_param(&cf, *conf, "max_queued_messages",
                                      queues[c3 >> 5]) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *max_size = 1024 * 1024;

    if (c1) {
        *max_size = (c1 <= 200) ? c1 - 1 : (c1 - 200) * 1024;

        ngx_sprintf(buf, "%uz%Z", *max_size);

        if (ngx_gravitee_fuzz_ws_param(&cf, *conf, "max_message_size",
                                       (char *) buf)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (c6) {
        k = c6 * 100;
        ngx_sprintf(buf, "%uims%Z", k);

        if (ngx_gravitee_fuzz_ws_param(&cf, *conf, "send_timeout",
                                       (char *) buf)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_gravitee_websocket_entrypoint.init_conf(&cf, *conf)
        != NGX_CONF_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_fuzz_ws_param(ngx_conf_t *cf, void *conf, const char *name,
    const char *value)
{
    ngx_str_t              v;
    ngx_gravitee_param_t  *p;

    v.data = (u_char *) value;
    v.len = ngx_strlen(value);

    for (p = ngx_gravitee_websocket_entrypoint.params; p->name.len; p++) {
        if (p->name.len == ngx_strlen(name)
            && ngx_strncmp(p->name.data, name, p->name.len) == 0)
        {
            return (p->set(cf, p, &v, conf) == NGX_CONF_OK) ? NGX_OK
                                                            : NGX_ERROR;
        }
    }

    ngx_gravitee_fuzz_fail("websocket has no parameter \"%s\"", name);
}


/*
 * A connection as ngx_event_accept() and ngx_http_init_connection() leave
 * it, on one end of a socketpair, with the fake socket's functions.
 */

static ngx_connection_t *
ngx_gravitee_fuzz_ws_connect(size_t pool_size, size_t preread)
{
    int                         fds[2];
    ngx_log_t                  *log;
    ngx_connection_t           *c;
    struct sockaddr_un         *sun;
    ngx_http_log_ctx_t         *ctx;
    ngx_http_connection_t      *hc;
    ngx_http_core_srv_conf_t  **cscfp;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_gravitee_fuzz_ws_t     *f;

    f = &ngx_gravitee_fuzz_ws;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1
        || ngx_nonblocking(fds[0]) == -1)
    {
        ngx_gravitee_fuzz_fail("socketpair() failed: %s", strerror(errno));
    }

    f->peer = fds[1];

    c = ngx_get_connection(fds[0], ngx_gravitee_fuzz_log);
    if (c == NULL) {
        ngx_gravitee_fuzz_fail("no free connection");
    }

    f->connection = c;

    c->pool = pool_size ? ngx_create_pool(pool_size, ngx_gravitee_fuzz_log)
                        : ngx_gravitee_fuzz_pool();

    log = ngx_palloc(c->pool, sizeof(ngx_log_t));
    ctx = ngx_pcalloc(c->pool, sizeof(ngx_http_log_ctx_t));
    hc = ngx_pcalloc(c->pool, sizeof(ngx_http_connection_t));
    sun = ngx_pcalloc(c->pool, sizeof(struct sockaddr_un));

    if (c->pool == NULL || log == NULL || ctx == NULL || hc == NULL
        || sun == NULL)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    *log = *ngx_gravitee_fuzz_log;
    ctx->connection = c;
    log->data = ctx;
    log->handler = NULL;
    log->action = "fuzzing";
    log->connection = c->number;

    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->log_error = NGX_ERROR_INFO;

    c->recv = ngx_gravitee_fuzz_ws_recv;
    c->send = ngx_gravitee_fuzz_ws_send;
    c->send_chain = ngx_gravitee_fuzz_ws_send_chain;

    sun->sun_family = AF_UNIX;
    c->sockaddr = (struct sockaddr *) sun;
    c->socklen = sizeof(struct sockaddr_un);
    c->local_sockaddr = c->sockaddr;
    c->local_socklen = c->socklen;
    ngx_str_set(&c->addr_text, "unix:");

    c->type = SOCK_STREAM;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->start_time = ngx_current_msec;

    /* a unix socket's, as ngx_event_accept() says */
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->tcp_nodelay = NGX_TCP_NODELAY_DISABLED;

    c->write->ready = 1;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_core_module);
    cscfp = cmcf->servers.elts;
    hc->conf_ctx = cscfp[0]->ctx;
    c->data = hc;

    /*
     * The buffer the header came in (the request's header_in), and after
     * it, the client's first frames
     */

    c->buffer = ngx_create_temp_buf(c->pool, ngx_max(preread, 1));
    if (c->buffer == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    if (preread) {
        c->buffer->last = ngx_cpymem(c->buffer->pos, f->wire, preread);
        f->delivered = preread;
        f->read = preread;
    }

#if (NGX_STAT_STUB)
    /* ngx_http_close_connection() counts it out */
    (void) ngx_atomic_fetch_add(ngx_stat_active, 1);
#endif

    return c;
}


/* the request of a good handshake, as the header parser leaves it */

static ngx_http_request_t *
ngx_gravitee_fuzz_ws_request(ngx_connection_t *c, ngx_uint_t cursor)
{
    ngx_uint_t           i;
    ngx_str_t            name, value;
    ngx_http_request_t  *r;

    static const char  *headers[][2] = {
        { "Host", "fuzz.test" },
        { "Upgrade", "websocket" },
        { "Connection", "Upgrade" },
        { "Sec-WebSocket-Version", "13" },
        { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==" }
    };

    r = ngx_http_create_request(c);
    if (r == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    c->data = r;

    /* ngx_http_create_request() gave the connection the server's log */
    ngx_gravitee_fuzz_set_log(c->log);

    c->read->handler = ngx_gravitee_fuzz_ws_request_handler;
    c->write->handler = ngx_gravitee_fuzz_ws_request_handler;
    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    r->method = NGX_HTTP_GET;
    ngx_str_set(&r->method_name, "GET");
    r->http_version = NGX_HTTP_VERSION_11;
    ngx_str_set(&r->http_protocol, "HTTP/1.1");
    ngx_str_set(&r->uri, "/fuzz");

    switch (cursor) {

    case 1:
        ngx_str_set(&r->request_line, "GET /fuzz?cursor=4%2F2 HTTP/1.1");
        ngx_str_set(&r->args, "cursor=4%2F2");
        break;

    case 2:
    case 3:
        ngx_str_set(&r->request_line, "GET /fuzz?cursor=4! HTTP/1.1");
        ngx_str_set(&r->args, "cursor=4!");
        break;

    default:
        ngx_str_set(&r->request_line, "GET /fuzz HTTP/1.1");
    }

    r->unparsed_uri.data = r->request_line.data + 4;
    r->unparsed_uri.len = r->request_line.len - 4 - 9;

    if (ngx_list_init(&r->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        name.data = (u_char *) headers[i][0];
        name.len = ngx_strlen(headers[i][0]);
        value.data = (u_char *) headers[i][1];
        value.len = ngx_strlen(headers[i][1]);

        if (ngx_gravitee_fuzz_header(r, &name, &value) != NGX_OK) {
            ngx_gravitee_fuzz_fail("out of memory");
        }
    }

    r->headers_in.server.data = (u_char *) headers[0][1];
    r->headers_in.server.len = ngx_strlen(headers[0][1]);

    return r;
}


/*
 * An action, a byte: its top 3 bits say which, the low 5 its argument.
 *
 *   0   the client sends arg + 1 more bytes
 *   1   the client sends 2^arg more bytes (arg < 16), or all the rest
 *   2   the client's window: arg * 7 bytes more; 31: unlimited
 *   3   the publication in flight is acknowledged (arg bit 0: refused,
 *       with text arg >> 1)
 *   4   the next publications are: arg % 3: taken (NGX_OK), later
 *       (NGX_AGAIN), refused (NGX_ERROR), with text arg / 3
 *   5   (arg + 1) * 250 ms go by: the timers due fire
 *   6   the endpoint: arg < 24 a message (size arg & 7, kind arg >> 3:
 *       text, not UTF-8, UTF-8 cut anywhere); 24-27 its end; 28-30 its
 *       failure (text arg - 28); 31 the broker goes down or comes back
 *   7   0 the worker shuts down; 1 the client hangs up; 2 a read event
 *       with nothing to read; 3 a write event; other: nothing
 */

static void
ngx_gravitee_fuzz_ws_action(ngx_uint_t a)
{
    ngx_uint_t               arg;
    ngx_connection_t        *c;
    ngx_gravitee_fuzz_ws_t  *f;
    ngx_gravitee_message_t  *msg;

    static ngx_str_t  key = ngx_string("FAILURE_ENDPOINT_UNKNOWN_ERROR");

    f = &ngx_gravitee_fuzz_ws;
    c = f->connection;
    arg = a & 0x1f;

    switch (a >> 5) {

    case 0:
        ngx_gravitee_fuzz_ws_deliver(arg + 1);
        break;

    case 1:
        ngx_gravitee_fuzz_ws_deliver(arg < 16 ? (size_t) 1 << arg
                                              : f->wire_len);
        break;

    case 2:
        ngx_gravitee_fuzz_ws_window(arg == 31 ? NGX_GRAVITEE_FUZZ_WS_UNLIMITED
                                              : arg * 7);
        break;

    case 3:
        if (f->pending && !f->ack.posted) {
            f->ack_rc = (arg & 1) ? NGX_ERROR : NGX_OK;
            f->ack_text = (arg >> 1) % NGX_GRAVITEE_FUZZ_WS_TEXTS;
            ngx_post_event(&f->ack, &ngx_posted_events);
        }

        break;

    case 4:
        f->verdict = arg % 3;
        f->verdict_text = (arg / 3) % NGX_GRAVITEE_FUZZ_WS_TEXTS;
        break;

    case 5:
        f->timed = 1;
        ngx_current_msec += (arg + 1) * 250;
        ngx_event_expire_timers();
        break;

    case 6:
        if (f->sub == NULL) {
            break;
        }

        if (arg < 24) {
            ngx_gravitee_fuzz_ws_endpoint_message(arg & 7, arg >> 3);
            break;
        }

        f->ended = 1;

        if (arg < 28) {
            f->sub->handler->end(f->sub);
            break;
        }

        if (arg < 31) {
            msg = ngx_gravitee_message_error(ngx_gravitee_fuzz_log,
                                             &ngx_gravitee_fuzz_ws_texts[arg
                                                                     - 28],
                                             &key, 500);
            if (msg == NULL) {
                ngx_gravitee_fuzz_fail("out of memory");
            }

            f->sub->handler->message(f->sub, msg);
            ngx_gravitee_message_unref(msg);

            if (f->sub) {
                f->sub->handler->end(f->sub);
            }

            break;
        }

        f->ended = 0;

        if (f->sub->handler->state) {
            f->down = !f->down;
            f->sub->handler->state(f->sub, f->down ? NGX_GRAVITEE_STATE_DOWN
                                                   : NGX_GRAVITEE_STATE_UP);
        }

        break;

    default:
        if (f->closed) {
            break;
        }

        switch (arg) {

        case 0:
            /* what ngx_close_idle_connections() does to an idle one */
            if (c->idle) {
                f->shutdown = 1;
                c->close = 1;
                c->read->handler(c->read);
            }

            break;

        case 1:
            f->eof = 1;
            f->left = 1;
            c->read->ready = 1;
            ngx_gravitee_fuzz_ws_post(c->read);
            break;

        case 2:
            c->read->ready = 1;
            ngx_gravitee_fuzz_ws_post(c->read);
            break;

        case 3:
            ngx_gravitee_fuzz_ws_post(c->write);
            break;
        }
    }

    ngx_gravitee_fuzz_ws_turn();
}


/* bytes arrive: epoll (edge-triggered) reports the socket readable */

static void
ngx_gravitee_fuzz_ws_deliver(size_t n)
{
    ngx_connection_t        *c;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;
    c = f->connection;

    if (f->closed || f->eof) {
        return;
    }

    n = ngx_min(n, f->wire_len - f->delivered);

    if (n == 0) {
        return;
    }

    f->delivered += n;
    c->read->ready = 1;
    ngx_gravitee_fuzz_ws_post(c->read);
}


static void
ngx_gravitee_fuzz_ws_window(size_t n)
{
    ngx_connection_t        *c;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;
    c = f->connection;

    if (f->closed) {
        return;
    }

    /* an unlimited window stays so; a limited one grows, or opens */

    if (n == NGX_GRAVITEE_FUZZ_WS_UNLIMITED) {
        f->window = n;

    } else if (f->window != NGX_GRAVITEE_FUZZ_WS_UNLIMITED) {
        f->window += n;
    }

    if (n == 0) {
        return;
    }

    c->write->ready = 1;
    ngx_gravitee_fuzz_ws_post(c->write);
}


static void
ngx_gravitee_fuzz_ws_post(ngx_event_t *ev)
{
    if (!ev->posted) {
        ngx_post_event(ev, &ngx_posted_events);
    }
}


/* the endpoint's messages: their content is made again when compared */

static void
ngx_gravitee_fuzz_ws_endpoint_message(ngx_uint_t size, ngx_uint_t kind)
{
    u_char                       id[NGX_INT_T_LEN];
    ngx_gravitee_fuzz_ws_t      *f;
    ngx_gravitee_fuzz_sent_t    *sent;
    ngx_gravitee_message_t      *msg;
    ngx_gravitee_message_init_t  init;

    f = &ngx_gravitee_fuzz_ws;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.id.data = id;
    init.id.len = ngx_sprintf(id, "%ui", f->messages++) - id;
    init.position = init.id;
    init.content.len = ngx_gravitee_fuzz_ws_sizes[size];
    init.content.data = ngx_gravitee_fuzz_ws_content(init.content.len, kind);

    msg = ngx_gravitee_message_create(ngx_gravitee_fuzz_log, &init);
    if (msg == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    sent = ngx_array_push(&f->sent);
    if (sent == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    sent->size = init.content.len;
    sent->kind = kind;
    sent->utf8 = ngx_gravitee_fuzz_ws_utf8[size][kind];
    sent->out_len = f->out_len;

    /* during the call only, as a live fan-out does */
    f->sub->position = msg->position;

    f->sub->handler->message(f->sub, msg);

    if (f->sub) {
        ngx_str_null(&f->sub->position);
    }

    ngx_gravitee_message_unref(msg);
}


/* a turn of the event loop: the posted events, then the next turn's */

static void
ngx_gravitee_fuzz_ws_turn(void)
{
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_run_posted();

    if (!f->closed && f->connection->fd == (ngx_socket_t) -1) {
        f->closed = 1;
    }
}


/*
 * The client hangs up, having sent all it had and read all it was sent,
 * and the endpoint acknowledges what it has: the gateway must close the
 * connection with what it has, without waiting for a timer.
 */

static void
ngx_gravitee_fuzz_ws_teardown(void)
{
    ngx_uint_t               round;
    ngx_connection_t        *c;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;
    c = f->connection;

    for (round = 0; round < 16 && !f->closed; round++) {

        if (f->pending && !f->ack.posted) {
            f->ack_rc = NGX_OK;
            ngx_post_event(&f->ack, &ngx_posted_events);
        }

        ngx_gravitee_fuzz_ws_window(NGX_GRAVITEE_FUZZ_WS_UNLIMITED);

        if (!f->closed) {
            f->delivered = f->eof ? f->delivered : f->wire_len;
            f->eof = 1;
            c->read->ready = 1;
            ngx_gravitee_fuzz_ws_post(c->read);
        }

        ngx_gravitee_fuzz_ws_turn();
    }

    if (!f->closed) {
        ngx_gravitee_fuzz_fail("the connection is still open after the "
                               "client hung up, read all and was answered "
                               "all: it waits for a timer");
    }

    ngx_gravitee_fuzz_assert(f->sub == NULL,
                             "still subscribed after the connection closed");
    ngx_gravitee_fuzz_assert(f->pending == NULL,
                             "a publication in flight after the connection "
                             "closed");
    ngx_gravitee_fuzz_assert(f->bindings == 0, "a binding is not unbound");
}


/* the fake socket */

static ssize_t
ngx_gravitee_fuzz_ws_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    size_t                   n;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(c == f->connection && !f->closed,
                             "recv() on another connection");

    n = f->delivered - f->read;

    if (n == 0) {
        c->read->ready = 0;

        if (f->eof) {
            c->read->eof = 1;
            return 0;
        }

        return NGX_AGAIN;
    }

    n = ngx_min(n, ngx_min(size, f->slice));
    ngx_memcpy(buf, f->wire + f->read, n);
    f->read += n;

    /* epoll is greedy: a short read does not mean nothing is left */

    return n;
}


static ssize_t
ngx_gravitee_fuzz_ws_send(ngx_connection_t *c, u_char *buf, size_t size)
{
    size_t                   n;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(c == f->connection && !f->closed,
                             "send() on another connection");

    /* ngx_unix_send() alerts "send() returned zero" for it */
    ngx_gravitee_fuzz_assert(size > 0, "send() of nothing");

    n = ngx_min(size, f->window);

    if (n == 0) {
        c->write->ready = 0;
        f->blocked = 1;
        return NGX_AGAIN;
    }

    ngx_gravitee_fuzz_ws_out(buf, n);
    c->sent += n;

    if (f->window != NGX_GRAVITEE_FUZZ_WS_UNLIMITED) {
        f->window -= n;
    }

    if (n < size) {
        c->write->ready = 0;
    }

    return n;
}


static ngx_chain_t *
ngx_gravitee_fuzz_ws_send_chain(ngx_connection_t *c, ngx_chain_t *in,
    off_t limit)
{
    off_t                    sent, want;
    size_t                   size, n;
    ngx_chain_t             *cl;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(c == f->connection && !f->closed,
                             "send_chain() on another connection");

    if (limit == 0 || limit > NGX_MAX_OFF_T_VALUE / 2) {
        limit = NGX_MAX_OFF_T_VALUE / 2;
    }

    sent = 0;
    want = 0;

    for (cl = in; cl && sent < limit; cl = cl->next) {
        if (ngx_buf_special(cl->buf)) {
            continue;
        }

        ngx_gravitee_fuzz_assert(ngx_buf_in_memory(cl->buf),
                                 "a buffer in a file");
        ngx_gravitee_fuzz_assert(cl->buf->pos <= cl->buf->last,
                                 "a buffer that ends before it starts");

        size = cl->buf->last - cl->buf->pos;
        want += size;

        n = ngx_min(size, ngx_min((size_t) (limit - sent), f->window));

        if (n) {
            ngx_gravitee_fuzz_ws_out(cl->buf->pos, n);

            if (f->window != NGX_GRAVITEE_FUZZ_WS_UNLIMITED) {
                f->window -= n;
            }
        }

        sent += n;

        if (n < size) {
            break;
        }
    }

    if (sent < want || (cl && sent < limit)) {
        /* as writev() that takes less than it is given */
        c->write->ready = 0;
        f->blocked = 1;
    }

    c->sent += sent;

    return ngx_chain_update_sent(in, sent);
}


ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_ws_out(u_char *p, size_t n)
{
    u_char                  *out;
    size_t                   size;
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    if (f->out_len + n > f->out_size) {
        size = ngx_max(2 * f->out_size, f->out_len + n + 4096);

        out = ngx_alloc(size, ngx_gravitee_fuzz_log);
        if (out == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        if (f->out) {
            ngx_memcpy(out, f->out, f->out_len);
            ngx_free(f->out);
        }

        f->out = out;
        f->out_size = size;
    }

    ngx_memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
}


/* what ngx_http_request_handler() does, until the stream takes over */

static void
ngx_gravitee_fuzz_ws_request_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = ev->data;
    r = c->data;

    if (ev->write) {
        r->write_event_handler(r);

    } else {
        r->read_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


/* the fake endpoint: it checks the rules of ngx_gravitee_connector.h */

static ngx_int_t
ngx_gravitee_fuzz_ws_bind(void *conf, ngx_http_request_t *r, ngx_uint_t what,
    void **binding, ngx_str_t *error)
{
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(f->binding == NULL, "bound twice");
    ngx_gravitee_fuzz_assert(what == f->what,
                             "bound for what the client may not do");

    if (f->bind == 2) {
        ngx_str_set(error, "Refused by the fuzz endpoint's bind()");
        return NGX_DECLINED;
    }

    /* malloc()'d: a binding never unbound is a leak LeakSanitizer sees */

    *binding = ngx_alloc(16, ngx_gravitee_fuzz_log);
    if (*binding == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    f->binding = *binding;
    f->bindings++;

    return NGX_OK;
}


static void
ngx_gravitee_fuzz_ws_unbind(void *conf, void *binding)
{
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(binding == f->binding && f->bindings == 1,
                             "unbind() of what was not bound");

    ngx_free(binding);
    f->binding = NULL;
    f->bindings--;
}


static ngx_int_t
ngx_gravitee_fuzz_ws_check_position(void *conf, ngx_str_t *pos,
    ngx_pool_t *pool, ngx_str_t *error)
{
    if (ngx_strlchr(pos->data, pos->data + pos->len, '!') == NULL) {
        return NGX_OK;
    }

    ngx_str_set(error, "Invalid position for the fuzz endpoint");

    return NGX_DECLINED;
}


static ngx_int_t
ngx_gravitee_fuzz_ws_subscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(f->sub == NULL && f->subscribed == 0,
                             "subscribed twice");
    ngx_gravitee_fuzz_assert(sub->handler && sub->handler->message
                             && sub->handler->end,
                             "a subscription without its handlers");
    ngx_gravitee_fuzz_assert(sub->binding == f->binding,
                             "a subscription without its binding");

    /* ?cursor=4%2F2, decoded: the position to resume after */

    ngx_gravitee_fuzz_assert(sub->resume.len == 0
                             || (sub->resume.len == 3
                                 && ngx_strncmp(sub->resume.data, "4/2", 3)
                                    == 0),
                             "the cursor is not the position to resume");

    f->subscribed++;

    if (f->subscribe_rc == NGX_DECLINED) {
        ngx_str_set(&sub->error, "Position refused by the fuzz endpoint");
        return NGX_DECLINED;
    }

    if (f->subscribe_rc == NGX_OK) {
        f->sub = sub;
    }

    return f->subscribe_rc;
}


static void
ngx_gravitee_fuzz_ws_unsubscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_fuzz_ws_t  *f;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(sub == f->sub,
                             "unsubscribe() of what is not subscribed");

    f->sub = NULL;
}


static ngx_int_t
ngx_gravitee_fuzz_ws_publish(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_fuzz_ws_t   *f;
    ngx_gravitee_fuzz_pub_t  *p;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(f->pending == NULL,
                             "a publication while another is in flight");
    ngx_gravitee_fuzz_assert(pub->msg && pub->done && pub->log,
                             "a publication without its message or done()");
    ngx_gravitee_fuzz_assert(pub->binding == f->binding,
                             "a publication without the binding");
    ngx_gravitee_fuzz_assert(!pub->msg->error, "an error message published");

    p = ngx_array_push(&f->pubs);
    if (p == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    p->len = pub->msg->content.len;
    p->data = ngx_pnalloc(f->pool, p->len + 1);
    if (p->data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    if (p->len) {
        ngx_memcpy(p->data, pub->msg->content.data, p->len);
    }

    switch (f->verdict) {

    case 1:
        p->rc = NGX_AGAIN;
        f->pending = pub;
        f->pending_index = f->pubs.nelts - 1;
        return NGX_AGAIN;

    case 2:
        p->rc = NGX_ERROR;
        pub->status = 502;
        pub->error = ngx_gravitee_fuzz_ws_texts[f->verdict_text];
        return NGX_ERROR;

    default:
        p->rc = NGX_OK;
        return NGX_OK;
    }
}


static void
ngx_gravitee_fuzz_ws_cancel(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_fuzz_ws_t   *f;
    ngx_gravitee_fuzz_pub_t  *p;

    f = &ngx_gravitee_fuzz_ws;

    ngx_gravitee_fuzz_assert(pub == f->pending,
                             "cancel() of what is not in flight");

    p = (ngx_gravitee_fuzz_pub_t *) f->pubs.elts + f->pending_index;
    p->rc = NGX_GRAVITEE_FUZZ_PUB_CANCELLED;
    f->pending = NULL;

    if (f->ack.posted) {
        ngx_delete_posted_event(&f->ack);
    }
}


/* the broker's acknowledgement, from the event loop */

static void
ngx_gravitee_fuzz_ws_ack(ngx_event_t *ev)
{
    ngx_gravitee_pub_t       *pub;
    ngx_gravitee_fuzz_ws_t   *f;
    ngx_gravitee_fuzz_pub_t  *p;

    f = &ngx_gravitee_fuzz_ws;
    pub = f->pending;

    if (pub == NULL) {
        return;
    }

    p = (ngx_gravitee_fuzz_pub_t *) f->pubs.elts + f->pending_index;

    ngx_gravitee_fuzz_assert(pub->msg
                             && pub->msg->content.len == p->len
                             && (p->len == 0
                                 || ngx_memcmp(pub->msg->content.data,
                                               p->data, p->len) == 0),
                             "a message in flight changed");

    f->pending = NULL;
    p->rc = f->ack_rc;
    pub->rc = f->ack_rc;

    if (f->ack_rc != NGX_OK) {
        pub->status = 502;
        pub->error = ngx_gravitee_fuzz_ws_texts[f->ack_text];
    }

    pub->done(pub);
}


/*
 * The model: RFC 6455, section 5, and the README's choices, read from the
 * client's bytes as delivered, in one piece.  Each complete message is
 * published and, as the endpoint said for that publication, goes on or
 * ends with 1011; a protocol error ends with its code; a close frame is
 * answered with its code; the end of the bytes inside a frame or message
 * ends with no close frame.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_ws_expect(ngx_gravitee_fuzz_ws_expect_t *e,
    ngx_uint_t publisher, size_t max_size)
{
    u_char                   *p, *last, *msg, b0, b1, mask[4], ctl[125];
    size_t                    msg_len, k;
    uint64_t                  len;
    ngx_str_t                *s;
    ngx_uint_t                opcode, fin, message, discard, code, i, npub;
    ngx_gravitee_fuzz_ws_t   *f;
    ngx_gravitee_fuzz_pub_t  *pubs;

    f = &ngx_gravitee_fuzz_ws;

    if (ngx_array_init(&e->messages, f->pool, 8, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&e->pongs, f->pool, 8, sizeof(ngx_str_t))
           != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    e->close = -1;
    e->cancelled = 0;

    pubs = f->pubs.elts;
    npub = 0;

    p = (u_char *) f->wire;
    last = p + f->delivered;

    msg = ngx_pnalloc(f->pool, f->delivered + 1);
    if (msg == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    msg_len = 0;
    message = 0;
    discard = 0;

#define ngx_gravitee_fuzz_ws_end(code)  { e->close = code; return; }

    for ( ;; ) {

        if (last - p < 2) {
            return;
        }

        b0 = p[0];
        b1 = p[1];
        p += 2;

        opcode = b0 & 0x0f;
        fin = b0 >> 7;

        if (b0 & 0x70) {
            ngx_gravitee_fuzz_ws_end(1002);
        }

        if (!(b1 & 0x80)) {
            ngx_gravitee_fuzz_ws_end(1002);
        }

        switch (opcode) {

        case 0:
            if (!message) {
                ngx_gravitee_fuzz_ws_end(1002);
            }

            break;

        case 1:
        case 2:
            if (message) {
                ngx_gravitee_fuzz_ws_end(1002);
            }

            break;

        case 8:
        case 9:
        case 10:
            if (!fin || (b1 & 0x7f) > 125) {
                ngx_gravitee_fuzz_ws_end(1002);
            }

            break;

        default:
            ngx_gravitee_fuzz_ws_end(1002);
        }

        len = b1 & 0x7f;
        k = (len == 126) ? 2 : (len == 127) ? 8 : 0;

        if ((size_t) (last - p) < k + 4) {
            return;
        }

        if (k) {
            len = 0;

            for (i = 0; i < k; i++) {
                len = (len << 8) | *p++;
            }

            if (len >> 63) {
                ngx_gravitee_fuzz_ws_end(1002);
            }
        }

        ngx_memcpy(mask, p, 4);
        p += 4;

        if (opcode < 8) {
            if (opcode) {
                message = opcode;
                discard = !publisher;
            }

            if (!discard && msg_len + len > max_size) {
                ngx_gravitee_fuzz_ws_end(1009);
            }
        }

        if ((uint64_t) (last - p) < len) {
            return;
        }

        /* the payload, unmasked */

        if (opcode >= 8) {
            for (i = 0; i < len; i++) {
                ctl[i] = p[i] ^ mask[i & 3];
            }

            p += len;

            if (opcode == 9) {
                s = ngx_array_push(&e->pongs);
                if (s == NULL) {
                    ngx_gravitee_fuzz_fail("out of memory");
                }

                s->data = ngx_pnalloc(f->pool, len + 1);
                if (s->data == NULL) {
                    ngx_gravitee_fuzz_fail("out of memory");
                }

                ngx_memcpy(s->data, ctl, len);
                s->len = len;
                continue;
            }

            if (opcode == 10) {
                /* a pong: read, and forgotten */
                continue;
            }

            /* close */

            if (len == 1) {
                ngx_gravitee_fuzz_ws_end(1002);
            }

            if (len == 0) {
                ngx_gravitee_fuzz_ws_end(0);
            }

            code = (ctl[0] << 8) | ctl[1];

            if (!ngx_gravitee_fuzz_ws_code_valid(code)) {
                ngx_gravitee_fuzz_ws_end(1002);
            }

            if (ngx_gravitee_fuzz_utf8(ctl + 2, len - 2) != len - 2) {
                ngx_gravitee_fuzz_ws_end(1007);
            }

            ngx_gravitee_fuzz_ws_end((ngx_int_t) code);
        }

        if (!discard) {
            for (i = 0; i < len; i++) {
                msg[msg_len + i] = p[i] ^ mask[i & 3];
            }

            msg_len += len;
        }

        p += len;

        if (!fin) {
            continue;
        }

        if (discard) {
            message = 0;
            discard = 0;
            msg_len = 0;
            continue;
        }

        if (message == 1 && ngx_gravitee_fuzz_utf8(msg, msg_len) != msg_len) {
            ngx_gravitee_fuzz_ws_end(1007);
        }

        message = 0;

        /* published: as the endpoint said, it goes on or it is over */

        s = ngx_array_push(&e->messages);
        if (s == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        s->data = ngx_pnalloc(f->pool, msg_len + 1);
        if (s->data == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        ngx_memcpy(s->data, msg, msg_len);
        s->len = msg_len;
        msg_len = 0;

        if (npub >= f->pubs.nelts) {
            /* not published: the comparison says whether it had to be */
            return;
        }

        switch (pubs[npub++].rc) {

        case NGX_OK:
            break;

        case NGX_ERROR:
            ngx_gravitee_fuzz_ws_end(1011);

        default:
            e->cancelled = 1;
            return;
        }
    }

#undef ngx_gravitee_fuzz_ws_end
}


/*
 * What the client got: the answer to its handshake, then frames as a
 * client must find them (RFC 6455, 5.1 and 5.5): unmasked, FIN set (the
 * gateway does not fragment), no reserved bits or opcodes, the shortest
 * length, control frames of 125 bytes at most, text in UTF-8, a close
 * frame last, with a code a server may send and a UTF-8 reason of 123
 * bytes at most.  Cut short ("whole" false) only if the client left
 * before it read all, or a timeout gave up on it.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_ws_seen(ngx_gravitee_fuzz_ws_seen_t *seen, ngx_uint_t whole,
    ngx_uint_t frame_type)
{
    u_char                  *p, *last, *end;
    uint64_t                 len;
    ngx_str_t               *s;
    ngx_uint_t               opcode, i, k, *op;
    ngx_gravitee_fuzz_ws_t  *f;

    static u_char  accept[] = "\r\nSec-WebSocket-Accept: "
                              "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

    f = &ngx_gravitee_fuzz_ws;

    ngx_memzero(seen, sizeof(ngx_gravitee_fuzz_ws_seen_t));
    seen->close = -1;

    if (ngx_array_init(&seen->data, f->pool, 8, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&seen->opcodes, f->pool, 8, sizeof(ngx_uint_t))
           != NGX_OK
        || ngx_array_init(&seen->pongs, f->pool, 8, sizeof(ngx_str_t))
           != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    if (f->out_len == 0) {
        ngx_gravitee_fuzz_assert(!whole, "the handshake was not answered");
        return;
    }

    p = f->out;
    last = f->out + f->out_len;

    end = ngx_strlcasestrn(p, last, (u_char *) "\r\n\r\n", 4 - 1);

    if (end == NULL || last - p < 13 || ngx_strncmp(p, "HTTP/1.1 ", 9) != 0)
    {
        ngx_gravitee_fuzz_assert(!whole, "the handshake's answer is cut");
        return;
    }

    seen->status = ngx_atoi(p + 9, 3);
    end += 4;

    if (seen->status != 101) {
        return;
    }

    ngx_gravitee_fuzz_assert(ngx_strlcasestrn(p, end, accept,
                                              sizeof(accept) - 2)
                             && ngx_strlcasestrn(p, end,
                                    (u_char *) "\r\nUpgrade: websocket\r\n",
                                    sizeof("\r\nUpgrade: websocket\r\n") - 2)
                             && ngx_strlcasestrn(p, end,
                                    (u_char *) "\r\nConnection: upgrade\r\n",
                                    sizeof("\r\nConnection: upgrade\r\n")
                                    - 2),
                             "the 101 lacks Upgrade, Connection or the "
                             "accept key");

    p = end;

    while (p < last) {

        ngx_gravitee_fuzz_assert(seen->close == -1,
                                 "a frame after the close frame");

        if (last - p < 2) {
            goto cut;
        }

        ngx_gravitee_fuzz_assert((p[0] & 0xf0) == 0x80,
                                 "a server frame with FIN clear or a "
                                 "reserved bit set");
        ngx_gravitee_fuzz_assert(!(p[1] & 0x80), "a masked server frame");

        opcode = p[0] & 0x0f;

        ngx_gravitee_fuzz_assert(opcode == 1 || opcode == 2 || opcode == 8
                                 || opcode == 9 || opcode == 10,
                                 "a reserved opcode from the server");

        len = p[1] & 0x7f;
        k = (len == 126) ? 2 : (len == 127) ? 8 : 0;

        if ((size_t) (last - p) < 2 + k) {
            goto cut;
        }

        if (k) {
            len = 0;

            for (i = 0; i < k; i++) {
                len = (len << 8) | p[2 + i];
            }

            ngx_gravitee_fuzz_assert((k == 2 && len >= 126)
                                     || (k == 8 && len > 0xffff
                                         && !(len >> 63)),
                                     "a frame length not in its shortest "
                                     "form");
        }

        p += 2 + k;

        if ((uint64_t) (last - p) < len) {
            goto cut;
        }

        if (opcode >= 8) {
            ngx_gravitee_fuzz_assert(len <= 125,
                                     "a control frame over 125 bytes");
        }

        switch (opcode) {

        case 8:
            seen->close_at = p - 2 - f->out;
            seen->close = 0;

            ngx_gravitee_fuzz_assert(len != 1, "a close frame of 1 byte");

            if (len) {
                seen->close = (p[0] << 8) | p[1];
                seen->reason.data = p + 2;
                seen->reason.len = len - 2;

                ngx_gravitee_fuzz_assert(len - 2 <= 123
                                         && ngx_gravitee_fuzz_utf8(p + 2,
                                                                   len - 2)
                                            == len - 2,
                                         "a close reason too long or not "
                                         "UTF-8");
                ngx_gravitee_fuzz_assert(
                    ngx_gravitee_fuzz_ws_code_valid(seen->close)
                    && seen->close != 1005 && seen->close != 1006,
                    "a close code a server may not send");
            }

            break;

        case 9:
            ngx_gravitee_fuzz_assert(len == 0, "a ping with a payload");
            seen->pings++;
            break;

        case 10:
            s = ngx_array_push(&seen->pongs);
            if (s == NULL) {
                ngx_gravitee_fuzz_fail("out of memory");
            }

            s->data = p;
            s->len = len;
            break;

        default:
            /*
             * frame_type=text sends any content as text, UTF-8 or not, as
             * the README says; RFC 6455 (8.1) says a client fails that
             */

            if (opcode == 1 && (frame_type != 1 || ngx_gravitee_fuzz_strict))
            {
                ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_utf8(p, len)
                                         == len,
                                         "a text frame that is not UTF-8");
            }

            s = ngx_array_push(&seen->data);
            op = ngx_array_push(&seen->opcodes);

            if (s == NULL || op == NULL) {
                ngx_gravitee_fuzz_fail("out of memory");
            }

            s->data = p;
            s->len = len;
            *op = opcode;
        }

        p += len;
    }

    return;

cut:

    ngx_gravitee_fuzz_assert(!whole, "the output ends inside a frame");
}


/*
 * In an exact run (no time went by, the endpoint neither ended nor
 * failed, the worker did not shut down, no slow-client goodbye) the
 * gateway does all the model says; otherwise what it did is the start of
 * that.  The endpoint's messages come in order as frames of the type
 * frame_type says, all of them if the client always read.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_ws_compare(ngx_gravitee_fuzz_ws_expect_t *e,
    ngx_gravitee_fuzz_ws_seen_t *seen, ngx_uint_t frame_type,
    ngx_uint_t subscriber)
{
    u_char                    *content;
    ngx_str_t                 *m, *d, *pong, *seen_pong;
    ngx_uint_t                 i, j, exact, *op, opcode, found;
    ngx_gravitee_fuzz_ws_t    *f;
    ngx_gravitee_fuzz_pub_t   *pubs;
    ngx_gravitee_fuzz_sent_t  *sent;

    f = &ngx_gravitee_fuzz_ws;
    exact = (e->close != -2);

    pubs = f->pubs.elts;
    m = e->messages.elts;

    /* every publication is a message of the client's, in order */

    if (f->pubs.nelts > e->messages.nelts) {
        ngx_gravitee_fuzz_fail("%d message(s) published, the client sent "
                               "%d", (int) f->pubs.nelts,
                               (int) e->messages.nelts);
    }

    for (i = 0; i < f->pubs.nelts; i++) {
        if (pubs[i].len != m[i].len
            || (m[i].len && ngx_memcmp(pubs[i].data, m[i].data, m[i].len)
                            != 0))
        {
            ngx_gravitee_fuzz_fail("publication %d is \"%.*s\" (%d bytes), "
                                   "the client's message \"%.*s\" (%d)",
                                   (int) i, (int) ngx_min(pubs[i].len, 64),
                                   pubs[i].data, (int) pubs[i].len,
                                   (int) ngx_min(m[i].len, 64), m[i].data,
                                   (int) m[i].len);
        }
    }

    pong = e->pongs.elts;
    seen_pong = seen->pongs.elts;

    ngx_gravitee_fuzz_assert(seen->pongs.nelts <= e->pongs.nelts,
                             "a pong for no ping");

    for (i = 0; i < seen->pongs.nelts; i++) {
        ngx_gravitee_fuzz_assert(seen_pong[i].len == pong[i].len
                                 && ngx_memcmp(seen_pong[i].data,
                                               pong[i].data, pong[i].len)
                                    == 0,
                                 "a pong without its ping's payload");
    }

    if (exact) {
        ngx_gravitee_fuzz_assert(!e->cancelled,
                                 "a publication cancelled though the client "
                                 "did not go");

        if (f->pubs.nelts != e->messages.nelts) {
            ngx_gravitee_fuzz_fail("%d message(s) published, the client "
                                   "sent %d", (int) f->pubs.nelts,
                                   (int) e->messages.nelts);
        }

        ngx_gravitee_fuzz_assert(seen->pongs.nelts == e->pongs.nelts,
                                 "a ping without its pong");

        if (seen->close != e->close) {
            ngx_gravitee_fuzz_fail("closed with %d, RFC 6455 says %d",
                                   (int) seen->close, (int) e->close);
        }

        if (e->close == 1011 && f->pubs.nelts) {
            /* the endpoint's reason, cut to 123 bytes of whole characters */

            for (i = 0; i < NGX_GRAVITEE_FUZZ_WS_TEXTS; i++) {
                d = &ngx_gravitee_fuzz_ws_texts[i];
                j = ngx_gravitee_fuzz_utf8(d->data, ngx_min(d->len, 123));

                if (seen->reason.len == j
                    && (j == 0
                        || ngx_memcmp(seen->reason.data, d->data, j) == 0))
                {
                    break;
                }
            }

            ngx_gravitee_fuzz_assert(i < NGX_GRAVITEE_FUZZ_WS_TEXTS,
                                     "1011 does not give the endpoint's "
                                     "reason, cut to whole characters");
        }
    }

    /* the endpoint's messages, as frames */

    sent = f->sent.elts;
    d = seen->data.elts;
    op = seen->opcodes.elts;

    j = 0;

    for (i = 0; i < f->sent.nelts; i++) {
        content = ngx_gravitee_fuzz_ws_content(sent[i].size, sent[i].kind);

        opcode = (frame_type == 1) ? 1 : (frame_type == 2) ? 2
                 : sent[i].utf8 ? 1 : 2;

        found = (j < seen->data.nelts
                 && d[j].len == sent[i].size
                 && (sent[i].size == 0
                     || ngx_memcmp(d[j].data, content, sent[i].size) == 0));

        if (found) {
            ngx_gravitee_fuzz_assert(op[j] == opcode,
                                     "a message in a frame of the wrong "
                                     "type");
            j++;
            continue;
        }

        if (exact && !f->blocked
            && (seen->close == -1 || sent[i].out_len <= seen->close_at))
        {
            ngx_gravitee_fuzz_fail("the endpoint's message %d (%d bytes) "
                                   "did not reach a client that reads",
                                   (int) i, (int) sent[i].size);
        }
    }

    ngx_gravitee_fuzz_assert(j == seen->data.nelts,
                             "a data frame the endpoint did not send");

    ngx_gravitee_fuzz_assert(subscriber || seen->data.nelts == 0,
                             "data frames without a subscription");
}


/* text, bytes that are not UTF-8, and UTF-8 that a size may cut */

static ngx_int_t
ngx_gravitee_fuzz_ws_init(ngx_cycle_t *cycle)
{
    u_char      *p;
    size_t       i, size;
    ngx_uint_t   kind;

    size = ngx_gravitee_fuzz_ws_sizes[7];

    for (kind = 0; kind < 3; kind++) {
        p = ngx_alloc(size, cycle->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < size; i++) {
            switch (kind) {
            case 0:
                p[i] = 'a' + i % 26;
                break;
            case 1:
                p[i] = 0x80 + i % 128;
                break;
            default:
                p[i] = (i & 1) ? 0xa9 : 0xc3;
            }
        }

        ngx_gravitee_fuzz_ws_contents[kind] = p;

        for (i = 0; i < 8; i++) {
            ngx_gravitee_fuzz_ws_utf8[i][kind] =
                (ngx_gravitee_fuzz_utf8(p, ngx_gravitee_fuzz_ws_sizes[i])
                 == ngx_gravitee_fuzz_ws_sizes[i]);
        }
    }

    return NGX_OK;
}


/* the first "size" bytes of one kind: a message and its expected frame */

static u_char *
ngx_gravitee_fuzz_ws_content(size_t size, ngx_uint_t kind)
{
    return ngx_gravitee_fuzz_ws_contents[kind % 3];
}


/* codes a peer may send (RFC 6455 7.4.1, and the IANA registry) */

ngx_gravitee_fuzz_checker
static ngx_uint_t
ngx_gravitee_fuzz_ws_code_valid(ngx_uint_t code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}
