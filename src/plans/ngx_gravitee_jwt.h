
/*
 * ngx_gravitee_module: JSON Web Tokens (RFC 7519) signed as JWS compact
 * tokens (RFC 7515), checked with OpenSSL against a set of keys.
 *
 * Apart from the plan (ngx_gravitee_jwt.c) and from NGINX's requests, so
 * that the fuzz target runs the same code: keys live in a pool (their
 * OpenSSL objects are freed by its cleanup), a token is checked with
 * ngx_gravitee_jwt_verify().
 */


#ifndef _NGX_GRAVITEE_JWT_H_INCLUDED_
#define _NGX_GRAVITEE_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include <openssl/evp.h>


/* longer tokens are refused before anything of them is read */
#define NGX_GRAVITEE_JWT_MAX  16384


typedef struct {
    ngx_str_t                   name;        /* "RS256" */
    ngx_uint_t                  type;
    const EVP_MD             *(*md)(void);
    size_t                      ec_size;     /* ES: r and s, each */
} ngx_gravitee_jwt_alg_t;


/* ngx_gravitee_jwt_algs[n] is the algorithm of bit 1 << n */
#define NGX_GRAVITEE_JWT_ALG(n)  ((ngx_uint_t) 1 << (n))

extern ngx_gravitee_jwt_alg_t  ngx_gravitee_jwt_algs[];


typedef struct {
    EVP_PKEY                   *pkey;        /* NULL: an HMAC secret */
    ngx_str_t                   secret;
    ngx_str_t                   kid;         /* empty: none */
    ngx_uint_t                  can;         /* what its type can check */
    ngx_uint_t                  allowed;     /* what it is used for */
    ngx_uint_t                  fixed;       /* a JWK's "alg" said which */
} ngx_gravitee_jwt_key_t;


typedef struct {
    ngx_array_t                 keys;        /* ngx_gravitee_jwt_key_t */
    ngx_uint_t                  algs;        /* accepted: the keys' allowed */
    ngx_uint_t                  jwks;        /* keys have kids to match */
    ngx_pool_t                 *pool;
} ngx_gravitee_jwt_keys_t;


ngx_int_t ngx_gravitee_jwt_keys_init(ngx_gravitee_jwt_keys_t *keys,
    ngx_pool_t *pool);

/*
 * Each adds keys whose "allowed" is the key's own algorithm (a JWK's
 * "alg", or its type's default: HS256, RS256, ES256 or ES384 by curve,
 * EdDSA); they return NULL, or why the input is refused (static text).
 */
ngx_gravitee_jwt_key_t *ngx_gravitee_jwt_keys_add_secret(
    ngx_gravitee_jwt_keys_t *keys, ngx_str_t *secret, ngx_str_t *kid,
    ngx_uint_t alg);
char *ngx_gravitee_jwt_keys_add_pem(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *pem);
char *ngx_gravitee_jwt_keys_add_jwks(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *json);

/* whether some key can check tokens of these algorithms */
ngx_uint_t ngx_gravitee_jwt_keys_can(ngx_gravitee_jwt_keys_t *keys,
    ngx_uint_t algs);

/*
 * NGX_OK: the signature holds, "claims" is the payload's JSON object (the
 * caller json_decref()s it); NGX_DECLINED: refused, "reason" says why;
 * NGX_ERROR: out of memory
 */
ngx_int_t ngx_gravitee_jwt_verify(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *token, json_t **claims, const char **reason);


#endif /* _NGX_GRAVITEE_JWT_H_INCLUDED_ */
