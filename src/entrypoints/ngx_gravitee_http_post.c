
/*
 * ngx_gravitee_module: the HTTP POST entrypoint.
 *
 * The request body becomes one message, published to the endpoint.  The
 * answer is 202 with an empty body once the endpoint has the message (a
 * broker's acknowledgement, where it gives one), or the endpoint's error
 * status (503 by default) with its error text, as in the reference
 * (shared/reference/gravitee.md, section 2.2).
 *
 * The body is read unbuffered, straight into one block of max_message_size
 * at most that becomes the message's content: no temporary file, no copy
 * of the body once read, and a chunked body over the limit is refused as
 * soon as it crosses it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"


typedef struct {
    size_t                      max_size;
    ngx_flag_t                  headers_to_message;
} ngx_gravitee_post_conf_t;


typedef struct {
    ngx_gravitee_tally_t        tally;       /* first: the request ctx */

    ngx_http_request_t         *request;
    ngx_gravitee_loc_conf_t    *glcf;
    ngx_gravitee_post_conf_t   *conf;

    u_char                     *body;        /* ngx_alloc, max_size at most */
    size_t                      len;
    size_t                      size;

    ngx_gravitee_pub_t          pub;

    unsigned                    publishing:1;
} ngx_gravitee_post_ctx_t;


static ngx_int_t ngx_gravitee_post_match(ngx_http_request_t *r);
static void *ngx_gravitee_post_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_post_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_post_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);
static void ngx_gravitee_post_body(ngx_http_request_t *r);
static void ngx_gravitee_post_read(ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_post_append(ngx_gravitee_post_ctx_t *ctx,
    ngx_chain_t *in);
static ngx_int_t ngx_gravitee_post_publish(ngx_gravitee_post_ctx_t *ctx);
static ngx_int_t ngx_gravitee_post_headers(ngx_gravitee_post_ctx_t *ctx,
    ngx_gravitee_message_init_t *init);
static void ngx_gravitee_post_done(ngx_gravitee_pub_t *pub);
static ngx_int_t ngx_gravitee_post_respond(ngx_gravitee_post_ctx_t *ctx);
static ngx_int_t ngx_gravitee_post_too_large(ngx_gravitee_post_ctx_t *ctx);
static void ngx_gravitee_post_release(void *data);
static void ngx_gravitee_post_cleanup(void *data);


static ngx_gravitee_param_t  ngx_gravitee_post_params[] = {

    { ngx_string("max_message_size"),
      ngx_gravitee_param_size,
      offsetof(ngx_gravitee_post_conf_t, max_size),
      NULL },

    { ngx_string("request_headers_to_message"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_post_conf_t, headers_to_message),
      NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_http_post_entrypoint = {
    ngx_string("http-post"),
    ngx_gravitee_post_params,
    1,
    ngx_gravitee_post_match,
    ngx_gravitee_post_create_conf,
    ngx_gravitee_post_init_conf,
    ngx_gravitee_post_handler
};


static ngx_str_t  ngx_gravitee_post_missing =
    ngx_string("A request body is required: it is the message to publish");


static ngx_int_t
ngx_gravitee_post_match(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_POST;
}


static void *
ngx_gravitee_post_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_post_conf_t  *pcf;

    pcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_post_conf_t));
    if (pcf == NULL) {
        return NULL;
    }

    pcf->max_size = NGX_CONF_UNSET_SIZE;
    pcf->headers_to_message = NGX_CONF_UNSET;

    return pcf;
}


static char *
ngx_gravitee_post_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_post_conf_t *pcf = conf;

    ngx_conf_init_size_value(pcf->max_size, 1024 * 1024);
    ngx_conf_init_value(pcf->headers_to_message, 0);

    if (pcf->max_size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"max_message_size\" of entrypoint "
                           "\"http-post\" must be at least 1 byte");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_post_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    ngx_int_t                 rc;
    ngx_str_t                 error;
    ngx_pool_cleanup_t       *cln;
    ngx_gravitee_post_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_gravitee_post_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->glcf = glcf;
    ctx->conf = conf;

    /* HTTP/2 marks a body of unknown length "chunked" as well */

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST,
                                       &ngx_gravitee_post_missing);
    }

    if (r->headers_in.content_length_n > (off_t) ctx->conf->max_size) {
        return ngx_gravitee_post_too_large(ctx);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_gravitee_post_cleanup;
    cln->data = ctx;

    /* what the endpoint takes of the request: a key, a topic */

    rc = ngx_gravitee_bind(r, glcf, NGX_GRAVITEE_BIND_PUBLISH,
                           &ctx->pub.binding, &error);

    if (rc == NGX_DECLINED) {
        return ngx_gravitee_send_error(r, NGX_HTTP_BAD_REQUEST, &error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_gravitee_set_ctx(r, &ctx->tally);

    /*
     * unbuffered: the body comes to us as it arrives, never to a temporary
     * file, and a chunked body is stopped at the limit, not at its end
     */

    r->request_body_no_buffering = 1;

    rc = ngx_http_read_client_request_body(r, ngx_gravitee_post_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_gravitee_post_body(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_gravitee_post_read;

    ngx_gravitee_post_read(r);
}


static void
ngx_gravitee_post_read(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_chain_t              *in;
    ngx_gravitee_post_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    for ( ;; ) {
        in = r->request_body->bufs;
        r->request_body->bufs = NULL;

        rc = ngx_gravitee_post_append(ctx, in);

        if (rc == NGX_DECLINED) {
            ngx_http_finalize_request(r, ngx_gravitee_post_too_large(ctx));
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (!r->reading_body) {
            break;
        }

        rc = ngx_http_read_unbuffered_request_body(r);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_http_finalize_request(r, rc);
            return;
        }

        if (rc == NGX_AGAIN && r->request_body->bufs == NULL) {
            /* wait for more of the body */
            return;
        }
    }

    if (ctx->len == 0) {
        ngx_http_finalize_request(r,
                                  ngx_gravitee_send_error(r,
                                               NGX_HTTP_BAD_REQUEST,
                                               &ngx_gravitee_post_missing));
        return;
    }

    rc = ngx_gravitee_post_publish(ctx);

    if (rc == NGX_AGAIN) {
        /* a client that leaves before the acknowledgement cancels it */
        ngx_gravitee_watch_client(r);
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * Copies what the client sent into the message block, grown as a chunked
 * body comes, and marks the buffers consumed so that NGINX reuses them.
 */

static ngx_int_t
ngx_gravitee_post_append(ngx_gravitee_post_ctx_t *ctx, ngx_chain_t *in)
{
    u_char             *p;
    size_t              n, size;
    ngx_http_request_t *r;

    r = ctx->request;

    for ( /* void */ ; in; in = in->next) {

        n = in->buf->last - in->buf->pos;

        if (n == 0) {
            continue;
        }

        if (ctx->len + n > ctx->conf->max_size) {
            return NGX_DECLINED;
        }

        if (ctx->len + n > ctx->size) {
            if (r->headers_in.content_length_n > 0) {
                size = r->headers_in.content_length_n;

            } else {
                size = ngx_max(ctx->size * 2, 4096);
            }

            size = ngx_min(ngx_max(size, ctx->len + n), ctx->conf->max_size);

            p = ngx_alloc(size, r->connection->log);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (ctx->body) {
                ngx_memcpy(p, ctx->body, ctx->len);
                ngx_free(ctx->body);
            }

            ctx->body = p;
            ctx->size = size;
        }

        ngx_memcpy(ctx->body + ctx->len, in->buf->pos, n);
        ctx->len += n;

        in->buf->pos = in->buf->last;
    }

    return NGX_OK;
}


/* NGX_AGAIN: the endpoint answers later, through ngx_gravitee_post_done */

static ngx_int_t
ngx_gravitee_post_publish(ngx_gravitee_post_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_http_request_t           *r;
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_message_init_t   init;

    r = ctx->request;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));

    if (ctx->conf->headers_to_message
        && ngx_gravitee_post_headers(ctx, &init) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the block we read into becomes the content: no second copy */

    init.content.data = ctx->body;
    init.content.len = ctx->len;
    init.wrap_content = 1;

    msg = ngx_gravitee_message_create(r->connection->log, &init);
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    msg->release = ngx_gravitee_post_release;
    msg->release_data = ctx->body;
    ctx->body = NULL;

    ctx->pub.msg = msg;
    ctx->pub.done = ngx_gravitee_post_done;
    ctx->pub.data = ctx;
    ctx->pub.log = r->connection->log;

    rc = ngx_gravitee_publish(ctx->glcf, &ctx->pub);

    if (rc == NGX_AGAIN) {
        ctx->publishing = 1;
        return NGX_AGAIN;
    }

    ctx->pub.rc = (rc == NGX_OK) ? NGX_OK : NGX_ERROR;

    return ngx_gravitee_post_respond(ctx);
}


/*
 * every request header line, as many pairs as lines; a line another module
 * took out (hash 0, as NGINX marks it: the API key of a plan) is not one
 */

static ngx_int_t
ngx_gravitee_post_headers(ngx_gravitee_post_ctx_t *ctx,
    ngx_gravitee_message_init_t *init)
{
    ngx_uint_t            i, n;
    ngx_list_part_t      *part;
    ngx_table_elt_t      *h;
    ngx_gravitee_pair_t  *pair;

    n = 0;

    for (part = &ctx->request->headers_in.headers.part; part;
         part = part->next)
    {
        n += part->nelts;
    }

    if (n == 0) {
        return NGX_OK;
    }

    pair = ngx_palloc(ctx->request->pool, n * sizeof(ngx_gravitee_pair_t));
    if (pair == NULL) {
        return NGX_ERROR;
    }

    init->headers = pair;

    for (part = &ctx->request->headers_in.headers.part; part;
         part = part->next)
    {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].hash == 0) {
                continue;
            }

            pair->name = h[i].key;
            pair->value = h[i].value;
            pair++;
        }
    }

    init->nheaders = pair - init->headers;

    return NGX_OK;
}


static void
ngx_gravitee_post_done(ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_post_ctx_t *ctx = pub->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;      /* finalizing may free r: keep c at hand */
    ctx->publishing = 0;

    ngx_http_finalize_request(r, ngx_gravitee_post_respond(ctx));
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_gravitee_post_respond(ngx_gravitee_post_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_str_t            error;
    ngx_uint_t           status;
    ngx_http_request_t  *r;

    static ngx_str_t  unavailable = ngx_string("Endpoint unavailable");

    r = ctx->request;

    if (ctx->pub.rc != NGX_OK) {
        status = ctx->pub.status ? ctx->pub.status
                                 : NGX_HTTP_SERVICE_UNAVAILABLE;
        error = ctx->pub.error.len ? ctx->pub.error : unavailable;

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "http-post on \"%V\": publishing to endpoint \"%V\" "
                      "failed with %ui: \"%V\"", &ctx->glcf->name,
                      &ctx->glcf->endpoint->name, status, &error);

        if (status == NGX_HTTP_SERVICE_UNAVAILABLE
            && ngx_gravitee_retry_after(r, 5) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_gravitee_send_error(r, status, &error);
    }

    /* $message_proxy_messages: the one message, published */
    ctx->tally.messages = 1;

    r->headers_out.status = NGX_HTTP_ACCEPTED;
    r->headers_out.content_length_n = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


static ngx_int_t
ngx_gravitee_post_too_large(ngx_gravitee_post_ctx_t *ctx)
{
    ngx_str_t            text;
    ngx_http_request_t  *r;

    r = ctx->request;

    /*
     * the rest of the body is not read: the connection cannot be reused;
     * and a client that waits for "100 Continue" is not invited to send a
     * body that is refused already (as NGINX does for client_max_body_size)
     */
    r->keepalive = 0;
    r->expect_tested = 1;

    text.data = ngx_pnalloc(r->pool, 80 + NGX_SIZE_T_LEN);
    if (text.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text.len = ngx_sprintf(text.data, "Message too large: the limit is %uz "
                           "bytes", ctx->conf->max_size)
               - text.data;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "http-post on \"%V\": request body over "
                  "max_message_size %uz", &ctx->glcf->name,
                  ctx->conf->max_size);

    return ngx_gravitee_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   &text);
}


static void
ngx_gravitee_post_release(void *data)
{
    ngx_free(data);
}


static void
ngx_gravitee_post_cleanup(void *data)
{
    ngx_gravitee_post_ctx_t *ctx = data;

    if (ctx->publishing) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "http-post on \"%V\": client left before the endpoint "
                      "acknowledged, publication cancelled",
                      &ctx->glcf->name);

        ngx_gravitee_cancel(ctx->glcf, &ctx->pub);
        ctx->publishing = 0;
    }

    if (ctx->pub.msg) {
        ngx_gravitee_message_unref(ctx->pub.msg);
        ctx->pub.msg = NULL;
    }

    if (ctx->body) {
        ngx_free(ctx->body);
        ctx->body = NULL;
    }

    ngx_gravitee_unbind(ctx->glcf, ctx->pub.binding);
    ctx->pub.binding = NULL;
}
