
/*
 * ngx_gravitee_module: plans, who may call an API.
 *
 * "message_proxy_plan KIND [key=value...]" declares a plan of a location
 * (or of a server or http block, for the locations that declare none).
 * The plans are checked in NGINX's access phase, so that they compose with
 * allow/deny, auth_request and satisfy, and nothing of an entrypoint runs
 * for a caller they refuse: no WebSocket upgrade, no SSE header, no
 * subscription, no publication.
 *
 * Which plan decides is the reference's rule (its security chain tries
 * JWT, then API key, then keyless, and the first that can run decides): a
 * request that carries a credential of a declared kind is decided by the
 * plans of that kind alone, and refused when none of them takes it; a
 * keyless plan lets in only a request that carries no credential at all.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_plan.h"


typedef struct {
    ngx_gravitee_plan_t        *plan;
    void                       *conf;
} ngx_gravitee_plan_conf_t;


typedef struct {
    ngx_array_t                *plans;       /* ngx_gravitee_plan_conf_t */
    ngx_uint_t                  kinds;       /* a bit per kind declared */
} ngx_gravitee_plan_loc_conf_t;


static ngx_int_t ngx_gravitee_plan_handler(ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_plan_decide(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf, ngx_gravitee_identity_t *id,
    const char **key, const char **reason);
static ngx_int_t ngx_gravitee_plan_kind(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf, ngx_uint_t kind,
    ngx_gravitee_identity_t *id, const char **key, const char **reason);
static ngx_uint_t ngx_gravitee_plan_any_credential(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf);
static const char *ngx_gravitee_plan_missing(
    ngx_gravitee_plan_loc_conf_t *plcf);
static ngx_int_t ngx_gravitee_plan_grant(ngx_http_request_t *r,
    ngx_gravitee_identity_t *id);
static ngx_int_t ngx_gravitee_plan_refuse(ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_plan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

extern ngx_module_t  ngx_gravitee_plan_module;
static ngx_int_t ngx_gravitee_plan_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_gravitee_plan_init(ngx_conf_t *cf);
static void *ngx_gravitee_plan_create_loc_conf(ngx_conf_t *cf);
static char *ngx_gravitee_plan_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_gravitee_plan(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* the plans this build knows: a line here and a file in src/plans */

static ngx_gravitee_plan_t  ngx_gravitee_plan_keyless = {
    ngx_string("keyless"),
    NGX_GRAVITEE_PLAN_KEYLESS,
    NULL,
    "GATEWAY_PLAN_UNRESOLVABLE",
    "GATEWAY_PLAN_UNRESOLVABLE",
    NULL, NULL, NULL, NULL
};

static ngx_gravitee_plan_t  *ngx_gravitee_plans[] = {
    &ngx_gravitee_plan_jwt,
    &ngx_gravitee_plan_api_key,
    &ngx_gravitee_plan_mtls,
    &ngx_gravitee_plan_keyless,
    NULL
};


static ngx_command_t  ngx_gravitee_plan_commands[] = {

    { ngx_string("message_proxy_plan"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_gravitee_plan,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


/* who the caller is, for the access log and the endpoints' parameters */

static ngx_http_variable_t  ngx_gravitee_plan_variables[] = {

    { ngx_string("message_proxy_plan"), NULL,
      ngx_gravitee_plan_variable,
      offsetof(ngx_gravitee_identity_t, plan),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("message_proxy_application"), NULL,
      ngx_gravitee_plan_variable,
      offsetof(ngx_gravitee_identity_t, application),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("message_proxy_subject"), NULL,
      ngx_gravitee_plan_variable,
      offsetof(ngx_gravitee_identity_t, subject),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_module_t  ngx_gravitee_plan_module_ctx = {
    ngx_gravitee_plan_add_variables,       /* preconfiguration */
    ngx_gravitee_plan_init,                /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_gravitee_plan_create_loc_conf,     /* create location configuration */
    ngx_gravitee_plan_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_gravitee_plan_module = {
    NGX_MODULE_V1,
    &ngx_gravitee_plan_module_ctx,         /* module context */
    ngx_gravitee_plan_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_gravitee_plan_unauthorized = ngx_string("Unauthorized");


static ngx_int_t
ngx_gravitee_plan_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_log_t                      log;
    const char                    *key, *reason;
    ngx_gravitee_identity_t       *id;
    ngx_gravitee_plan_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_gravitee_plan_module);

    if (plcf->plans == NULL) {
        return NGX_DECLINED;
    }

    id = ngx_pcalloc(r->pool, sizeof(ngx_gravitee_identity_t));
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key = NULL;
    reason = NULL;

    rc = ngx_gravitee_plan_decide(r, plcf, id, &key, &reason);

    if (rc == NGX_OK) {
        return ngx_gravitee_plan_grant(r, id);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The reference's key and a reason, never the credential itself: the
     * request line NGINX adds to a request's errors would show a token or
     * key given in the query, so this line says the URI without it.
     */

    log = *r->connection->log;
    log.handler = NULL;

    ngx_log_error(NGX_LOG_INFO, &log, 0,
                  "message proxy plans refused the caller: key=%s "
                  "reason=\"%s\", client: %V, uri: \"%V\"", key,
                  reason ? reason : "", &r->connection->addr_text, &r->uri);

    return ngx_gravitee_plan_refuse(r);
}


static ngx_int_t
ngx_gravitee_plan_decide(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf, ngx_gravitee_identity_t *id,
    const char **key, const char **reason)
{
    ngx_int_t   rc;
    ngx_uint_t  kind;

    for (kind = 0; kind < NGX_GRAVITEE_PLAN_KEYLESS; kind++) {

        if (!(plcf->kinds & (1 << kind))) {
            continue;
        }

        rc = ngx_gravitee_plan_kind(r, plcf, kind, id, key, reason);

        if (rc != NGX_DONE) {
            return rc;
        }
    }

    if (plcf->kinds & (1 << NGX_GRAVITEE_PLAN_KEYLESS)) {

        if (ngx_gravitee_plan_any_credential(r, plcf)) {
            /* the reference: a keyless plan is not for a caller that
               shows a credential no other plan takes */
            *key = "GATEWAY_PLAN_UNRESOLVABLE";
            *reason = "a credential that no plan of the API takes";
            return NGX_DECLINED;
        }

        ngx_str_set(&id->plan, "keyless");
        return NGX_OK;
    }

    *key = ngx_gravitee_plan_missing(plcf);
    *reason = "no credential";

    return NGX_DECLINED;
}


/*
 * The plans of one kind: NGX_DONE when the request has no credential for
 * any of them; NGX_OK when one lets the caller in; NGX_DECLINED when
 * there is one and none of them takes it.
 */

static ngx_int_t
ngx_gravitee_plan_kind(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf, ngx_uint_t kind,
    ngx_gravitee_identity_t *id, const char **key, const char **reason)
{
    ngx_int_t                  rc;
    ngx_str_t                  cred;
    ngx_uint_t                 i, found;
    const char                *why;
    ngx_gravitee_plan_conf_t  *pc;

    pc = plcf->plans->elts;
    found = 0;

    for (i = 0; i < plcf->plans->nelts; i++) {

        if (pc[i].plan->kind != kind
            || pc[i].plan->credential(r, pc[i].conf, &cred) != NGX_OK)
        {
            continue;
        }

        why = NULL;

        rc = pc[i].plan->verify(r, pc[i].conf, &cred, id, &why);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        /* the first plan's reason: the one the user wrote first */

        if (!found) {
            *key = pc[i].plan->invalid;
            *reason = why;
            found = 1;
        }
    }

    return found ? NGX_DECLINED : NGX_DONE;
}


/* a credential of any kind, also under the default names */

static ngx_uint_t
ngx_gravitee_plan_any_credential(ngx_http_request_t *r,
    ngx_gravitee_plan_loc_conf_t *plcf)
{
    ngx_str_t                  cred;
    ngx_uint_t                 i;
    ngx_gravitee_plan_conf_t  *pc;

    if (ngx_gravitee_plan_jwt.credential(r, NULL, &cred) == NGX_OK
        || ngx_gravitee_plan_api_key.credential(r, NULL, &cred) == NGX_OK)
    {
        return 1;
    }

    pc = plcf->plans->elts;

    for (i = 0; i < plcf->plans->nelts; i++) {
        if (pc[i].plan->credential
            && pc[i].plan->kind != NGX_GRAVITEE_PLAN_MTLS
            && pc[i].plan->credential(r, pc[i].conf, &cred) == NGX_OK)
        {
            return 1;
        }
    }

    return 0;
}


/* with plans of one kind only, the reference says what is missing */

static const char *
ngx_gravitee_plan_missing(ngx_gravitee_plan_loc_conf_t *plcf)
{
    ngx_uint_t                 i, kinds;
    ngx_gravitee_plan_conf_t  *pc;

    kinds = plcf->kinds;

    if (kinds == 0 || (kinds & (kinds - 1)) != 0) {
        return "GATEWAY_PLAN_UNRESOLVABLE";
    }

    pc = plcf->plans->elts;

    for (i = 0; i < plcf->plans->nelts; i++) {
        if (kinds & (1 << pc[i].plan->kind)) {
            return pc[i].plan->missing;
        }
    }

    return "GATEWAY_PLAN_UNRESOLVABLE";
}


/*
 * The identity is this module's request ctx; the entrypoint that serves
 * the request takes it along in its own (ngx_gravitee_set_ctx), which is
 * all a detached stream keeps.  NGX_OK, not NGX_DECLINED: under "satisfy
 * any" a plan that lets the caller in is enough.
 */

static ngx_int_t
ngx_gravitee_plan_grant(ngx_http_request_t *r, ngx_gravitee_identity_t *id)
{
    ngx_http_set_ctx(r, id, ngx_gravitee_plan_module);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "message proxy plan \"%V\" let in application \"%V\", "
                   "subject \"%V\"", &id->plan, &id->application,
                   &id->subject);

    return NGX_OK;
}


/*
 * The reference's 401 body, from here.  A location with its own
 * "error_page 401", or under "satisfy any" (another access module may
 * still let the caller in), gets the status and NGINX does the rest.
 */

static ngx_int_t
ngx_gravitee_plan_refuse(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (clcf->error_pages) {
        err = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if (err[i].status == NGX_HTTP_UNAUTHORIZED) {
                return NGX_HTTP_UNAUTHORIZED;
            }
        }
    }

    rc = ngx_gravitee_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                 &ngx_gravitee_plan_unauthorized);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


ngx_gravitee_identity_t *
ngx_gravitee_request_identity(ngx_http_request_t *r)
{
    ngx_gravitee_tally_t  *tally;

    /* a detached stream's end record: only the entrypoint's ctx is set */

    tally = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    if (tally && tally->identity) {
        return tally->identity;
    }

    return ngx_http_get_module_ctx(r, ngx_gravitee_plan_module);
}


static ngx_int_t
ngx_gravitee_plan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_gravitee_identity_t  *id;

    id = ngx_gravitee_request_identity(r);

    if (id == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) id + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_gravitee_plan_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content, size_t max)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", name);
        goto failed;
    }

    if (ngx_file_size(&fi) > (off_t) max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is larger than %uz bytes", name, max);
        goto failed;
    }

    content->len = (size_t) ngx_file_size(&fi);
    content->data = ngx_pnalloc(cf->pool, content->len + 1);
    if (content->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, content->data, content->len, 0);

    if (n == NGX_ERROR || (size_t) n != content->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "reading \"%V\" failed", name);
        goto failed;
    }

    content->data[content->len] = '\0';

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", name);
    }

    return NGX_OK;

failed:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", name);
    }

    return NGX_ERROR;
}


/*
 * The next line of a list file (keys, fingerprints) that holds something:
 * blanks around it trimmed, blank lines and "#" comments skipped, "*n"
 * counting every line for the messages.  NGX_DONE at the end.
 */

ngx_int_t
ngx_gravitee_plan_next_line(u_char **pos, u_char *last, ngx_str_t *line,
    ngx_uint_t *n)
{
    u_char  *p, *eol, *end;

    for (p = *pos; p < last; p = eol ? eol + 1 : last) {
        (*n)++;

        eol = ngx_strlchr(p, last, '\n');
        end = eol ? eol : last;

        while (end > p && (end[-1] == '\r' || end[-1] == ' '
                           || end[-1] == '\t'))
        {
            end--;
        }

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p < end && *p != '#') {
            line->data = p;
            line->len = end - p;
            *pos = eol ? eol + 1 : last;
            return NGX_OK;
        }
    }

    *pos = last;

    return NGX_DONE;
}


ngx_int_t
ngx_gravitee_plan_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, name->data, name->len, &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_strlchr(raw.data, raw.data + raw.len, '%') == NULL
        && ngx_strlchr(raw.data, raw.data + raw.len, '+') == NULL)
    {
        *value = raw;
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, raw.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;
    src = raw.data;

    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);

    value->len = dst - value->data;

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_plan_add_variables(ngx_conf_t *cf)
{
    return ngx_gravitee_conf_add_variables(cf, ngx_gravitee_plan_variables);
}


static ngx_int_t
ngx_gravitee_plan_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_gravitee_plan_handler;

    return NGX_OK;
}


static void *
ngx_gravitee_plan_create_loc_conf(ngx_conf_t *cf)
{
    ngx_gravitee_plan_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_plan_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     plcf->plans = NULL;
     *     plcf->kinds = 0;
     */

    return plcf;
}


/* as NGINX's own lists (allow, add_header): declaring any replaces all */

static char *
ngx_gravitee_plan_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_gravitee_plan_loc_conf_t *prev = parent;
    ngx_gravitee_plan_loc_conf_t *conf = child;

    if (conf->plans == NULL) {
        conf->plans = prev->plans;
        conf->kinds = prev->kinds;
    }

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_plan(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_gravitee_plan_loc_conf_t *plcf = conf;

    char                      *rv;
    ngx_str_t                 *value, allowed[8];
    ngx_uint_t                 i, n;
    ngx_gravitee_plan_t       *plan;
    ngx_gravitee_plan_conf_t  *pc;

    value = cf->args->elts;

    plan = NULL;
    n = 0;

    for (i = 0; ngx_gravitee_plans[i]; i++) {
        if (ngx_gravitee_plans[i]->name.len == value[1].len
            && ngx_strncmp(ngx_gravitee_plans[i]->name.data, value[1].data,
                           value[1].len) == 0)
        {
            plan = ngx_gravitee_plans[i];
        }

        allowed[n++] = ngx_gravitee_plans[i]->name;
    }

    if (plan == NULL) {
        return ngx_gravitee_unknown(cf, "plan", NULL, &value[1], allowed, n);
    }

    if (plcf->plans == NULL) {
        plcf->plans = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_gravitee_plan_conf_t));
        if (plcf->plans == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (plan->kind == NGX_GRAVITEE_PLAN_KEYLESS
        && (plcf->kinds & (1 << NGX_GRAVITEE_PLAN_KEYLESS)))
    {
        return "is duplicate: a keyless plan is declared already";
    }

    pc = ngx_array_push(plcf->plans);
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    pc->plan = plan;
    pc->conf = NULL;

    if (plan->create_conf) {
        pc->conf = plan->create_conf(cf);
        if (pc->conf == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (plan->params == NULL && cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "plan \"%V\" takes no parameters, not \"%V\"",
                           &plan->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    if (plan->params) {
        rv = ngx_gravitee_parse_params(cf, "plan", &plan->name, plan->params,
                                       pc->conf);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (plan->init_conf) {
        rv = plan->init_conf(cf, pc->conf);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    plcf->kinds |= 1 << plan->kind;

    return NGX_CONF_OK;
}
