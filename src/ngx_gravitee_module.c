
/*
 * ngx_gravitee_module: an event-native message gateway for NGINX.
 *
 * This file holds the module, its directives, the choice of an entrypoint
 * for each request and the helpers every entrypoint shares.  Entrypoints
 * live in src/entrypoints, endpoints in src/endpoints; they meet through
 * ngx_gravitee_connector.h.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_worker.h"
#include "ngx_gravitee_source.h"


typedef struct {
    ngx_array_t                 locations;   /* ngx_gravitee_loc_conf_t * */
} ngx_gravitee_main_conf_t;


static ngx_int_t ngx_gravitee_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_gravitee_variable_count(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_gravitee_variable_reason(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_gravitee_handler(ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_not_found(ngx_http_request_t *r);
static void *ngx_gravitee_create_main_conf(ngx_conf_t *cf);
static void *ngx_gravitee_create_loc_conf(ngx_conf_t *cf);
static char *ngx_gravitee_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_gravitee_entrypoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_gravitee_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_gravitee_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_gravitee_declare_api(ngx_conf_t *cf,
    ngx_gravitee_loc_conf_t *glcf);
static ngx_int_t ngx_gravitee_init_process(ngx_cycle_t *cycle);
static void ngx_gravitee_exit_process(ngx_cycle_t *cycle);


/*
 * The connectors this build knows.  Adding one is a line here and a file
 * in src/entrypoints or src/endpoints: nothing else changes.
 */

extern ngx_gravitee_entrypoint_t  ngx_gravitee_http_get_entrypoint;
extern ngx_gravitee_entrypoint_t  ngx_gravitee_http_post_entrypoint;
extern ngx_gravitee_entrypoint_t  ngx_gravitee_websocket_entrypoint;
extern ngx_gravitee_entrypoint_t  ngx_gravitee_sse_entrypoint;
extern ngx_gravitee_endpoint_t    ngx_gravitee_mock_endpoint;
extern ngx_gravitee_endpoint_t    ngx_gravitee_kafka_endpoint;
extern ngx_gravitee_endpoint_t    ngx_gravitee_mqtt_endpoint;

static ngx_gravitee_entrypoint_t  *ngx_gravitee_entrypoints[] = {
    &ngx_gravitee_http_get_entrypoint,
    &ngx_gravitee_http_post_entrypoint,
    &ngx_gravitee_websocket_entrypoint,
    &ngx_gravitee_sse_entrypoint,
    NULL
};

static ngx_gravitee_endpoint_t  *ngx_gravitee_endpoints[] = {
    &ngx_gravitee_mock_endpoint,
    &ngx_gravitee_kafka_endpoint,
    &ngx_gravitee_mqtt_endpoint,
    NULL
};


static ngx_command_t  ngx_gravitee_commands[] = {

    { ngx_string("message_proxy_entrypoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_gravitee_entrypoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("message_proxy_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_gravitee_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("message_proxy_api"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_gravitee_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


/* for the access log: what a stream sent, dropped, and why it ended */

static ngx_http_variable_t  ngx_gravitee_variables[] = {

    { ngx_string("message_proxy_messages"), NULL,
      ngx_gravitee_variable_count,
      offsetof(ngx_gravitee_tally_t, messages),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("message_proxy_dropped"), NULL,
      ngx_gravitee_variable_count,
      offsetof(ngx_gravitee_tally_t, dropped),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("message_proxy_close_reason"), NULL,
      ngx_gravitee_variable_reason, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_module_t  ngx_gravitee_module_ctx = {
    ngx_gravitee_add_variables,            /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_gravitee_create_main_conf,         /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_gravitee_create_loc_conf,          /* create location configuration */
    ngx_gravitee_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_gravitee_module = {
    NGX_MODULE_V1,
    &ngx_gravitee_module_ctx,              /* module context */
    ngx_gravitee_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_gravitee_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_gravitee_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_gravitee_not_found_message =
    ngx_string("No context-path matches the request URI.");


static ngx_int_t
ngx_gravitee_add_variables(ngx_conf_t *cf)
{
    return ngx_gravitee_conf_add_variables(cf, ngx_gravitee_variables);
}


ngx_int_t
ngx_gravitee_conf_add_variables(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * An entrypoint's request ctx starts with an ngx_gravitee_tally_t; requests
 * without one (HTTP GET, other locations) log "-".
 */

static ngx_int_t
ngx_gravitee_variable_count(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                *p;
    ngx_gravitee_tally_t  *tally;

    tally = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    if (tally == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", *(ngx_uint_t *) ((char *) tally + data))
             - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_variable_reason(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char            *reason;
    ngx_gravitee_tally_t  *tally;

    tally = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    reason = tally ? tally->reason : NULL;

    /* a kept request (SSE over HTTP/2) whose client went away */

    if (reason == NULL && tally && r->connection->error) {
        reason = "client closed";
    }

    if (reason == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_strlen(reason);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = (u_char *) reason;

    return NGX_OK;
}


/* the content handler of every API location: pick the entrypoint */

static ngx_int_t
ngx_gravitee_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       i;
    ngx_gravitee_loc_conf_t         *glcf;
    ngx_gravitee_entrypoint_conf_t  *ep, *best;

    glcf = ngx_http_get_module_loc_conf(r, ngx_gravitee_module);

    if (!glcf->started) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "gravitee api \"%V\" is stopped", &glcf->name);
        return ngx_gravitee_not_found(r);
    }

    best = NULL;
    ep = glcf->entrypoints->elts;

    for (i = 0; i < glcf->entrypoints->nelts; i++) {

        if (best
            && best->entrypoint->match_criteria
               >= ep[i].entrypoint->match_criteria)
        {
            continue;
        }

        if (ep[i].entrypoint->match(r)) {
            best = &ep[i];
        }
    }

    if (best == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "gravitee api \"%V\": no entrypoint matches",
                       &glcf->name);
        return ngx_gravitee_not_found(r);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "gravitee api \"%V\": entrypoint \"%V\"",
                   &glcf->name, &best->entrypoint->name);

    return best->entrypoint->handler(r, glcf, best->conf);
}


static ngx_int_t
ngx_gravitee_not_found(ngx_http_request_t *r)
{
    return ngx_gravitee_send_error(r, NGX_HTTP_NOT_FOUND,
                                   &ngx_gravitee_not_found_message);
}


/*
 * The reference's error body: JSON when the client accepts it, plain text
 * otherwise.  Failures other than 4xx close the connection, as the
 * reference does.
 */

void
ngx_gravitee_set_ctx(ngx_http_request_t *r, ngx_gravitee_tally_t *tally)
{
    if (tally->identity == NULL) {
        tally->identity = ngx_gravitee_request_identity(r);
    }

    ngx_http_set_ctx(r, tally, ngx_gravitee_module);
}


ngx_int_t
ngx_gravitee_retry_after(ngx_http_request_t *r, ngx_uint_t seconds)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%ui", seconds) - p;

    return NGX_OK;
}


ngx_int_t
ngx_gravitee_send_error(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *message)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static ngx_str_t  json = ngx_string("application/json");
    static ngx_str_t  any = ngx_string("*/*");

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (ngx_gravitee_accepts(r, &json) || ngx_gravitee_accepts(r, &any)) {
        len = sizeof("{\"message\":\"\",\"http_status_code\":}") - 1
              + message->len + ngx_escape_json(NULL, message->data,
                                               message->len)
              + NGX_INT_T_LEN;

        b = ngx_create_temp_buf(r->pool, len);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->last = ngx_cpymem(b->last, "{\"message\":\"",
                             sizeof("{\"message\":\"") - 1);
        b->last = (u_char *) ngx_escape_json(b->last, message->data,
                                             message->len);
        b->last = ngx_sprintf(b->last, "\",\"http_status_code\":%ui}",
                              status);

        r->headers_out.content_type = json;

    } else {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = message->data;
        b->last = message->data + message->len;
        b->memory = 1;

        ngx_str_set(&r->headers_out.content_type, "text/plain");
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* whether any Accept line of the request names the media type */

ngx_int_t
ngx_gravitee_accepts(ngx_http_request_t *r, ngx_str_t *type)
{
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    while ((h = ngx_gravitee_header_next(r, &it, "Accept")) != NULL) {
        if (ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                             type->data, type->len - 1)
            != NULL)
        {
            return 1;
        }
    }

    return 0;
}


ngx_table_elt_t *
ngx_gravitee_header_next(ngx_http_request_t *r,
    ngx_gravitee_header_iter_t *it, const char *name)
{
    size_t            len;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

    if (it->part == NULL) {
        it->part = &r->headers_in.headers.part;
        it->i = 0;
    }

    for ( ;; ) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        h = (ngx_table_elt_t *) it->part->elts + it->i++;

        if (h->key.len == len
            && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0)
        {
            return h;
        }
    }
}


/*
 * A request that waits on the endpoint (an HTTP GET window, a POST's
 * acknowledgement) watches its client with ngx_http_test_reading.  The
 * client may have hung up already: its FIN came with the request, and the
 * edge-triggered read event was used up reading it.  So the test runs once
 * now, from a posted event, and then at every read event.
 */

void
ngx_gravitee_watch_client(ngx_http_request_t *r)
{
    ngx_event_t  *rev;

    r->read_event_handler = ngx_http_test_reading;

#if (NGX_HTTP_V2)
    if (r->stream) {
        /* the HTTP/2 connection tells of a stream the client reset */
        return;
    }
#endif

    rev = r->connection->read;

    if (!rev->posted) {
        ngx_post_event(rev, &ngx_posted_events);
    }
}


/*
 * What a client sends does not size what a stream keeps: a resume
 * position longer than the endpoint can use is refused.  NGX_DECLINED:
 * "error" says why, for a 400.
 */

ngx_int_t
ngx_gravitee_position_check(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_str_t *pos, ngx_str_t *error)
{
    size_t  max;

    max = glcf->endpoint->max_position;

    if (pos->len <= max) {
        if (pos->len == 0 || glcf->endpoint->check_position == NULL) {
            return NGX_OK;
        }

        if (glcf->endpoint->check_position(glcf->endpoint_conf, pos, r->pool,
                                           error)
            != NGX_DECLINED)
        {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "api \"%V\": %V", &glcf->name, error);

        return NGX_DECLINED;
    }

    error->data = ngx_pnalloc(r->pool, 96 + 2 * NGX_SIZE_T_LEN
                                       + glcf->endpoint->name.len);
    if (error->data == NULL) {
        return NGX_ERROR;
    }

    error->len = ngx_sprintf(error->data, "Resume position too long: %uz "
                             "bytes, the %V endpoint reads %uz at most",
                             pos->len, &glcf->endpoint->name, max)
                 - error->data;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "api \"%V\": %V", &glcf->name, error);

    return NGX_DECLINED;
}


/*
 * A resume position given in the query (HTTP GET and WebSocket "cursor"),
 * percent-decoded into the request's pool and checked: NGX_OK (pos empty
 * when there is none), NGX_DECLINED with "error" for a 400, NGX_ERROR.
 */

ngx_int_t
ngx_gravitee_arg_position(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_str_t *pos, ngx_str_t *error)
{
    u_char     *dst, *src;
    ngx_str_t   value;

    ngx_str_null(pos);

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &value) != NGX_OK
        || value.len == 0)
    {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, value.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    pos->data = dst;
    src = value.data;
    ngx_unescape_uri(&dst, &src, value.len, 0);
    pos->len = dst - pos->data;

    return ngx_gravitee_position_check(r, glcf, pos, error);
}


ngx_int_t
ngx_gravitee_bind(ngx_http_request_t *r, ngx_gravitee_loc_conf_t *glcf,
    ngx_uint_t what, void **binding, ngx_str_t *error)
{
    *binding = NULL;

    if (glcf->endpoint->bind == NULL) {
        return NGX_OK;
    }

    return glcf->endpoint->bind(glcf->endpoint_conf, r, what, binding,
                                error);
}


void
ngx_gravitee_unbind(ngx_gravitee_loc_conf_t *glcf, void *binding)
{
    if (binding && glcf->endpoint->unbind) {
        glcf->endpoint->unbind(glcf->endpoint_conf, binding);
    }
}


ngx_int_t
ngx_gravitee_subscribe(ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_sub_t *sub)
{
    return glcf->endpoint->subscribe(glcf->endpoint_conf, sub);
}


void
ngx_gravitee_unsubscribe(ngx_gravitee_loc_conf_t *glcf,
    ngx_gravitee_sub_t *sub)
{
    glcf->endpoint->unsubscribe(glcf->endpoint_conf, sub);
}


ngx_int_t
ngx_gravitee_publish(ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_pub_t *pub)
{
    return glcf->endpoint->publish(glcf->endpoint_conf, pub);
}


void
ngx_gravitee_cancel(ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_pub_t *pub)
{
    if (glcf->endpoint->cancel) {
        glcf->endpoint->cancel(glcf->endpoint_conf, pub);
    }
}


static void *
ngx_gravitee_create_main_conf(ngx_conf_t *cf)
{
    ngx_gravitee_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&gmcf->locations, cf->pool, 4,
                       sizeof(ngx_gravitee_loc_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return gmcf;
}


static void *
ngx_gravitee_create_loc_conf(ngx_conf_t *cf)
{
    ngx_gravitee_loc_conf_t  *glcf;

    glcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_loc_conf_t));
    if (glcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     glcf->entrypoints = NULL;
     *     glcf->endpoint = NULL;
     *     glcf->endpoint_conf = NULL;
     *     glcf->file = NULL;
     */

    glcf->started = NGX_CONF_UNSET;

    return glcf;
}


static char *
ngx_gravitee_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_gravitee_loc_conf_t *prev = parent;
    ngx_gravitee_loc_conf_t *conf = child;

    /* an API is its own location: entrypoints and endpoint do not inherit */

    ngx_conf_merge_value(conf->started, prev->started, 1);

    if (conf->file == NULL) {
        return NGX_CONF_OK;
    }

    if (conf->entrypoints == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "location \"%V\" has \"message_proxy_endpoint\" but no "
                      "\"message_proxy_entrypoint\": an API needs at least "
                      "one entrypoint in %s:%ui",
                      &conf->name, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (conf->endpoint == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "location \"%V\" has \"message_proxy_entrypoint\" but no "
                      "\"message_proxy_endpoint\": an API needs one endpoint "
                      "(mock) in %s:%ui",
                      &conf->name, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_entrypoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_gravitee_loc_conf_t *glcf = conf;

    char                            *rv;
    ngx_str_t                       *value, allowed[8];
    ngx_uint_t                       i, n;
    ngx_gravitee_entrypoint_t       *entrypoint;
    ngx_gravitee_entrypoint_conf_t  *ep;

    value = cf->args->elts;
    entrypoint = NULL;
    n = 0;

    for (i = 0; ngx_gravitee_entrypoints[i]; i++) {
        if (ngx_gravitee_entrypoints[i]->name.len == value[1].len
            && ngx_strncmp(ngx_gravitee_entrypoints[i]->name.data,
                           value[1].data, value[1].len) == 0)
        {
            entrypoint = ngx_gravitee_entrypoints[i];
        }

        if (n < 8) {
            allowed[n++] = ngx_gravitee_entrypoints[i]->name;
        }
    }

    if (entrypoint == NULL) {
        return ngx_gravitee_unknown(cf, "entrypoint", NULL, &value[1],
                                    allowed, n);
    }

    if (glcf->entrypoints == NULL) {
        glcf->entrypoints = ngx_array_create(cf->pool, 2,
                                      sizeof(ngx_gravitee_entrypoint_conf_t));
        if (glcf->entrypoints == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ep = glcf->entrypoints->elts;

    for (i = 0; i < glcf->entrypoints->nelts; i++) {
        if (ep[i].entrypoint == entrypoint) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "entrypoint \"%V\" is declared twice in this "
                               "location", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    ep = ngx_array_push(glcf->entrypoints);
    if (ep == NULL) {
        return NGX_CONF_ERROR;
    }

    ep->entrypoint = entrypoint;
    ep->conf = entrypoint->create_conf(cf);
    if (ep->conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_gravitee_parse_params(cf, "entrypoint", &entrypoint->name,
                                   entrypoint->params, ep->conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (entrypoint->init_conf) {
        rv = entrypoint->init_conf(cf, ep->conf);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return ngx_gravitee_declare_api(cf, glcf);
}


static char *
ngx_gravitee_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_gravitee_loc_conf_t *glcf = conf;

    char                      *rv;
    ngx_str_t                 *value, allowed[8];
    ngx_uint_t                 i, n;
    ngx_gravitee_endpoint_t   *endpoint;
    ngx_gravitee_main_conf_t  *gmcf;
    ngx_gravitee_loc_conf_t  **loc;

    value = cf->args->elts;

    if (glcf->endpoint) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "an API has one endpoint: \"message_proxy_endpoint"
                           "\" is duplicate in this location");
        return NGX_CONF_ERROR;
    }

    endpoint = NULL;
    n = 0;

    for (i = 0; ngx_gravitee_endpoints[i]; i++) {
        if (ngx_gravitee_endpoints[i]->name.len == value[1].len
            && ngx_strncmp(ngx_gravitee_endpoints[i]->name.data,
                           value[1].data, value[1].len) == 0)
        {
            endpoint = ngx_gravitee_endpoints[i];
        }

        if (n < 8) {
            allowed[n++] = ngx_gravitee_endpoints[i]->name;
        }
    }

    if (endpoint == NULL) {
        return ngx_gravitee_unknown(cf, "endpoint", NULL, &value[1],
                                    allowed, n);
    }

    glcf->endpoint = endpoint;
    glcf->endpoint_conf = endpoint->create_conf(cf);
    if (glcf->endpoint_conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_gravitee_parse_params(cf, "endpoint", &endpoint->name,
                                   endpoint->params, glcf->endpoint_conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (endpoint->init_conf) {
        rv = endpoint->init_conf(cf, glcf->endpoint_conf);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    gmcf = ngx_http_conf_get_module_main_conf(cf, ngx_gravitee_module);

    loc = ngx_array_push(&gmcf->locations);
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    *loc = glcf;

    return ngx_gravitee_declare_api(cf, glcf);
}


/* the first directive of an API makes the location its content handler */

static char *
ngx_gravitee_declare_api(ngx_conf_t *cf, ngx_gravitee_loc_conf_t *glcf)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->file) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->handler = ngx_gravitee_handler;

    glcf->name = clcf->name;
    glcf->file = cf->conf_file->file.name.data;
    glcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_gravitee_loc_conf_t *glcf = conf;

    ngx_str_t  *value;

    if (glcf->started != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "started") == 0) {
        glcf->started = 1;

    } else if (ngx_strcmp(value[1].data, "stopped") == 0) {
        glcf->started = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" of \"message_proxy_api\": "
                           "it must be \"started\" or \"stopped\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the "key=value" words from the third on, through the connector's table */

char *
ngx_gravitee_parse_params(ngx_conf_t *cf, const char *kind, ngx_str_t *name,
    ngx_gravitee_param_t *params, void *conf)
{
    char                  *rv;
    u_char                *eq;
    ngx_str_t             *value, key, val, allowed[32];
    ngx_uint_t             i, n;
    ngx_gravitee_param_t  *p;

    value = cf->args->elts;

    for (i = 2; i < cf->args->nelts; i++) {

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (eq == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of %s \"%V\": "
                               "parameters are written key=value",
                               &value[i], kind, name);
            return NGX_CONF_ERROR;
        }

        key.data = value[i].data;
        key.len = eq - value[i].data;
        val.data = eq + 1;
        val.len = value[i].data + value[i].len - val.data;

        n = 0;

        for (p = params; p->name.len; p++) {
            if (p->name.len == key.len
                && ngx_strncmp(p->name.data, key.data, key.len) == 0)
            {
                break;
            }

            if (n < 32) {
                allowed[n++] = p->name;
            }
        }

        if (p->name.len == 0) {
            return ngx_gravitee_unknown(cf, "parameter", name, &key,
                                        allowed, n);
        }

        rv = p->set(cf, p, &val, conf);

        if (rv != NGX_CONF_OK) {
            if (rv != NGX_CONF_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "parameter \"%V\" of %s \"%V\" %s, "
                                   "not \"%V\"", &key, kind, name, rv, &val);
            }

            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


char *
ngx_gravitee_unknown(ngx_conf_t *cf, const char *kind, ngx_str_t *name,
    ngx_str_t *what, ngx_str_t *allowed, ngx_uint_t n)
{
    u_char      *p, *last, buf[512];
    ngx_uint_t   i;

    p = buf;
    last = buf + sizeof(buf);

    for (i = 0; i < n; i++) {
        p = ngx_slprintf(p, last, "%s%V", i ? ", " : "", &allowed[i]);
    }

    if (n == 0) {
        p = ngx_slprintf(p, last, "none");
    }

    if (name) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown %s \"%V\" of \"%V\", allowed: %*s",
                           kind, what, name, p - buf, buf);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown %s \"%V\", allowed: %*s",
                           kind, what, p - buf, buf);
    }

    return NGX_CONF_ERROR;
}


char *
ngx_gravitee_param_flag(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_flag_t  *fp;

    fp = (ngx_flag_t *) ((char *) conf + param->offset);

    if (value->len == 2 && ngx_strncmp(value->data, "on", 2) == 0) {
        *fp = 1;

    } else if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        *fp = 0;

    } else {
        return "must be \"on\" or \"off\"";
    }

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_msec(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_int_t    ms;
    ngx_msec_t  *mp, *min;

    mp = (ngx_msec_t *) ((char *) conf + param->offset);

    ms = ngx_parse_time(value, 0);
    if (ms == NGX_ERROR) {
        return "must be a time such as 500ms, 5s or 1m";
    }

    min = param->post;

    if (min && (ngx_msec_t) ms < *min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"%V\" must be at least %Mms, "
                           "not \"%V\"", &param->name, *min, value);
        return NGX_CONF_ERROR;
    }

    *mp = ms;

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_size(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    size_t   *sp;
    ssize_t   size;

    sp = (size_t *) ((char *) conf + param->offset);

    size = ngx_parse_size(value);
    if (size == NGX_ERROR) {
        return "must be a size such as 512, 64k or 1m";
    }

    *sp = size;

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_num(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_int_t    n;
    ngx_uint_t  *np;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    n = ngx_atoi(value->data, value->len);
    if (n == NGX_ERROR) {
        return "must be a whole number";
    }

    *np = n;

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_str(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_str_t  *sp;

    sp = (ngx_str_t *) ((char *) conf + param->offset);

    *sp = *value;

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_pair(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    u_char                *colon;
    ngx_array_t          **ap;
    ngx_gravitee_pair_t   *pair;

    ap = (ngx_array_t **) ((char *) conf + param->offset);

    colon = ngx_strlchr(value->data, value->data + value->len, ':');

    if (colon == NULL || colon == value->data) {
        return "must be written Name:value";
    }

    if (*ap == NULL) {
        *ap = ngx_array_create(cf->pool, 2, sizeof(ngx_gravitee_pair_t));
        if (*ap == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    pair = ngx_array_push(*ap);
    if (pair == NULL) {
        return NGX_CONF_ERROR;
    }

    pair->name.data = value->data;
    pair->name.len = colon - value->data;
    pair->value.data = colon + 1;
    pair->value.len = value->data + value->len - pair->value.data;

    return NGX_CONF_OK;
}


char *
ngx_gravitee_param_list(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    u_char        *p, *last, *comma;
    ngx_str_t     *item;
    ngx_array_t  **ap;

    ap = (ngx_array_t **) ((char *) conf + param->offset);

    if (*ap == NULL) {
        *ap = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (*ap == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p = value->data;
    last = value->data + value->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            return "must be a comma-separated list without empty items";
        }

        item = ngx_array_push(*ap);
        if (item == NULL) {
            return NGX_CONF_ERROR;
        }

        item->data = p;
        item->len = comma - p;

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/*
 * Made after fork, in each worker: no broker library's thread exists in the
 * master.  A configuration without an API costs nothing.
 */

static ngx_int_t
ngx_gravitee_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_gravitee_loc_conf_t   **loc;
    ngx_gravitee_main_conf_t   *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_gravitee_module);

    if (gmcf == NULL || gmcf->locations.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_gravitee_worker_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    loc = gmcf->locations.elts;

    for (i = 0; i < gmcf->locations.nelts; i++) {
        if (loc[i]->endpoint->init_process
            && loc[i]->endpoint->init_process(cycle, loc[i]->endpoint_conf)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The sources stop first (their clients are gone), then each endpoint
 * stops its threads, then the tasks they left run and the event fd goes;
 * last, the free message blocks.
 */

static void
ngx_gravitee_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_gravitee_loc_conf_t   **loc;
    ngx_gravitee_main_conf_t   *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_gravitee_module);
    if (gmcf == NULL) {
        return;
    }

    ngx_gravitee_sources_exit(cycle);

    loc = gmcf->locations.elts;

    for (i = 0; i < gmcf->locations.nelts; i++) {
        if (loc[i]->endpoint->exit_process) {
            loc[i]->endpoint->exit_process(cycle, loc[i]->endpoint_conf);
        }
    }

    ngx_gravitee_worker_exit(cycle);

    ngx_gravitee_message_blocks_exit();
}
