
/*
 * ngx_gravitee_module: the Server-Sent Events entrypoint.
 *
 * A GET that accepts text/event-stream gets a 200 whose body never ends
 * while the endpoint has messages: "retry:" first, then one event per
 * message, ":" heartbeats when nothing else was sent for an interval,
 * "event: error" when the endpoint fails, "event: goaway" when NGINX stops
 * or reloads (shared/reference/gravitee.md, sections 0.1 and 2.4).
 *
 * Each message is framed once, the first time any client of this
 * entrypoint gets it, and the framing is cached on the message: a fan-out
 * to many clients points every client's output at the same bytes.
 *
 * Over HTTP/1.x the request is handed to the stream layer, which frees it
 * and keeps only the connection (ngx_gravitee_stream.h).  An HTTP/2 stream
 * cannot be detached: the request is kept and the events go through the
 * output filters, flushed one by one, with the same limits on what a slow
 * reader may leave unsent.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_stream.h"


#define NGX_GRAVITEE_SSE_RETRY_LEN  sizeof("retry: 4294967295\n\n")

/* before an event: room for its chunk size line, "<hex size>\r\n" */
#define NGX_GRAVITEE_SSE_CHUNK_ROOM  (2 * sizeof(size_t) + 2)


typedef struct {
    ngx_gravitee_stream_conf_t  stream;

    ngx_msec_t                  heartbeat;
    ngx_msec_t                  retry;       /* unset: random, as the
                                                reference does */
    ngx_flag_t                  headers_as_comment;
    ngx_flag_t                  metadata_as_comment;
} ngx_gravitee_sse_conf_t;


/* a client on the stream layer (HTTP/1.x): kept small, it lives long */

typedef struct {
    ngx_gravitee_sse_conf_t    *conf;
    u_char                      retry[NGX_GRAVITEE_SSE_RETRY_LEN];
    u_char                      retry_len;

    unsigned                    written:1;   /* since the last tick */
    unsigned                    ended:1;     /* the endpoint's flow is over */
} ngx_gravitee_sse_state_t;


/* a client that keeps its request (HTTP/2) */

typedef struct {
    ngx_queue_t                 queue;
    ngx_chain_t                 cl;
    ngx_buf_t                   buf;
    ngx_gravitee_message_t     *msg;         /* NULL: static bytes */
} ngx_gravitee_sse_out_t;


typedef struct {
    ngx_gravitee_tally_t        tally;       /* first: the request ctx */

    ngx_http_request_t         *request;
    ngx_gravitee_loc_conf_t    *glcf;
    ngx_gravitee_sse_conf_t    *conf;

    ngx_gravitee_sub_t          sub;
    ngx_event_t                 event;       /* heartbeat; posted: finish */

    ngx_queue_t                 out;         /* ngx_gravitee_sse_out_t,
                                                given to the filters and
                                                not yet sent */
    ngx_queue_t                 free;
    ngx_uint_t                  nout;        /* messages in "out" */
    size_t                      queued;      /* their bytes */

    ngx_msec_t                  start;

    u_char                      retry[NGX_GRAVITEE_SSE_RETRY_LEN];

    unsigned                    subscribed:1;
    unsigned                    written:1;
    unsigned                    ended:1;
    unsigned                    error:1;
    unsigned                    overflowed:1;
    unsigned                    finishing:1;
} ngx_gravitee_sse_ctx_t;


static ngx_int_t ngx_gravitee_sse_match(ngx_http_request_t *r);
static void *ngx_gravitee_sse_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_sse_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_sse_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);
static ngx_int_t ngx_gravitee_sse_send_header(ngx_http_request_t *r);
static void ngx_gravitee_sse_last_id(ngx_http_request_t *r, ngx_str_t *id);
static size_t ngx_gravitee_sse_retry(ngx_gravitee_sse_conf_t *conf,
    u_char *buf);

static ngx_int_t ngx_gravitee_sse_stream_start(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_sse_conf_t *conf,
    ngx_str_t *last_id);
static void ngx_gravitee_sse_started(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_refused(ngx_gravitee_sub_t *sub);
static void ngx_gravitee_sse_read(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_timer(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_shutdown(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_overflow(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_expired(ngx_gravitee_stream_t *s);
static void ngx_gravitee_sse_keep_timer(ngx_gravitee_sse_ctx_t *ctx);
static ngx_gravitee_message_t *ngx_gravitee_sse_own_holder(
    ngx_gravitee_sse_conf_t *conf, ngx_gravitee_message_t *msg, size_t size,
    ngx_log_t *log);
static void ngx_gravitee_sse_stream_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg);
static void ngx_gravitee_sse_stream_end(ngx_gravitee_sub_t *sub);

static ngx_int_t ngx_gravitee_sse_keep_start(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_sse_conf_t *conf,
    ngx_str_t *last_id);
static void ngx_gravitee_sse_keep_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg);
static void ngx_gravitee_sse_keep_end(ngx_gravitee_sub_t *sub);
static void ngx_gravitee_sse_keep_event(ngx_event_t *ev);
static ngx_int_t ngx_gravitee_sse_keep_push(ngx_gravitee_sse_ctx_t *ctx,
    ngx_gravitee_message_t *msg, u_char *data, size_t len,
    ngx_uint_t control);
static void ngx_gravitee_sse_keep_writer(ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_sse_keep_flush(ngx_gravitee_sse_ctx_t *ctx,
    ngx_chain_t *in);
static void ngx_gravitee_sse_keep_finish(ngx_gravitee_sse_ctx_t *ctx,
    const char *reason);
static void ngx_gravitee_sse_keep_cleanup(void *data);

static ngx_uint_t ngx_gravitee_sse_skips(ngx_gravitee_sse_conf_t *conf);
static ngx_gravitee_message_t *ngx_gravitee_sse_encode(
    ngx_gravitee_sse_conf_t *conf, ngx_gravitee_message_t *msg,
    ngx_str_t *position, ngx_log_t *log, ngx_str_t *event, ngx_str_t *chunk);
static ngx_gravitee_message_t *ngx_gravitee_sse_holder(
    ngx_gravitee_sse_conf_t *conf, ngx_gravitee_message_t *msg,
    ngx_uint_t shared, ngx_str_t *value, ngx_log_t *log);
static void ngx_gravitee_sse_chunk_head(u_char *start, size_t len);
static void ngx_gravitee_sse_slices(ngx_gravitee_message_t *holder,
    ngx_str_t *event, ngx_str_t *chunk);
static size_t ngx_gravitee_sse_data_size(ngx_str_t *s);
static u_char *ngx_gravitee_sse_data(u_char *p, ngx_str_t *s);
static u_char *ngx_gravitee_sse_line(u_char *p, ngx_str_t *s);
static u_char *ngx_gravitee_sse_break(u_char *p, u_char *last);


static ngx_msec_t  ngx_gravitee_sse_heartbeat_min = 2000;


static ngx_gravitee_param_t  ngx_gravitee_sse_params[] = {

    { ngx_string("heartbeat_interval"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_sse_conf_t, heartbeat),
      &ngx_gravitee_sse_heartbeat_min },

    { ngx_string("retry"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_sse_conf_t, retry),
      NULL },

    { ngx_string("headers_as_comment"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_sse_conf_t, headers_as_comment),
      NULL },

    { ngx_string("metadata_as_comment"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_sse_conf_t, metadata_as_comment),
      NULL },

    ngx_gravitee_stream_params(ngx_gravitee_sse_conf_t),

      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_sse_entrypoint = {
    ngx_string("sse"),
    ngx_gravitee_sse_params,
    2,
    ngx_gravitee_sse_match,
    ngx_gravitee_sse_create_conf,
    ngx_gravitee_sse_init_conf,
    ngx_gravitee_sse_handler
};


static ngx_gravitee_stream_handler_t  ngx_gravitee_sse_stream_handler = {
    ngx_gravitee_sse_started,
    ngx_gravitee_sse_read,
    ngx_gravitee_sse_timer,
    ngx_gravitee_sse_shutdown,
    ngx_gravitee_sse_overflow,
    NULL,
    ngx_gravitee_sse_expired
};


static ngx_gravitee_sub_handler_t  ngx_gravitee_sse_stream_sub = {
    ngx_gravitee_sse_stream_message,
    ngx_gravitee_sse_stream_end,
    NULL,
    ngx_gravitee_stream_room,
    0,
    0,
    0
};


static ngx_gravitee_sub_handler_t  ngx_gravitee_sse_keep_sub = {
    ngx_gravitee_sse_keep_message,
    ngx_gravitee_sse_keep_end,
    NULL,
    NULL,
    0,
    0,
    0
};


static ngx_str_t  ngx_gravitee_sse_type = ngx_string("text/event-stream");

static u_char  ngx_gravitee_sse_heartbeat[] = ":\n\n";
static u_char  ngx_gravitee_sse_goaway[] =
    "event: goaway\ndata: Stopping, please reconnect\n\n";
static u_char  ngx_gravitee_sse_unavailable[] =
    "event: error\ndata: Endpoint unavailable\n\n";
static u_char  ngx_gravitee_sse_expired_event[] =
    "event: error\n"
    "data: {\"message\":\"Token expired\",\"http_status_code\":401}\n\n";


static ngx_int_t
ngx_gravitee_sse_match(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_GET
           && ngx_gravitee_accepts(r, &ngx_gravitee_sse_type);
}


static void *
ngx_gravitee_sse_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_sse_conf_t  *scf;

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_sse_conf_t));
    if (scf == NULL) {
        return NULL;
    }

    ngx_gravitee_stream_create_conf(&scf->stream);

    scf->heartbeat = NGX_CONF_UNSET_MSEC;
    scf->retry = NGX_CONF_UNSET_MSEC;
    scf->headers_as_comment = NGX_CONF_UNSET;
    scf->metadata_as_comment = NGX_CONF_UNSET;

    return scf;
}


static char *
ngx_gravitee_sse_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_sse_conf_t *scf = conf;

    if (ngx_gravitee_stream_init_conf(cf, &scf->stream, "sse")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(scf->heartbeat, 5000);
    ngx_conf_init_value(scf->headers_as_comment, 0);
    ngx_conf_init_value(scf->metadata_as_comment, 0);

    if (scf->retry != NGX_CONF_UNSET_MSEC && scf->retry > 0xffffffff) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"retry\" of entrypoint \"sse\" is "
                           "too large");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_sse_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    ngx_int_t  rc;
    ngx_str_t  last_id, error;

    static ngx_str_t  has_body =
        ngx_string("An event stream request carries no body");

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &has_body);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_gravitee_sse_last_id(r, &last_id);

    rc = ngx_gravitee_position_check(r, glcf, &last_id, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return ngx_gravitee_sse_keep_start(r, glcf, conf, &last_id);
    }
#endif

    return ngx_gravitee_sse_stream_start(r, glcf, conf, &last_id);
}


static ngx_int_t
ngx_gravitee_sse_send_header(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    ngx_str_set(&r->headers_out.content_type,
                "text/event-stream;charset=UTF-8");
    r->headers_out.content_type_len = ngx_gravitee_sse_type.len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    /* a proxy in front (another NGINX) must not buffer the events either */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

#if (NGX_HTTP_GZIP)
    /*
     * gzip would hold events back to fill its blocks, and on HTTP/1.x
     * the stream writes past the filters: it is never used here
     */
    r->gzip_tested = 1;
    r->gzip_ok = 0;
#endif

    return ngx_http_send_header(r);
}


/* the first Last-Event-ID line: the position to resume after */

static void
ngx_gravitee_sse_last_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    h = ngx_gravitee_header_next(r, &it, "Last-Event-ID");

    if (h) {
        *id = h->value;

    } else {
        ngx_str_null(id);
    }
}


static size_t
ngx_gravitee_sse_retry(ngx_gravitee_sse_conf_t *conf, u_char *buf)
{
    ngx_msec_t  retry;

    retry = conf->retry;

    if (retry == NGX_CONF_UNSET_MSEC) {
        /* as the reference: spread the reconnections of many clients */
        retry = 1000 + (ngx_msec_t) ngx_random() % 29000;
    }

    return ngx_sprintf(buf, "retry: %M\n\n", retry) - buf;
}


/* HTTP/1.x: the stream layer */

static ngx_int_t
ngx_gravitee_sse_stream_start(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_sse_conf_t *conf,
    ngx_str_t *last_id)
{
    ngx_int_t                  rc;
    ngx_str_t                  error;
    ngx_gravitee_stream_t     *s;
    ngx_gravitee_sse_state_t  *st;

    s = ngx_gravitee_stream_create(r, glcf, &conf->stream,
                                   &ngx_gravitee_sse_stream_handler,
                                   &ngx_gravitee_sse_entrypoint.name,
                                   sizeof(ngx_gravitee_stream_t)
                                   + sizeof(ngx_gravitee_sse_state_t));
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_gravitee_stream_set_position(s, last_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_gravitee_bind(r, glcf, NGX_GRAVITEE_BIND_SUBSCRIBE,
                           &s->sub.binding, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st = ngx_gravitee_stream_data(s);
    st->conf = conf;

    st->retry_len = (u_char) ngx_gravitee_sse_retry(conf, st->retry);

    rc = ngx_gravitee_sse_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /*
     * the write filter holds a header shorter than postpone_output back,
     * and the stream's ngx_http_output_filter(r, NULL) does not reach it
     * (the postpone filter stops an empty chain): flush it here
     */

    rc = ngx_http_send_special(r, NGX_HTTP_FLUSH);

    if (rc == NGX_ERROR) {
        return rc;
    }

    return ngx_gravitee_stream_start(s, r);
}


static void
ngx_gravitee_sse_started(ngx_gravitee_stream_t *s)
{
    ngx_int_t                  rc;
    ngx_gravitee_sse_state_t  *st;

    st = ngx_gravitee_stream_data(s);

    if (ngx_gravitee_stream_push_control(s, st->retry, st->retry_len, 0)
        != NGX_OK)
    {
        ngx_gravitee_stream_finish(s, "out of memory");
        return;
    }

    s->sub.skips = ngx_gravitee_sse_skips(st->conf);

    rc = ngx_gravitee_stream_subscribe(s, &ngx_gravitee_sse_stream_sub);

    if (rc == NGX_DECLINED) {
        /* the end is said from the timer, at once */
        ngx_gravitee_sse_refused(&s->sub);
        return;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "sse on \"%V\": subscribing to endpoint \"%V\" failed",
                      &s->glcf->name, &s->glcf->endpoint->name);

        (void) ngx_gravitee_stream_push_control(s,
                                   ngx_gravitee_sse_unavailable,
                                   sizeof(ngx_gravitee_sse_unavailable) - 1,
                                   0);

        ngx_gravitee_stream_finish(s, "endpoint unavailable");
        return;
    }

    ngx_gravitee_stream_timer(s, st->conf->heartbeat);
}


/*
 * The endpoint could not use the client's Last-Event-ID (found out once
 * the stream had started): said as an error event, then the end.
 */

static void
ngx_gravitee_sse_refused(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_message_t  *err;

    static ngx_str_t  key = ngx_string("FAILURE_ENDPOINT_CONFIGURATION_INVALID");

    err = ngx_gravitee_message_error(sub->log, &sub->error, &key,
                                     NGX_HTTP_BAD_REQUEST);
    if (err == NULL) {
        sub->handler->end(sub);
        return;
    }

    ngx_str_null(&sub->position);
    sub->handler->message(sub, err);
    ngx_gravitee_message_unref(err);
}


/* an event stream client has nothing to say: it may only hang up */

static void
ngx_gravitee_sse_read(ngx_gravitee_stream_t *s)
{
    u_char             buf[256];
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->connection;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_gravitee_stream_close(s, "read event failed");
            }

            return;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_gravitee_stream_close(s, "client closed");
            return;
        }
    }
}


static void
ngx_gravitee_sse_timer(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_sse_state_t  *st;

    st = ngx_gravitee_stream_data(s);

    if (st->ended) {
        ngx_gravitee_stream_finish(s, "endpoint ended");
        return;
    }

    /* a client with output queued is not idle: no heartbeat piles up */

    if (!st->written && s->nframes == 0) {
        if (ngx_gravitee_stream_push_control(s, ngx_gravitee_sse_heartbeat,
                                       sizeof(ngx_gravitee_sse_heartbeat) - 1,
                                       0)
            != NGX_OK)
        {
            ngx_gravitee_stream_finish(s, "out of memory");
            return;
        }
    }

    st->written = 0;

    ngx_gravitee_stream_timer(s, st->conf->heartbeat);
}


static void
ngx_gravitee_sse_shutdown(ngx_gravitee_stream_t *s)
{
    (void) ngx_gravitee_stream_push_control(s, ngx_gravitee_sse_goaway,
                                      sizeof(ngx_gravitee_sse_goaway) - 1, 0);

    ngx_gravitee_stream_finish(s, "shutdown");
}


/*
 * Nothing is said to a client too slow to read what it has: the stream
 * ends, and EventSource reconnects with Last-Event-ID, so that an endpoint
 * that can resume sends it what it missed.
 */

static void
ngx_gravitee_sse_overflow(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_stream_finish(s, "slow client");
}


/*
 * The token the client was let in with has expired: the reference's error
 * body as an error event, then the end.  EventSource reconnects, and the
 * plans answer it 401 until it comes with a valid token.
 */

static void
ngx_gravitee_sse_expired(ngx_gravitee_stream_t *s)
{
    (void) ngx_gravitee_stream_push_control(s, ngx_gravitee_sse_expired_event,
                               sizeof(ngx_gravitee_sse_expired_event) - 1, 0);

    ngx_gravitee_stream_finish(s, "credential expired");
}


static void
ngx_gravitee_sse_stream_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg)
{
    ngx_gravitee_stream_t *s = sub->data;

    ngx_str_t                  event, chunk;
    ngx_gravitee_message_t    *owner;
    ngx_gravitee_sse_state_t  *st;

    st = ngx_gravitee_stream_data(s);

    if (st->ended) {
        return;
    }

    owner = ngx_gravitee_sse_encode(st->conf, msg, &sub->position,
                                    s->connection->log, &event, &chunk);

    if (owner == NULL) {
        /* out of memory: the client misses this one, and can tell */
        s->tally.dropped++;
        return;
    }

    if (s->chunked) {
        event = chunk;
    }

    if (ngx_gravitee_stream_push_chunk(s, owner, event.data, event.len)
        == NGX_OK)
    {
        st->written = 1;
    }

    ngx_gravitee_message_unref(owner);

    if (msg->error) {
        /* the reference ends the stream after an error event */
        ngx_gravitee_sse_stream_end(sub);
    }
}


/* finishing is not done from inside the endpoint's call: the timer does */

static void
ngx_gravitee_sse_stream_end(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_stream_t *s = sub->data;

    ngx_gravitee_sse_state_t  *st;

    st = ngx_gravitee_stream_data(s);

    st->ended = 1;

    ngx_gravitee_stream_timer(s, 0);
}


/* HTTP/2: the request is kept, events go through the output filters */

static ngx_int_t
ngx_gravitee_sse_keep_start(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_sse_conf_t *conf,
    ngx_str_t *last_id)
{
    size_t                   len;
    ngx_int_t                rc;
    ngx_str_t                error;
    ngx_pool_cleanup_t      *cln;
    ngx_gravitee_sse_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_gravitee_sse_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->glcf = glcf;
    ctx->conf = conf;
    ctx->start = ngx_current_msec;

    ngx_queue_init(&ctx->out);
    ngx_queue_init(&ctx->free);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_gravitee_sse_keep_cleanup;
    cln->data = ctx;

    ngx_gravitee_set_ctx(r, &ctx->tally);

    /*
     * not cancelable: the heartbeat tick is where a shutdown is noticed,
     * an HTTP/2 stream being out of reach of ngx_close_idle_connections()
     */
    ctx->event.handler = ngx_gravitee_sse_keep_event;
    ctx->event.data = ctx;
    ctx->event.log = r->connection->log;

    ctx->sub.handler = &ngx_gravitee_sse_keep_sub;
    ctx->sub.data = ctx;
    ctx->sub.log = r->connection->log;
    ctx->sub.resume = *last_id;
    ctx->sub.skips = ngx_gravitee_sse_skips(conf);

    rc = ngx_gravitee_bind(r, glcf, NGX_GRAVITEE_BIND_SUBSCRIBE,
                           &ctx->sub.binding, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_gravitee_sse_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    r->main->count++;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_gravitee_sse_keep_writer;

    /*
     * a failure here is finished from the posted event, once the content
     * handler has returned: the request is not freed under its feet
     */

    len = ngx_gravitee_sse_retry(conf, ctx->retry);

    if (ngx_gravitee_sse_keep_push(ctx, NULL, ctx->retry, len, 1)
        != NGX_OK)
    {
        ctx->error = 1;

        if (!ctx->event.posted) {
            ngx_post_event(&ctx->event, &ngx_posted_events);
        }

        return NGX_DONE;
    }

    rc = ngx_gravitee_subscribe(glcf, &ctx->sub);

    if (rc == NGX_DECLINED) {
        ngx_gravitee_sse_refused(&ctx->sub);
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sse on \"%V\": subscribing to endpoint \"%V\" failed",
                      &glcf->name, &glcf->endpoint->name);

        (void) ngx_gravitee_sse_keep_push(ctx, NULL,
                                   ngx_gravitee_sse_unavailable,
                                   sizeof(ngx_gravitee_sse_unavailable) - 1,
                                   1);

        ctx->tally.reason = "endpoint unavailable";
        ngx_gravitee_sse_keep_end(&ctx->sub);

        return NGX_DONE;
    }

    ngx_str_null(&ctx->sub.resume);
    ctx->subscribed = 1;

    ngx_gravitee_sse_keep_timer(ctx);

    return NGX_DONE;
}


static void
ngx_gravitee_sse_keep_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg)
{
    ngx_gravitee_sse_ctx_t *ctx = sub->data;

    ngx_str_t                event;
    ngx_gravitee_message_t  *owner;

    if (ctx->ended || ctx->finishing) {
        return;
    }

    owner = ngx_gravitee_sse_encode(ctx->conf, msg, &sub->position,
                                    ctx->request->connection->log, &event,
                                    NULL);

    if (owner == NULL) {
        ctx->tally.dropped++;
        return;
    }

    (void) ngx_gravitee_sse_keep_push(ctx, owner, event.data, event.len, 0);

    ngx_gravitee_message_unref(owner);

    if (msg->error) {
        ngx_gravitee_sse_keep_end(sub);
    }
}


static void
ngx_gravitee_sse_keep_end(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_sse_ctx_t *ctx = sub->data;

    ctx->ended = 1;

    if (!ctx->event.posted) {
        ngx_post_event(&ctx->event, &ngx_posted_events);
    }
}


/* the heartbeat tick, or a posted request to finish */

/* the heartbeat tick, or the end of the caller's credential if sooner */

static void
ngx_gravitee_sse_keep_timer(ngx_gravitee_sse_ctx_t *ctx)
{
    time_t                    left;
    ngx_msec_t                timer;
    ngx_gravitee_identity_t  *id;

    timer = ctx->conf->heartbeat;
    id = ctx->tally.identity;

    if (id && id->expires) {
        left = id->expires - ngx_time();

        if (left < 0) {
            left = 0;
        }

        if (left < (time_t) (timer / 1000)) {
            timer = (ngx_msec_t) left * 1000;
        }
    }

    ngx_add_timer(&ctx->event, timer);
}


static void
ngx_gravitee_sse_keep_event(ngx_event_t *ev)
{
    ngx_gravitee_sse_ctx_t *ctx = ev->data;

    ngx_connection_t         *c;
    ngx_gravitee_identity_t  *id;

    c = ctx->request->connection;

    if (ctx->finishing) {
        return;
    }

    if (ctx->error) {
        ngx_gravitee_sse_keep_finish(ctx, "client closed");
        goto done;
    }

    if (ctx->overflowed
        && ctx->conf->stream.policy == NGX_GRAVITEE_SLOW_CLOSE)
    {
        ngx_gravitee_sse_keep_finish(ctx, "slow client");
        goto done;
    }

    if (ctx->ended) {
        ngx_gravitee_sse_keep_finish(ctx, "endpoint ended");
        goto done;
    }

    if (ngx_exiting || ngx_terminate) {
        (void) ngx_gravitee_sse_keep_push(ctx, NULL, ngx_gravitee_sse_goaway,
                                       sizeof(ngx_gravitee_sse_goaway) - 1,
                                       1);
        ngx_gravitee_sse_keep_finish(ctx, "shutdown");
        goto done;
    }

    if (!ev->timedout) {
        return;
    }

    ev->timedout = 0;

    id = ctx->tally.identity;

    if (id && id->expires && id->expires <= ngx_time()) {
        (void) ngx_gravitee_sse_keep_push(ctx, NULL,
                               ngx_gravitee_sse_expired_event,
                               sizeof(ngx_gravitee_sse_expired_event) - 1, 1);
        ngx_gravitee_sse_keep_finish(ctx, "credential expired");
        goto done;
    }

    if (!ctx->written
        && ngx_gravitee_sse_keep_push(ctx, NULL, ngx_gravitee_sse_heartbeat,
                                      sizeof(ngx_gravitee_sse_heartbeat) - 1,
                                      1)
           != NGX_OK)
    {
        ngx_gravitee_sse_keep_finish(ctx, "client closed");
        goto done;
    }

    ctx->written = 0;

    ngx_gravitee_sse_keep_timer(ctx);

    return;

done:

    /* the request may be gone: its connection is not */
    ngx_http_run_posted_requests(c);
}


/*
 * One event to the filters, flushed.  Control events (retry, heartbeat,
 * goaway) are not subject to the limits; a message over them applies the
 * slow_client policy.
 */

static ngx_int_t
ngx_gravitee_sse_keep_push(ngx_gravitee_sse_ctx_t *ctx,
    ngx_gravitee_message_t *msg, u_char *data, size_t len,
    ngx_uint_t control)
{
    ngx_queue_t             *q;
    ngx_http_request_t      *r;
    ngx_gravitee_sse_out_t  *o;

    r = ctx->request;

    if (ctx->finishing || ctx->error) {
        return NGX_ERROR;
    }

    if (!control) {
        if (ctx->overflowed && ctx->conf->stream.policy
                               == NGX_GRAVITEE_SLOW_CLOSE)
        {
            return NGX_DECLINED;
        }

        if (ctx->nout >= ctx->conf->stream.max_messages
            || (ctx->nout && ctx->queued + len > ctx->conf->stream.max_size))
        {
            ctx->tally.dropped++;

            if (ctx->overflowed) {
                return NGX_DECLINED;
            }

            ctx->overflowed = 1;

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "sse on \"%V\": slow client, %ui messages and %uz "
                          "bytes unsent, %s", &ctx->glcf->name, ctx->nout,
                          ctx->queued,
                          ctx->conf->stream.policy == NGX_GRAVITEE_SLOW_DROP
                          ? "dropping new messages until it catches up"
                          : "closing");

            if (ctx->conf->stream.policy == NGX_GRAVITEE_SLOW_CLOSE
                && !ctx->event.posted)
            {
                ngx_post_event(&ctx->event, &ngx_posted_events);
            }

            return NGX_DECLINED;
        }
    }

    if (!ngx_queue_empty(&ctx->free)) {
        q = ngx_queue_head(&ctx->free);
        ngx_queue_remove(q);
        o = ngx_queue_data(q, ngx_gravitee_sse_out_t, queue);

    } else {
        o = ngx_palloc(r->pool, sizeof(ngx_gravitee_sse_out_t));
        if (o == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memzero(&o->buf, sizeof(ngx_buf_t));

    o->buf.start = data;
    o->buf.pos = data;
    o->buf.last = data + len;
    o->buf.end = data + len;
    o->buf.memory = 1;
    o->buf.flush = 1;

    o->cl.buf = &o->buf;
    o->cl.next = NULL;

    o->msg = msg ? ngx_gravitee_message_ref(msg) : NULL;

    ngx_queue_insert_tail(&ctx->out, &o->queue);

    if (!control) {
        ctx->nout++;
        ctx->queued += len;
        ctx->tally.messages++;
        ctx->written = 1;
    }

    if (ngx_gravitee_sse_keep_flush(ctx, &o->cl) == NGX_ERROR) {
        /* the request is finished from the event, never from here */
        ctx->error = 1;

        if (!ctx->event.posted) {
            ngx_post_event(&ctx->event, &ngx_posted_events);
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_gravitee_sse_keep_writer(ngx_http_request_t *r)
{
    ngx_connection_t        *c;
    ngx_gravitee_sse_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    if (c->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "sse on \"%V\": client timed out reading",
                      &ctx->glcf->name);
        c->timedout = 1;
        ctx->tally.reason = "send timeout";
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_gravitee_sse_keep_flush(ctx, NULL) == NGX_ERROR) {
        ctx->tally.reason = "client closed";
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


/* hands "in" to the filters, then forgets what the client has received */

static ngx_int_t
ngx_gravitee_sse_keep_flush(ngx_gravitee_sse_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_int_t                rc;
    ngx_queue_t             *q;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_gravitee_sse_out_t  *o;

    r = ctx->request;
    c = r->connection;

    rc = ngx_http_output_filter(r, in);

    if (rc == NGX_ERROR || c->error) {
        return NGX_ERROR;
    }

    while (!ngx_queue_empty(&ctx->out)) {
        q = ngx_queue_head(&ctx->out);
        o = ngx_queue_data(q, ngx_gravitee_sse_out_t, queue);

        if (o->buf.pos != o->buf.last) {
            break;
        }

        ngx_queue_remove(q);

        if (o->msg) {
            ngx_gravitee_message_unref(o->msg);
            o->msg = NULL;
            ctx->nout--;
            ctx->queued -= o->buf.last - o->buf.start;
        }

        ngx_queue_insert_tail(&ctx->free, q);
    }

    if (r->out || c->buffered) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, ctx->conf->stream.send_timeout);
        }

    } else if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    return NGX_OK;
}


static void
ngx_gravitee_sse_keep_finish(ngx_gravitee_sse_ctx_t *ctx, const char *reason)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    ctx->finishing = 1;

    if (ctx->tally.reason == NULL) {
        ctx->tally.reason = reason;
    }

    if (ctx->subscribed) {
        ctx->subscribed = 0;
        ngx_gravitee_unsubscribe(ctx->glcf, &ctx->sub);
    }

    if (ctx->event.timer_set) {
        ngx_del_timer(&ctx->event);
    }

    if (ctx->error) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    /* what is unsent is sent by ngx_http_writer(), then the request ends */

    rc = ngx_http_send_special(r, NGX_HTTP_LAST);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_gravitee_sse_keep_cleanup(void *data)
{
    ngx_gravitee_sse_ctx_t *ctx = data;

    ngx_queue_t             *q;
    ngx_connection_t        *c;
    ngx_gravitee_sse_out_t  *o;

    c = ctx->request->connection;

    if (ctx->subscribed) {
        ctx->subscribed = 0;
        ngx_gravitee_unsubscribe(ctx->glcf, &ctx->sub);
    }

    if (ctx->event.timer_set) {
        ngx_del_timer(&ctx->event);
    }

    if (ctx->event.posted) {
        ngx_delete_posted_event(&ctx->event);
    }

    while (!ngx_queue_empty(&ctx->out)) {
        q = ngx_queue_head(&ctx->out);
        ngx_queue_remove(q);
        o = ngx_queue_data(q, ngx_gravitee_sse_out_t, queue);

        if (o->msg) {
            ngx_gravitee_message_unref(o->msg);
        }
    }

    ngx_gravitee_unbind(ctx->glcf, ctx->sub.binding);
    ctx->sub.binding = NULL;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "gravitee sse closed: api=\"%V\" protocol=%V "
                  "duration=%Mms sent=%O messages=%ui dropped=%ui "
                  "reason=\"%s\"", &ctx->glcf->name,
                  &ctx->request->http_protocol,
                  ngx_current_msec - ctx->start, c->sent, ctx->tally.messages,
                  ctx->tally.dropped,
                  ctx->tally.reason ? ctx->tally.reason
                              : (c->error ? "client closed" : "finished"));
}


/*
 * The event of a message, made once per message and entrypoint and cached
 * with it (ngx_gravitee_message_add_encoding).  The caller gets the message
 * holding the bytes, with a reference, the event, and the same event as an
 * HTTP chunk: the buffer has room for the chunk's size line before the
 * event and its CRLF after, so that a chunked client is sent one buffer.
 *
 *     id: <id>                 when the message has one
 *     event: message           ("error" for an endpoint failure)
 *     data: <line>             one per line of the content
 *     :sourceTimestamp: <ms>   metadata_as_comment: first, then the
 *     :<key>: <value>          metadata; headers_as_comment: the headers,
 *                              values of a repeated name joined by ","
 *     (blank line)
 *
 * A line break in an id or comment becomes a space, and content is cut at
 * every CR, LF or CRLF into data lines: nothing a message holds can end an
 * event early or forge another one.
 */

/* an event is its id: (the position), its data and the comments asked for */

static ngx_uint_t
ngx_gravitee_sse_skips(ngx_gravitee_sse_conf_t *conf)
{
    ngx_uint_t  skips;

    skips = NGX_GRAVITEE_SKIP_ID;

    if (!conf->metadata_as_comment) {
        skips |= NGX_GRAVITEE_SKIP_METADATA;
    }

    if (!conf->headers_as_comment) {
        skips |= NGX_GRAVITEE_SKIP_HEADERS;
    }

    return skips;
}


static ngx_gravitee_message_t *
ngx_gravitee_sse_encode(ngx_gravitee_sse_conf_t *conf,
    ngx_gravitee_message_t *msg, ngx_str_t *position, ngx_log_t *log,
    ngx_str_t *event, ngx_str_t *chunk)
{
    u_char                  *p, *start;
    size_t                   len, data_len;
    ngx_str_t                value;
    ngx_uint_t               i, j, comments, shared, plain;
    ngx_gravitee_pair_t     *h, *m;
    ngx_gravitee_message_t  *holder, *own;

    /*
     * the live stream's clients are all at the message's own position: one
     * event serves them all; a client catching up has its own, and its own
     * event
     */

    shared = (position->data == msg->position.data);

    if (shared) {
        holder = ngx_gravitee_message_encoding(msg, conf);

        if (holder) {
            ngx_gravitee_sse_slices(holder, event, chunk);
            return ngx_gravitee_message_ref(holder);
        }
    }

    comments = !msg->error;

    data_len = ngx_gravitee_sse_data_size(&msg->content);

    /* one data line: the content has no line break to look for again */
    plain = (data_len == msg->content.len + sizeof("data: \n") - 1);

    len = sizeof("event: message\n") - 1 + data_len + 1;

    if (position->len && !msg->error) {
        len += sizeof("id: \n") - 1 + position->len;
    }

    if (comments && conf->metadata_as_comment) {
        len += sizeof(":sourceTimestamp: \n") - 1 + NGX_INT64_LEN;

        for (i = 0; i < msg->nmetadata; i++) {
            len += sizeof(":: \n") - 1 + msg->metadata[i].name.len
                   + msg->metadata[i].value.len;
        }
    }

    if (comments && conf->headers_as_comment) {
        for (i = 0; i < msg->nheaders; i++) {
            len += sizeof(":: \n") - 1 + msg->headers[i].name.len
                   + msg->headers[i].value.len;
        }
    }

    /*
     * a client catching up has an event of its own per message: it lives
     * in its holder's block, one allocation; the live stream's is cached
     * with the message
     */

    if (shared) {
        own = NULL;
        start = ngx_gravitee_message_alloc(NGX_GRAVITEE_SSE_CHUNK_ROOM + len
                                           + 2, log);

    } else {
        own = ngx_gravitee_sse_own_holder(conf, msg,
                                          NGX_GRAVITEE_SSE_CHUNK_ROOM + len + 2,
                                          log);
        start = own ? own->content.data : NULL;
    }

    if (start == NULL) {
        return NULL;
    }

    p = start + NGX_GRAVITEE_SSE_CHUNK_ROOM;

    if (msg->error) {
        /*
         * no id: the reference's random one would become the client's
         * Last-Event-ID and lose its place in the stream
         */
        p = ngx_cpymem(p, "event: error\n", sizeof("event: error\n") - 1);

    } else {
        /* the position, which a reconnecting client gives back */
        if (position->len) {
            p = ngx_cpymem(p, "id: ", sizeof("id: ") - 1);
            p = ngx_gravitee_sse_line(p, position);
            *p++ = '\n';
        }

        p = ngx_cpymem(p, "event: message\n",
                       sizeof("event: message\n") - 1);
    }

    if (plain && msg->content.len) {
        p = ngx_cpymem(p, "data: ", sizeof("data: ") - 1);
        p = ngx_cpymem(p, msg->content.data, msg->content.len);
        *p++ = '\n';

    } else {
        p = ngx_gravitee_sse_data(p, &msg->content);
    }

    if (comments && conf->metadata_as_comment) {
        p = ngx_sprintf(p, ":sourceTimestamp: %L\n", msg->timestamp);

        m = msg->metadata;

        for (i = 0; i < msg->nmetadata; i++) {
            *p++ = ':';
            p = ngx_gravitee_sse_line(p, &m[i].name);
            *p++ = ':'; *p++ = ' ';
            p = ngx_gravitee_sse_line(p, &m[i].value);
            *p++ = '\n';
        }
    }

    if (comments && conf->headers_as_comment) {
        h = msg->headers;

        for (i = 0; i < msg->nheaders; i++) {
            if (ngx_gravitee_message_header_first(msg, i) != i) {
                continue;
            }

            *p++ = ':';
            p = ngx_gravitee_sse_line(p, &h[i].name);
            *p++ = ':'; *p++ = ' ';

            for (j = i; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) != i) {
                    continue;
                }

                if (j != i) {
                    *p++ = ',';
                }

                p = ngx_gravitee_sse_line(p, &h[j].value);
            }

            *p++ = '\n';
        }
    }

    *p++ = '\n';

    len = p - (start + NGX_GRAVITEE_SSE_CHUNK_ROOM);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "sse event of message %p id:\"%V\" encoded, %uz bytes",
                   msg, &msg->id, len);

    /* the chunk's size line ends where the event starts */

    ngx_gravitee_sse_chunk_head(start, len);
    *p++ = CR; *p++ = LF;

    value.data = start;
    value.len = p - start;

    if (own) {
        own->encoded = value;
        ngx_gravitee_sse_slices(own, event, chunk);
        return own;
    }

    holder = ngx_gravitee_sse_holder(conf, msg, shared, &value, log);
    if (holder == NULL) {
        return NULL;
    }

    ngx_gravitee_sse_slices(holder, event, chunk);

    return holder;
}


/* a client's own event: the holder's content is the room for it */

static ngx_gravitee_message_t *
ngx_gravitee_sse_own_holder(ngx_gravitee_sse_conf_t *conf,
    ngx_gravitee_message_t *msg, size_t size, ngx_log_t *log)
{
    ngx_gravitee_message_t       *holder;
    ngx_gravitee_message_init_t   init;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.timestamp = msg->timestamp;
    init.content.len = size;

    holder = ngx_gravitee_message_create(log, &init);
    if (holder == NULL) {
        return NULL;
    }

    holder->encoded_by = conf;
    holder->encoded_inline = 1;

    return holder;
}


/* a referenced holder of the event: cached with msg, or the client's own */

static ngx_gravitee_message_t *
ngx_gravitee_sse_holder(ngx_gravitee_sse_conf_t *conf,
    ngx_gravitee_message_t *msg, ngx_uint_t shared, ngx_str_t *value,
    ngx_log_t *log)
{
    ngx_gravitee_message_t       *holder;
    ngx_gravitee_message_init_t   init;

    if (shared) {
        holder = ngx_gravitee_message_add_encoding(msg, conf, value, log);
        return holder ? ngx_gravitee_message_ref(holder) : NULL;
    }

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.timestamp = msg->timestamp;

    holder = ngx_gravitee_message_create(log, &init);
    if (holder == NULL) {
        ngx_gravitee_message_free(value->data);
        return NULL;
    }

    holder->encoded_by = conf;
    holder->encoded = *value;

    return holder;
}


static void
ngx_gravitee_sse_chunk_head(u_char *start, size_t len)
{
    u_char  *p;

    static u_char  hex[] = "0123456789abcdef";

    /* written backwards so that it ends where the event starts */

    p = start + NGX_GRAVITEE_SSE_CHUNK_ROOM;
    *--p = LF;
    *--p = CR;

    do {
        *--p = hex[len & 0xf];
        len >>= 4;
    } while (len);
}


/* the event, and the event as a chunk, in an encoding made above */

static void
ngx_gravitee_sse_slices(ngx_gravitee_message_t *holder, ngx_str_t *event,
    ngx_str_t *chunk)
{
    size_t  n, head_len;

    event->data = holder->encoded.data + NGX_GRAVITEE_SSE_CHUNK_ROOM;
    event->len = holder->encoded.len - NGX_GRAVITEE_SSE_CHUNK_ROOM - 2;

    if (chunk) {
        /* per client: count the size line's hex digits, do not print it */

        head_len = 3;

        for (n = event->len >> 4; n; n >>= 4) {
            head_len++;
        }

        chunk->data = event->data - head_len;
        chunk->len = head_len + event->len + 2;
    }
}


/* "data: " and "\n" around every line of the content */

static size_t
ngx_gravitee_sse_data_size(ngx_str_t *s)
{
    u_char      *p, *last;
    ngx_uint_t   lines;

    lines = 1;
    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        p = ngx_gravitee_sse_break(p, last);

        if (p == last) {
            break;
        }

        /* CR LF is one line break */
        if (*p == '\n' || p + 1 == last || p[1] != '\n') {
            lines++;
        }
    }

    return s->len + lines * (sizeof("data: \n") - 1);
}


static u_char *
ngx_gravitee_sse_data(u_char *p, ngx_str_t *s)
{
    u_char  *c, *last, *brk;

    last = s->data + s->len;

    p = ngx_cpymem(p, "data: ", sizeof("data: ") - 1);

    for (c = s->data; c < last; c = brk + 1) {
        brk = ngx_gravitee_sse_break(c, last);
        p = ngx_cpymem(p, c, brk - c);

        if (brk == last) {
            break;
        }

        if (*brk == '\r' && brk + 1 < last && brk[1] == '\n') {
            brk++;
        }

        p = ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);
    }

    *p++ = '\n';

    return p;
}


static u_char *
ngx_gravitee_sse_line(u_char *p, ngx_str_t *s)
{
    u_char  *c, *last, *brk;

    last = s->data + s->len;

    /* most values have no line break: copied by runs, not byte by byte */

    for (c = s->data; c < last; c = brk + 1) {
        brk = ngx_gravitee_sse_break(c, last);
        p = ngx_cpymem(p, c, brk - c);

        if (brk == last) {
            break;
        }

        *p++ = ' ';
    }

    return p;
}


/* the first CR or LF in [p, last), or last */

static u_char *
ngx_gravitee_sse_break(u_char *p, u_char *last)
{
    u_char  *lf, *cr;

    lf = memchr(p, '\n', last - p);
    cr = memchr(p, '\r', (lf ? lf : last) - p);

    return cr ? cr : (lf ? lf : last);
}


