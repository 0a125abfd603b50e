
/*
 * ngx_gravitee_module: fuzz targets of the JWT plan's parsers
 * (src/plans/ngx_gravitee_jwt_keys.c).
 *
 *   jwt    ngx_gravitee_jwt_verify() of any token against key sets made
 *          once (an HMAC secret, RSA 2048, EC P-256 and P-384, Ed25519:
 *          from PEMs, or from a JWKS with kids; every algorithm of each
 *          key's type, or its own only), a token as it is or signed by the
 *          driver with the secret; a model of RFC 7515 and 7518 says what
 *          must verify: a token that verifies has three segments of strict
 *          base64url, a header object whose "alg" the set accepts (never
 *          "none") and no "crit", the claims of its payload; an HMAC token
 *          verifies exactly when its MAC is the secret's
 *   jwks   ngx_gravitee_jwt_keys_add_jwks() of any bytes, in a pool of its
 *          own destroyed after (its cleanup frees the OpenSSL keys: a leak
 *          shows); the keys made are consistent (type, algorithms, kid),
 *          and the tokens of the key header are checked with them
 *
 * The keys are public ones in ngx_gravitee_fuzz_jwt_keys.h, written by
 * fuzz/seeds-jwt.pl with the seeds.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "ngx_gravitee_jwt.h"
#include "ngx_gravitee_fuzz.h"
#include "ngx_gravitee_fuzz_jwt_keys.h"


/* the key sets of the jwt target: PEMs or JWKS, every algorithm or own */
#define NGX_GRAVITEE_FUZZ_JWT_SETS  4

/* ngx_gravitee_jwt_algs[] order */
#define NGX_GRAVITEE_FUZZ_JWT_NALGS  10


static ngx_int_t ngx_gravitee_fuzz_jwt_init(ngx_cycle_t *cycle);
static int ngx_gravitee_fuzz_jwt_run(const uint8_t *data, size_t size);
static int ngx_gravitee_fuzz_jwks_run(const uint8_t *data, size_t size);
static void ngx_gravitee_fuzz_jwt_widen(ngx_gravitee_jwt_keys_t *keys);
static void ngx_gravitee_fuzz_jwt_check(ngx_gravitee_jwt_keys_t *keys,
    ngx_str_t *token, ngx_int_t rc, json_t *claims, const char *reason);
static ngx_int_t ngx_gravitee_fuzz_jwt_b64(const u_char *p, size_t len,
    u_char *out, size_t *outlen);
static ngx_int_t ngx_gravitee_fuzz_jwt_alg(json_t *alg);
static void ngx_gravitee_fuzz_jwks_check(ngx_gravitee_jwt_keys_t *keys,
    char *err);
static const EVP_MD *ngx_gravitee_fuzz_jwt_md(ngx_uint_t n);


ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_jwt = {
    "jwt", ngx_gravitee_fuzz_jwt_init, ngx_gravitee_fuzz_jwt_run
};

ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_jwks = {
    "jwks", NULL, ngx_gravitee_fuzz_jwks_run
};


static volatile ngx_uint_t  ngx_gravitee_fuzz_jwks_sink;

static ngx_gravitee_jwt_keys_t  ngx_gravitee_fuzz_jwt_sets[
                                    NGX_GRAVITEE_FUZZ_JWT_SETS];

/* the HS keys' bits, the RSA type's, ... as ngx_gravitee_jwt_keys.c has */
#define NGX_GRAVITEE_FUZZ_JWT_HS  0x007
#define NGX_GRAVITEE_FUZZ_JWT_RS  0x078
#define NGX_GRAVITEE_FUZZ_JWT_ALL 0x3ff


/*
 * Four sets: 0 the secret and the PEMs, every algorithm of each key's type
 * (as alg= listing them all); 1 the same, each key its own algorithm (no
 * alg=); 2 the JWKS, every algorithm of a key whose JWK has no "alg"; 3 the
 * JWKS as it is.  Each valid token of the header must verify.
 */

static ngx_int_t
ngx_gravitee_fuzz_jwt_init(ngx_cycle_t *cycle)
{
    char                      *err;
    json_t                    *claims;
    ngx_int_t                  rc;
    ngx_str_t                  s;
    ngx_uint_t                 i, k;
    const char                *reason;
    ngx_gravitee_jwt_keys_t   *keys;

    for (k = 0; k < NGX_GRAVITEE_FUZZ_JWT_SETS; k++) {
        keys = &ngx_gravitee_fuzz_jwt_sets[k];

        if (ngx_gravitee_jwt_keys_init(keys, ngx_gravitee_fuzz_pool())
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (k < 2) {
            ngx_str_set(&s, NGX_GRAVITEE_FUZZ_JWT_SECRET);

            if (ngx_gravitee_jwt_keys_add_secret(keys, &s, NULL, 0)
                == NULL)
            {
                return NGX_ERROR;
            }

            for (i = 0; ngx_gravitee_fuzz_jwt_pems[i]; i++) {
                s.data = (u_char *) ngx_gravitee_fuzz_jwt_pems[i];
                s.len = ngx_strlen(s.data);

                err = ngx_gravitee_jwt_keys_add_pem(keys, &s);

                if (err) {
                    ngx_gravitee_fuzz_fail("PEM key %lu: %s",
                                           (unsigned long) i, err);
                }
            }

        } else {
            s.data = (u_char *) ngx_gravitee_fuzz_jwt_jwks_doc;
            s.len = sizeof(ngx_gravitee_fuzz_jwt_jwks_doc) - 1;

            err = ngx_gravitee_jwt_keys_add_jwks(keys, &s);

            if (err) {
                ngx_gravitee_fuzz_fail("the JWKS: %s", err);
            }
        }

        if (k % 2 == 0) {
            ngx_gravitee_fuzz_jwt_widen(keys);
        }
    }

    ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_jwt_sets[0].algs
                             == NGX_GRAVITEE_FUZZ_JWT_ALL
                             && ngx_gravitee_fuzz_jwt_sets[2].algs
                                == NGX_GRAVITEE_FUZZ_JWT_ALL,
                             "a key set does not accept every algorithm");

    /* the header's tokens: without kid, then with kid */

    for (i = 0; ngx_gravitee_fuzz_jwt_tokens[i]; i++) {
        s.data = (u_char *) ngx_gravitee_fuzz_jwt_tokens[i];
        s.len = ngx_strlen(s.data);

        for (k = (i < NGX_GRAVITEE_FUZZ_JWT_NALGS) ? 0 : 2;
             k < NGX_GRAVITEE_FUZZ_JWT_SETS;
             k += 2)
        {
            rc = ngx_gravitee_jwt_verify(&ngx_gravitee_fuzz_jwt_sets[k], &s,
                                         &claims, &reason);

            if (rc != NGX_OK) {
                ngx_gravitee_fuzz_fail("the valid token %lu (%s) is refused "
                                       "by key set %lu: %s",
                                       (unsigned long) i,
                                       ngx_gravitee_jwt_algs[
                                          i % NGX_GRAVITEE_FUZZ_JWT_NALGS]
                                          .name.data,
                                       (unsigned long) k,
                                       rc == NGX_DECLINED ? reason : "error");
            }

            ngx_gravitee_fuzz_jwt_check(&ngx_gravitee_fuzz_jwt_sets[k], &s,
                                        rc, claims, reason);
            json_decref(claims);
        }
    }

    return NGX_OK;
}


/* every algorithm of the key's type, unless its JWK's "alg" fixed one */

static void
ngx_gravitee_fuzz_jwt_widen(ngx_gravitee_jwt_keys_t *keys)
{
    ngx_uint_t               i;
    ngx_gravitee_jwt_key_t  *key;

    key = keys->keys.elts;
    keys->algs = 0;

    for (i = 0; i < keys->keys.nelts; i++) {
        if (!key[i].fixed) {
            key[i].allowed = key[i].can;
        }

        keys->algs |= key[i].allowed;
    }
}


/*
 * A flags byte: bits 0-1 the mode (0 and 3: the rest is the token; 1: the
 * rest is the signing input, the driver appends the HMAC's segment; 2: a
 * string is the header, the rest the payload, the driver encodes both and
 * signs), 2 the JWKS set, 3 each key its own algorithm only, 4-5 the
 * driver's HMAC (HS256, HS384, HS512, HS256), 6 the token is padded with
 * "A" to 16381 + (a second byte % 8) bytes.
 */

static int
ngx_gravitee_fuzz_jwt_run(const uint8_t *data, size_t size)
{
    u_char                    *p, mac[EVP_MAX_MD_SIZE];
    json_t                    *claims;
    size_t                     len, want;
    ngx_int_t                  rc;
    ngx_str_t                  token, head, payload, src, dst;
    ngx_uint_t                 flags, mode, pad, hs;
    unsigned int               maclen;
    const char                *reason;
    ngx_gravitee_fuzz_in_t     in;
    ngx_gravitee_jwt_keys_t   *keys;

    in.pos = data;
    in.last = data + size;

    flags = ngx_gravitee_fuzz_byte(&in);
    pad = (flags & 0x40) ? 16381 + ngx_gravitee_fuzz_byte(&in) % 8 : 0;
    mode = flags & 3;
    hs = (flags >> 4) & 3;
    hs = (hs == 3) ? 0 : hs;

    keys = &ngx_gravitee_fuzz_jwt_sets[((flags & 0x04) ? 2 : 0)
                                       + ((flags & 0x08) ? 1 : 0)];

    head.len = 0;
    head.data = NULL;

    if (mode == 2) {
        head = ngx_gravitee_fuzz_string(&in);
    }

    payload = ngx_gravitee_fuzz_bytes(&in, in.last - in.pos);

    /* room for everything encoded, the HMAC's segment, the padding */

    len = 2 * (head.len + payload.len) + 2 * EVP_MAX_MD_SIZE + 16 + pad;

    token.data = ngx_alloc(len, ngx_gravitee_fuzz_log);
    if (token.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    if (mode == 2) {
        dst.data = token.data;
        ngx_encode_base64url(&dst, &head);
        p = token.data + dst.len;
        *p++ = '.';

        dst.data = p;
        ngx_encode_base64url(&dst, &payload);
        p += dst.len;

    } else {
        p = ngx_cpymem(token.data, payload.data, payload.len);
    }

    if (mode == 1 || mode == 2) {
        if (HMAC(ngx_gravitee_fuzz_jwt_md(hs),
                 NGX_GRAVITEE_FUZZ_JWT_SECRET,
                 sizeof(NGX_GRAVITEE_FUZZ_JWT_SECRET) - 1,
                 token.data, p - token.data, mac, &maclen)
            == NULL)
        {
            ngx_gravitee_fuzz_fail("HMAC failed");
        }

        *p++ = '.';
        src.data = mac;
        src.len = maclen;
        dst.data = p;
        ngx_encode_base64url(&dst, &src);
        p += dst.len;
    }

    token.len = p - token.data;

    if (pad && token.len < pad) {
        want = pad - token.len;
        ngx_memset(p, 'A', want);
        token.len += want;
    }

    /* exactly the token's bytes: a read past them shows */

    p = ngx_alloc(token.len ? token.len : 1, ngx_gravitee_fuzz_log);
    if (p == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    ngx_memcpy(p, token.data, token.len);
    ngx_free(token.data);
    token.data = p;

    claims = (json_t *) -1;
    reason = NULL;

    rc = ngx_gravitee_jwt_verify(keys, &token, &claims, &reason);

    ngx_gravitee_fuzz_jwt_check(keys, &token, rc, claims, reason);

    if (rc == NGX_OK) {
        json_decref(claims);
    }

    ngx_free(token.data);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


static const EVP_MD *
ngx_gravitee_fuzz_jwt_md(ngx_uint_t n)
{
    switch (n) {
    case 0:
        return EVP_sha256();
    case 1:
        return EVP_sha384();
    default:
        return EVP_sha512();
    }
}


/*
 * The model: what a token must be to verify (RFC 7515 compact form, RFC
 * 7518's algorithms), decoded here on its own.  For an HMAC algorithm it
 * decides: the token verifies exactly when a secret of the set allowed
 * the algorithm, of the token's kid if both have one, makes its MAC.
 * For the others (no private keys here): a token that verifies meets
 * everything but the signature, which OpenSSL checked.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_jwt_check(ngx_gravitee_jwt_keys_t *keys, ngx_str_t *token,
    ngx_int_t rc, json_t *claims, const char *reason)
{
    u_char                  *t, *last, *dot1, *dot2, *buf, *hb, *pb, *sb;
    u_char                   mac[EVP_MAX_MD_SIZE];
    size_t                   i, dots, hlen, plen, slen;
    json_t                  *header, *payload, *alg, *kid;
    ngx_int_t                n;
    ngx_uint_t               valid, signed_ok, decided;
    unsigned int             maclen;
    json_error_t             error;
    ngx_gravitee_jwt_key_t  *key;

    if (rc == NGX_ERROR) {
        ngx_gravitee_fuzz_fail("ngx_gravitee_jwt_verify() failed (out of "
                               "memory, or OpenSSL)");
    }

    ngx_gravitee_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                             "an unknown return code");

    if (rc == NGX_DECLINED) {
        ngx_gravitee_fuzz_assert(reason != NULL && ngx_strlen(reason) > 0,
                                 "refused without a reason");
        ngx_gravitee_fuzz_assert(claims == NULL, "refused with claims");

    } else {
        ngx_gravitee_fuzz_assert(claims != NULL
                                 && claims != (json_t *) -1
                                 && json_is_object(claims),
                                 "verified without a claims object");
    }

    if (token->len > NGX_GRAVITEE_JWT_MAX) {
        ngx_gravitee_fuzz_assert(rc == NGX_DECLINED
                                 && ngx_strcmp(reason, "too large") == 0,
                                 "a token over 16 KiB is not refused as too "
                                 "large");
        return;
    }

    t = token->data;
    last = t + token->len;
    dots = 0;
    dot1 = NULL;
    dot2 = NULL;

    for (i = 0; i < token->len; i++) {
        if (t[i] == '.') {
            if (dots == 0) {
                dot1 = &t[i];
            } else if (dots == 1) {
                dot2 = &t[i];
            }

            dots++;
        }
    }

    valid = (dots == 2 && dot1 > t && dot2 > dot1 + 1 && dot2 + 1 < last);

    if (!valid) {
        ngx_gravitee_fuzz_assert(rc == NGX_DECLINED,
                                 "a token that is not three non-empty "
                                 "segments verifies");
        return;
    }

    buf = malloc(token->len);
    if (buf == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    hb = buf;
    hlen = 0;
    plen = 0;
    slen = 0;
    valid = ngx_gravitee_fuzz_jwt_b64(t, dot1 - t, hb, &hlen) == NGX_OK;
    pb = hb + hlen;
    valid = valid && ngx_gravitee_fuzz_jwt_b64(dot1 + 1, dot2 - dot1 - 1,
                                               pb, &plen) == NGX_OK;
    sb = pb + plen;
    valid = valid && ngx_gravitee_fuzz_jwt_b64(dot2 + 1, last - dot2 - 1,
                                               sb, &slen) == NGX_OK;

    header = NULL;
    payload = NULL;
    n = NGX_ERROR;

    if (valid) {
        header = json_loadb((char *) hb, hlen, JSON_REJECT_DUPLICATES,
                            &error);
        payload = json_loadb((char *) pb, plen, JSON_REJECT_DUPLICATES,
                             &error);

        valid = json_is_object(header) && json_is_object(payload);
    }

    kid = NULL;

    if (valid) {
        alg = json_object_get(header, "alg");
        kid = json_object_get(header, "kid");

        n = ngx_gravitee_fuzz_jwt_alg(alg);

        valid = n != NGX_ERROR
                && (keys->algs & NGX_GRAVITEE_JWT_ALG(n))
                && json_object_get(header, "crit") == NULL
                && (kid == NULL || json_is_string(kid));
    }

    /* an HMAC algorithm: is there a secret that makes this MAC */

    decided = 0;
    signed_ok = 0;

    if (valid && NGX_GRAVITEE_JWT_ALG(n) & NGX_GRAVITEE_FUZZ_JWT_HS) {
        decided = 1;
        key = keys->keys.elts;

        for (i = 0; i < keys->keys.nelts; i++) {
            if (key[i].pkey != NULL
                || !(key[i].allowed & NGX_GRAVITEE_JWT_ALG(n)))
            {
                continue;
            }

            if (kid && key[i].kid.len
                && (key[i].kid.len != json_string_length(kid)
                    || ngx_memcmp(key[i].kid.data, json_string_value(kid),
                                  key[i].kid.len) != 0))
            {
                continue;
            }

            if (HMAC(ngx_gravitee_fuzz_jwt_md(n), key[i].secret.data,
                     (int) key[i].secret.len, t, dot2 - t, mac, &maclen)
                == NULL)
            {
                ngx_gravitee_fuzz_fail("HMAC failed");
            }

            if (maclen == slen && ngx_memcmp(mac, sb, slen) == 0) {
                signed_ok = 1;
                break;
            }
        }
    }

    if (rc == NGX_OK) {
        ngx_gravitee_fuzz_assert(valid, "a token verifies that is not "
                                 "strict base64url, or whose header is not "
                                 "an object, has an alg the set does not "
                                 "accept (or none), a crit, a kid not a "
                                 "string, or whose payload is no object");
        ngx_gravitee_fuzz_assert(!decided || signed_ok,
                                 "an HMAC token verifies whose MAC no "
                                 "secret of the set makes");
        ngx_gravitee_fuzz_assert(json_equal(claims, payload),
                                 "the claims are not the payload");

    } else if (decided && signed_ok) {
        ngx_gravitee_fuzz_fail("an HMAC token made with the set's secret "
                               "is refused: %s", reason);
    }

    json_decref(header);
    json_decref(payload);
    free(buf);
}


/*
 * base64url without padding, strictly: also the unused low bits of the
 * last character must be zero (RFC 4648, 3.5), one spelling per token
 */

ngx_gravitee_fuzz_checker
static ngx_int_t
ngx_gravitee_fuzz_jwt_b64(const u_char *p, size_t len, u_char *out,
    size_t *outlen)
{
    size_t      i, n;
    uint32_t    acc, bits, v;

    acc = 0;
    bits = 0;
    n = 0;

    if (len % 4 == 1) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (p[i] >= 'A' && p[i] <= 'Z') {
            v = p[i] - 'A';
        } else if (p[i] >= 'a' && p[i] <= 'z') {
            v = p[i] - 'a' + 26;
        } else if (p[i] >= '0' && p[i] <= '9') {
            v = p[i] - '0' + 52;
        } else if (p[i] == '-') {
            v = 62;
        } else if (p[i] == '_') {
            v = 63;
        } else {
            return NGX_DECLINED;
        }

        acc = (acc << 6) | v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (u_char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    if (acc != 0) {
        return NGX_DECLINED;
    }

    *outlen = n;

    return NGX_OK;
}


ngx_gravitee_fuzz_checker
static ngx_int_t
ngx_gravitee_fuzz_jwt_alg(json_t *alg)
{
    static const char  *names[] = { "HS256", "HS384", "HS512", "RS256",
                                    "RS384", "RS512", "PS256", "ES256",
                                    "ES384", "EdDSA" };
    ngx_uint_t          i;

    if (!json_is_string(alg)) {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_GRAVITEE_FUZZ_JWT_NALGS; i++) {
        if (json_string_length(alg) == 5
            && ngx_memcmp(json_string_value(alg), names[i], 5) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/* the document as it is, into a fresh key set */

static int
ngx_gravitee_fuzz_jwks_run(const uint8_t *data, size_t size)
{
    char                      *err;
    u_char                    *copy;
    json_t                    *claims;
    ngx_int_t                  rc;
    ngx_str_t                  json, s;
    ngx_uint_t                 i;
    ngx_pool_t                *pool;
    const char                *reason;
    ngx_gravitee_jwt_keys_t   *keys;

    pool = ngx_gravitee_fuzz_pool();

    keys = ngx_pcalloc(pool, sizeof(ngx_gravitee_jwt_keys_t));
    if (keys == NULL || ngx_gravitee_jwt_keys_init(keys, pool) != NGX_OK) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    /* exactly the input's bytes, in the pool as a file read would be */

    copy = ngx_pnalloc(pool, size ? size : 1);
    if (copy == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    ngx_memcpy(copy, data, size);
    json.data = copy;
    json.len = size;

    err = ngx_gravitee_jwt_keys_add_jwks(keys, &json);

    ngx_gravitee_fuzz_jwks_check(keys, err);

    if (err == NULL) {

        /* the header's tokens with these keys: a key that verifies one */

        for (i = 0; ngx_gravitee_fuzz_jwt_tokens[i]; i++) {
            s.data = (u_char *) ngx_gravitee_fuzz_jwt_tokens[i];
            s.len = ngx_strlen(s.data);

            claims = NULL;
            reason = NULL;

            rc = ngx_gravitee_jwt_verify(keys, &s, &claims, &reason);

            ngx_gravitee_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                                     "ngx_gravitee_jwt_verify() failed");

            if (rc == NGX_OK) {
                ngx_gravitee_fuzz_assert(
                    keys->algs & NGX_GRAVITEE_JWT_ALG(
                                     i % NGX_GRAVITEE_FUZZ_JWT_NALGS),
                    "a token verifies whose alg no key allows");
                json_decref(claims);

            } else {
                ngx_gravitee_fuzz_assert(reason != NULL && claims == NULL,
                                         "refused without a reason, or "
                                         "with claims");
            }
        }
    }

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_jwks_check(ngx_gravitee_jwt_keys_t *keys, char *err)
{
    char                     group[64];
    size_t                   len;
    ngx_uint_t               i, j, algs, sum;
    ngx_gravitee_jwt_key_t  *key;

    if (err) {
        ngx_gravitee_fuzz_assert(ngx_strlen(err) > 0, "an empty error");

    } else {
        ngx_gravitee_fuzz_assert(keys->keys.nelts > 0 && keys->jwks,
                                 "a JWKS taken without a key");
    }

    key = keys->keys.elts;
    algs = 0;
    sum = 0;

    for (i = 0; i < keys->keys.nelts; i++) {
        ngx_gravitee_fuzz_assert(key[i].allowed != 0
                                 && (key[i].allowed & (key[i].allowed - 1))
                                    == 0,
                                 "a key allowed no algorithm, or several");
        ngx_gravitee_fuzz_assert((key[i].allowed & ~key[i].can) == 0,
                                 "a key allowed an algorithm its type "
                                 "cannot check");

        algs |= key[i].allowed;

        /* every byte of the kid and the secret is there (ASan) */

        for (j = 0; j < key[i].kid.len; j++) {
            sum += key[i].kid.data[j];
        }

        for (j = 0; j < key[i].secret.len; j++) {
            sum += key[i].secret.data[j];
        }

        if (key[i].pkey == NULL) {
            ngx_gravitee_fuzz_assert(key[i].secret.len > 0
                                     && key[i].can == NGX_GRAVITEE_FUZZ_JWT_HS,
                                     "a secret key that is empty, or that "
                                     "checks more than HMAC");
            continue;
        }

        ngx_gravitee_fuzz_assert(key[i].secret.len == 0,
                                 "a public key with a secret");

        switch (EVP_PKEY_get_base_id(key[i].pkey)) {

        case EVP_PKEY_RSA:
            ngx_gravitee_fuzz_assert(key[i].can == NGX_GRAVITEE_FUZZ_JWT_RS
                                     && EVP_PKEY_get_bits(key[i].pkey)
                                        >= 2048,
                                     "an RSA key that checks something "
                                     "else, or of fewer than 2048 bits");
            break;

        case EVP_PKEY_EC:
            ngx_gravitee_fuzz_assert(
                EVP_PKEY_get_utf8_string_param(key[i].pkey,
                                               "group", group,
                                               sizeof(group), &len) == 1,
                "an EC key without a group");

            ngx_gravitee_fuzz_assert(
                (ngx_strcmp(group, "prime256v1") == 0
                 && key[i].can == NGX_GRAVITEE_JWT_ALG(7))
                || (ngx_strcmp(group, "secp384r1") == 0
                    && key[i].can == NGX_GRAVITEE_JWT_ALG(8)),
                "an EC key whose curve is not its algorithm's");
            break;

        case EVP_PKEY_ED25519:
            ngx_gravitee_fuzz_assert(key[i].can == NGX_GRAVITEE_JWT_ALG(9),
                                     "an Ed25519 key that checks something "
                                     "else");
            break;

        default:
            ngx_gravitee_fuzz_fail("a key of another type: %d",
                                   EVP_PKEY_get_base_id(key[i].pkey));
        }
    }

    /* keys->algs is what verify() lets through to the keys: what they allow */

    ngx_gravitee_fuzz_assert(algs == keys->algs,
                             "the set accepts other algorithms than its "
                             "keys allow");

    ngx_gravitee_fuzz_jwks_sink = sum;
}
