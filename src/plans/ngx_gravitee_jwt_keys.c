
/*
 * ngx_gravitee_module: JWT keys and the check of a token's signature.
 *
 * A key is read once (a secret, a PEM public key or certificate, a JWKS)
 * and knows which algorithms its type can check ("can") and which it is
 * used for ("allowed").  A token is split, its header read, its signature
 * checked with the keys allowed its "alg" (and of its "kid"), and only
 * then its payload parsed: nothing of an unsigned payload is looked at.
 * The segments are decoded into a buffer on the stack: a token is at most
 * NGX_GRAVITEE_JWT_MAX bytes, and nothing is allocated for a refusal.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "ngx_gravitee_jwt.h"


#define NGX_GRAVITEE_JWT_HMAC   0
#define NGX_GRAVITEE_JWT_RSA    1
#define NGX_GRAVITEE_JWT_PSS    2
#define NGX_GRAVITEE_JWT_EC     3
#define NGX_GRAVITEE_JWT_EDDSA  4

/* RFC 7518, 3.3: a key of 2048 bits or larger */
#define NGX_GRAVITEE_JWT_RSA_MIN_BITS  2048


ngx_gravitee_jwt_alg_t  ngx_gravitee_jwt_algs[] = {
    { ngx_string("HS256"), NGX_GRAVITEE_JWT_HMAC, EVP_sha256, 0 },
    { ngx_string("HS384"), NGX_GRAVITEE_JWT_HMAC, EVP_sha384, 0 },
    { ngx_string("HS512"), NGX_GRAVITEE_JWT_HMAC, EVP_sha512, 0 },
    { ngx_string("RS256"), NGX_GRAVITEE_JWT_RSA, EVP_sha256, 0 },
    { ngx_string("RS384"), NGX_GRAVITEE_JWT_RSA, EVP_sha384, 0 },
    { ngx_string("RS512"), NGX_GRAVITEE_JWT_RSA, EVP_sha512, 0 },
    { ngx_string("PS256"), NGX_GRAVITEE_JWT_PSS, EVP_sha256, 0 },
    { ngx_string("ES256"), NGX_GRAVITEE_JWT_EC, EVP_sha256, 32 },
    { ngx_string("ES384"), NGX_GRAVITEE_JWT_EC, EVP_sha384, 48 },
    { ngx_string("EdDSA"), NGX_GRAVITEE_JWT_EDDSA, NULL, 0 },
    { ngx_null_string, 0, NULL, 0 }
};

#define NGX_GRAVITEE_JWT_HS256   NGX_GRAVITEE_JWT_ALG(0)
#define NGX_GRAVITEE_JWT_HS      (NGX_GRAVITEE_JWT_ALG(0)                    \
                                  | NGX_GRAVITEE_JWT_ALG(1)                  \
                                  | NGX_GRAVITEE_JWT_ALG(2))
#define NGX_GRAVITEE_JWT_RS256   NGX_GRAVITEE_JWT_ALG(3)
#define NGX_GRAVITEE_JWT_RS      (NGX_GRAVITEE_JWT_ALG(3)                    \
                                  | NGX_GRAVITEE_JWT_ALG(4)                  \
                                  | NGX_GRAVITEE_JWT_ALG(5)                  \
                                  | NGX_GRAVITEE_JWT_ALG(6))
#define NGX_GRAVITEE_JWT_ES256   NGX_GRAVITEE_JWT_ALG(7)
#define NGX_GRAVITEE_JWT_ES384   NGX_GRAVITEE_JWT_ALG(8)
#define NGX_GRAVITEE_JWT_ED      NGX_GRAVITEE_JWT_ALG(9)


static void ngx_gravitee_jwt_keys_cleanup(void *data);
static char *ngx_gravitee_jwt_keys_add_pkey(ngx_gravitee_jwt_keys_t *keys,
    EVP_PKEY *pkey, ngx_str_t *kid, ngx_uint_t alg);
static char *ngx_gravitee_jwt_pkey_type(EVP_PKEY *pkey, ngx_uint_t *can,
    ngx_uint_t *own);
static char *ngx_gravitee_jwt_jwk(ngx_gravitee_jwt_keys_t *keys, json_t *jwk);
static char *ngx_gravitee_jwt_jwk_rsa(json_t *jwk, EVP_PKEY **pkey,
    ngx_pool_t *pool);
static char *ngx_gravitee_jwt_jwk_ec(json_t *jwk, EVP_PKEY **pkey,
    ngx_pool_t *pool);
static char *ngx_gravitee_jwt_jwk_okp(json_t *jwk, EVP_PKEY **pkey,
    ngx_pool_t *pool);
static ngx_int_t ngx_gravitee_jwt_jwk_member(json_t *jwk, const char *name,
    ngx_str_t *value, ngx_pool_t *pool);
static EVP_PKEY *ngx_gravitee_jwt_fromdata(const char *type,
    OSSL_PARAM_BLD *bld);
static ngx_int_t ngx_gravitee_jwt_alg_find(const char *name, size_t len);
static ngx_int_t ngx_gravitee_jwt_b64(u_char *src, size_t len, ngx_str_t *dst);
static json_t *ngx_gravitee_jwt_json(ngx_str_t *text);
static ngx_int_t ngx_gravitee_jwt_check(ngx_gravitee_jwt_key_t *key,
    ngx_gravitee_jwt_alg_t *alg, ngx_str_t *input, ngx_str_t *sig);
static ngx_int_t ngx_gravitee_jwt_check_ec(EVP_PKEY *pkey,
    ngx_gravitee_jwt_alg_t *alg, ngx_str_t *input, ngx_str_t *sig);
static ngx_int_t ngx_gravitee_jwt_check_evp(EVP_PKEY *pkey,
    ngx_gravitee_jwt_alg_t *alg, ngx_str_t *input, u_char *sig,
    size_t siglen);


ngx_int_t
ngx_gravitee_jwt_keys_init(ngx_gravitee_jwt_keys_t *keys, ngx_pool_t *pool)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_array_init(&keys->keys, pool, 2, sizeof(ngx_gravitee_jwt_key_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    keys->algs = 0;
    keys->jwks = 0;
    keys->pool = pool;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_gravitee_jwt_keys_cleanup;
    cln->data = keys;

    return NGX_OK;
}


static void
ngx_gravitee_jwt_keys_cleanup(void *data)
{
    ngx_gravitee_jwt_keys_t *keys = data;

    ngx_uint_t               i;
    ngx_gravitee_jwt_key_t  *key;

    key = keys->keys.elts;

    for (i = 0; i < keys->keys.nelts; i++) {
        if (key[i].pkey) {
            EVP_PKEY_free(key[i].pkey);
        }

        if (key[i].secret.len) {
            ngx_explicit_memzero(key[i].secret.data, key[i].secret.len);
        }
    }

    keys->keys.nelts = 0;
}


ngx_gravitee_jwt_key_t *
ngx_gravitee_jwt_keys_add_secret(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *secret, ngx_str_t *kid, ngx_uint_t alg)
{
    ngx_gravitee_jwt_key_t  *key;

    key = ngx_array_push(&keys->keys);
    if (key == NULL) {
        return NULL;
    }

    ngx_memzero(key, sizeof(ngx_gravitee_jwt_key_t));

    key->secret.data = ngx_pnalloc(keys->pool, secret->len);
    if (key->secret.data == NULL) {
        keys->keys.nelts--;
        return NULL;
    }

    ngx_memcpy(key->secret.data, secret->data, secret->len);
    key->secret.len = secret->len;

    if (kid) {
        key->kid = *kid;
    }

    key->can = NGX_GRAVITEE_JWT_HS;
    key->allowed = alg ? alg : NGX_GRAVITEE_JWT_HS256;
    key->fixed = (alg != 0);
    keys->algs |= key->allowed;

    return key;
}


/* a PEM public key ("openssl pkey -pubout"), or a certificate's key */

char *
ngx_gravitee_jwt_keys_add_pem(ngx_gravitee_jwt_keys_t *keys, ngx_str_t *pem)
{
    BIO       *bio;
    X509      *cert;
    EVP_PKEY  *pkey;

    bio = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (bio == NULL) {
        return "out of memory";
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

    if (pkey == NULL) {
        (void) BIO_reset(bio);

        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }

    BIO_free(bio);
    ERR_clear_error();

    if (pkey == NULL) {
        return "is not a PEM public key (\"BEGIN PUBLIC KEY\") nor a PEM "
               "certificate";
    }

    return ngx_gravitee_jwt_keys_add_pkey(keys, pkey, NULL, 0);
}


/* takes pkey, also on failure; alg: a JWK's "alg" bit, 0 for its own */

static char *
ngx_gravitee_jwt_keys_add_pkey(ngx_gravitee_jwt_keys_t *keys,
    EVP_PKEY *pkey, ngx_str_t *kid, ngx_uint_t alg)
{
    char                    *err;
    ngx_uint_t               can, own;
    ngx_gravitee_jwt_key_t  *key;

    err = ngx_gravitee_jwt_pkey_type(pkey, &can, &own);

    if (err == NULL && alg && !(alg & can)) {
        err = "its \"alg\" does not fit the key's type";
    }

    if (err) {
        EVP_PKEY_free(pkey);
        return err;
    }

    key = ngx_array_push(&keys->keys);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return "out of memory";
    }

    ngx_memzero(key, sizeof(ngx_gravitee_jwt_key_t));

    key->pkey = pkey;
    key->can = can;
    key->allowed = alg ? alg : own;
    key->fixed = (alg != 0);

    if (kid) {
        key->kid = *kid;
    }

    keys->algs |= key->allowed;

    return NULL;
}


static char *
ngx_gravitee_jwt_pkey_type(EVP_PKEY *pkey, ngx_uint_t *can, ngx_uint_t *own)
{
    char    group[64];
    size_t  len;

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pkey) < NGX_GRAVITEE_JWT_RSA_MIN_BITS) {
            return "an RSA key of fewer than 2048 bits";
        }

        *can = NGX_GRAVITEE_JWT_RS;
        *own = NGX_GRAVITEE_JWT_RS256;
        return NULL;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &len)
            != 1)
        {
            ERR_clear_error();
            return "an EC key without a named curve";
        }

        if (ngx_strcmp(group, "prime256v1") == 0
            || ngx_strcmp(group, "P-256") == 0)
        {
            *can = NGX_GRAVITEE_JWT_ES256;
            *own = NGX_GRAVITEE_JWT_ES256;
            return NULL;
        }

        if (ngx_strcmp(group, "secp384r1") == 0
            || ngx_strcmp(group, "P-384") == 0)
        {
            *can = NGX_GRAVITEE_JWT_ES384;
            *own = NGX_GRAVITEE_JWT_ES384;
            return NULL;
        }

        return "an EC key on a curve other than P-256 and P-384";

    case EVP_PKEY_ED25519:
        *can = NGX_GRAVITEE_JWT_ED;
        *own = NGX_GRAVITEE_JWT_ED;
        return NULL;

    default:
        return "a key of a type other than RSA, EC and Ed25519";
    }
}


/* {"keys":[...]}: RFC 7517; a key for encryption ("use":"enc") is left */

char *
ngx_gravitee_jwt_keys_add_jwks(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *json)
{
    u_char      *p;
    char        *err;
    size_t       i;
    json_t      *root, *list, *jwk;
    ngx_uint_t   before;

    root = ngx_gravitee_jwt_json(json);

    if (root == NULL) {
        return "is not a JSON object";
    }

    list = json_object_get(root, "keys");

    if (!json_is_array(list)) {
        json_decref(root);
        return "has no \"keys\" array";
    }

    before = keys->keys.nelts;
    keys->jwks = 1;

    json_array_foreach(list, i, jwk) {

        err = ngx_gravitee_jwt_jwk(keys, jwk);

        if (err) {
            json_decref(root);

            p = ngx_pnalloc(keys->pool, ngx_strlen(err) + NGX_INT_T_LEN + 16);
            if (p == NULL) {
                return "out of memory";
            }

            ngx_sprintf(p, "keys[%uz] %s%Z", i, err);

            return (char *) p;
        }
    }

    json_decref(root);

    if (keys->keys.nelts == before) {
        return "holds no key to check signatures with";
    }

    return NULL;
}


static char *
ngx_gravitee_jwt_jwk(ngx_gravitee_jwt_keys_t *keys, json_t *jwk)
{
    char                    *err;
    json_t                  *kty, *use, *alg, *kid;
    EVP_PKEY                *pkey;
    ngx_int_t                n;
    ngx_str_t                id, k, *idp;
    ngx_uint_t               bit;
    ngx_gravitee_jwt_key_t  *key;

    if (!json_is_object(jwk)) {
        return "is not an object";
    }

    kty = json_object_get(jwk, "kty");
    use = json_object_get(jwk, "use");
    alg = json_object_get(jwk, "alg");
    kid = json_object_get(jwk, "kid");

    if (!json_is_string(kty)) {
        return "has no \"kty\"";
    }

    if (json_is_string(use) && ngx_strcmp(json_string_value(use), "sig") != 0)
    {
        return NULL;
    }

    bit = 0;

    if (alg) {
        n = json_is_string(alg)
            ? ngx_gravitee_jwt_alg_find(json_string_value(alg),
                                        json_string_length(alg))
            : NGX_ERROR;

        if (n == NGX_ERROR) {
            return "has an \"alg\" this module does not check";
        }

        bit = NGX_GRAVITEE_JWT_ALG(n);
    }

    idp = NULL;

    if (kid) {
        if (!json_is_string(kid)) {
            return "has a \"kid\" that is not a string";
        }

        if (ngx_gravitee_jwt_jwk_member(jwk, "kid", &id, NULL) != NGX_OK) {
            return "out of memory";
        }

        id.data = ngx_pstrdup(keys->pool, &id);
        if (id.data == NULL) {
            return "out of memory";
        }

        idp = &id;
    }

    if (ngx_strcmp(json_string_value(kty), "oct") == 0) {
        if (ngx_gravitee_jwt_jwk_member(jwk, "k", &k, keys->pool) != NGX_OK
            || k.len == 0)
        {
            return "(oct) has no valid \"k\"";
        }

        if (bit && !(bit & NGX_GRAVITEE_JWT_HS)) {
            return "its \"alg\" does not fit the key's type";
        }

        key = ngx_gravitee_jwt_keys_add_secret(keys, &k, idp, bit);

        ngx_explicit_memzero(k.data, k.len);

        return key ? NULL : "out of memory";
    }

    if (ngx_strcmp(json_string_value(kty), "RSA") == 0) {
        err = ngx_gravitee_jwt_jwk_rsa(jwk, &pkey, keys->pool);

    } else if (ngx_strcmp(json_string_value(kty), "EC") == 0) {
        err = ngx_gravitee_jwt_jwk_ec(jwk, &pkey, keys->pool);

    } else if (ngx_strcmp(json_string_value(kty), "OKP") == 0) {
        err = ngx_gravitee_jwt_jwk_okp(jwk, &pkey, keys->pool);

    } else {
        return "has an unknown \"kty\" (RSA, EC, OKP and oct are known)";
    }

    if (err) {
        return err;
    }

    return ngx_gravitee_jwt_keys_add_pkey(keys, pkey, idp, bit);
}


static char *
ngx_gravitee_jwt_jwk_rsa(json_t *jwk, EVP_PKEY **pkey, ngx_pool_t *pool)
{
    BIGNUM          *n, *e;
    ngx_str_t        nb, eb;
    OSSL_PARAM_BLD  *bld;

    if (ngx_gravitee_jwt_jwk_member(jwk, "n", &nb, pool) != NGX_OK
        || ngx_gravitee_jwt_jwk_member(jwk, "e", &eb, pool) != NGX_OK
        || nb.len == 0 || eb.len == 0)
    {
        return "(RSA) has no valid \"n\" and \"e\"";
    }

    n = BN_bin2bn(nb.data, (int) nb.len, NULL);
    e = BN_bin2bn(eb.data, (int) eb.len, NULL);
    bld = OSSL_PARAM_BLD_new();

    *pkey = NULL;

    if (n && e && bld
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
    {
        *pkey = ngx_gravitee_jwt_fromdata("RSA", bld);
    }

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    return *pkey ? NULL : "(RSA) is not a valid key";
}


static char *
ngx_gravitee_jwt_jwk_ec(json_t *jwk, EVP_PKEY **pkey, ngx_pool_t *pool)
{
    u_char           point[1 + 2 * 48];
    size_t           size;
    json_t          *crv;
    ngx_str_t        x, y;
    const char      *group;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM_BLD  *bld;

    crv = json_object_get(jwk, "crv");

    if (json_is_string(crv) && ngx_strcmp(json_string_value(crv), "P-256")
                               == 0)
    {
        group = "prime256v1";
        size = 32;

    } else if (json_is_string(crv)
               && ngx_strcmp(json_string_value(crv), "P-384") == 0)
    {
        group = "secp384r1";
        size = 48;

    } else {
        return "(EC) has a \"crv\" other than P-256 and P-384";
    }

    if (ngx_gravitee_jwt_jwk_member(jwk, "x", &x, pool) != NGX_OK
        || ngx_gravitee_jwt_jwk_member(jwk, "y", &y, pool) != NGX_OK
        || x.len != size || y.len != size)
    {
        return "(EC) has no valid \"x\" and \"y\" for its curve";
    }

    /* the uncompressed point, as OpenSSL takes it */

    point[0] = 0x04;
    ngx_memcpy(point + 1, x.data, size);
    ngx_memcpy(point + 1 + size, y.data, size);

    *pkey = NULL;

    bld = OSSL_PARAM_BLD_new();

    if (bld
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, 0) == 1
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            point, 1 + 2 * size) == 1)
    {
        *pkey = ngx_gravitee_jwt_fromdata("EC", bld);
    }

    OSSL_PARAM_BLD_free(bld);

    if (*pkey == NULL) {
        return "(EC) is not a valid key";
    }

    /* a point off the curve would leak the key of whoever signs with it */

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL);

    if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
        ERR_clear_error();
        return "(EC) has a point that is not on its curve";
    }

    EVP_PKEY_CTX_free(ctx);

    return NULL;
}


static char *
ngx_gravitee_jwt_jwk_okp(json_t *jwk, EVP_PKEY **pkey, ngx_pool_t *pool)
{
    json_t     *crv;
    ngx_str_t   x;

    crv = json_object_get(jwk, "crv");

    if (!json_is_string(crv)
        || ngx_strcmp(json_string_value(crv), "Ed25519") != 0)
    {
        return "(OKP) has a \"crv\" other than Ed25519";
    }

    if (ngx_gravitee_jwt_jwk_member(jwk, "x", &x, pool) != NGX_OK
        || x.len != 32)
    {
        return "(OKP) has no valid \"x\"";
    }

    *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x.data, 32);

    if (*pkey == NULL) {
        ERR_clear_error();
        return "(OKP) is not a valid key";
    }

    return NULL;
}


/*
 * A string member, base64url-decoded into the pool; with pool NULL, the
 * string as it is.  NGX_DECLINED: missing, not a string or not base64url.
 */

static ngx_int_t
ngx_gravitee_jwt_jwk_member(json_t *jwk, const char *name, ngx_str_t *value,
    ngx_pool_t *pool)
{
    json_t     *member;
    ngx_str_t   text;

    member = json_object_get(jwk, name);

    if (!json_is_string(member)) {
        return NGX_DECLINED;
    }

    text.data = (u_char *) json_string_value(member);
    text.len = json_string_length(member);

    if (pool == NULL) {
        *value = text;
        return NGX_OK;
    }

    value->data = ngx_pnalloc(pool, ngx_base64_decoded_length(text.len) + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    return ngx_gravitee_jwt_b64(text.data, text.len, value);
}


static EVP_PKEY *
ngx_gravitee_jwt_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    pkey = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    ERR_clear_error();

    return pkey;
}


ngx_uint_t
ngx_gravitee_jwt_keys_can(ngx_gravitee_jwt_keys_t *keys, ngx_uint_t algs)
{
    ngx_uint_t               i;
    ngx_gravitee_jwt_key_t  *key;

    key = keys->keys.elts;

    for (i = 0; i < keys->keys.nelts; i++) {
        if (key[i].can & algs) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_gravitee_jwt_alg_find(const char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; ngx_gravitee_jwt_algs[i].name.len; i++) {
        if (ngx_gravitee_jwt_algs[i].name.len == len
            && ngx_strncmp(ngx_gravitee_jwt_algs[i].name.data, name, len)
               == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/*
 * base64url without padding (RFC 7515, 2), strictly: NGINX's decoder
 * stops at a "=" and would take "abc=junk" for "abc", and ignores the
 * unused low bits of the last character, which would give one token
 * several spellings (RFC 4648, 3.5 lets a decoder refuse them: we do, as
 * a token's text may be its identity in a cache or a replay check);
 * dst->data has room
 */

static ngx_int_t
ngx_gravitee_jwt_b64(u_char *src, size_t len, ngx_str_t *dst)
{
    u_char     c;
    size_t     i;
    ngx_int_t  v;
    ngx_str_t  in;

    if (len % 4 == 1) {
        return NGX_DECLINED;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '-' || c == '_') {
            v = (c == '-') ? 62 : 63;

        } else {
            return NGX_DECLINED;
        }
    }

    /* 2 characters carry 1 byte and 4 unused bits, 3 carry 2 and 2 */

    if ((len % 4 == 2 && (v & 0x0f)) || (len % 4 == 3 && (v & 0x03))) {
        return NGX_DECLINED;
    }

    in.data = src;
    in.len = len;

    if (ngx_decode_base64url(dst, &in) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* an object, without duplicate names (RFC 7515, 4: reject or last wins) */

static json_t *
ngx_gravitee_jwt_json(ngx_str_t *text)
{
    json_t        *json;
    json_error_t   error;

    json = json_loadb((const char *) text->data, text->len,
                      JSON_REJECT_DUPLICATES, &error);

    if (json && !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }

    return json;
}


ngx_int_t
ngx_gravitee_jwt_verify(ngx_gravitee_jwt_keys_t *keys, ngx_str_t *token,
    json_t **claims, const char **reason)
{
    u_char                  *dot1, *dot2, *last;
    u_char                   buf[NGX_GRAVITEE_JWT_MAX];
    json_t                  *header, *alg, *kid;
    ngx_int_t                n, rc;
    ngx_str_t                head, payload, sig, input;
    ngx_uint_t               i, bit, tried, kid_seen;
    ngx_gravitee_jwt_key_t  *key;

    *claims = NULL;

    if (token->len > NGX_GRAVITEE_JWT_MAX) {
        *reason = "too large";
        return NGX_DECLINED;
    }

    last = token->data + token->len;

    dot1 = ngx_strlchr(token->data, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    /* three segments: a JWE (five) or anything else is not ours */

    if (dot2 == NULL || ngx_strlchr(dot2 + 1, last, '.') != NULL
        || dot1 == token->data || dot2 == dot1 + 1)
    {
        *reason = "malformed";
        return NGX_DECLINED;
    }

    if (dot2 + 1 == last) {
        *reason = "unsigned";
        return NGX_DECLINED;
    }

    /* the three decoded segments fit the buffer: 3/4 of the token */

    head.data = buf;
    payload.data = NULL;

    if (ngx_gravitee_jwt_b64(token->data, dot1 - token->data, &head)
        != NGX_OK)
    {
        *reason = "malformed";
        return NGX_DECLINED;
    }

    sig.data = head.data + head.len;

    if (ngx_gravitee_jwt_b64(dot2 + 1, last - dot2 - 1, &sig) != NGX_OK) {
        *reason = "malformed";
        return NGX_DECLINED;
    }

    header = ngx_gravitee_jwt_json(&head);

    if (header == NULL) {
        *reason = "malformed";
        return NGX_DECLINED;
    }

    alg = json_object_get(header, "alg");
    kid = json_object_get(header, "kid");

    n = json_is_string(alg) ? ngx_gravitee_jwt_alg_find(json_string_value(alg),
                                                  json_string_length(alg))
                            : NGX_ERROR;

    if (n == NGX_ERROR || !(keys->algs & NGX_GRAVITEE_JWT_ALG(n))) {
        json_decref(header);
        *reason = "algorithm not allowed";
        return NGX_DECLINED;
    }

    /* RFC 7515, 4.1.11: an extension we do not know must be refused */

    if (json_object_get(header, "crit") || (kid && !json_is_string(kid))) {
        json_decref(header);
        *reason = "header not understood";
        return NGX_DECLINED;
    }

    bit = NGX_GRAVITEE_JWT_ALG(n);

    input.data = token->data;
    input.len = dot2 - token->data;

    key = keys->keys.elts;
    tried = 0;
    kid_seen = 0;
    rc = NGX_DECLINED;

    for (i = 0; i < keys->keys.nelts; i++) {

        if (kid && key[i].kid.len) {
            if (key[i].kid.len != json_string_length(kid)
                || ngx_memcmp(key[i].kid.data, json_string_value(kid),
                              key[i].kid.len) != 0)
            {
                continue;
            }

            kid_seen = 1;
        }

        if (!(key[i].allowed & bit)) {
            continue;
        }

        tried++;

        rc = ngx_gravitee_jwt_check(&key[i], &ngx_gravitee_jwt_algs[n],
                                    &input, &sig);

        if (rc != NGX_DECLINED) {
            break;
        }
    }

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            *reason = (kid && keys->jwks && !kid_seen) ? "unknown key"
                      : tried ? "bad signature" : "no key for the algorithm";
        }

        json_decref(header);
        return rc;
    }

    json_decref(header);

    /* signed: now the payload is worth reading */

    payload.data = sig.data + sig.len;

    if (ngx_gravitee_jwt_b64(dot1 + 1, dot2 - dot1 - 1, &payload) != NGX_OK
        || (*claims = ngx_gravitee_jwt_json(&payload)) == NULL)
    {
        *reason = "malformed";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_jwt_check(ngx_gravitee_jwt_key_t *key,
    ngx_gravitee_jwt_alg_t *alg, ngx_str_t *input, ngx_str_t *sig)
{
    u_char        mac[EVP_MAX_MD_SIZE];
    unsigned int  len;

    switch (alg->type) {

    case NGX_GRAVITEE_JWT_HMAC:
        if (HMAC(alg->md(), key->secret.data, (int) key->secret.len,
                 input->data, input->len, mac, &len)
            == NULL)
        {
            ERR_clear_error();
            return NGX_ERROR;
        }

        return (sig->len == len && CRYPTO_memcmp(mac, sig->data, len) == 0)
               ? NGX_OK : NGX_DECLINED;

    case NGX_GRAVITEE_JWT_EC:
        return ngx_gravitee_jwt_check_ec(key->pkey, alg, input, sig);

    default:
        return ngx_gravitee_jwt_check_evp(key->pkey, alg, input, sig->data,
                                          sig->len);
    }
}


/* JWS carries r || s (RFC 7518, 3.4); OpenSSL takes a DER ECDSA-Sig */

static ngx_int_t
ngx_gravitee_jwt_check_ec(EVP_PKEY *pkey, ngx_gravitee_jwt_alg_t *alg,
    ngx_str_t *input, ngx_str_t *sig)
{
    int         len;
    BIGNUM     *r, *s;
    u_char     *der;
    ngx_int_t   rc;
    ECDSA_SIG  *es;

    if (sig->len != 2 * alg->ec_size) {
        return NGX_DECLINED;
    }

    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig->data, (int) alg->ec_size, NULL);
    s = BN_bin2bn(sig->data + alg->ec_size, (int) alg->ec_size, NULL);

    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
    {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        ERR_clear_error();
        return NGX_ERROR;
    }

    der = NULL;
    len = i2d_ECDSA_SIG(es, &der);

    ECDSA_SIG_free(es);

    if (len <= 0) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = ngx_gravitee_jwt_check_evp(pkey, alg, input, der, len);

    OPENSSL_free(der);

    return rc;
}


static ngx_int_t
ngx_gravitee_jwt_check_evp(EVP_PKEY *pkey, ngx_gravitee_jwt_alg_t *alg,
    ngx_str_t *input, u_char *sig, size_t siglen)
{
    int            rc;
    EVP_MD_CTX    *ctx;
    EVP_PKEY_CTX  *pctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    rc = EVP_DigestVerifyInit(ctx, &pctx, alg->md ? alg->md() : NULL, NULL,
                              pkey);

    /* PS256: the salt is as long as the hash (RFC 7518, 3.5) */

    if (rc == 1 && alg->type == NGX_GRAVITEE_JWT_PSS) {
        rc = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
                > 0;
    }

    if (rc == 1) {
        rc = EVP_DigestVerify(ctx, sig, siglen, input->data, input->len);
    }

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return rc == 1 ? NGX_OK : NGX_DECLINED;
}
