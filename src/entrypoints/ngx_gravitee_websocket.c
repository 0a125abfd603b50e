
/*
 * ngx_gravitee_module: the WebSocket entrypoint (RFC 6455).
 *
 * The handshake is a normal request, answered 101 here; the connection is
 * then a detached stream (ngx_gravitee_stream.h).  Each endpoint message
 * goes to the client as one unfragmented frame whose payload is the shared
 * message itself: only the 2 to 10 bytes of frame header are the client's
 * own.  Each complete message of the client, its fragments reassembled,
 * is published to the endpoint; while a publication is in flight the
 * client is not read, so a fast publisher is held back by TCP, not by
 * memory.
 *
 * Nothing is kept per client while it is idle but the stream and this
 * entrypoint's small state: the buffers a frame or a message needs are
 * allocated when it starts arriving and freed when it is done.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>
#include "ngx_gravitee_stream.h"


#define NGX_GRAVITEE_WS_CONTINUATION   0x0
#define NGX_GRAVITEE_WS_TEXT           0x1
#define NGX_GRAVITEE_WS_BINARY         0x2
#define NGX_GRAVITEE_WS_CLOSE          0x8
#define NGX_GRAVITEE_WS_PING           0x9
#define NGX_GRAVITEE_WS_PONG           0xa

#define NGX_GRAVITEE_WS_NORMAL         1000
#define NGX_GRAVITEE_WS_GOING_AWAY     1001
#define NGX_GRAVITEE_WS_PROTOCOL       1002
#define NGX_GRAVITEE_WS_INVALID_DATA   1007
#define NGX_GRAVITEE_WS_POLICY         1008
#define NGX_GRAVITEE_WS_TOO_BIG        1009
#define NGX_GRAVITEE_WS_SERVER_ERROR   1011
#define NGX_GRAVITEE_WS_TRY_AGAIN      1013

#define NGX_GRAVITEE_WS_FRAME_AUTO     0
#define NGX_GRAVITEE_WS_FRAME_TEXT     1
#define NGX_GRAVITEE_WS_FRAME_BINARY   2

/* a control frame's payload, and so a close reason with its code */
#define NGX_GRAVITEE_WS_CONTROL_MAX    125
#define NGX_GRAVITEE_WS_REASON_MAX     123

#define NGX_GRAVITEE_WS_READ_SIZE      4096

/*
 * a message up to this size is framed once, header and payload in one
 * buffer shared by every client (one send() each); a larger one is sent
 * as a header and the message's own payload, never copied
 */
#define NGX_GRAVITEE_WS_FRAME_COPY_MAX  4096

/* not among NGINX's status codes */
#define NGX_GRAVITEE_WS_UPGRADE_REQUIRED  426


typedef struct {
    ngx_gravitee_stream_conf_t  stream;
    ngx_flag_t                  publisher;
    ngx_flag_t                  subscriber;
    ngx_uint_t                  frame_type;
    size_t                      max_message_size;
    ngx_msec_t                  ping_interval;
    ngx_msec_t                  idle_timeout;
    ngx_array_t                *allowed_origins;   /* ngx_str_t */
    ngx_array_t                *subprotocols;      /* ngx_str_t */
} ngx_gravitee_ws_conf_t;


/*
 * What a client needs only while it sends: the message being reassembled,
 * a control frame's payload, input not parsed yet, the publication in
 * flight.  It is malloc'd while the client sends, and freed when it is
 * idle again or when the stream is freed (ngx_gravitee_ws_closed).
 */

typedef struct {
    ngx_gravitee_pub_t          pub;
    ngx_gravitee_loc_conf_t    *glcf;

    u_char                     *data;              /* the client's message */
    size_t                      len;
    size_t                      size;

    u_char                     *pending;           /* read, not parsed */
    u_char                     *pos;
    u_char                     *last;

    u_char                      control[NGX_GRAVITEE_WS_CONTROL_MAX];
    u_char                      control_len;
} ngx_gravitee_ws_in_t;


/* the per-client state, after ngx_gravitee_stream_t in the same block */

typedef struct {
    ngx_gravitee_ws_conf_t     *conf;
    ngx_gravitee_ws_in_t       *in;
    const char                 *reason;            /* for the close record */

    uint64_t                    left;              /* of the frame payload */
    ngx_msec_t                  last_read;
    ngx_msec_t                  next_ping;

    u_char                      head[14];          /* a frame header */
    u_char                      head_len;
    u_char                      mask[4];

    unsigned                    opcode:4;          /* of the frame */
    unsigned                    fin:1;
    unsigned                    payload:1;         /* header read */
    unsigned                    mask_pos:2;
    unsigned                    message:2;         /* text or binary, while
                                                      a message is underway */
    unsigned                    discard:1;         /* publisher=off */
    unsigned                    close_sent:1;
    unsigned                    finish:1;          /* at the next read */
    unsigned                    paused:1;          /* publication in flight */
    unsigned                    pong:1;            /* a pong is queued: the
                                                      client is not read */
} ngx_gravitee_ws_ctx_t;


static ngx_int_t ngx_gravitee_websocket_match(ngx_http_request_t *r);
static void *ngx_gravitee_websocket_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_websocket_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_gravitee_ws_param_frame_type(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);
static ngx_int_t ngx_gravitee_websocket_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);
static ngx_int_t ngx_gravitee_ws_handshake(ngx_http_request_t *r,
    ngx_gravitee_ws_conf_t *wcf, ngx_uint_t *status, ngx_str_t *error);
static ngx_int_t ngx_gravitee_ws_accept(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *protocol);
static ngx_table_elt_t *ngx_gravitee_ws_header(ngx_http_request_t *r,
    const char *name);
static ngx_int_t ngx_gravitee_ws_has_token(ngx_http_request_t *r,
    const char *name, ngx_str_t *token, ngx_array_t *tokens,
    ngx_str_t *found);
static ngx_int_t ngx_gravitee_ws_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

static void ngx_gravitee_ws_started(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_read(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_ws_keep(ngx_gravitee_stream_t *s, u_char *p,
    u_char *last);
static ngx_int_t ngx_gravitee_ws_parse(ngx_gravitee_stream_t *s,
    u_char **pos, u_char *last);
static ngx_int_t ngx_gravitee_ws_frame_start(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_ws_frame_header(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_ws_frame_end(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_ws_client_close(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_ws_pong(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_pong_gone(void *data);
static ngx_int_t ngx_gravitee_ws_publish(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_published(ngx_gravitee_pub_t *pub);
static void ngx_gravitee_ws_free_data(void *data);
static ngx_gravitee_ws_in_t *ngx_gravitee_ws_get_in(
    ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_release_in(ngx_gravitee_ws_ctx_t *ctx);
static void ngx_gravitee_ws_free_in(ngx_gravitee_ws_in_t *in);
static void ngx_gravitee_ws_closed(ngx_gravitee_stream_t *s);

static void ngx_gravitee_ws_timer(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_arm(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_shutdown(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_overflow(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_expired(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg);
static void ngx_gravitee_ws_end(ngx_gravitee_sub_t *sub);

static ngx_int_t ngx_gravitee_ws_fail(ngx_gravitee_stream_t *s,
    ngx_uint_t code, const char *text);
static void ngx_gravitee_ws_goodbye(ngx_gravitee_stream_t *s,
    ngx_uint_t code, u_char *reason, size_t len, const char *why,
    ngx_uint_t linger);
static void ngx_gravitee_ws_finish(ngx_gravitee_stream_t *s);
static void ngx_gravitee_ws_defer_finish(ngx_gravitee_stream_t *s);
static ngx_gravitee_message_t *ngx_gravitee_ws_frame(
    ngx_gravitee_message_t *msg, ngx_uint_t opcode, ngx_log_t *log);
static size_t ngx_gravitee_ws_head(u_char *head, ngx_uint_t opcode,
    uint64_t len);
static ngx_uint_t ngx_gravitee_ws_close_code_valid(ngx_uint_t code);


static ngx_gravitee_param_t  ngx_gravitee_websocket_params[] = {

    { ngx_string("publisher"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_ws_conf_t, publisher),
      NULL },

    { ngx_string("subscriber"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_ws_conf_t, subscriber),
      NULL },

    { ngx_string("frame_type"),
      ngx_gravitee_ws_param_frame_type,
      offsetof(ngx_gravitee_ws_conf_t, frame_type),
      NULL },

    { ngx_string("max_message_size"),
      ngx_gravitee_param_size,
      offsetof(ngx_gravitee_ws_conf_t, max_message_size),
      NULL },

    { ngx_string("ping_interval"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_ws_conf_t, ping_interval),
      NULL },

    { ngx_string("idle_timeout"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_ws_conf_t, idle_timeout),
      NULL },

    { ngx_string("allowed_origins"),
      ngx_gravitee_param_list,
      offsetof(ngx_gravitee_ws_conf_t, allowed_origins),
      NULL },

    { ngx_string("subprotocols"),
      ngx_gravitee_param_list,
      offsetof(ngx_gravitee_ws_conf_t, subprotocols),
      NULL },

    ngx_gravitee_stream_params(ngx_gravitee_ws_conf_t),

      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_websocket_entrypoint = {
    ngx_string("websocket"),
    ngx_gravitee_websocket_params,
    4,
    ngx_gravitee_websocket_match,
    ngx_gravitee_websocket_create_conf,
    ngx_gravitee_websocket_init_conf,
    ngx_gravitee_websocket_handler
};


static ngx_gravitee_stream_handler_t  ngx_gravitee_ws_stream_handler = {
    ngx_gravitee_ws_started,
    ngx_gravitee_ws_read,
    ngx_gravitee_ws_timer,
    ngx_gravitee_ws_shutdown,
    ngx_gravitee_ws_overflow,
    ngx_gravitee_ws_closed,
    ngx_gravitee_ws_expired
};


static ngx_gravitee_sub_handler_t  ngx_gravitee_ws_sub_handler = {
    ngx_gravitee_ws_message,
    ngx_gravitee_ws_end,
    NULL,
    ngx_gravitee_stream_room,
    1,                                     /* frames carry no position */
    0,
    0
};


static ngx_str_t  ngx_gravitee_ws_upgrade = ngx_string("websocket");
static ngx_str_t  ngx_gravitee_ws_connection = ngx_string("upgrade");


#define ngx_gravitee_ws_ctx(s)                                                \
    ((ngx_gravitee_ws_ctx_t *) ngx_gravitee_stream_data(s))

#define ngx_gravitee_ws_stream(sub)                                           \
    ((ngx_gravitee_stream_t *)                                                \
         ((u_char *) (sub) - offsetof(ngx_gravitee_stream_t, sub)))


/*
 * As the reference: an HTTP/1.x GET asking to upgrade to "websocket".
 * What else the handshake needs is checked by the handler, so that a
 * client that gets it wrong hears why rather than an HTTP GET batch.
 */

static ngx_int_t
ngx_gravitee_websocket_match(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_GET
           && ngx_gravitee_ws_has_token(r, "Upgrade", &ngx_gravitee_ws_upgrade,
                                        NULL, NULL)
              == NGX_OK;
}


static void *
ngx_gravitee_websocket_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_ws_conf_t  *wcf;

    wcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_ws_conf_t));
    if (wcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wcf->allowed_origins = NULL;
     *     wcf->subprotocols = NULL;
     */

    ngx_gravitee_stream_create_conf(&wcf->stream);

    wcf->publisher = NGX_CONF_UNSET;
    wcf->subscriber = NGX_CONF_UNSET;
    wcf->frame_type = NGX_CONF_UNSET_UINT;
    wcf->max_message_size = NGX_CONF_UNSET_SIZE;
    wcf->ping_interval = NGX_CONF_UNSET_MSEC;
    wcf->idle_timeout = NGX_CONF_UNSET_MSEC;

    return wcf;
}


static char *
ngx_gravitee_websocket_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_ws_conf_t *wcf = conf;

    if (ngx_gravitee_stream_init_conf(cf, &wcf->stream, "websocket")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(wcf->publisher, 1);
    ngx_conf_init_value(wcf->subscriber, 1);
    ngx_conf_init_uint_value(wcf->frame_type, NGX_GRAVITEE_WS_FRAME_AUTO);
    ngx_conf_init_size_value(wcf->max_message_size, 1024 * 1024);
    ngx_conf_init_msec_value(wcf->ping_interval, 30000);

    /* a live client answers every ping: two missed pings mean it is gone */
    ngx_conf_init_msec_value(wcf->idle_timeout, 2 * wcf->ping_interval);

    if (!wcf->publisher && !wcf->subscriber) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "entrypoint \"websocket\" with publisher=off and "
                           "subscriber=off would carry no message");
        return NGX_CONF_ERROR;
    }

    if (wcf->ping_interval && wcf->idle_timeout
        && wcf->idle_timeout <= wcf->ping_interval)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"idle_timeout\" of entrypoint "
                           "\"websocket\" must be longer than "
                           "\"ping_interval\": a quiet client answers only "
                           "the pings it gets");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_ws_param_frame_type(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_uint_t  *np;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    if (value->len == 4 && ngx_strncmp(value->data, "auto", 4) == 0) {
        *np = NGX_GRAVITEE_WS_FRAME_AUTO;

    } else if (value->len == 4 && ngx_strncmp(value->data, "text", 4) == 0) {
        *np = NGX_GRAVITEE_WS_FRAME_TEXT;

    } else if (value->len == 6
               && ngx_strncmp(value->data, "binary", 6) == 0)
    {
        *np = NGX_GRAVITEE_WS_FRAME_BINARY;

    } else {
        return "must be \"auto\", \"text\" or \"binary\"";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_websocket_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    ngx_gravitee_ws_conf_t *wcf = conf;

    ngx_int_t               rc;
    ngx_str_t               error, cursor;
    ngx_uint_t              status;
    ngx_gravitee_stream_t  *s;
    ngx_gravitee_ws_ctx_t  *ctx;

    rc = ngx_gravitee_ws_handshake(r, wcf, &status, &error);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "websocket handshake on \"%V\" refused with %ui: %V",
                      &glcf->name, status, &error);

        if (status == NGX_GRAVITEE_WS_UPGRADE_REQUIRED) {
            /* NGINX knows no reason phrase for it */
            ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
        }

        return ngx_gravitee_send_error(r, status, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* ?cursor=: where a subscriber resumes, in HTTP GET's format */

    rc = ngx_gravitee_arg_position(r, glcf, &cursor, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s = ngx_gravitee_stream_create(r, glcf, &wcf->stream,
                                   &ngx_gravitee_ws_stream_handler,
                                   &ngx_gravitee_websocket_entrypoint.name,
                                   sizeof(ngx_gravitee_stream_t)
                                   + sizeof(ngx_gravitee_ws_ctx_t));
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (wcf->subscriber
        && ngx_gravitee_stream_set_position(s, &cursor) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* what the endpoint takes of the handshake: kept with the stream */

    rc = ngx_gravitee_bind(r, glcf,
                           (wcf->subscriber ? NGX_GRAVITEE_BIND_SUBSCRIBE : 0)
                           | (wcf->publisher ? NGX_GRAVITEE_BIND_PUBLISH : 0),
                           &s->sub.binding, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_gravitee_ws_ctx(s);
    ctx->conf = wcf;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return ngx_gravitee_stream_start(s, r);
}


/*
 * RFC 6455, section 4.2.1.  NGX_DECLINED: refused, with the status and
 * the text to answer; NGX_OK: the 101's own headers are set.
 */

static ngx_int_t
ngx_gravitee_ws_handshake(ngx_http_request_t *r, ngx_gravitee_ws_conf_t *wcf,
    ngx_uint_t *status, ngx_str_t *error)
{
    u_char           *p;
    ngx_str_t         key, protocol, decoded, *origin;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    static ngx_str_t  version = ngx_string("13");

    *status = NGX_HTTP_BAD_REQUEST;

    if (r->http_version != NGX_HTTP_VERSION_11) {
        ngx_str_set(error, "A WebSocket handshake needs HTTP/1.1");
        return NGX_DECLINED;
    }

    if (ngx_gravitee_ws_has_token(r, "Connection",
                                  &ngx_gravitee_ws_connection, NULL, NULL)
        != NGX_OK)
    {
        ngx_str_set(error, "A WebSocket handshake needs "
                           "\"Connection: Upgrade\"");
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        ngx_str_set(error, "A WebSocket handshake has no body");
        return NGX_DECLINED;
    }

    h = ngx_gravitee_ws_header(r, "Sec-WebSocket-Version");

    if (h == NULL || h->value.len != version.len
        || ngx_strncmp(h->value.data, version.data, version.len) != 0)
    {
        *status = NGX_GRAVITEE_WS_UPGRADE_REQUIRED;
        ngx_str_set(error, "Unsupported WebSocket version: "
                           "Sec-WebSocket-Version 13 is required");

        if (ngx_gravitee_ws_add_header(r, "Sec-WebSocket-Version", &version)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_DECLINED;
    }

    h = ngx_gravitee_ws_header(r, "Sec-WebSocket-Key");

    /* 16 random bytes in base64: 24 characters, "==" included */

    if (h != NULL && h->value.len == 24) {
        decoded.data = ngx_pnalloc(r->pool, 24);
        if (decoded.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&decoded, &h->value) != NGX_OK) {
            decoded.len = 0;
        }

    } else {
        decoded.len = 0;
    }

    if (decoded.len != 16) {
        ngx_str_set(error, "A WebSocket handshake needs a Sec-WebSocket-Key "
                           "of 16 bytes in base64");
        return NGX_DECLINED;
    }

    key = h->value;

    /* a browser says where the page came from; other clients do not */

    h = ngx_gravitee_ws_header(r, "Origin");

    if (wcf->allowed_origins && h) {
        origin = wcf->allowed_origins->elts;

        for (i = 0; i < wcf->allowed_origins->nelts; i++) {
            if (origin[i].len == h->value.len
                && ngx_strncasecmp(origin[i].data, h->value.data,
                                   h->value.len) == 0)
            {
                break;
            }
        }

        if (i == wcf->allowed_origins->nelts) {
            *status = NGX_HTTP_FORBIDDEN;

            error->len = sizeof("Origin \"\" is not allowed") - 1
                         + h->value.len;
            error->data = ngx_pnalloc(r->pool, error->len);
            if (error->data == NULL) {
                return NGX_ERROR;
            }

            p = ngx_sprintf(error->data, "Origin \"%V\" is not allowed",
                            &h->value);
            error->len = p - error->data;

            return NGX_DECLINED;
        }
    }

    /* the client's first offer we speak; none: no subprotocol (4.2.2) */

    ngx_str_null(&protocol);

    if (wcf->subprotocols) {
        (void) ngx_gravitee_ws_has_token(r, "Sec-WebSocket-Protocol", NULL,
                                         wcf->subprotocols, &protocol);
    }

    return ngx_gravitee_ws_accept(r, &key, &protocol);
}


/* Sec-WebSocket-Accept: base64(SHA-1(key GUID)), and the other headers */

static ngx_int_t
ngx_gravitee_ws_accept(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *protocol)
{
    u_char      digest[20];
    ngx_str_t   src, accept;
    ngx_sha1_t  sha1;

    static u_char  guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, guid, sizeof(guid) - 1);
    ngx_sha1_final(digest, &sha1);

    src.data = digest;
    src.len = sizeof(digest);

    accept.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(src.len));
    if (accept.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64(&accept, &src);

    if (ngx_gravitee_ws_add_header(r, "Upgrade", &ngx_gravitee_ws_upgrade)
        != NGX_OK
        || ngx_gravitee_ws_add_header(r, "Sec-WebSocket-Accept", &accept)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (protocol->len
        && ngx_gravitee_ws_add_header(r, "Sec-WebSocket-Protocol", protocol)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_gravitee_ws_header(ngx_http_request_t *r, const char *name)
{
    ngx_gravitee_header_iter_t  it = { NULL, 0 };

    /* surrounding blanks are already gone: NGINX trims values */
    return ngx_gravitee_header_next(r, &it, name);
}


/*
 * Whether a comma-separated header, in any of its lines, holds "token"
 * (case-insensitive), or, with "tokens", the first one of the list that
 * it holds, given back in "found" (the configuration's spelling).
 */

static ngx_int_t
ngx_gravitee_ws_has_token(ngx_http_request_t *r, const char *name,
    ngx_str_t *token, ngx_array_t *tokens, ngx_str_t *found)
{
    u_char                      *p, *last, *start, *end;
    ngx_str_t                   *t;
    ngx_uint_t                   j, n;
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    if (tokens) {
        t = tokens->elts;
        n = tokens->nelts;

    } else {
        t = token;
        n = 1;
    }

    while ((h = ngx_gravitee_header_next(r, &it, name)) != NULL) {

        p = h->value.data;
        last = p + h->value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            end = p;

            while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }

            for (j = 0; j < n; j++) {
                if ((size_t) (end - start) == t[j].len
                    && ngx_strncasecmp(start, t[j].data, t[j].len) == 0)
                {
                    if (found) {
                        *found = t[j];
                    }

                    return NGX_OK;
                }
            }
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_gravitee_ws_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/* detached: the subscription and the timers start */

static void
ngx_gravitee_ws_started(ngx_gravitee_stream_t *s)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_gravitee_ws_ctx_t  *ctx;

    c = s->connection;
    ctx = ngx_gravitee_ws_ctx(s);

    ctx->last_read = ngx_current_msec;
    ctx->next_ping = ngx_current_msec + ctx->conf->ping_interval;

    /* a frame is the message's content, nothing else of it */
    s->sub.skips = NGX_GRAVITEE_SKIP_ALL;

    rc = ctx->conf->subscriber
         ? ngx_gravitee_stream_subscribe(s, &ngx_gravitee_ws_sub_handler)
         : NGX_OK;

    if (rc == NGX_DECLINED) {
        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_POLICY, s->sub.error.data,
                                s->sub.error.len, "position refused", 1);
        ngx_gravitee_ws_finish(s);
        return;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "websocket on \"%V\": subscribing to endpoint \"%V\" "
                      "failed", &s->glcf->name, &s->glcf->endpoint->name);

        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_SERVER_ERROR,
                                (u_char *) "Endpoint unavailable", 20,
                                "endpoint unavailable", 1);
        ngx_gravitee_ws_finish(s);
        return;
    }

    ngx_gravitee_ws_arm(s);
}


/*
 * The client sent something: the bytes kept from before (the handshake's
 * preread, or what was left when a publication paused the reading) are
 * parsed first, then the socket is read until it has nothing more.
 */

static void
ngx_gravitee_ws_read(ngx_gravitee_stream_t *s)
{
    u_char                  buf[NGX_GRAVITEE_WS_READ_SIZE], *p;
    ssize_t                 n;
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    c = s->connection;
    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->finish) {
        ctx->finish = 0;
        ngx_gravitee_ws_finish(s);
        return;
    }

    if (ctx->paused || ctx->pong || s->finishing) {
        /* edge-triggered: a posted read resumes once the time comes */
        return;
    }

    if (s->preread.len) {
        in = ngx_gravitee_ws_get_in(s);
        if (in == NULL) {
            ngx_gravitee_stream_close(s, "out of memory");
            return;
        }

        in->pending = s->preread.data;
        in->pos = in->pending;
        in->last = in->pending + s->preread.len;

        ngx_str_null(&s->preread);
    }

    rc = NGX_OK;
    in = ctx->in;

    if (in && in->pending) {
        rc = ngx_gravitee_ws_parse(s, &in->pos, in->last);

        if (rc == NGX_OK) {
            ngx_free(in->pending);
            in->pending = NULL;
        }
    }

    while (rc == NGX_OK) {

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            if (ctx->head_len || ctx->payload || ctx->message) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "websocket client closed the connection in "
                              "the middle of a %s",
                              ctx->head_len || ctx->payload
                              ? "frame" : "fragmented message");
            }

            ngx_gravitee_stream_close(s, "client closed connection");
            return;
        }

        ctx->last_read = ngx_current_msec;

        p = buf;
        rc = ngx_gravitee_ws_parse(s, &p, buf + n);

        if (rc == NGX_AGAIN && ngx_gravitee_ws_keep(s, p, buf + n) != NGX_OK) {
            rc = NGX_ERROR;
        }
    }

    switch (rc) {

    case NGX_ERROR:
        ngx_gravitee_stream_close(s, "internal error");
        return;

    case NGX_DONE:
        /* a goodbye is queued */
        ngx_gravitee_ws_finish(s);
        return;

    case NGX_AGAIN:
        /* a publication or a pong is in flight: its end posts a read */
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_gravitee_stream_close(s, "read event failed");
        return;
    }

    ngx_gravitee_ws_release_in(ctx);
}


/* what a paused parse left of a read, for when the publication is done */

static ngx_int_t
ngx_gravitee_ws_keep(ngx_gravitee_stream_t *s, u_char *p, u_char *last)
{
    size_t                 len;
    ngx_gravitee_ws_in_t  *in;

    len = last - p;

    if (len == 0) {
        return NGX_OK;
    }

    in = ngx_gravitee_ws_ctx(s)->in;

    in->pending = ngx_alloc(len, s->connection->log);
    if (in->pending == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(in->pending, p, len);
    in->pos = in->pending;
    in->last = in->pending + len;

    return NGX_OK;
}


/*
 * Frames from the client, across any number of reads.  NGX_OK: all of
 * the input is used; NGX_AGAIN: a publication or a pong paused the parse
 * at *pos;
 * NGX_DONE: a goodbye is queued, the rest does not matter; NGX_ERROR.
 */

static ngx_int_t
ngx_gravitee_ws_parse(ngx_gravitee_stream_t *s, u_char **pos, u_char *last)
{
    u_char                 *p, *dst;
    size_t                  n, need, i;
    ngx_int_t               rc;
    ngx_uint_t              m;
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);
    p = *pos;

    for ( ;; ) {

        if (!ctx->payload) {

            /* the header: 2 bytes, then its length and mask */

            if (p == last) {
                break;
            }

            if (ctx->head_len < 2) {
                ctx->head[ctx->head_len++] = *p++;

                if (ctx->head_len < 2) {
                    continue;
                }

                rc = ngx_gravitee_ws_frame_start(s);
                if (rc != NGX_OK) {
                    *pos = p;
                    return rc;
                }
            }

            need = 2 + 4;

            if ((ctx->head[1] & 0x7f) == 126) {
                need += 2;

            } else if ((ctx->head[1] & 0x7f) == 127) {
                need += 8;
            }

            n = ngx_min(need - ctx->head_len, (size_t) (last - p));
            ngx_memcpy(ctx->head + ctx->head_len, p, n);
            ctx->head_len += n;
            p += n;

            if (ctx->head_len < need) {
                continue;
            }

            rc = ngx_gravitee_ws_frame_header(s);
            if (rc != NGX_OK) {
                *pos = p;
                return rc;
            }

            ctx->head_len = 0;
            ctx->payload = 1;
        }

        /* the payload, unmasked into where it is kept */

        n = (size_t) ngx_min(ctx->left, (uint64_t) (last - p));

        if (n) {
            in = ctx->in;
            m = ctx->mask_pos;

            if (ctx->opcode >= NGX_GRAVITEE_WS_CLOSE) {
                dst = in->control + in->control_len;
                in->control_len += n;

            } else if (!ctx->discard) {
                dst = in->data + in->len;
                in->len += n;

            } else {
                dst = NULL;
            }

            if (dst) {
                for (i = 0; i < n; i++) {
                    dst[i] = p[i] ^ ctx->mask[(m + i) & 3];
                }
            }

            ctx->mask_pos = (m + n) & 3;
            ctx->left -= n;
            p += n;
        }

        if (ctx->left) {
            break;
        }

        ctx->payload = 0;

        rc = ngx_gravitee_ws_frame_end(s);
        if (rc != NGX_OK) {
            *pos = p;
            return rc;
        }
    }

    *pos = p;

    return NGX_OK;
}


/* the first two bytes: what kind of frame, and is it one we accept */

static ngx_int_t
ngx_gravitee_ws_frame_start(ngx_gravitee_stream_t *s)
{
    ngx_uint_t              opcode;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);

    opcode = ctx->head[0] & 0x0f;

    /* no extension is negotiated: the reserved bits stay 0 */

    if (ctx->head[0] & 0x70) {
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                    "Reserved bits set");
    }

    if (!(ctx->head[1] & 0x80)) {
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                    "Client frames must be masked");
    }

    switch (opcode) {

    case NGX_GRAVITEE_WS_CONTINUATION:
        if (!ctx->message) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "Continuation frame without a "
                                        "message to continue");
        }

        break;

    case NGX_GRAVITEE_WS_TEXT:
    case NGX_GRAVITEE_WS_BINARY:
        if (ctx->message) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "New message before the end of "
                                        "a fragmented one");
        }

        break;

    case NGX_GRAVITEE_WS_CLOSE:
    case NGX_GRAVITEE_WS_PING:
    case NGX_GRAVITEE_WS_PONG:
        if (!(ctx->head[0] & 0x80)) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "Fragmented control frame");
        }

        if ((ctx->head[1] & 0x7f) > NGX_GRAVITEE_WS_CONTROL_MAX) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "Control frame over 125 bytes");
        }

        break;

    default:
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                    "Reserved opcode");
    }

    ctx->opcode = opcode;
    ctx->fin = (ctx->head[0] & 0x80) ? 1 : 0;

    return NGX_OK;
}


/* the whole header: the length, the mask, and room for the payload */

static ngx_int_t
ngx_gravitee_ws_frame_header(ngx_gravitee_stream_t *s)
{
    u_char                 *p, *data;
    size_t                  size;
    uint64_t                len, total;
    ngx_uint_t              i;
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);
    p = ctx->head + 2;
    len = ctx->head[1] & 0x7f;

    if (len == 126) {
        len = ((uint64_t) p[0] << 8) | p[1];
        p += 2;

    } else if (len == 127) {
        len = 0;

        for (i = 0; i < 8; i++) {
            len = (len << 8) | p[i];
        }

        p += 8;

        if (len >> 63) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "Invalid frame length");
        }
    }

    ngx_memcpy(ctx->mask, p, 4);
    ctx->mask_pos = 0;
    ctx->left = len;

    if (ctx->opcode >= NGX_GRAVITEE_WS_CLOSE) {
        in = ngx_gravitee_ws_get_in(s);
        if (in == NULL) {
            return NGX_ERROR;
        }

        in->control_len = 0;

        return NGX_OK;
    }

    if (ctx->opcode != NGX_GRAVITEE_WS_CONTINUATION) {
        ctx->message = ctx->opcode;
        ctx->discard = !ctx->conf->publisher;
    }

    if (ctx->discard) {
        return NGX_OK;
    }

    in = ngx_gravitee_ws_get_in(s);
    if (in == NULL) {
        return NGX_ERROR;
    }

    total = in->len + len;

    if (total > ctx->conf->max_message_size) {
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_TOO_BIG,
                                    "Message too big");
    }

    if (total <= in->size) {
        return NGX_OK;
    }

    /* the whole frame at once, and at least double for more fragments */

    size = (size_t) total;

    if (!ctx->fin) {
        size = ngx_max(size, ngx_min(2 * in->size,
                                     ctx->conf->max_message_size));
    }

    data = ngx_alloc(size, s->connection->log);
    if (data == NULL) {
        return NGX_ERROR;
    }

    if (in->data) {
        ngx_memcpy(data, in->data, in->len);
        ngx_free(in->data);
    }

    in->data = data;
    in->size = size;

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_ws_frame_end(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);
    in = ctx->in;

    switch (ctx->opcode) {

    case NGX_GRAVITEE_WS_CLOSE:
        return ngx_gravitee_ws_client_close(s);

    case NGX_GRAVITEE_WS_PING:
        return ngx_gravitee_ws_pong(s);

    case NGX_GRAVITEE_WS_PONG:
        /* the answer to our ping: reading it was the point */
        in->control_len = 0;
        return NGX_OK;
    }

    if (!ctx->fin) {
        return NGX_OK;
    }

    if (ctx->discard) {
        ctx->message = 0;
        ctx->discard = 0;
        return NGX_OK;
    }

    if (ctx->message == NGX_GRAVITEE_WS_TEXT
        && ngx_gravitee_utf8_valid(in->data, in->len) != in->len)
    {
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_INVALID_DATA,
                                    "Invalid UTF-8 in a text message");
    }

    ctx->message = 0;

    return ngx_gravitee_ws_publish(s);
}


/*
 * One pong at a time.  While it waits in the queue the client is not read,
 * so a client that pings and does not read what it is sent is held back
 * by TCP, as a fast publisher is, and costs one pong, not one per ping:
 * NGX_AGAIN pauses the parse, and the pong's release (sent, or dropped
 * with the queue) resumes it.
 */

static ngx_int_t
ngx_gravitee_ws_pong(ngx_gravitee_stream_t *s)
{
    ngx_int_t                     rc;
    ngx_gravitee_ws_in_t         *in;
    ngx_gravitee_ws_ctx_t        *ctx;
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_message_init_t   init;

    ctx = ngx_gravitee_ws_ctx(s);
    in = ctx->in;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.content.len = 2 + in->control_len;

    msg = ngx_gravitee_message_create(s->connection->log, &init);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    msg->content.data[0] = 0x80 | NGX_GRAVITEE_WS_PONG;
    msg->content.data[1] = in->control_len;

    if (in->control_len) {
        ngx_memcpy(msg->content.data + 2, in->control, in->control_len);
    }

    in->control_len = 0;

    rc = ngx_gravitee_stream_push_control_msg(s, msg);

    if (rc == NGX_OK) {
        msg->release = ngx_gravitee_ws_pong_gone;
        msg->release_data = s;
        ctx->pong = 1;
    }

    ngx_gravitee_message_unref(msg);

    return (rc == NGX_OK) ? NGX_AGAIN : NGX_ERROR;
}


static void
ngx_gravitee_ws_pong_gone(void *data)
{
    ngx_gravitee_stream_t *s = data;

    ngx_event_t  *rev;

    ngx_gravitee_ws_ctx(s)->pong = 0;

    /* the stream frees its queue before its connection's posted events */

    rev = s->connection->read;

    if (!rev->posted) {
        ngx_post_event(rev, &ngx_posted_events);
    }
}


/* the client says goodbye: answered with its code, as section 5.5.1 says */

static ngx_int_t
ngx_gravitee_ws_client_close(ngx_gravitee_stream_t *s)
{
    ngx_uint_t              code;
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);
    in = ctx->in;

    if (in->control_len == 1) {
        return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                    "Close frame of 1 byte");
    }

    code = 0;

    if (in->control_len) {
        code = (in->control[0] << 8) | in->control[1];

        if (!ngx_gravitee_ws_close_code_valid(code)) {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_PROTOCOL,
                                        "Invalid close code");
        }

        if (ngx_gravitee_utf8_valid(in->control + 2, in->control_len - 2)
            != (size_t) in->control_len - 2)
        {
            return ngx_gravitee_ws_fail(s, NGX_GRAVITEE_WS_INVALID_DATA,
                                        "Invalid UTF-8 in the close reason");
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                   "websocket client closed with %ui \"%*s\"", code,
                   in->control_len > 2 ? in->control_len - 2 : 0,
                   in->control + 2);

    ngx_gravitee_ws_goodbye(s, code, NULL, 0, "client closed the WebSocket",
                            1);

    return NGX_DONE;
}


/*
 * The message becomes the endpoint's: the buffer it was reassembled in is
 * wrapped, not copied, and freed with the message.
 */

static ngx_int_t
ngx_gravitee_ws_publish(ngx_gravitee_stream_t *s)
{
    u_char                       reason[NGX_GRAVITEE_WS_REASON_MAX];
    size_t                       len;
    ngx_int_t                    rc;
    ngx_gravitee_pub_t          *pub;
    ngx_gravitee_ws_in_t        *in;
    ngx_gravitee_ws_ctx_t       *ctx;
    ngx_gravitee_message_t      *msg;
    ngx_gravitee_message_init_t  init;

    ctx = ngx_gravitee_ws_ctx(s);
    in = ctx->in;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.content.data = in->data;
    init.content.len = in->len;
    init.wrap_content = 1;

    msg = ngx_gravitee_message_create(s->connection->log, &init);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    if (in->data) {
        msg->release = ngx_gravitee_ws_free_data;
        msg->release_data = in->data;
    }

    in->data = NULL;
    in->len = 0;
    in->size = 0;

    pub = &in->pub;
    ngx_memzero(pub, sizeof(ngx_gravitee_pub_t));

    pub->msg = msg;
    pub->done = ngx_gravitee_ws_published;
    pub->data = s;
    pub->log = s->connection->log;
    pub->binding = s->sub.binding;

    rc = ngx_gravitee_publish(s->glcf, pub);

    if (rc == NGX_AGAIN) {
        ctx->paused = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_OK) {
        pub->msg = NULL;
        ngx_gravitee_message_unref(msg);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                  "websocket on \"%V\": publishing to endpoint \"%V\" "
                  "failed: %V", &s->glcf->name, &s->glcf->endpoint->name,
                  &pub->error);

    /* the error's text may live in the message: copied before the unref */

    len = ngx_min(pub->error.len, NGX_GRAVITEE_WS_REASON_MAX);

    if (len) {
        ngx_memcpy(reason, pub->error.data, len);
    }

    pub->msg = NULL;
    ngx_gravitee_message_unref(msg);

    ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_SERVER_ERROR, reason, len,
                            "publishing failed", 1);

    return NGX_DONE;
}


/* a publication that went NGX_AGAIN is over: read on, or say why not */

static void
ngx_gravitee_ws_published(ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_stream_t *s = pub->data;

    ngx_gravitee_ws_ctx_t   *ctx;
    ngx_gravitee_message_t  *msg;

    ctx = ngx_gravitee_ws_ctx(s);
    msg = pub->msg;

    ctx->paused = 0;

    if (pub->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "websocket on \"%V\": publishing to endpoint \"%V\" "
                      "failed: %V", &s->glcf->name,
                      &s->glcf->endpoint->name, &pub->error);

        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_SERVER_ERROR,
                                pub->error.data, pub->error.len,
                                "publishing failed", 1);
        ctx->finish = 1;
    }

    pub->msg = NULL;
    ngx_gravitee_message_unref(msg);

    /* not from inside the endpoint's call: the read handler goes on */
    ngx_post_event(s->connection->read, &ngx_posted_events);
}


static void
ngx_gravitee_ws_free_data(void *data)
{
    ngx_free(data);
}


static ngx_gravitee_ws_in_t *
ngx_gravitee_ws_get_in(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_in_t   *in;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->in) {
        return ctx->in;
    }

    in = ngx_alloc(sizeof(ngx_gravitee_ws_in_t), s->connection->log);
    if (in == NULL) {
        return NULL;
    }

    ngx_memzero(in, offsetof(ngx_gravitee_ws_in_t, control));

    in->control_len = 0;
    in->glcf = s->glcf;

    ctx->in = in;

    return in;
}


/* an idle client keeps no input buffer */

static void
ngx_gravitee_ws_release_in(ngx_gravitee_ws_ctx_t *ctx)
{
    ngx_gravitee_ws_in_t  *in;

    in = ctx->in;

    if (in == NULL
        || ctx->paused
        || in->pending
        || (ctx->message && !ctx->discard)
        || (ctx->payload && ctx->opcode >= NGX_GRAVITEE_WS_CLOSE))
    {
        return;
    }

    ngx_gravitee_ws_free_in(in);
    ctx->in = NULL;
}


static void
ngx_gravitee_ws_free_in(ngx_gravitee_ws_in_t *in)
{
    if (in->pub.msg) {
        /* in flight: the endpoint must forget it before it is freed */
        ngx_gravitee_cancel(in->glcf, &in->pub);
        ngx_gravitee_message_unref(in->pub.msg);
    }

    if (in->data) {
        ngx_free(in->data);
    }

    if (in->pending) {
        ngx_free(in->pending);
    }

    ngx_free(in);
}


static void
ngx_gravitee_ws_closed(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->in) {
        ngx_gravitee_ws_free_in(ctx->in);
        ctx->in = NULL;
    }
}


/* one timer for both: the next ping, and the idle deadline */

static void
ngx_gravitee_ws_timer(ngx_gravitee_stream_t *s)
{
    ngx_msec_t               now;
    ngx_gravitee_ws_ctx_t   *ctx;
    ngx_gravitee_ws_conf_t  *wcf;

    static u_char  ping[] = { 0x80 | NGX_GRAVITEE_WS_PING, 0 };

    ctx = ngx_gravitee_ws_ctx(s);
    wcf = ctx->conf;
    now = ngx_current_msec;

    if (ctx->close_sent) {
        return;
    }

    if (wcf->idle_timeout && now - ctx->last_read >= wcf->idle_timeout) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "websocket client sent nothing for %Mms, closing",
                      now - ctx->last_read);

        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_GOING_AWAY,
                                (u_char *) "Idle timeout", 12,
                                "idle timeout", 0);
        ngx_gravitee_ws_finish(s);
        return;
    }

    if (wcf->ping_interval && (ngx_msec_int_t) (now - ctx->next_ping) >= 0) {

        /* a client with output queued is not idle: no ping piles up */

        if (s->nframes == 0
            && ngx_gravitee_stream_push_control(s, ping, sizeof(ping), 0)
               != NGX_OK)
        {
            ngx_gravitee_stream_close(s, "out of memory");
            return;
        }

        ctx->next_ping = now + wcf->ping_interval;
    }

    ngx_gravitee_ws_arm(s);
}


static void
ngx_gravitee_ws_arm(ngx_gravitee_stream_t *s)
{
    ngx_msec_t               now, timer;
    ngx_msec_int_t           t;
    ngx_gravitee_ws_ctx_t   *ctx;
    ngx_gravitee_ws_conf_t  *wcf;

    ctx = ngx_gravitee_ws_ctx(s);
    wcf = ctx->conf;
    now = ngx_current_msec;
    timer = NGX_TIMER_INFINITE;

    if (wcf->ping_interval) {
        t = ctx->next_ping - now;
        timer = t > 0 ? (ngx_msec_t) t : 0;
    }

    if (wcf->idle_timeout) {
        t = ctx->last_read + wcf->idle_timeout - now;

        if (t <= 0) {
            timer = 0;

        } else if ((ngx_msec_t) t < timer) {
            timer = t;
        }
    }

    if (timer != NGX_TIMER_INFINITE) {
        ngx_gravitee_stream_timer(s, timer);
    }
}


/* the worker is going away: the client should come back to another one */

static void
ngx_gravitee_ws_shutdown(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_TRY_AGAIN,
                            (u_char *) "Try Again Later", 15, "shutdown", 0);

    ngx_gravitee_ws_finish(s);
}


/* the stream logged the overflow; the client hears of it after its queue */

static void
ngx_gravitee_ws_overflow(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_POLICY,
                            (u_char *) "Slow client: too many messages "
                            "queued", 37, "slow client", 0);

    ngx_gravitee_ws_finish(s);
}


/*
 * The token the client was let in with has expired: 1008 (policy
 * violation), as a credential must not outlive its validity.
 */

static void
ngx_gravitee_ws_expired(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_POLICY,
                            (u_char *) "Token expired", 13,
                            "credential expired", 0);

    ngx_gravitee_ws_finish(s);
}


/* one endpoint message, one frame: the payload is the shared message */

static void
ngx_gravitee_ws_message(ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg)
{
    u_char                  head[10];
    size_t                  head_len;
    ngx_int_t               rc;
    ngx_uint_t               opcode;
    ngx_gravitee_stream_t   *s;
    ngx_gravitee_ws_ctx_t   *ctx;
    ngx_gravitee_message_t  *holder;

    s = ngx_gravitee_ws_stream(sub);
    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->close_sent || s->finishing) {
        return;
    }

    if (msg->error) {
        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "websocket on \"%V\": endpoint \"%V\" failed: %V",
                      &s->glcf->name, &s->glcf->endpoint->name,
                      &msg->content);

        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_SERVER_ERROR,
                                msg->content.data, msg->content.len,
                                "endpoint failed", 1);
        ngx_gravitee_ws_defer_finish(s);
        return;
    }

    switch (ctx->conf->frame_type) {

    case NGX_GRAVITEE_WS_FRAME_TEXT:
        opcode = NGX_GRAVITEE_WS_TEXT;
        break;

    case NGX_GRAVITEE_WS_FRAME_BINARY:
        opcode = NGX_GRAVITEE_WS_BINARY;
        break;

    default: /* NGX_GRAVITEE_WS_FRAME_AUTO */
        /* checked once per message, not once per client */
        opcode = ngx_gravitee_message_is_utf8(msg)
                 ? NGX_GRAVITEE_WS_TEXT : NGX_GRAVITEE_WS_BINARY;
    }

    holder = ngx_gravitee_ws_frame(msg, opcode, s->connection->log);

    if (holder) {
        rc = ngx_gravitee_stream_push(s, holder, holder->encoded.data,
                                      holder->encoded.len, NULL, 0);

    } else {
        head_len = ngx_gravitee_ws_head(head, opcode, msg->content.len);

        rc = ngx_gravitee_stream_push(s, msg, msg->content.data,
                                      msg->content.len, head, head_len);
    }

    if (rc == NGX_ERROR && !s->finishing) {
        ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_SERVER_ERROR,
                                (u_char *) "Server error", 12,
                                "out of memory", 0);
        ngx_gravitee_ws_defer_finish(s);
    }

    /* NGX_DECLINED: the queue is full, the stream applies the policy */
}


/* the endpoint's flow is over, as the reference ends it: 1000 "Bye" */

static void
ngx_gravitee_ws_end(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_stream_t  *s;
    ngx_gravitee_ws_ctx_t  *ctx;

    s = ngx_gravitee_ws_stream(sub);
    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->close_sent || s->finishing) {
        return;
    }

    ngx_gravitee_ws_goodbye(s, NGX_GRAVITEE_WS_NORMAL, (u_char *) "Bye", 3,
                            "endpoint ended", 1);
    ngx_gravitee_ws_defer_finish(s);
}


static ngx_int_t
ngx_gravitee_ws_fail(ngx_gravitee_stream_t *s, ngx_uint_t code,
    const char *text)
{
    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "websocket client broke the protocol: %s, closing with %ui",
                  text, code);

    ngx_gravitee_ws_goodbye(s, code, (u_char *) text, ngx_strlen(text), text,
                            1);

    return NGX_DONE;
}


/*
 * The close frame, last of all frames: nothing is sent after it.  The
 * reason is cut to what a control frame holds, at a character boundary.
 * With "linger", the stream waits a little for the client's own close
 * before it closes the connection, so that the close frame is not lost to
 * a reset.
 */

static void
ngx_gravitee_ws_goodbye(ngx_gravitee_stream_t *s, ngx_uint_t code,
    u_char *reason, size_t len, const char *why, ngx_uint_t linger)
{
    u_char                  frame[2 + 2 + NGX_GRAVITEE_WS_REASON_MAX];
    size_t                  n;
    ngx_gravitee_ws_ctx_t  *ctx;

    ctx = ngx_gravitee_ws_ctx(s);

    if (ctx->close_sent) {
        return;
    }

    ctx->close_sent = 1;
    ctx->reason = why;
    s->linger = linger ? 1 : 0;

    frame[0] = 0x80 | NGX_GRAVITEE_WS_CLOSE;
    n = 2;

    if (code) {
        len = ngx_gravitee_utf8_valid(reason,
                                   ngx_min(len, NGX_GRAVITEE_WS_REASON_MAX));

        frame[2] = (u_char) (code >> 8);
        frame[3] = (u_char) code;

        if (len) {
            ngx_memcpy(frame + 4, reason, len);
        }

        n += 2 + len;
    }

    frame[1] = (u_char) (n - 2);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->connection->log, 0,
                   "websocket close %ui: %s", code, why);

    (void) ngx_gravitee_stream_push_control(s, frame, n, 1);
}


/*
 * The read timer was made cancelable for the pings; the stream's linger,
 * on the same timer, must not be: a worker that exits under a lingering
 * stream would leave its socket open ("open socket left") instead of
 * waiting those two seconds at most.
 */

static void
ngx_gravitee_ws_finish(ngx_gravitee_stream_t *s)
{
    s->connection->read->cancelable = 0;

    ngx_gravitee_stream_finish(s, ngx_gravitee_ws_ctx(s)->reason);
}


/* inside a subscription handler: finish from the read handler, posted */

static void
ngx_gravitee_ws_defer_finish(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_ws_ctx(s)->finish = 1;

    ngx_post_event(s->connection->read, &ngx_posted_events);
}


/*
 * A server frame is the same for every client (it is not masked): a small
 * message is framed once, cached with it, and the holder returned (not
 * referenced); NULL: send it as header and payload.
 */

static ngx_gravitee_message_t *
ngx_gravitee_ws_frame(ngx_gravitee_message_t *msg, ngx_uint_t opcode,
    ngx_log_t *log)
{
    u_char                  *p;
    size_t                   head_len;
    ngx_str_t                frame;
    const void              *key;
    ngx_gravitee_message_t  *holder;

    static u_char  keys[2];

    if (msg->content.len > NGX_GRAVITEE_WS_FRAME_COPY_MAX) {
        return NULL;
    }

    key = (opcode == NGX_GRAVITEE_WS_TEXT) ? &keys[0] : &keys[1];

    holder = ngx_gravitee_message_encoding(msg, key);
    if (holder) {
        return holder;
    }

    frame.data = ngx_gravitee_message_alloc(10 + msg->content.len, log);
    if (frame.data == NULL) {
        return NULL;
    }

    head_len = ngx_gravitee_ws_head(frame.data, opcode, msg->content.len);
    p = frame.data + head_len;

    if (msg->content.len) {
        p = ngx_cpymem(p, msg->content.data, msg->content.len);
    }
    frame.len = p - frame.data;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "websocket frame of message %p id:\"%V\" made, %uz bytes",
                   msg, &msg->id, frame.len);

    return ngx_gravitee_message_add_encoding(msg, key, &frame, log);
}


static size_t
ngx_gravitee_ws_head(u_char *head, ngx_uint_t opcode, uint64_t len)
{
    ngx_uint_t  i;

    head[0] = (u_char) (0x80 | opcode);

    if (len < 126) {
        head[1] = (u_char) len;
        return 2;
    }

    if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (u_char) (len >> 8);
        head[3] = (u_char) len;
        return 4;
    }

    head[1] = 127;

    for (i = 0; i < 8; i++) {
        head[9 - i] = (u_char) (len >> (8 * i));
    }

    return 10;
}


/* codes a peer may send (RFC 6455 7.4, and the IANA registry) */

static ngx_uint_t
ngx_gravitee_ws_close_code_valid(ngx_uint_t code)
{
    if (code >= 1000 && code <= 1003) {
        return 1;
    }

    if (code >= 1007 && code <= 1014) {
        return 1;
    }

    return code >= 3000 && code <= 4999;
}
