
/*
 * ngx_gravitee_module: the API key plan.
 *
 *     message_proxy_plan api_key keys=FILE [header=X-Gravitee-Api-Key]
 *                                [query=api-key] [propagate=off];
 *
 * The key comes from the header, else from the query argument, as the
 * reference takes it.  The file ("KEY [application]" per line) is read at
 * start and at reload, never while serving.  Only the SHA-256 of each key
 * is kept, sorted: a caller's key is hashed, found by binary search over
 * the digests and compared in constant time, so that neither the file nor
 * the time an answer takes tells anything of a key.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ngx_gravitee_plan.h"


#define NGX_GRAVITEE_API_KEY_FILE_MAX  (64 * 1024 * 1024)
#define NGX_GRAVITEE_API_KEY_DIGEST    32


typedef struct {
    u_char                      digest[NGX_GRAVITEE_API_KEY_DIGEST];
    ngx_str_t                   application;
} ngx_gravitee_api_key_t;


typedef struct {
    ngx_str_t                   keys_file;
    ngx_str_t                   header;
    ngx_str_t                   query;
    ngx_flag_t                  propagate;

    ngx_gravitee_api_key_t     *keys;        /* sorted by digest */
    ngx_uint_t                  nkeys;
} ngx_gravitee_api_key_conf_t;


static void *ngx_gravitee_api_key_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_api_key_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_gravitee_api_key_load(ngx_conf_t *cf,
    ngx_gravitee_api_key_conf_t *akcf, ngx_str_t *text);
static int ngx_libc_cdecl ngx_gravitee_api_key_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_gravitee_api_key_digest(ngx_str_t *key, u_char *digest);
static ngx_int_t ngx_gravitee_api_key_credential(ngx_http_request_t *r,
    void *conf, ngx_str_t *cred);
static ngx_int_t ngx_gravitee_api_key_verify(ngx_http_request_t *r,
    void *conf, ngx_str_t *cred, ngx_gravitee_identity_t *id,
    const char **reason);
static ngx_gravitee_api_key_t *ngx_gravitee_api_key_find(
    ngx_gravitee_api_key_conf_t *akcf, u_char *digest);
static void ngx_gravitee_api_key_strip(ngx_http_request_t *r,
    ngx_str_t *header);


static ngx_str_t  ngx_gravitee_api_key_header =
    ngx_string("X-Gravitee-Api-Key");
static ngx_str_t  ngx_gravitee_api_key_query = ngx_string("api-key");


static ngx_gravitee_param_t  ngx_gravitee_api_key_params[] = {

    { ngx_string("keys"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_api_key_conf_t, keys_file), NULL },

    { ngx_string("header"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_api_key_conf_t, header), NULL },

    { ngx_string("query"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_api_key_conf_t, query), NULL },

    { ngx_string("propagate"), ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_api_key_conf_t, propagate), NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_plan_t  ngx_gravitee_plan_api_key = {
    ngx_string("api_key"),
    NGX_GRAVITEE_PLAN_API_KEY,
    ngx_gravitee_api_key_params,
    "API_KEY_MISSING",
    "API_KEY_INVALID",
    ngx_gravitee_api_key_create_conf,
    ngx_gravitee_api_key_init_conf,
    ngx_gravitee_api_key_credential,
    ngx_gravitee_api_key_verify
};


static void *
ngx_gravitee_api_key_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_api_key_conf_t  *akcf;

    akcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_api_key_conf_t));
    if (akcf == NULL) {
        return NULL;
    }

    akcf->propagate = NGX_CONF_UNSET;

    return akcf;
}


static char *
ngx_gravitee_api_key_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_api_key_conf_t *akcf = conf;

    ngx_str_t  text;

    if (akcf->keys_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "plan \"api_key\" needs keys=FILE");
        return NGX_CONF_ERROR;
    }

    if (akcf->header.len == 0) {
        akcf->header = ngx_gravitee_api_key_header;
    }

    if (akcf->query.len == 0) {
        akcf->query = ngx_gravitee_api_key_query;
    }

    ngx_conf_init_value(akcf->propagate, 0);

    if (ngx_gravitee_plan_read_file(cf, &akcf->keys_file, &text,
                                    NGX_GRAVITEE_API_KEY_FILE_MAX)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_gravitee_api_key_load(cf, akcf, &text);
}


/* "KEY [application]" per line; "#" starts a comment line */

static char *
ngx_gravitee_api_key_load(ngx_conf_t *cf, ngx_gravitee_api_key_conf_t *akcf,
    ngx_str_t *text)
{
    u_char                  *p, *last, *end;
    ngx_str_t                line, key, app;
    ngx_uint_t               n, i;
    ngx_gravitee_api_key_t  *k;

    n = 1;

    for (p = text->data; p < text->data + text->len; p++) {
        n += (*p == '\n');
    }

    akcf->keys = ngx_palloc(cf->pool, n * sizeof(ngx_gravitee_api_key_t));
    if (akcf->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    p = text->data;
    last = text->data + text->len;
    n = 0;

    while (ngx_gravitee_plan_next_line(&p, last, &line, &n) == NGX_OK) {

        key.data = line.data;
        end = line.data + line.len;

        for (key.len = 0; key.len < line.len; key.len++) {
            if (key.data[key.len] == ' ' || key.data[key.len] == '\t') {
                break;
            }
        }

        app.data = key.data + key.len;

        while (app.data < end && (*app.data == ' ' || *app.data == '\t')) {
            app.data++;
        }

        app.len = end - app.data;

        if (ngx_strlchr(app.data, end, ' ') || ngx_strlchr(app.data, end, '\t'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\", line %ui: a line is \"KEY "
                               "[application]\"", &akcf->keys_file, n);
            return NGX_CONF_ERROR;
        }

        k = &akcf->keys[akcf->nkeys];

        if (ngx_gravitee_api_key_digest(&key, k->digest) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* the application is kept; the key, only as its digest */

        k->application.len = app.len;
        k->application.data = ngx_pstrdup(cf->pool, &app);
        if (app.len && k->application.data == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < akcf->nkeys; i++) {
            if (ngx_memcmp(akcf->keys[i].digest, k->digest,
                           NGX_GRAVITEE_API_KEY_DIGEST) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\", line %ui: duplicate key",
                                   &akcf->keys_file, n);
                return NGX_CONF_ERROR;
            }
        }

        akcf->nkeys++;
    }

    /* the file's copy of the keys goes: only digests stay */
    ngx_explicit_memzero(text->data, text->len);

    if (akcf->nkeys == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" holds no key: the plan lets nobody in",
                           &akcf->keys_file);
    }

    ngx_qsort(akcf->keys, akcf->nkeys, sizeof(ngx_gravitee_api_key_t),
              ngx_gravitee_api_key_cmp);

    return NGX_CONF_OK;
}


static int ngx_libc_cdecl
ngx_gravitee_api_key_cmp(const void *one, const void *two)
{
    const ngx_gravitee_api_key_t  *a = one, *b = two;

    return ngx_memcmp(a->digest, b->digest, NGX_GRAVITEE_API_KEY_DIGEST);
}


static ngx_int_t
ngx_gravitee_api_key_digest(ngx_str_t *key, u_char *digest)
{
    unsigned int  len;

    len = NGX_GRAVITEE_API_KEY_DIGEST;

    if (EVP_Digest(key->data, key->len, digest, &len, EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* conf NULL: under the reference's default names */

static ngx_int_t
ngx_gravitee_api_key_credential(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred)
{
    ngx_gravitee_api_key_conf_t *akcf = conf;

    ngx_str_t                   *header, *query;
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    header = akcf ? &akcf->header : &ngx_gravitee_api_key_header;
    query = akcf ? &akcf->query : &ngx_gravitee_api_key_query;

    /* header strings are NUL-terminated: from the directive, or static */

    h = ngx_gravitee_header_next(r, &it, (const char *) header->data);

    if (h) {
        *cred = h->value;
        return NGX_OK;
    }

    if (ngx_gravitee_plan_arg(r, query, cred) == NGX_OK) {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_gravitee_api_key_verify(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred, ngx_gravitee_identity_t *id, const char **reason)
{
    ngx_gravitee_api_key_conf_t *akcf = conf;

    u_char                   digest[NGX_GRAVITEE_API_KEY_DIGEST];
    ngx_gravitee_api_key_t  *k;

    if (ngx_gravitee_api_key_digest(cred, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    k = ngx_gravitee_api_key_find(akcf, digest);

    if (k == NULL) {
        *reason = "unknown key";
        return NGX_DECLINED;
    }

    ngx_str_set(&id->plan, "api_key");
    id->application = k->application;

    if (!akcf->propagate) {
        ngx_gravitee_api_key_strip(r, &akcf->header);
    }

    return NGX_OK;
}


static ngx_gravitee_api_key_t *
ngx_gravitee_api_key_find(ngx_gravitee_api_key_conf_t *akcf, u_char *digest)
{
    ngx_int_t                rc;
    ngx_uint_t               lo, hi, mid;
    ngx_gravitee_api_key_t  *k;

    lo = 0;
    hi = akcf->nkeys;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        k = &akcf->keys[mid];

        /* the order of digests tells nothing of a key */
        rc = ngx_memcmp(digest, k->digest, NGX_GRAVITEE_API_KEY_DIGEST);

        if (rc == 0) {
            /* the last step in constant time all the same */
            return CRYPTO_memcmp(digest, k->digest,
                                 NGX_GRAVITEE_API_KEY_DIGEST) == 0 ? k : NULL;
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/*
 * The key does not reach the broker (the http-post entrypoint's
 * request_headers_to_message): its header lines are marked as NGINX marks
 * a header it took out, with hash 0.
 */

static void
ngx_gravitee_api_key_strip(ngx_http_request_t *r, ngx_str_t *header)
{
    ngx_table_elt_t             *h;
    ngx_gravitee_header_iter_t   it = { NULL, 0 };

    while ((h = ngx_gravitee_header_next(r, &it, (const char *) header->data)))
    {
        h->hash = 0;
    }
}
