
/*
 * ngx_gravitee_module: the HTTP GET entrypoint.
 *
 * A GET collects the endpoint's messages for at most messages_limit_duration
 * or messages_limit_count (lowered by the "limit" argument), whichever comes
 * first, and answers them in one JSON, XML or text document chosen by the
 * Accept header.  "cursor" resumes after a message id.  The wire format is
 * the reference's (shared/reference/gravitee.md, section 2.1).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_worker.h"


typedef enum {
    NGX_GRAVITEE_GET_JSON = 0,
    NGX_GRAVITEE_GET_XML,
    NGX_GRAVITEE_GET_TEXT
} ngx_gravitee_get_format_e;


typedef struct {
    ngx_uint_t                  limit_count;
    ngx_msec_t                  limit_duration;
    ngx_flag_t                  headers_in_payload;
    ngx_flag_t                  metadata_in_payload;
} ngx_gravitee_get_conf_t;


/*
 * The response under construction: a chain of buffers from r->pool, each
 * twice the size of the one before up to NGX_GRAVITEE_OUT_MAX, so that a
 * small batch takes one small buffer and a large one few allocations.
 * Those of NGX_GRAVITEE_OUT_MAX are the worker's kept buffers, given back
 * when the request's pool goes (ngx_gravitee_out_release).
 */

#define NGX_GRAVITEE_OUT_MIN  4096
#define NGX_GRAVITEE_OUT_MAX  NGX_GRAVITEE_BUFFER_SIZE

typedef struct {
    ngx_pool_t                 *pool;
    ngx_chain_t                *first;
    ngx_chain_t               **last;
    ngx_buf_t                  *buf;
    size_t                      size;        /* of the next buffer */
} ngx_gravitee_out_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_gravitee_loc_conf_t    *glcf;
    ngx_gravitee_get_conf_t    *conf;

    ngx_gravitee_sub_t          sub;

    ngx_uint_t                  format;
    ngx_uint_t                  limit;
    ngx_str_t                   limit_arg;   /* as given, for pagination */

    ngx_gravitee_out_t          out;         /* the items, rendered as
                                                they come */
    ngx_uint_t                  nitems;
    ngx_gravitee_message_t     *error;
    ngx_str_t                   cursor;      /* the position after the last
                                                item: nextCursor */
    size_t                      cursor_size;

    ngx_event_t                 timer;       /* messages_limit_duration */
    ngx_event_t                 finish;      /* posted: answer the batch */
    ngx_gravitee_hook_t         shutdown;    /* the worker stops: answer */

    unsigned                    subscribed:1;
    unsigned                    done:1;
    unsigned                    down:1;      /* the broker is unreachable */
    unsigned                    unplaced:1;  /* nothing collected, and the
                                                endpoint cannot say yet
                                                where the client stands */
    unsigned                    failed:1;    /* an item could not be
                                                rendered: 500 */
} ngx_gravitee_get_ctx_t;


typedef ngx_int_t (*ngx_gravitee_out_pt)(ngx_gravitee_out_t *out,
    ngx_str_t *s);


/*
 * How a format writes headers and metadata: the three differ in their
 * punctuation and escaping only, so one walk serves them all.  Headers
 * group their values by name ({"h":["v1","v2"]}, <h>v1,v2</h>, h=[v1, v2]);
 * the metadata start with sourceTimestamp.  XML closes a name with the
 * name again (close_name).
 */

typedef struct {
    const char                 *headers;      /* opens the headers */
    const char                 *group_sep;    /* between two names */
    const char                 *group;        /* before a name */
    const char                 *values;       /* after it */
    const char                 *value;        /* around a value */
    const char                 *value_sep;
    const char                 *group_end;    /* after the values */
    const char                 *headers_end;

    const char                 *metadata;     /* printf, sourceTimestamp */
    const char                 *entry;        /* before a key */
    const char                 *entry_value;  /* between key and value */
    const char                 *entry_end;    /* after the value */
    const char                 *metadata_end;

    ngx_gravitee_out_pt         name;         /* escapes a name or key */
    ngx_gravitee_out_pt         text;         /* escapes a value */
    unsigned                    close_name:1;
} ngx_gravitee_get_syntax_t;


static ngx_int_t ngx_gravitee_get_match(ngx_http_request_t *r);
static void *ngx_gravitee_get_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_get_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_get_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);
static ngx_int_t ngx_gravitee_get_format(ngx_http_request_t *r,
    ngx_uint_t *format, ngx_str_t *error);
static void ngx_gravitee_get_accept_line(u_char *p, u_char *last,
    ngx_int_t *best, ngx_int_t *best_quality);
static ngx_int_t ngx_gravitee_get_accept_range(u_char *p, u_char *last,
    ngx_str_t *range);
static u_char *ngx_gravitee_get_param_end(u_char *p, u_char *last);
static ngx_int_t ngx_gravitee_get_qvalue(u_char *p, u_char *last);
static ngx_int_t ngx_gravitee_get_args(ngx_http_request_t *r,
    ngx_gravitee_get_ctx_t *ctx, ngx_str_t *error);
static void ngx_gravitee_get_message(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg);
static void ngx_gravitee_get_end(ngx_gravitee_sub_t *sub);
static void ngx_gravitee_get_empty_cursor(ngx_gravitee_get_ctx_t *ctx);
static ngx_uint_t ngx_gravitee_get_room(ngx_gravitee_sub_t *sub);
static void ngx_gravitee_get_state(ngx_gravitee_sub_t *sub, ngx_uint_t state);
static ngx_int_t ngx_gravitee_get_keep_cursor(ngx_gravitee_get_ctx_t *ctx,
    ngx_str_t *position);
static ngx_uint_t ngx_gravitee_get_error_unavailable(
    ngx_gravitee_message_t *error);
static ngx_int_t ngx_gravitee_get_unreachable(ngx_gravitee_get_ctx_t *ctx);
static ngx_int_t ngx_gravitee_get_not_ready(ngx_gravitee_get_ctx_t *ctx);
static void ngx_gravitee_get_timeout(ngx_event_t *ev);
static void ngx_gravitee_get_shutdown(void *data);
static void ngx_gravitee_get_finish(ngx_event_t *ev);
static void ngx_gravitee_get_stop(ngx_gravitee_get_ctx_t *ctx);
static void ngx_gravitee_get_cleanup(void *data);
static ngx_int_t ngx_gravitee_get_send(ngx_gravitee_get_ctx_t *ctx);
static ngx_int_t ngx_gravitee_get_item(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_message_t *msg);

static ngx_int_t ngx_gravitee_get_headers(ngx_gravitee_out_t *out,
    ngx_gravitee_message_t *msg, ngx_gravitee_get_syntax_t *syn);
static ngx_int_t ngx_gravitee_get_metadata(ngx_gravitee_out_t *out,
    ngx_gravitee_message_t *msg, ngx_gravitee_get_syntax_t *syn);
static ngx_int_t ngx_gravitee_get_name(ngx_gravitee_out_t *out,
    ngx_str_t *name, ngx_gravitee_get_syntax_t *syn, const char *before,
    const char *after);
static ngx_int_t ngx_gravitee_json_batch(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out);
static ngx_int_t ngx_gravitee_json_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all);
static ngx_int_t ngx_gravitee_xml_batch(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out);
static ngx_int_t ngx_gravitee_xml_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all);
static ngx_int_t ngx_gravitee_text_batch(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out);
static ngx_int_t ngx_gravitee_text_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all);

static void ngx_gravitee_out_init(ngx_gravitee_out_t *out, ngx_pool_t *pool);
static u_char *ngx_gravitee_out_reserve(ngx_gravitee_out_t *out, size_t n);
static ngx_buf_t *ngx_gravitee_out_kept(ngx_gravitee_out_t *out);
static void ngx_gravitee_out_release(ngx_gravitee_out_t *out);
static ngx_int_t ngx_gravitee_out_str(ngx_gravitee_out_t *out, u_char *data,
    size_t len);
static ngx_int_t ngx_gravitee_out_printf(ngx_gravitee_out_t *out,
    size_t max, const char *fmt, ...);
static ngx_inline ngx_uint_t ngx_gravitee_json_plain8(u_char *p);
static ngx_int_t ngx_gravitee_out_json(ngx_gravitee_out_t *out,
    ngx_str_t *s);
static ngx_int_t ngx_gravitee_out_xml_text(ngx_gravitee_out_t *out,
    ngx_str_t *s);
static ngx_int_t ngx_gravitee_out_xml_cdata(ngx_gravitee_out_t *out,
    ngx_str_t *s);
static ngx_int_t ngx_gravitee_out_xml_name(ngx_gravitee_out_t *out,
    ngx_str_t *s);
static ngx_int_t ngx_gravitee_out_raw(ngx_gravitee_out_t *out,
    ngx_str_t *s);
static size_t ngx_gravitee_utf8_len(u_char *p, u_char *last);

#define ngx_gravitee_out_lit(out, s)                                          \
    ngx_gravitee_out_str(out, (u_char *) s, sizeof(s) - 1)


static ngx_gravitee_param_t  ngx_gravitee_get_params[] = {

    { ngx_string("messages_limit_count"),
      ngx_gravitee_param_num,
      offsetof(ngx_gravitee_get_conf_t, limit_count),
      NULL },

    { ngx_string("messages_limit_duration"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_get_conf_t, limit_duration),
      NULL },

    { ngx_string("headers_in_payload"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_get_conf_t, headers_in_payload),
      NULL },

    { ngx_string("metadata_in_payload"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_get_conf_t, metadata_in_payload),
      NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_http_get_entrypoint = {
    ngx_string("http-get"),
    ngx_gravitee_get_params,
    1,
    ngx_gravitee_get_match,
    ngx_gravitee_get_create_conf,
    ngx_gravitee_get_init_conf,
    ngx_gravitee_get_handler
};


static ngx_gravitee_sub_handler_t  ngx_gravitee_get_sub_handler = {
    ngx_gravitee_get_message,
    ngx_gravitee_get_end,
    ngx_gravitee_get_state,
    ngx_gravitee_get_room,
    0,
    1,                                /* nextCursor only: position_at_end */
    1                                 /* writes an item then: borrows */
};


static ngx_gravitee_get_syntax_t  ngx_gravitee_json_syntax = {
    ",\"headers\":{", ",", "\"", "\":[", "\"", ",", "]", "}",
    ",\"metadata\":{\"sourceTimestamp\":%L", ",\"", "\":\"", "\"", "}",
    ngx_gravitee_out_json, ngx_gravitee_out_json, 0
};


static ngx_gravitee_get_syntax_t  ngx_gravitee_xml_syntax = {
    "<headers>", "", "<", ">", "", ",", "</", "</headers>",
    "<metadata><sourceTimestamp>%L</sourceTimestamp>", "<", ">", "</",
    "</metadata>",
    ngx_gravitee_out_xml_name, ngx_gravitee_out_xml_text, 1
};


static ngx_gravitee_get_syntax_t  ngx_gravitee_text_syntax = {
    "headers: {", ", ", "", "=[", "", ", ", "]", "}\n",
    "metadata: {sourceTimestamp=%L", ", ", "=", "", "}\n",
    ngx_gravitee_out_raw, ngx_gravitee_out_raw, 0
};


static ngx_str_t  ngx_gravitee_get_types[] = {
    ngx_string("application/json"),
    ngx_string("application/xml"),
    ngx_string("text/plain")
};


static ngx_int_t
ngx_gravitee_get_match(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_GET;
}


static void *
ngx_gravitee_get_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_get_conf_t  *gcf;

    gcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_get_conf_t));
    if (gcf == NULL) {
        return NULL;
    }

    gcf->limit_count = NGX_CONF_UNSET_UINT;
    gcf->limit_duration = NGX_CONF_UNSET_MSEC;
    gcf->headers_in_payload = NGX_CONF_UNSET;
    gcf->metadata_in_payload = NGX_CONF_UNSET;

    return gcf;
}


static char *
ngx_gravitee_get_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_get_conf_t *gcf = conf;

    ngx_conf_init_uint_value(gcf->limit_count, 500);
    ngx_conf_init_msec_value(gcf->limit_duration, 5000);
    ngx_conf_init_value(gcf->headers_in_payload, 0);
    ngx_conf_init_value(gcf->metadata_in_payload, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_get_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    ngx_int_t                rc;
    ngx_str_t                error;
    ngx_uint_t               format;
    ngx_pool_cleanup_t      *cln;
    ngx_gravitee_get_ctx_t  *ctx;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    format = NGX_GRAVITEE_GET_TEXT;

    rc = ngx_gravitee_get_format(r, &format, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_gravitee_get_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->glcf = glcf;
    ctx->conf = conf;
    ctx->format = format;
    ctx->limit = ctx->conf->limit_count;

    rc = ngx_gravitee_get_args(r, ctx, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_gravitee_out_init(&ctx->out, r->pool);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_gravitee_get_cleanup;
    cln->data = ctx;

    ctx->timer.handler = ngx_gravitee_get_timeout;
    ctx->timer.data = ctx;
    ctx->timer.log = r->connection->log;

    ctx->finish.handler = ngx_gravitee_get_finish;
    ctx->finish.data = ctx;
    ctx->finish.log = r->connection->log;

    ctx->sub.handler = &ngx_gravitee_get_sub_handler;
    ctx->sub.data = ctx;
    ctx->sub.log = r->connection->log;

    if (!ctx->conf->headers_in_payload) {
        ctx->sub.skips |= NGX_GRAVITEE_SKIP_HEADERS;
    }

    if (!ctx->conf->metadata_in_payload) {
        ctx->sub.skips |= NGX_GRAVITEE_SKIP_METADATA;
    }

    rc = ngx_gravitee_bind(r, glcf, NGX_GRAVITEE_BIND_SUBSCRIBE,
                           &ctx->sub.binding, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_gravitee_stopping) {
        /* the worker drains: what it has (nothing), and a new connection */
        r->keepalive = 0;
        ctx->limit = 0;
    }

    if (ctx->limit == 0) {
        /* nothing is wanted: answer the empty batch at once */
        ctx->done = 1;
        return ngx_gravitee_get_send(ctx);
    }

    rc = ngx_gravitee_subscribe(glcf, &ctx->sub);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST,
                                       &ctx->sub.error);
    }

    if (rc != NGX_OK) {
        static ngx_str_t  unavailable = ngx_string("Endpoint unavailable");

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "http-get on \"%V\": subscribing to endpoint \"%V\" "
                      "failed", &glcf->name, &glcf->endpoint->name);

        return ngx_gravitee_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       &unavailable);
    }

    ctx->subscribed = 1;

    if (ctx->conf->limit_duration) {
        ngx_add_timer(&ctx->timer, ctx->conf->limit_duration);
    }

    /*
     * a reload or quit does not wait for the window, which may have no
     * end (messages_limit_duration=0): the batch is answered then
     */
    ctx->shutdown.handler = ngx_gravitee_get_shutdown;
    ctx->shutdown.data = ctx;
    ngx_gravitee_on_shutdown(&ctx->shutdown);

    /* a client that leaves mid-window ends the request, and the cleanup */
    ngx_gravitee_watch_client(r);

    r->main->count++;

    return NGX_DONE;
}


/*
 * Every Accept line counts.  The highest q-value wins among the three types
 * we speak, the client's order breaking ties; "*" stands for JSON; no Accept
 * means text, as in the reference.
 */

static ngx_int_t
ngx_gravitee_get_format(ngx_http_request_t *r, ngx_uint_t *format,
    ngx_str_t *msg)
{
    u_char                      *p;
    size_t                       len;
    ngx_int_t                    best, best_quality;
    ngx_uint_t                   lines;
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    best = -1;
    best_quality = 0;
    lines = 0;
    len = 0;

    while ((h = ngx_gravitee_header_next(r, &it, "Accept")) != NULL) {
        lines++;
        len += h->value.len + 2;

        ngx_gravitee_get_accept_line(h->value.data,
                                     h->value.data + h->value.len, &best,
                                     &best_quality);
    }

    if (lines == 0 || (best == -1 && len == 2 * lines)) {
        /* no Accept, or only empty ones */
        *format = NGX_GRAVITEE_GET_TEXT;
        return NGX_OK;
    }

    if (best >= 0) {
        *format = best;
        return NGX_OK;
    }

    /* "Unsupported accept header: [a, b]", the lines as Java lists them */

    msg->data = ngx_pnalloc(r->pool,
                            sizeof("Unsupported accept header: []") + len);
    if (msg->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(msg->data, "Unsupported accept header: [",
                   sizeof("Unsupported accept header: [") - 1);

    ngx_memzero(&it, sizeof(ngx_gravitee_header_iter_t));
    lines = 0;

    while ((h = ngx_gravitee_header_next(r, &it, "Accept")) != NULL) {
        if (lines++) {
            *p++ = ','; *p++ = ' ';
        }

        p = ngx_cpymem(p, h->value.data, h->value.len);
    }

    *p++ = ']';
    msg->len = p - msg->data;

    return NGX_DECLINED;
}


/*
 * One Accept line: its elements, split at commas outside quoted strings.
 * A type we speak with a higher q-value than *best_quality becomes *best.
 */

static void
ngx_gravitee_get_accept_line(u_char *p, u_char *last, ngx_int_t *best,
    ngx_int_t *best_quality)
{
    u_char      *start;
    ngx_int_t    quality;
    ngx_str_t    range;
    ngx_uint_t   t, quoted;

    while (p < last) {
        start = p;
        quoted = 0;

        for ( /* void */ ; p < last; p++) {
            if (quoted && *p == '\\' && p + 1 < last) {
                p++;

            } else if (*p == '"') {
                quoted = !quoted;

            } else if (*p == ',' && !quoted) {
                break;
            }
        }

        quality = ngx_gravitee_get_accept_range(start, p, &range);

        if (p < last) {
            p++;
        }

        if (quality <= *best_quality || range.len == 0) {
            continue;
        }

        for (t = 0; t < 3; t++) {
            if (range.len == ngx_gravitee_get_types[t].len
                && ngx_strncasecmp(range.data, ngx_gravitee_get_types[t].data,
                                   range.len) == 0)
            {
                break;
            }
        }

        if (t == 3 && range.len == 3 && ngx_strncmp(range.data, "*/*", 3) == 0)
        {
            t = NGX_GRAVITEE_GET_JSON;
        }

        if (t < 3) {
            *best = t;
            *best_quality = quality;
        }
    }
}


/*
 * An element, "type/subtype *( OWS ";" OWS name=value )": its media range,
 * and its weight from 0 to 1000.  Parameters other than q are read past,
 * also after q (accept extensions); a q that is not a qvalue makes the
 * element unacceptable, as q=0 does.
 */

static ngx_int_t
ngx_gravitee_get_accept_range(u_char *p, u_char *last, ngx_str_t *range)
{
    u_char     *name, *value, *end;
    ngx_int_t   quality;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    range->data = p;

    while (p < last && *p != ';') {
        p++;
    }

    for (end = p; end > range->data && (end[-1] == ' ' || end[-1] == '\t');
         end--)
    {
        /* void */
    }

    range->len = end - range->data;
    quality = 1000;

    while (p < last) {
        /* at a ';' */

        for (p++; p < last && (*p == ' ' || *p == '\t'); p++) {
            /* void */
        }

        name = p;

        while (p < last && *p != '=' && *p != ';') {
            p++;
        }

        if (p == last || *p == ';') {
            continue;
        }

        end = p;
        value = ++p;

        p = ngx_gravitee_get_param_end(p, last);

        if (end - name == 1 && (*name == 'q' || *name == 'Q')) {
            quality = ngx_gravitee_get_qvalue(value, p);
        }
    }

    return quality;
}


/* a parameter's value ends at a ';' outside a quoted string */

static u_char *
ngx_gravitee_get_param_end(u_char *p, u_char *last)
{
    ngx_uint_t  quoted;

    for (quoted = 0; p < last; p++) {
        if (quoted && *p == '\\' && p + 1 < last) {
            p++;

        } else if (*p == '"') {
            quoted = !quoted;

        } else if (*p == ';' && !quoted) {
            break;
        }
    }

    return p;
}


/* RFC 9110, 12.4.2: "0" [ "." 0*3DIGIT ] or "1" [ "." 0*3("0") ] */

static ngx_int_t
ngx_gravitee_get_qvalue(u_char *p, u_char *last)
{
    ngx_int_t   q, unit;
    ngx_uint_t  digits;

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last || (*p != '0' && *p != '1')) {
        return -1;
    }

    q = (*p++ - '0') * 1000;

    if (p == last) {
        return q;
    }

    if (*p++ != '.') {
        return -1;
    }

    unit = 100;

    for (digits = 0; p < last; p++, digits++) {
        if (digits == 3 || *p < '0' || *p > '9') {
            return -1;
        }

        q += (*p - '0') * unit;
        unit /= 10;
    }

    return (q > 1000) ? -1 : q;
}


static ngx_int_t
ngx_gravitee_get_args(ngx_http_request_t *r, ngx_gravitee_get_ctx_t *ctx,
    ngx_str_t *msg)
{
    ngx_int_t   n;
    ngx_str_t   value;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n == NGX_ERROR) {
            msg->len = sizeof("Invalid limit \"\": a whole number of "
                              "messages is expected") - 1 + value.len;
            msg->data = ngx_pnalloc(r->pool, msg->len);
            if (msg->data == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(msg->data, "Invalid limit \"%V\": a whole number of "
                        "messages is expected", &value);

            return NGX_DECLINED;
        }

        ctx->limit = ngx_min(ctx->limit, (ngx_uint_t) n);
        ctx->limit_arg = value;
    }

    return ngx_gravitee_arg_position(r, ctx->glcf, &ctx->sub.resume, msg);
}


/*
 * An item is rendered when it comes, not kept until the batch ends: the
 * message (and the broker's record it may hold) goes back at once, while
 * it is still in the cache, and a batch of thousands keeps their text
 * only.
 */

static void
ngx_gravitee_get_message(ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg)
{
    ngx_gravitee_get_ctx_t *ctx = sub->data;

    if (ctx->done) {
        return;
    }

    if (msg->error) {
        ctx->error = ngx_gravitee_message_ref(msg);
        ngx_gravitee_get_end(sub);
        return;
    }

    if (ngx_gravitee_get_item(ctx, msg) != NGX_OK) {
        ctx->failed = 1;
        ngx_gravitee_get_end(sub);
        return;
    }

    ctx->nitems++;

    if (sub->position.len
        && ngx_gravitee_get_keep_cursor(ctx, &sub->position) != NGX_OK)
    {
        ngx_gravitee_get_end(sub);
        return;
    }

    if (ctx->nitems >= ctx->limit) {
        ngx_gravitee_get_end(sub);
    }
}


static void
ngx_gravitee_get_end(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_get_ctx_t *ctx = sub->data;

    if (ctx->done) {
        return;
    }

    ctx->done = 1;

    /*
     * a batch without items says where the client stands now: until the
     * posted finish runs, the endpoint may hand over more (not taken), and
     * the cursor must not pass them
     */
    ngx_gravitee_get_empty_cursor(ctx);

    ngx_post_event(&ctx->finish, &ngx_posted_events);
}


static void
ngx_gravitee_get_empty_cursor(ngx_gravitee_get_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->cursor.len || !ctx->subscribed
        || ctx->glcf->endpoint->position == NULL)
    {
        return;
    }

    rc = ctx->glcf->endpoint->position(ctx->glcf->endpoint_conf, &ctx->sub,
                                       ctx->request->pool, &ctx->cursor);

    if (rc != NGX_OK) {
        ngx_str_null(&ctx->cursor);
    }

    /*
     * an endpoint with positions that cannot tell one yet (Kafka before
     * it knows where the partitions end): an empty batch without a cursor
     * would send the poller back to "latest", past what is produced
     * meanwhile
     */

    if (rc == NGX_DECLINED && ctx->nitems == 0) {
        ctx->unplaced = 1;
    }
}


/*
 * What the batch still takes: an endpoint that can wait hands over no
 * more, so that where the batch ends is where the endpoint stopped, and
 * the next page, which starts there, goes on from it.
 */

static ngx_uint_t
ngx_gravitee_get_room(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_get_ctx_t *ctx = sub->data;

    if (ctx->done || ctx->nitems >= ctx->limit) {
        return 0;
    }

    return ctx->limit - ctx->nitems;
}


/* the position may be the client's own, valid for this call: copied */

static ngx_int_t
ngx_gravitee_get_keep_cursor(ngx_gravitee_get_ctx_t *ctx,
    ngx_str_t *position)
{
    if (position->len > ctx->cursor_size) {
        ctx->cursor.data = ngx_pnalloc(ctx->request->pool, position->len);
        if (ctx->cursor.data == NULL) {
            return NGX_ERROR;
        }

        ctx->cursor_size = position->len;
    }

    ngx_memcpy(ctx->cursor.data, position->data, position->len);
    ctx->cursor.len = position->len;

    return NGX_OK;
}


/* a broker that cannot be reached shapes the answer, not the window */

static void
ngx_gravitee_get_state(ngx_gravitee_sub_t *sub, ngx_uint_t state)
{
    ngx_gravitee_get_ctx_t *ctx = sub->data;

    ctx->down = (state == NGX_GRAVITEE_STATE_DOWN);
}


static void
ngx_gravitee_get_timeout(ngx_event_t *ev)
{
    ngx_gravitee_get_ctx_t *ctx = ev->data;

    ngx_gravitee_get_end(&ctx->sub);
}


/*
 * As the reference's drain: what was collected, and Connection: close.
 * Answered now, not from a posted event: the worker checks whether it may
 * exit before it runs posted events, and an unsent answer holds it with
 * send_timeout, as any response does.
 */

static void
ngx_gravitee_get_shutdown(void *data)
{
    ngx_gravitee_get_ctx_t *ctx = data;

    ctx->request->keepalive = 0;
    ctx->done = 1;

    ngx_gravitee_get_finish(&ctx->finish);
}


static void
ngx_gravitee_get_finish(ngx_event_t *ev)
{
    ngx_gravitee_get_ctx_t *ctx = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    /* a batch without items still says where the client stands */

    ngx_gravitee_get_empty_cursor(ctx);

    ngx_gravitee_get_stop(ctx);

    ngx_http_finalize_request(r, ngx_gravitee_get_send(ctx));
    ngx_http_run_posted_requests(c);
}


static void
ngx_gravitee_get_stop(ngx_gravitee_get_ctx_t *ctx)
{
    if (ctx->subscribed) {
        ctx->subscribed = 0;
        ngx_gravitee_unsubscribe(ctx->glcf, &ctx->sub);
    }

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    if (ctx->finish.posted) {
        ngx_delete_posted_event(&ctx->finish);
    }

    ngx_gravitee_hook_remove(&ctx->shutdown);
}


static void
ngx_gravitee_get_cleanup(void *data)
{
    ngx_gravitee_get_ctx_t *ctx = data;

    if (ctx->subscribed) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "http-get on \"%V\": client left, %ui messages "
                       "not answered", &ctx->glcf->name, ctx->nitems);
    }

    ngx_gravitee_get_stop(ctx);

    if (ctx->error) {
        ngx_gravitee_message_unref(ctx->error);
        ctx->error = NULL;
    }

    ngx_gravitee_unbind(ctx->glcf, ctx->sub.binding);
    ctx->sub.binding = NULL;

    ngx_gravitee_out_release(&ctx->out);
}


/*
 * The broker could not be reached at the end of the window: nothing
 * collected is a 503 (with Retry-After), as a POST's would be, answered
 * here; what was collected is answered with the reference's error after
 * it (NGX_DECLINED: the batch goes on).
 */

/* an endpoint failure of statusCode 503: the broker cannot be used now */

static ngx_uint_t
ngx_gravitee_get_error_unavailable(ngx_gravitee_message_t *error)
{
    ngx_str_t  *status;

    static ngx_str_t  name = ngx_string("statusCode");

    status = ngx_gravitee_message_metadata(error, &name);

    return status && status->len == 3
           && ngx_strncmp(status->data, "503", 3) == 0;
}


static ngx_int_t
ngx_gravitee_get_unreachable(ngx_gravitee_get_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    static ngx_str_t  text = ngx_string("Endpoint connection closed");
    static ngx_str_t  key = ngx_string("FAILURE_ENDPOINT_CONNECTION_CLOSED");

    r = ctx->request;

    if (ctx->error && ctx->nitems == 0) {
        /* the endpoint said why it could not connect: the 503 says it */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "http-get on \"%V\": endpoint \"%V\" unavailable: %V",
                      &ctx->glcf->name, &ctx->glcf->endpoint->name,
                      &ctx->error->content);

        if (ngx_gravitee_retry_after(r, 5) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_gravitee_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       &ctx->error->content);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "http-get on \"%V\": endpoint \"%V\" unreachable at the "
                  "end of the window, %ui messages collected",
                  &ctx->glcf->name, &ctx->glcf->endpoint->name,
                  ctx->nitems);

    if (ctx->nitems) {
        ctx->error = ngx_gravitee_message_error(r->connection->log, &text,
                                                &key,
                                                NGX_HTTP_SERVICE_UNAVAILABLE);
        return ctx->error ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_gravitee_retry_after(r, 5) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_gravitee_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, &text);
}


/*
 * The broker answers, but not within the window: the endpoint does not
 * know yet where a client without a position starts.  The poller asks
 * again shortly, by when it has (the source lingers after this batch).
 */

static ngx_int_t
ngx_gravitee_get_not_ready(ngx_gravitee_get_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    static ngx_str_t  text = ngx_string("Endpoint not ready, retry");

    r = ctx->request;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "http-get on \"%V\": endpoint \"%V\" could not tell where "
                  "the client stands by the end of the window",
                  &ctx->glcf->name, &ctx->glcf->endpoint->name);

    if (ngx_gravitee_retry_after(r, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_gravitee_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, &text);
}


static ngx_int_t
ngx_gravitee_get_send(ngx_gravitee_get_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;
    ngx_gravitee_out_t  *out;

    r = ctx->request;

    if ((ctx->down && ctx->error == NULL)
        || (ctx->error && ctx->nitems == 0
            && ngx_gravitee_get_error_unavailable(ctx->error)))
    {
        rc = ngx_gravitee_get_unreachable(ctx);

        if (rc != NGX_DECLINED) {
            /* the 503, answered */
            return rc;
        }
    }

    if (ctx->unplaced && ctx->error == NULL) {
        return ngx_gravitee_get_not_ready(ctx);
    }

    if (ctx->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->cursor.len && ctx->glcf->endpoint->cursor
        && ctx->glcf->endpoint->cursor(ctx->glcf->endpoint_conf, &ctx->cursor,
                                       r->pool, &ctx->cursor)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out = &ctx->out;

    switch (ctx->format) {

    case NGX_GRAVITEE_GET_JSON:
        rc = ngx_gravitee_json_batch(ctx, out);
        break;

    case NGX_GRAVITEE_GET_XML:
        rc = ngx_gravitee_xml_batch(ctx, out);
        break;

    default: /* NGX_GRAVITEE_GET_TEXT */
        rc = ngx_gravitee_text_batch(ctx, out);
    }

    if (rc != NGX_OK || out->buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out->buf->last_buf = (r == r->main) ? 1 : 0;
    out->buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_gravitee_get_types[ctx->format];
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out->first);
}


/* the opening of the batch with the first item, a separator before others */

static ngx_int_t
ngx_gravitee_get_item(ngx_gravitee_get_ctx_t *ctx, ngx_gravitee_message_t *msg)
{
    ngx_int_t            rc;
    ngx_gravitee_out_t  *out;

    out = &ctx->out;

    switch (ctx->format) {

    case NGX_GRAVITEE_GET_JSON:
        rc = (ctx->nitems == 0) ? ngx_gravitee_out_lit(out, "{\"items\":[")
                                : ngx_gravitee_out_lit(out, ",");
        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_gravitee_json_message(ctx, out, msg, 0);

    case NGX_GRAVITEE_GET_XML:
        if ((ctx->nitems == 0
             && ngx_gravitee_out_lit(out, "<response><items>") != NGX_OK)
            || ngx_gravitee_out_lit(out, "<item>") != NGX_OK
            || ngx_gravitee_xml_message(ctx, out, msg, 0) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_gravitee_out_lit(out, "</item>");

    default: /* NGX_GRAVITEE_GET_TEXT */
        if ((ctx->nitems == 0
             && ngx_gravitee_out_lit(out, "items\n") != NGX_OK)
            || (ctx->nitems && ngx_gravitee_out_lit(out, "\n") != NGX_OK)
            || ngx_gravitee_out_lit(out, "item\n") != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_gravitee_text_message(ctx, out, msg, 0);
    }
}


static ngx_int_t
ngx_gravitee_json_batch(ngx_gravitee_get_ctx_t *ctx, ngx_gravitee_out_t *out)
{
    if (ctx->nitems == 0
        && ngx_gravitee_out_lit(out, "{\"items\":[") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_gravitee_out_lit(out, "]") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->error
        && (ngx_gravitee_out_lit(out, ",\"error\":") != NGX_OK
            || ngx_gravitee_json_message(ctx, out, ctx->error, 1) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->cursor.len) {
        if (ngx_gravitee_out_lit(out, ",\"pagination\":{\"nextCursor\":\"")
               != NGX_OK
            || ngx_gravitee_out_json(out, &ctx->cursor) != NGX_OK
            || ngx_gravitee_out_lit(out, "\"") != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->limit_arg.data
            && (ngx_gravitee_out_lit(out, ",\"limit\":\"") != NGX_OK
                || ngx_gravitee_out_json(out, &ctx->limit_arg) != NGX_OK
                || ngx_gravitee_out_lit(out, "\"") != NGX_OK))
        {
            return NGX_ERROR;
        }

        if (ngx_gravitee_out_lit(out, "}") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_gravitee_out_lit(out, "}");
}


/* headers group their values by name: {"h":["v1","v2"]} */

static ngx_int_t
ngx_gravitee_json_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all)
{
    if (ngx_gravitee_out_lit(out, "{") != NGX_OK) {
        return NGX_ERROR;
    }

    if (msg->id.len
        && (ngx_gravitee_out_lit(out, "\"id\":\"") != NGX_OK
            || ngx_gravitee_out_json(out, &msg->id) != NGX_OK
            || ngx_gravitee_out_lit(out, "\",") != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_gravitee_out_lit(out, "\"content\":\"") != NGX_OK
        || ngx_gravitee_out_json(out, &msg->content) != NGX_OK
        || ngx_gravitee_out_lit(out, "\"") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->headers_in_payload)
        && ngx_gravitee_get_headers(out, msg, &ngx_gravitee_json_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->metadata_in_payload)
        && ngx_gravitee_get_metadata(out, msg, &ngx_gravitee_json_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_gravitee_out_lit(out, "}");
}


static ngx_int_t
ngx_gravitee_xml_batch(ngx_gravitee_get_ctx_t *ctx, ngx_gravitee_out_t *out)
{
    if (ctx->nitems == 0
        && ngx_gravitee_out_lit(out, "<response><items>") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_gravitee_out_lit(out, "</items>") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->error
        && (ngx_gravitee_out_lit(out, "<error>") != NGX_OK
            || ngx_gravitee_xml_message(ctx, out, ctx->error, 1) != NGX_OK
            || ngx_gravitee_out_lit(out, "</error>") != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->cursor.len) {
        if (ngx_gravitee_out_lit(out, "<pagination><nextCursor>") != NGX_OK
            || ngx_gravitee_out_xml_text(out, &ctx->cursor) != NGX_OK
            || ngx_gravitee_out_lit(out, "</nextCursor>") != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->limit_arg.data
            && (ngx_gravitee_out_lit(out, "<limit>") != NGX_OK
                || ngx_gravitee_out_xml_text(out, &ctx->limit_arg) != NGX_OK
                || ngx_gravitee_out_lit(out, "</limit>") != NGX_OK))
        {
            return NGX_ERROR;
        }

        if (ngx_gravitee_out_lit(out, "</pagination>") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_gravitee_out_lit(out, "</response>");
}


/* header values joined by ",": <headers><h>v1,v2</h></headers> */

static ngx_int_t
ngx_gravitee_xml_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all)
{
    if (msg->id.len
        && (ngx_gravitee_out_lit(out, "<id>") != NGX_OK
            || ngx_gravitee_out_xml_text(out, &msg->id) != NGX_OK
            || ngx_gravitee_out_lit(out, "</id>") != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_gravitee_out_lit(out, "<content>") != NGX_OK
        || ngx_gravitee_out_xml_cdata(out, &msg->content) != NGX_OK
        || ngx_gravitee_out_lit(out, "</content>") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->headers_in_payload)
        && ngx_gravitee_get_headers(out, msg, &ngx_gravitee_xml_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->metadata_in_payload)
        && ngx_gravitee_get_metadata(out, msg, &ngx_gravitee_xml_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "items\n", each item as "item\nid: 0\ncontent: ...\n" with a blank line
 * between items, then "\npagination\nnextCursor: 3[\nlimit: 5]" and no
 * final newline, as the reference writes it.
 */

static ngx_int_t
ngx_gravitee_text_batch(ngx_gravitee_get_ctx_t *ctx, ngx_gravitee_out_t *out)
{
    if (ctx->nitems == 0 && ngx_gravitee_out_lit(out, "items\n") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->error
        && (ngx_gravitee_out_lit(out, "\nerror\n") != NGX_OK
            || ngx_gravitee_text_message(ctx, out, ctx->error, 1) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->cursor.len) {
        if (ngx_gravitee_out_lit(out, "\npagination\nnextCursor: ") != NGX_OK
            || ngx_gravitee_out_str(out, ctx->cursor.data, ctx->cursor.len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->limit_arg.data
            && (ngx_gravitee_out_lit(out, "\nlimit: ") != NGX_OK
                || ngx_gravitee_out_str(out, ctx->limit_arg.data,
                                        ctx->limit_arg.len)
                   != NGX_OK))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* maps as Java prints them: headers: {h=[v1, v2]}, metadata: {k=v} */

static ngx_int_t
ngx_gravitee_text_message(ngx_gravitee_get_ctx_t *ctx,
    ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg, ngx_uint_t all)
{
    if (msg->id.len
        && (ngx_gravitee_out_lit(out, "id: ") != NGX_OK
            || ngx_gravitee_out_str(out, msg->id.data, msg->id.len) != NGX_OK
            || ngx_gravitee_out_lit(out, "\n") != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_gravitee_out_lit(out, "content: ") != NGX_OK
        || ngx_gravitee_out_str(out, msg->content.data, msg->content.len)
           != NGX_OK
        || ngx_gravitee_out_lit(out, "\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->headers_in_payload)
        && ngx_gravitee_get_headers(out, msg, &ngx_gravitee_text_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((all || ctx->conf->metadata_in_payload)
        && ngx_gravitee_get_metadata(out, msg, &ngx_gravitee_text_syntax)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_get_headers(ngx_gravitee_out_t *out, ngx_gravitee_message_t *msg,
    ngx_gravitee_get_syntax_t *syn)
{
    ngx_uint_t            i, j, n;
    ngx_gravitee_pair_t  *h;

    if (ngx_gravitee_out_str(out, (u_char *) syn->headers,
                             ngx_strlen(syn->headers))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = msg->headers;
    n = 0;

    for (i = 0; i < msg->nheaders; i++) {
        if (ngx_gravitee_message_header_first(msg, i) != i) {
            continue;
        }

        if ((n++
             && ngx_gravitee_out_str(out, (u_char *) syn->group_sep,
                                     ngx_strlen(syn->group_sep))
                != NGX_OK)
            || ngx_gravitee_get_name(out, &h[i].name, syn, syn->group,
                                     syn->values)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (j = i; j < msg->nheaders; j++) {
            if (ngx_gravitee_message_header_first(msg, j) != i) {
                continue;
            }

            if ((j != i
                 && ngx_gravitee_out_str(out, (u_char *) syn->value_sep,
                                         ngx_strlen(syn->value_sep))
                    != NGX_OK)
                || ngx_gravitee_out_str(out, (u_char *) syn->value,
                                        ngx_strlen(syn->value)) != NGX_OK
                || syn->text(out, &h[j].value) != NGX_OK
                || ngx_gravitee_out_str(out, (u_char *) syn->value,
                                        ngx_strlen(syn->value)) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_gravitee_out_str(out, (u_char *) syn->group_end,
                                 ngx_strlen(syn->group_end))
            != NGX_OK
            || (syn->close_name
                && ngx_gravitee_get_name(out, &h[i].name, syn, "", ">")
                   != NGX_OK))
        {
            return NGX_ERROR;
        }
    }

    return ngx_gravitee_out_str(out, (u_char *) syn->headers_end,
                                ngx_strlen(syn->headers_end));
}


static ngx_int_t
ngx_gravitee_get_metadata(ngx_gravitee_out_t *out,
    ngx_gravitee_message_t *msg, ngx_gravitee_get_syntax_t *syn)
{
    ngx_uint_t            i;
    ngx_gravitee_pair_t  *m;

    if (ngx_gravitee_out_printf(out, 80, syn->metadata, msg->timestamp)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    m = msg->metadata;

    for (i = 0; i < msg->nmetadata; i++) {
        if (ngx_gravitee_get_name(out, &m[i].name, syn, syn->entry,
                                  syn->entry_value)
            != NGX_OK
            || syn->text(out, &m[i].value) != NGX_OK
            || ngx_gravitee_out_str(out, (u_char *) syn->entry_end,
                                    ngx_strlen(syn->entry_end))
               != NGX_OK
            || (syn->close_name
                && ngx_gravitee_get_name(out, &m[i].name, syn, "", ">")
                   != NGX_OK))
        {
            return NGX_ERROR;
        }
    }

    return ngx_gravitee_out_str(out, (u_char *) syn->metadata_end,
                                ngx_strlen(syn->metadata_end));
}


/* "before", the name escaped for the format, "after" */

static ngx_int_t
ngx_gravitee_get_name(ngx_gravitee_out_t *out, ngx_str_t *name,
    ngx_gravitee_get_syntax_t *syn, const char *before, const char *after)
{
    if (ngx_gravitee_out_str(out, (u_char *) before, ngx_strlen(before))
        != NGX_OK
        || syn->name(out, name) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_gravitee_out_str(out, (u_char *) after, ngx_strlen(after));
}


static void
ngx_gravitee_out_init(ngx_gravitee_out_t *out, ngx_pool_t *pool)
{
    out->pool = pool;
    out->first = NULL;
    out->last = &out->first;
    out->buf = NULL;
    out->size = NGX_GRAVITEE_OUT_MIN;
}


static u_char *
ngx_gravitee_out_reserve(ngx_gravitee_out_t *out, size_t n)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = out->buf;

    if (b && (size_t) (b->end - b->last) >= n) {
        return b->last;
    }

    /* the link first: a kept buffer is released only from the chain */

    cl = ngx_alloc_chain_link(out->pool);
    if (cl == NULL) {
        return NULL;
    }

    if (ngx_max(n, out->size) == NGX_GRAVITEE_OUT_MAX) {
        b = ngx_gravitee_out_kept(out);

    } else {
        b = ngx_create_temp_buf(out->pool, ngx_max(n, out->size));
    }

    if (b == NULL) {
        return NULL;
    }

    out->size = ngx_min(out->size * 2, NGX_GRAVITEE_OUT_MAX);

    cl->buf = b;
    cl->next = NULL;

    *out->last = cl;
    out->last = &cl->next;
    out->buf = b;

    return b->last;
}


static ngx_buf_t *
ngx_gravitee_out_kept(ngx_gravitee_out_t *out)
{
    u_char     *p;
    ngx_buf_t  *b;

    b = ngx_calloc_buf(out->pool);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_gravitee_buffer_alloc(out->pool->log);
    if (p == NULL) {
        return NULL;
    }

    b->start = p;
    b->pos = p;
    b->last = p;
    b->end = p + NGX_GRAVITEE_OUT_MAX;
    b->temporary = 1;
    b->tag = (ngx_buf_tag_t) &ngx_gravitee_out_kept;

    return b;
}


/* the request's pool goes: nothing sends from the buffers any more */

static void
ngx_gravitee_out_release(ngx_gravitee_out_t *out)
{
    ngx_chain_t  *cl;

    for (cl = out->first; cl; cl = cl->next) {
        if (cl->buf->tag == (ngx_buf_tag_t) &ngx_gravitee_out_kept
            && cl->buf->start)
        {
            ngx_gravitee_buffer_free(cl->buf->start);
            cl->buf->start = NULL;
        }
    }

    out->first = NULL;
    out->last = &out->first;
    out->buf = NULL;
}


static ngx_int_t
ngx_gravitee_out_str(ngx_gravitee_out_t *out, u_char *data, size_t len)
{
    u_char  *p;

    p = ngx_gravitee_out_reserve(out, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (len == 0) {
        /* data may be NULL: an empty record */
        return NGX_OK;
    }

    out->buf->last = ngx_cpymem(p, data, len);

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_out_printf(ngx_gravitee_out_t *out, size_t max,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_gravitee_out_reserve(out, max);
    if (p == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    out->buf->last = ngx_vslprintf(p, p + max, fmt, args);
    va_end(args);

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_out_raw(ngx_gravitee_out_t *out, ngx_str_t *s)
{
    return ngx_gravitee_out_str(out, s->data, s->len);
}


/*
 * A JSON string body: quotes, backslashes and control characters escaped,
 * and bytes that are not UTF-8 replaced by U+FFFD, so that any payload
 * makes a valid document.
 */

static ngx_int_t
ngx_gravitee_out_json(ngx_gravitee_out_t *out, ngx_str_t *s)
{
    u_char  *p, *q, *last, *dst;
    size_t   n;

    static u_char  hex[] = "0123456789abcdef";

    dst = ngx_gravitee_out_reserve(out, s->len * 6);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    p = s->data;
    last = s->data + s->len;

    while (p < last) {

        /* what needs no escape goes by runs, eight bytes at a time */

        for (q = p; last - q >= 8 && ngx_gravitee_json_plain8(q); q += 8) {
            /* void */
        }

        for ( /* void */ ; q < last; q++) {
            if (*q < 0x20 || *q >= 0x80 || *q == '"' || *q == '\\') {
                break;
            }
        }

        dst = ngx_cpymem(dst, p, q - p);
        p = q;

        if (p == last) {
            break;
        }

        if (*p >= 0x80) {
            n = ngx_gravitee_utf8_len(p, last);

            if (n == 0) {
                dst = ngx_cpymem(dst, "\\ufffd", 6);
                p++;
                continue;
            }

            dst = ngx_cpymem(dst, p, n);
            p += n;
            continue;
        }

        switch (*p) {

        case '"':
        case '\\':
            *dst++ = '\\';
            *dst++ = *p;
            break;

        case '\n':
            *dst++ = '\\'; *dst++ = 'n';
            break;

        case '\r':
            *dst++ = '\\'; *dst++ = 'r';
            break;

        case '\t':
            *dst++ = '\\'; *dst++ = 't';
            break;

        default:
            if (*p < 0x20) {
                dst = ngx_cpymem(dst, "\\u00", 4);
                *dst++ = hex[*p >> 4];
                *dst++ = hex[*p & 0xf];

            } else {
                *dst++ = *p;
            }
        }

        p++;
    }

    out->buf->last = dst;

    return NGX_OK;
}


/*
 * Whether none of eight bytes needs an escape in a JSON string: none is a
 * control character, a '"', a '\\' or a byte of a multibyte character
 * (checked apart).  A byte b is below n when (b - n) & ~b has its high bit.
 */

static ngx_inline ngx_uint_t
ngx_gravitee_json_plain8(u_char *p)
{
    uint64_t  w, q, s;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  high = 0x8080808080808080ULL;

    ngx_memcpy(&w, p, sizeof(uint64_t));

    q = w ^ (ones * '"');
    s = w ^ (ones * '\\');

    return (((w - ones * 0x20) | (q - ones) | (s - ones)) & ~w & high) == 0
           && (w & high) == 0;
}


static ngx_int_t
ngx_gravitee_out_xml_text(ngx_gravitee_out_t *out, ngx_str_t *s)
{
    u_char  *p, *last, *dst;

    dst = ngx_gravitee_out_reserve(out, s->len * 6);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        switch (*p) {
        case '<':
            dst = ngx_cpymem(dst, "&lt;", 4);
            break;
        case '>':
            dst = ngx_cpymem(dst, "&gt;", 4);
            break;
        case '&':
            dst = ngx_cpymem(dst, "&amp;", 5);
            break;
        case '"':
            dst = ngx_cpymem(dst, "&quot;", 6);
            break;
        default:
            *dst++ = *p;
        }
    }

    out->buf->last = dst;

    return NGX_OK;
}


/* CDATA cannot hold "]]>": the section is closed and reopened around it */

static ngx_int_t
ngx_gravitee_out_xml_cdata(ngx_gravitee_out_t *out, ngx_str_t *s)
{
    u_char  *p, *last, *dst;

    dst = ngx_gravitee_out_reserve(out, sizeof("<![CDATA[]]>") + s->len * 5);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    dst = ngx_cpymem(dst, "<![CDATA[", 9);
    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        if (*p == '>' && p - s->data >= 2 && p[-1] == ']' && p[-2] == ']') {
            dst = ngx_cpymem(dst, "]]><![CDATA[>", 13);
            continue;
        }

        *dst++ = *p;
    }

    out->buf->last = ngx_cpymem(dst, "]]>", 3);

    return NGX_OK;
}


/*
 * Header and metadata names become element names: a character not allowed
 * there is written _xHH_ (and a leading digit, dot or hyphen too), the way
 * XmlConvert.EncodeName does, so no name breaks or injects into the document.
 */

static ngx_int_t
ngx_gravitee_out_xml_name(ngx_gravitee_out_t *out, ngx_str_t *s)
{
    u_char  *p, *last, *dst;

    static u_char  hex[] = "0123456789ABCDEF";

    dst = ngx_gravitee_out_reserve(out, s->len * 6 + 6);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    if (s->len == 0) {
        out->buf->last = ngx_cpymem(dst, "_", 1);
        return NGX_OK;
    }

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
            || *p == '_'
            || (p != s->data
                && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.')))
        {
            *dst++ = *p;
            continue;
        }

        *dst++ = '_'; *dst++ = 'x';
        *dst++ = hex[*p >> 4];
        *dst++ = hex[*p & 0xf];
        *dst++ = '_';
    }

    out->buf->last = dst;

    return NGX_OK;
}


/* the length of the valid UTF-8 sequence at p (not ASCII), or 0 */

static size_t
ngx_gravitee_utf8_len(u_char *p, u_char *last)
{
    size_t  n;

    n = (*p >= 0xf0) ? 4 : (*p >= 0xe0) ? 3 : 2;

    if ((size_t) (last - p) < n || ngx_gravitee_utf8_valid(p, n) != n) {
        return 0;
    }

    return n;
}
