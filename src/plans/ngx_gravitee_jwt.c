
/*
 * ngx_gravitee_module: the JWT plan.
 *
 *     message_proxy_plan jwt (secret_file=F | public_key=F | jwks_file=F)
 *                            [alg=A,B] [leeway=30s] [require=claim:value]
 *                            [client_id_claim=azp];
 *
 * The token comes from "Authorization: Bearer", else from the access_token
 * query argument, as the reference takes it.  Keys are read at start and
 * at reload and kept as OpenSSL keys; a request costs one signature check
 * and two small JSON parses (jansson), nothing blocks.
 *
 * What a token may be is narrow on purpose (RFC 8725): a plan accepts the
 * algorithms its alg= lists, or else its keys' own, never "none", and a
 * key is only ever used with the algorithms of its type, so an HMAC token
 * cannot be checked against an RSA key used as a secret (the algorithm
 * confusion attack).  The claims are read only once the signature holds.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>
#include "ngx_gravitee_plan.h"
#include "ngx_gravitee_jwt.h"


#define NGX_GRAVITEE_JWT_FILE_MAX  (1024 * 1024)

typedef char *(*ngx_gravitee_jwt_add_pt)(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *text);


typedef struct {
    ngx_str_t                   secret_file;
    ngx_str_t                   public_key;
    ngx_str_t                   jwks_file;
    ngx_array_t                *alg;         /* ngx_str_t */
    ngx_msec_t                  leeway;
    ngx_array_t                *require;     /* ngx_gravitee_pair_t */
    ngx_str_t                   client_id_claim;

    ngx_gravitee_jwt_keys_t     keys;
} ngx_gravitee_jwt_conf_t;


static void *ngx_gravitee_jwt_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_jwt_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_jwt_alg_list(ngx_conf_t *cf,
    ngx_gravitee_jwt_conf_t *jcf, ngx_uint_t *algs);
static ngx_int_t ngx_gravitee_jwt_load_secret(ngx_conf_t *cf,
    ngx_gravitee_jwt_conf_t *jcf);
static ngx_int_t ngx_gravitee_jwt_load_keys(ngx_conf_t *cf,
    ngx_gravitee_jwt_conf_t *jcf, ngx_str_t *file, ngx_gravitee_jwt_add_pt add);
static ngx_int_t ngx_gravitee_jwt_credential(ngx_http_request_t *r,
    void *conf, ngx_str_t *cred);
static ngx_int_t ngx_gravitee_jwt_plan_verify(ngx_http_request_t *r,
    void *conf, ngx_str_t *cred, ngx_gravitee_identity_t *id,
    const char **reason);
static ngx_int_t ngx_gravitee_jwt_claims(ngx_http_request_t *r,
    ngx_gravitee_jwt_conf_t *jcf, json_t *claims,
    ngx_gravitee_identity_t *id, const char **reason);
static ngx_int_t ngx_gravitee_jwt_claim_is(json_t *claim, ngx_str_t *value);
static ngx_int_t ngx_gravitee_jwt_claim_str(ngx_http_request_t *r,
    json_t *claims, ngx_str_t *name, ngx_str_t *value);


static ngx_str_t  ngx_gravitee_jwt_azp = ngx_string("azp");
static ngx_str_t  ngx_gravitee_jwt_sub = ngx_string("sub");
static ngx_str_t  ngx_gravitee_jwt_access_token = ngx_string("access_token");


static ngx_gravitee_param_t  ngx_gravitee_jwt_params[] = {

    { ngx_string("secret_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_jwt_conf_t, secret_file), NULL },

    { ngx_string("public_key"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_jwt_conf_t, public_key), NULL },

    { ngx_string("jwks_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_jwt_conf_t, jwks_file), NULL },

    { ngx_string("alg"), ngx_gravitee_param_list,
      offsetof(ngx_gravitee_jwt_conf_t, alg), NULL },

    { ngx_string("leeway"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_jwt_conf_t, leeway), NULL },

    { ngx_string("require"), ngx_gravitee_param_pair,
      offsetof(ngx_gravitee_jwt_conf_t, require), NULL },

    { ngx_string("client_id_claim"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_jwt_conf_t, client_id_claim), NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_plan_t  ngx_gravitee_plan_jwt = {
    ngx_string("jwt"),
    NGX_GRAVITEE_PLAN_JWT,
    ngx_gravitee_jwt_params,
    "JWT_MISSING_TOKEN",
    "JWT_INVALID_TOKEN",
    ngx_gravitee_jwt_create_conf,
    ngx_gravitee_jwt_init_conf,
    ngx_gravitee_jwt_credential,
    ngx_gravitee_jwt_plan_verify
};


static void *
ngx_gravitee_jwt_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_jwt_conf_t  *jcf;

    jcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_jwt_conf_t));
    if (jcf == NULL) {
        return NULL;
    }

    jcf->leeway = NGX_CONF_UNSET_MSEC;

    return jcf;
}


static char *
ngx_gravitee_jwt_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_jwt_conf_t *jcf = conf;

    ngx_int_t                rc;
    ngx_uint_t               sources, algs, i;
    ngx_gravitee_jwt_key_t  *key;

    sources = (jcf->secret_file.len != 0) + (jcf->public_key.len != 0)
              + (jcf->jwks_file.len != 0);

    if (sources != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "plan \"jwt\" needs one of secret_file=, "
                           "public_key= or jwks_file=");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(jcf->leeway, 30000);

    if (jcf->client_id_claim.len == 0) {
        jcf->client_id_claim = ngx_gravitee_jwt_azp;
    }

    algs = 0;

    if (jcf->alg && ngx_gravitee_jwt_alg_list(cf, jcf, &algs) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_gravitee_jwt_keys_init(&jcf->keys, cf->pool) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (jcf->secret_file.len) {
        rc = ngx_gravitee_jwt_load_secret(cf, jcf);

    } else if (jcf->public_key.len) {
        rc = ngx_gravitee_jwt_load_keys(cf, jcf, &jcf->public_key,
                                        ngx_gravitee_jwt_keys_add_pem);

    } else {
        rc = ngx_gravitee_jwt_load_keys(cf, jcf, &jcf->jwks_file,
                                        ngx_gravitee_jwt_keys_add_jwks);
    }

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * alg= lists exactly what the plan accepts, and each must be one that
     * a key can check; without it, each key accepts its own
     */

    key = jcf->keys.keys.elts;

    if (algs) {
        for (i = 0; ngx_gravitee_jwt_algs[i].name.len; i++) {
            if ((algs & NGX_GRAVITEE_JWT_ALG(i))
                && ngx_gravitee_jwt_keys_can(&jcf->keys,
                                             NGX_GRAVITEE_JWT_ALG(i))
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "plan \"jwt\": alg \"%V\" cannot be "
                                   "checked with the key%s given",
                                   &ngx_gravitee_jwt_algs[i].name,
                                   jcf->keys.keys.nelts > 1 ? "s" : "");
                return NGX_CONF_ERROR;
            }
        }

        for (i = 0; i < jcf->keys.keys.nelts; i++) {
            key[i].allowed = (key[i].fixed ? key[i].allowed : key[i].can)
                             & algs;
        }
    }

    jcf->keys.algs = 0;

    for (i = 0; i < jcf->keys.keys.nelts; i++) {
        jcf->keys.algs |= key[i].allowed;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_jwt_alg_list(ngx_conf_t *cf, ngx_gravitee_jwt_conf_t *jcf,
    ngx_uint_t *algs)
{
    ngx_str_t   *name;
    ngx_uint_t   i, j;

    name = jcf->alg->elts;

    for (i = 0; i < jcf->alg->nelts; i++) {

        for (j = 0; ngx_gravitee_jwt_algs[j].name.len; j++) {
            if (ngx_gravitee_jwt_algs[j].name.len == name[i].len
                && ngx_strncmp(ngx_gravitee_jwt_algs[j].name.data,
                               name[i].data, name[i].len) == 0)
            {
                break;
            }
        }

        if (ngx_gravitee_jwt_algs[j].name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "plan \"jwt\": unknown alg \"%V\", allowed: "
                               "HS256, HS384, HS512, RS256, RS384, RS512, "
                               "PS256, ES256, ES384, EdDSA (\"none\" never)",
                               &name[i]);
            return NGX_ERROR;
        }

        *algs |= NGX_GRAVITEE_JWT_ALG(j);
    }

    return NGX_OK;
}


/* the file's bytes are the secret, but for one trailing newline */

static ngx_int_t
ngx_gravitee_jwt_load_secret(ngx_conf_t *cf, ngx_gravitee_jwt_conf_t *jcf)
{
    ngx_str_t  text;

    if (ngx_gravitee_plan_read_file(cf, &jcf->secret_file, &text,
                                    NGX_GRAVITEE_JWT_FILE_MAX)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (text.len && text.data[text.len - 1] == '\n') {
        text.len--;

        if (text.len && text.data[text.len - 1] == '\r') {
            text.len--;
        }
    }

    if (text.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "plan \"jwt\": \"%V\" is empty",
                           &jcf->secret_file);
        return NGX_ERROR;
    }

    if (ngx_gravitee_jwt_keys_add_secret(&jcf->keys, &text, NULL, 0)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a PEM public key or certificate, or a JWKS document */

static ngx_int_t
ngx_gravitee_jwt_load_keys(ngx_conf_t *cf, ngx_gravitee_jwt_conf_t *jcf,
    ngx_str_t *file, ngx_gravitee_jwt_add_pt add)
{
    char       *err;
    ngx_str_t   text;

    if (ngx_gravitee_plan_read_file(cf, file, &text,
                                    NGX_GRAVITEE_JWT_FILE_MAX)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    err = add(&jcf->keys, &text);

    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "plan \"jwt\": \"%V\": %s",
                           file, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "Authorization: Bearer TOKEN", else ?access_token=TOKEN */

static ngx_int_t
ngx_gravitee_jwt_credential(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h && h->value.len >= sizeof("Bearer") - 1
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer",
                           sizeof("Bearer") - 1) == 0
        && (h->value.len == sizeof("Bearer") - 1
            || h->value.data[sizeof("Bearer") - 1] == ' '))
    {
        p = h->value.data + sizeof("Bearer") - 1;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        cred->data = p;
        cred->len = last - p;

        return NGX_OK;
    }

    if (ngx_gravitee_plan_arg(r, &ngx_gravitee_jwt_access_token, cred)
        == NGX_OK)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_gravitee_jwt_plan_verify(ngx_http_request_t *r, void *conf,
    ngx_str_t *cred, ngx_gravitee_identity_t *id, const char **reason)
{
    ngx_gravitee_jwt_conf_t *jcf = conf;

    json_t     *claims;
    ngx_int_t   rc;

    rc = ngx_gravitee_jwt_verify(&jcf->keys, cred, &claims, reason);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_gravitee_jwt_claims(r, jcf, claims, id, reason);

    json_decref(claims);

    return rc;
}


/* the times, the required claims, then who the caller is */

static ngx_int_t
ngx_gravitee_jwt_claims(ngx_http_request_t *r, ngx_gravitee_jwt_conf_t *jcf,
    json_t *claims, ngx_gravitee_identity_t *id, const char **reason)
{
    u_char               *p;
    double                now, leeway, exp, t;
    json_t               *claim;
    ngx_uint_t            i;
    ngx_gravitee_pair_t  *req;

    now = (double) ngx_time();
    leeway = (double) (jcf->leeway / 1000);
    exp = 0;

    claim = json_object_get(claims, "exp");

    if (claim) {
        if (!json_is_number(claim)) {
            *reason = "exp is not a number";
            return NGX_DECLINED;
        }

        exp = json_number_value(claim);

        if (now > exp + leeway) {
            *reason = "token expired";
            return NGX_DECLINED;
        }
    }

    claim = json_object_get(claims, "nbf");

    if (claim) {
        if (!json_is_number(claim)) {
            *reason = "nbf is not a number";
            return NGX_DECLINED;
        }

        if (now + leeway < json_number_value(claim)) {
            *reason = "not yet valid";
            return NGX_DECLINED;
        }
    }

    claim = json_object_get(claims, "iat");

    if (claim) {
        if (!json_is_number(claim)) {
            *reason = "iat is not a number";
            return NGX_DECLINED;
        }

        t = json_number_value(claim);

        if (t > now + leeway) {
            *reason = "issued in the future";
            return NGX_DECLINED;
        }
    }

    if (jcf->require) {
        req = jcf->require->elts;

        for (i = 0; i < jcf->require->nelts; i++) {
            claim = json_object_getn(claims, (const char *) req[i].name.data,
                                     req[i].name.len);

            if (claim == NULL || !ngx_gravitee_jwt_claim_is(claim,
                                                            &req[i].value))
            {
                p = ngx_pnalloc(r->pool, sizeof("claim ") + req[i].name.len);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                ngx_sprintf(p, "claim %V%Z", &req[i].name);
                *reason = (const char *) p;

                return NGX_DECLINED;
            }
        }
    }

    ngx_str_set(&id->plan, "jwt");

    if (ngx_gravitee_jwt_claim_str(r, claims, &jcf->client_id_claim,
                                   &id->application)
           != NGX_OK
        || ngx_gravitee_jwt_claim_str(r, claims, &ngx_gravitee_jwt_sub,
                                      &id->subject)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a stream ends when the token does; one valid for ages, never */

    if (exp > 0 && exp < 1e11) {
        id->expires = (time_t) exp + (time_t) (jcf->leeway / 1000);
    }

    return NGX_OK;
}


/* a string equal to the value, or an array holding it */

static ngx_int_t
ngx_gravitee_jwt_claim_is(json_t *claim, ngx_str_t *value)
{
    size_t       i;
    json_t      *item;
    const char  *word;

    if (json_is_array(claim)) {
        json_array_foreach(claim, i, item) {
            if (ngx_gravitee_jwt_claim_is(item, value)) {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_string(claim)) {
        return json_string_length(claim) == value->len
               && ngx_memcmp(json_string_value(claim), value->data,
                             value->len) == 0;
    }

    if (json_is_boolean(claim)) {
        word = json_is_true(claim) ? "true" : "false";

        return value->len == ngx_strlen(word)
               && ngx_strncmp(value->data, word, value->len) == 0;
    }

    if (json_is_integer(claim)) {
        return ngx_atoof(value->data, value->len)
               == (off_t) json_integer_value(claim);
    }

    return 0;
}


static ngx_int_t
ngx_gravitee_jwt_claim_str(ngx_http_request_t *r, json_t *claims,
    ngx_str_t *name, ngx_str_t *value)
{
    json_t  *claim;

    claim = json_object_getn(claims, (const char *) name->data, name->len);

    if (claim == NULL || !json_is_string(claim)
        || json_string_length(claim) == 0)
    {
        ngx_str_null(value);
        return NGX_OK;
    }

    value->len = json_string_length(claim);
    value->data = ngx_pnalloc(r->pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, json_string_value(claim), value->len);

    return NGX_OK;
}
