
/*
 * ngx_gravitee_module: the mTLS plan.
 *
 *     message_proxy_plan mtls [fingerprints=FILE];
 *
 * NGINX verifies the client's certificate (ssl_verify_client on or
 * optional, ssl_client_certificate); the plan lets in a caller whose
 * certificate NGINX verified and, with a list, whose SHA-256 fingerprint
 * is in it (one per line, as "openssl x509 -fingerprint -sha256" prints
 * it, colons optional, either case).  The application and the subject are
 * the certificate's subject, as $ssl_client_s_dn prints it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_plan.h"


#define NGX_GRAVITEE_MTLS_FILE_MAX  (16 * 1024 * 1024)
#define NGX_GRAVITEE_MTLS_DIGEST    32


typedef struct {
    ngx_str_t                   fingerprints_file;
    u_char                     *fingerprints;  /* sorted, 32 bytes each */
    ngx_uint_t                  nfingerprints;
} ngx_gravitee_mtls_conf_t;


static void *ngx_gravitee_mtls_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_mtls_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_mtls_parse_line(u_char *p, u_char *end,
    u_char *digest);
static int ngx_libc_cdecl ngx_gravitee_mtls_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_gravitee_mtls_credential(ngx_http_request_t *r,
    void *conf, ngx_str_t *cred);
static ngx_int_t ngx_gravitee_mtls_verify(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred, ngx_gravitee_identity_t *id, const char **reason);


static ngx_gravitee_param_t  ngx_gravitee_mtls_params[] = {

    { ngx_string("fingerprints"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mtls_conf_t, fingerprints_file), NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_plan_t  ngx_gravitee_plan_mtls = {
    ngx_string("mtls"),
    NGX_GRAVITEE_PLAN_MTLS,
    ngx_gravitee_mtls_params,
    "CLIENT_CERTIFICATE_MISSING",
    "CLIENT_CERTIFICATE_INVALID",
    ngx_gravitee_mtls_create_conf,
    ngx_gravitee_mtls_init_conf,
    ngx_gravitee_mtls_credential,
    ngx_gravitee_mtls_verify
};


static void *
ngx_gravitee_mtls_create_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_mtls_conf_t));
}


static char *
ngx_gravitee_mtls_init_conf(ngx_conf_t *cf, void *conf)
{
#if (NGX_HTTP_SSL)
    ngx_gravitee_mtls_conf_t *mcf = conf;

    u_char      *p, *last, *fp;
    ngx_str_t    text, line;
    ngx_uint_t   n;

    if (mcf->fingerprints_file.len == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_gravitee_plan_read_file(cf, &mcf->fingerprints_file, &text,
                                    NGX_GRAVITEE_MTLS_FILE_MAX)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    n = 1;

    for (p = text.data; p < text.data + text.len; p++) {
        n += (*p == '\n');
    }

    mcf->fingerprints = ngx_palloc(cf->pool, n * NGX_GRAVITEE_MTLS_DIGEST);
    if (mcf->fingerprints == NULL) {
        return NGX_CONF_ERROR;
    }

    p = text.data;
    last = text.data + text.len;
    n = 0;

    while (ngx_gravitee_plan_next_line(&p, last, &line, &n) == NGX_OK) {

        fp = mcf->fingerprints + mcf->nfingerprints * NGX_GRAVITEE_MTLS_DIGEST;

        if (ngx_gravitee_mtls_parse_line(line.data, line.data + line.len, fp)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\", line %ui: a SHA-256 fingerprint is "
                               "64 hex digits, colons optional",
                               &mcf->fingerprints_file, n);
            return NGX_CONF_ERROR;
        }

        mcf->nfingerprints++;
    }

    if (mcf->nfingerprints == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" holds no fingerprint: the plan lets "
                           "nobody in", &mcf->fingerprints_file);
    }

    ngx_qsort(mcf->fingerprints, mcf->nfingerprints, NGX_GRAVITEE_MTLS_DIGEST,
              ngx_gravitee_mtls_cmp);

    return NGX_CONF_OK;

#else

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "plan \"mtls\" needs NGINX built with SSL");
    return NGX_CONF_ERROR;

#endif
}


/* "sha256 Fingerprint=AB:CD:..." as openssl prints it, or the hex alone */

static ngx_int_t
ngx_gravitee_mtls_parse_line(u_char *p, u_char *end, u_char *digest)
{
    u_char      *eq;
    ngx_int_t    hi, lo;
    ngx_uint_t   n;

    eq = ngx_strlchr(p, end, '=');

    if (eq) {
        p = eq + 1;
    }

    n = 0;

    while (p < end) {
        if (*p == ':') {
            p++;
            continue;
        }

        if (end - p < 2 || n == NGX_GRAVITEE_MTLS_DIGEST) {
            return NGX_ERROR;
        }

        hi = ngx_hextoi(p, 1);
        lo = ngx_hextoi(p + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        digest[n++] = (u_char) (hi * 16 + lo);
        p += 2;
    }

    return n == NGX_GRAVITEE_MTLS_DIGEST ? NGX_OK : NGX_ERROR;
}


static int ngx_libc_cdecl
ngx_gravitee_mtls_cmp(const void *one, const void *two)
{
    return ngx_memcmp(one, two, NGX_GRAVITEE_MTLS_DIGEST);
}


/* a certificate counts as a credential once the client sent one */

static ngx_int_t
ngx_gravitee_mtls_credential(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred)
{
#if (NGX_HTTP_SSL)
    X509  *cert;

    if (r->connection->ssl == NULL) {
        return NGX_DECLINED;
    }

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);

    if (cert == NULL) {
        return NGX_DECLINED;
    }

    X509_free(cert);

    ngx_str_null(cred);

    return NGX_OK;

#else

    return NGX_DECLINED;

#endif
}


static ngx_int_t
ngx_gravitee_mtls_verify(ngx_http_request_t *r, void *conf, ngx_str_t *cred,
    ngx_gravitee_identity_t *id, const char **reason)
{
#if (NGX_HTTP_SSL)
    ngx_gravitee_mtls_conf_t *mcf = conf;

    u_char             digest[EVP_MAX_MD_SIZE];
    X509              *cert;
    ngx_int_t          rc;
    ngx_str_t          dn;
    ngx_uint_t         lo, hi, mid;
    unsigned int       len;
    ngx_connection_t  *c;

    c = r->connection;

    /* what NGINX found of the chain (ssl_verify_client optional lets an
       unverified one through to us) */

    if (SSL_get_verify_result(c->ssl->connection) != X509_V_OK) {
        *reason = "certificate not verified";
        return NGX_DECLINED;
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);

    if (cert == NULL) {
        *reason = "no certificate";
        return NGX_DECLINED;
    }

    rc = X509_digest(cert, EVP_sha256(), digest, &len);

    X509_free(cert);

    if (rc != 1 || len != NGX_GRAVITEE_MTLS_DIGEST) {
        return NGX_ERROR;
    }

    if (mcf->fingerprints_file.len) {
        lo = 0;
        hi = mcf->nfingerprints;
        rc = 1;

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;

            rc = ngx_memcmp(digest,
                            mcf->fingerprints + mid * NGX_GRAVITEE_MTLS_DIGEST,
                            NGX_GRAVITEE_MTLS_DIGEST);
            if (rc == 0) {
                break;
            }

            if (rc < 0) {
                hi = mid;

            } else {
                lo = mid + 1;
            }
        }

        if (rc != 0) {
            *reason = "certificate not in the fingerprint list";
            return NGX_DECLINED;
        }
    }

    if (ngx_ssl_get_subject_dn(c, r->pool, &dn) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&id->plan, "mtls");
    id->application = dn;
    id->subject = dn;

    return NGX_OK;

#else

    return NGX_DECLINED;

#endif
}
