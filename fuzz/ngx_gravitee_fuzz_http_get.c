
/*
 * ngx_gravitee_module: fuzz targets of the HTTP GET entrypoint.
 *
 *   accept   ngx_gravitee_get_format(): any Accept lines, or lines made
 *            of media ranges, weights and parameters whose answer is known
 *   args     ngx_gravitee_get_args(): limit, cursor (percent-decoded) and
 *            the endpoint's position checks
 *   writers  the JSON, XML and text batches of random messages, parsed
 *            back: JSON with jansson, XML and text by the readers below
 *
 * The entrypoint is included: its parsers and writers are static.
 */


#include "entrypoints/ngx_gravitee_http_get.c"
#include <jansson.h>
#include "ngx_gravitee_fuzz.h"


#define NGX_GRAVITEE_FUZZ_LINES     8
#define NGX_GRAVITEE_FUZZ_ITEMS     12
#define NGX_GRAVITEE_FUZZ_XML_DEPTH 8


/* an XML element as the reader below sees it */

typedef struct ngx_gravitee_fuzz_xml_s  ngx_gravitee_fuzz_xml_t;

struct ngx_gravitee_fuzz_xml_s {
    ngx_str_t                   name;
    ngx_str_t                   text;        /* decoded, CDATA joined */
    ngx_array_t                 children;    /* ngx_gravitee_fuzz_xml_t */
};


typedef struct {
    u_char                     *p;
    u_char                     *last;
    ngx_pool_t                 *pool;
} ngx_gravitee_fuzz_xml_in_t;


static ngx_int_t ngx_gravitee_fuzz_get_format(ngx_pool_t *pool,
    ngx_str_t *names, ngx_str_t *lines, ngx_uint_t n, ngx_uint_t *format,
    ngx_str_t *error);
static void ngx_gravitee_fuzz_accept_raw(ngx_gravitee_fuzz_in_t *in,
    ngx_pool_t *pool);
static void ngx_gravitee_fuzz_accept_made(ngx_gravitee_fuzz_in_t *in,
    ngx_pool_t *pool);

static ngx_int_t ngx_gravitee_fuzz_check_position(void *conf,
    ngx_str_t *pos, ngx_pool_t *pool, ngx_str_t *error);
static ngx_str_t ngx_gravitee_fuzz_arg(ngx_str_t *args, const char *name);
static u_char *ngx_gravitee_fuzz_encode(u_char *p, ngx_str_t *s,
    ngx_uint_t how);

static ngx_str_t ngx_gravitee_fuzz_flatten(ngx_pool_t *pool,
    ngx_gravitee_out_t *out);
static void ngx_gravitee_fuzz_check_json(ngx_gravitee_get_ctx_t *ctx,
    ngx_str_t *doc);
static void ngx_gravitee_fuzz_check_json_message(json_t *item,
    ngx_gravitee_message_t *msg, ngx_uint_t headers, ngx_uint_t metadata);
static void ngx_gravitee_fuzz_check_json_str(json_t *v, ngx_str_t *expect,
    const char *what);
static ngx_str_t ngx_gravitee_fuzz_json_expect(ngx_pool_t *pool,
    ngx_str_t *s);
static void ngx_gravitee_fuzz_check_xml(ngx_gravitee_get_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *doc);
static ngx_gravitee_fuzz_xml_t *ngx_gravitee_fuzz_xml_element(
    ngx_gravitee_fuzz_xml_in_t *in, ngx_uint_t depth);
static void ngx_gravitee_fuzz_check_xml_message(ngx_gravitee_fuzz_xml_t *e,
    ngx_gravitee_message_t *msg, ngx_uint_t headers, ngx_uint_t metadata,
    ngx_pool_t *pool);
static ngx_gravitee_fuzz_xml_t *ngx_gravitee_fuzz_xml_child(
    ngx_gravitee_fuzz_xml_t *e, ngx_uint_t i, const char *name);
static ngx_str_t ngx_gravitee_fuzz_xml_name(ngx_pool_t *pool, ngx_str_t *s);
static void ngx_gravitee_fuzz_xml_chars(ngx_str_t *s, const char *what);
static void ngx_gravitee_fuzz_check_text(ngx_gravitee_get_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *doc);
static u_char *ngx_gravitee_fuzz_text_message(u_char *p,
    ngx_gravitee_message_t *msg, ngx_uint_t headers, ngx_uint_t metadata);
static ngx_uint_t ngx_gravitee_fuzz_str_eq(ngx_str_t *a, ngx_str_t *b);
static size_t ngx_gravitee_fuzz_message_size(ngx_gravitee_message_t *msg);
static ngx_uint_t ngx_gravitee_fuzz_nul_names(ngx_gravitee_message_t *msg);


static int ngx_gravitee_fuzz_accept_run(const uint8_t *data, size_t size);
static int ngx_gravitee_fuzz_args_run(const uint8_t *data, size_t size);
static int ngx_gravitee_fuzz_writers_run(const uint8_t *data, size_t size);


ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_accept = {
    "accept", NULL, ngx_gravitee_fuzz_accept_run
};

ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_args = {
    "args", NULL, ngx_gravitee_fuzz_args_run
};

ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_writers = {
    "writers", NULL, ngx_gravitee_fuzz_writers_run
};


/*
 * The messages of the writers' batch, kept here to check the documents
 * against: the entrypoint renders an item when it comes and keeps none.
 */
static ngx_array_t  ngx_gravitee_fuzz_batch;

static ngx_gravitee_endpoint_t  ngx_gravitee_fuzz_get_endpoint = {
    .name = ngx_string("fuzz")
};

static ngx_gravitee_loc_conf_t  ngx_gravitee_fuzz_get_glcf = {
    .endpoint = &ngx_gravitee_fuzz_get_endpoint,
    .started = 1,
    .name = ngx_string("/fuzz")
};


static ngx_str_t  ngx_gravitee_fuzz_accept_name = ngx_string("Accept");

/* header names a request may also have: only the first two are Accept */
static ngx_str_t  ngx_gravitee_fuzz_names[] = {
    ngx_string("accept"),
    ngx_string("ACCEPT"),
    ngx_string("Accept-Encoding"),
    ngx_string("Accep"),
    ngx_string("X-Accept")
};


/*
 * accept: the first byte chooses lines of any bytes, or lines made of
 * elements whose choice is known (ngx_gravitee_fuzz_accept_made).
 */

static int
ngx_gravitee_fuzz_accept_run(const uint8_t *data, size_t size)
{
    ngx_pool_t              *pool;
    ngx_gravitee_fuzz_in_t   in;

    in.pos = data;
    in.last = data + size;

    pool = ngx_gravitee_fuzz_pool();

    if (ngx_gravitee_fuzz_byte(&in) & 1) {
        ngx_gravitee_fuzz_accept_made(&in, pool);

    } else {
        ngx_gravitee_fuzz_accept_raw(&in, pool);
    }

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


/*
 * The format of a request with these header lines, checked for what any
 * answer must be: NGX_OK with one of the three formats, or NGX_DECLINED
 * with the reference's message listing the Accept lines.
 */

static ngx_int_t
ngx_gravitee_fuzz_get_format(ngx_pool_t *pool, ngx_str_t *names,
    ngx_str_t *lines, ngx_uint_t n, ngx_uint_t *format, ngx_str_t *error)
{
    u_char              *p, *expect;
    size_t               len;
    ngx_int_t            rc;
    ngx_uint_t           i, accept, json, any;
    ngx_http_request_t  *r;

    static ngx_str_t  json_type = ngx_string("application/json");
    static ngx_str_t  any_type = ngx_string("*/*");

    r = ngx_gravitee_fuzz_request(pool);

    len = 0;
    accept = 0;

    for (i = 0; i < n; i++) {
        if (ngx_gravitee_fuzz_header(r, &names[i], &lines[i]) != NGX_OK) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        if (names[i].len == 6) {
            len += lines[i].len + 2;
            accept++;
        }
    }

    *format = (ngx_uint_t) -1;
    ngx_str_null(error);

    rc = ngx_gravitee_get_format(r, format, error);

    if (rc == NGX_OK) {
        ngx_gravitee_fuzz_assert(*format <= NGX_GRAVITEE_GET_TEXT,
                                 "a format out of the three");

    } else {
        ngx_gravitee_fuzz_assert(rc == NGX_DECLINED,
                                 "the Accept parser failed");
        ngx_gravitee_fuzz_assert(accept > 0,
                                 "no Accept line, yet a 400 for it");

        /* "Unsupported accept header: [a, b]" */

        expect = ngx_pnalloc(pool, sizeof("Unsupported accept header: []")
                                   + len);
        if (expect == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        p = ngx_sprintf(expect, "Unsupported accept header: [");
        accept = 0;

        for (i = 0; i < n; i++) {
            if (names[i].len != 6) {
                continue;
            }

            if (accept++) {
                *p++ = ','; *p++ = ' ';
            }

            p = ngx_cpymem(p, lines[i].data, lines[i].len);
        }

        *p++ = ']';

        ngx_gravitee_fuzz_assert(error->len == (size_t) (p - expect)
                                 && ngx_memcmp(error->data, expect,
                                               error->len) == 0,
                                 "the 400's message does not list the "
                                 "Accept lines");
    }

    /* the error body's own, simpler test: a substring of any line */

    json = 0;
    any = 0;

    for (i = 0; i < n; i++) {
        if (names[i].len != 6) {
            continue;
        }

        if (ngx_strlcasestrn(lines[i].data, lines[i].data + lines[i].len,
                             json_type.data, json_type.len - 1))
        {
            json = 1;
        }

        if (ngx_strlcasestrn(lines[i].data, lines[i].data + lines[i].len,
                             any_type.data, any_type.len - 1))
        {
            any = 1;
        }
    }

    ngx_gravitee_fuzz_assert(ngx_gravitee_accepts(r, &json_type)
                             == (ngx_int_t) json
                             && ngx_gravitee_accepts(r, &any_type)
                                == (ngx_int_t) any,
                             "ngx_gravitee_accepts() disagrees with a "
                             "search of the lines");

    return rc;
}


/*
 * Lines of any bytes but LF.  Besides the checks above: every Accept line
 * counts as if all were one line joined by commas (RFC 9110, 5.3), which
 * holds when no line is quoted (a quote may run over a line's end) and
 * not all are empty (empty lines mean no Accept).
 */

static void
ngx_gravitee_fuzz_accept_raw(ngx_gravitee_fuzz_in_t *in, ngx_pool_t *pool)
{
    u_char      *p, *q;
    ngx_int_t    rc, rc1;
    ngx_str_t    names[NGX_GRAVITEE_FUZZ_LINES];
    ngx_str_t    lines[NGX_GRAVITEE_FUZZ_LINES], joined, error;
    ngx_uint_t   n, i, k, format, format1, quoted, empty, accept;

    n = 0;

    while (in->pos < in->last && n < NGX_GRAVITEE_FUZZ_LINES) {

        /* a first byte of 1 to 5 names another header */

        k = *in->pos;

        if (k >= 1 && k <= 5) {
            names[n] = ngx_gravitee_fuzz_names[k - 1];
            in->pos++;

        } else {
            names[n] = ngx_gravitee_fuzz_accept_name;
        }

        p = (u_char *) in->pos;
        q = ngx_strlchr(p, (u_char *) in->last, '\n');

        if (q == NULL) {
            q = (u_char *) in->last;
        }

        lines[n].data = p;
        lines[n].len = q - p;
        in->pos = (q < in->last) ? q + 1 : q;
        n++;
    }

    rc = ngx_gravitee_fuzz_get_format(pool, names, lines, n, &format, &error);

    quoted = 0;
    empty = 1;
    accept = 0;

    for (i = 0; i < n; i++) {
        if (names[i].len != 6) {
            continue;
        }

        accept++;

        if (lines[i].len) {
            empty = 0;
        }

        if (ngx_strlchr(lines[i].data, lines[i].data + lines[i].len, '"')) {
            quoted = 1;
        }
    }

    if (accept < 2 || quoted || empty) {
        return;
    }

    joined.len = 0;

    for (i = 0; i < n; i++) {
        joined.len += lines[i].len + 1;
    }

    joined.data = ngx_pnalloc(pool, joined.len);
    if (joined.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    p = joined.data;
    k = 0;

    for (i = 0; i < n; i++) {
        if (names[i].len != 6) {
            continue;
        }

        if (k++) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, lines[i].data, lines[i].len);
    }

    joined.len = p - joined.data;

    rc1 = ngx_gravitee_fuzz_get_format(pool, &ngx_gravitee_fuzz_accept_name,
                                       &joined, 1, &format1, &error);

    ngx_gravitee_fuzz_assert(rc == rc1 && (rc != NGX_OK || format == format1),
                             "several Accept lines and the same lines "
                             "joined by commas choose differently");
}


/*
 * Lines made of elements "range;params" whose answer the driver knows
 * from what it chose: the highest weight among the three types (and the
 * any type, for JSON) wins, the first of equals wins, q=0 and a q that is not a
 * qvalue are unacceptable, other parameters (quoted commas and semicolons
 * included) do not matter, blanks around elements and parameters do not
 * matter.
 */

typedef struct {
    const char                 *text;
    ngx_int_t                   type;        /* -1: none of ours */
} ngx_gravitee_fuzz_range_t;

typedef struct {
    const char                 *text;
    ngx_int_t                   q;           /* -1: unacceptable */
} ngx_gravitee_fuzz_qvalue_t;


static ngx_gravitee_fuzz_range_t  ngx_gravitee_fuzz_ranges[] = {
    { "application/json", NGX_GRAVITEE_GET_JSON },
    { "APPLICATION/JSON", NGX_GRAVITEE_GET_JSON },
    { "application/xml", NGX_GRAVITEE_GET_XML },
    { "Application/XML", NGX_GRAVITEE_GET_XML },
    { "text/plain", NGX_GRAVITEE_GET_TEXT },
    { "TEXT/Plain", NGX_GRAVITEE_GET_TEXT },
    { "*/*", NGX_GRAVITEE_GET_JSON },
    { "text/*", -1 },
    { "application/*", -1 },
    { "text/html", -1 },
    { "application/jsonx", -1 },
    { "application/jso", -1 },
    { "text/event-stream", -1 },
    { "", -1 },
    { "*", -1 },
    { "application/xml+json", -1 }
};

static ngx_gravitee_fuzz_qvalue_t  ngx_gravitee_fuzz_qvalues[] = {
    { "1", 1000 },
    { "1.", 1000 },
    { "1.0", 1000 },
    { "1.000", 1000 },
    { "0", -1 },
    { "0.000", -1 },
    { "0.001", 1 },
    { "0.5", 500 },
    { "0.50", 500 },
    { "0.123", 123 },
    { "0.9", 900 },
    { "0.999", 999 },
    { "1.001", -1 },
    { "2", -1 },
    { "0.1234", -1 },
    { ".5", -1 },
    { "", -1 },
    { "x", -1 },
    { "0.5x", -1 },
    { "-1", -1 },
    { "1.0000", -1 },
    { "0.", -1 }
};

static const char  *ngx_gravitee_fuzz_params[] = {
    "level=1",
    "charset=utf-8",
    "charset=\"utf-8,q=1;q=0\"",
    "profile=\"a\\\"b,c\"",
    "x",
    "q",
    "Q",
    "qq=0",
    "a=",
    "=b"
};

static const char  *ngx_gravitee_fuzz_blanks[] = {
    "", " ", "\t", "  \t "
};


static void
ngx_gravitee_fuzz_accept_made(ngx_gravitee_fuzz_in_t *in, ngx_pool_t *pool)
{
    u_char                      *p;
    size_t                       size;
    ngx_int_t                    rc, best, best_q, q;
    ngx_str_t                    names[NGX_GRAVITEE_FUZZ_LINES];
    ngx_str_t                    lines[NGX_GRAVITEE_FUZZ_LINES], error;
    ngx_uint_t                   n, i, e, nelts, k, np, format, b, weighted;
    ngx_uint_t                   empty;
    ngx_gravitee_fuzz_range_t   *range;
    ngx_gravitee_fuzz_qvalue_t  *qv;

    n = (ngx_gravitee_fuzz_byte(in) % NGX_GRAVITEE_FUZZ_LINES) + 1;

    best = -1;
    best_q = 0;
    empty = 1;

    for (i = 0; i < n; i++) {
        names[i] = ngx_gravitee_fuzz_accept_name;

        size = 1024;
        lines[i].data = ngx_pnalloc(pool, size);
        if (lines[i].data == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        p = lines[i].data;
        nelts = ngx_gravitee_fuzz_byte(in) % 5;

        for (e = 0; e < nelts; e++) {
            k = ngx_gravitee_fuzz_byte(in);
            range = &ngx_gravitee_fuzz_ranges[k
                                     % (sizeof(ngx_gravitee_fuzz_ranges)
                                        / sizeof(ngx_gravitee_fuzz_ranges[0]))];

            b = ngx_gravitee_fuzz_byte(in);

            if (e) {
                p = ngx_sprintf(p, "%s,%s", ngx_gravitee_fuzz_blanks[b & 3],
                                ngx_gravitee_fuzz_blanks[(b >> 2) & 3]);

            } else {
                p = ngx_sprintf(p, "%s", ngx_gravitee_fuzz_blanks[b & 3]);
            }

            p = ngx_sprintf(p, "%s", range->text);

            /* parameters, at most one q among them, anywhere */

            np = (b >> 4) & 3;
            weighted = (b >> 6) & 1;
            q = 1000;

            for (k = 0; k < np + weighted; k++) {
                b = ngx_gravitee_fuzz_byte(in);

                p = ngx_sprintf(p, "%s;%s", ngx_gravitee_fuzz_blanks[b & 3],
                                ngx_gravitee_fuzz_blanks[(b >> 2) & 3]);

                if (weighted && k == np) {
                    qv = &ngx_gravitee_fuzz_qvalues[(b >> 4)
                                   % (sizeof(ngx_gravitee_fuzz_qvalues)
                                      / sizeof(ngx_gravitee_fuzz_qvalues[0]))];

                    p = ngx_sprintf(p, "%c=%s", (b & 0x80) ? 'Q' : 'q',
                                    qv->text);
                    q = qv->q;

                } else {
                    p = ngx_sprintf(p, "%s",
                                    ngx_gravitee_fuzz_params[(b >> 4) % 10]);
                }
            }

            /* blanks after the element, before the next comma */
            b = ngx_gravitee_fuzz_byte(in);
            p = ngx_sprintf(p, "%s", ngx_gravitee_fuzz_blanks[b & 3]);

            if (range->type >= 0 && q > best_q) {
                best = range->type;
                best_q = q;
            }
        }

        lines[i].len = p - lines[i].data;

        if (lines[i].len) {
            empty = 0;
        }
    }

    rc = ngx_gravitee_fuzz_get_format(pool, names, lines, n, &format, &error);

    if (best >= 0) {
        if (rc != NGX_OK || (ngx_int_t) format != best) {
            ngx_gravitee_fuzz_fail("Accept chose %d (rc %d), expected %d; "
                                   "first line \"%.*s\"", (int) format,
                                   (int) rc, (int) best,
                                   (int) lines[0].len, lines[0].data);
        }

    } else if (empty) {
        ngx_gravitee_fuzz_assert(rc == NGX_OK
                                 && format == NGX_GRAVITEE_GET_TEXT,
                                 "empty Accept lines are text");

    } else {
        if (rc != NGX_DECLINED) {
            ngx_gravitee_fuzz_fail("Accept chose %d, none expected; first "
                                   "line \"%.*s\"", (int) format,
                                   (int) lines[0].len, lines[0].data);
        }
    }
}


/*
 * args: limit and cursor of a query made of the input (first byte even) or
 * of parameters the driver writes, a cursor of any bytes percent-encoded
 * (odd), checked against what a simple reading of the query gives.
 */

static u_char  ngx_gravitee_fuzz_refused = '!';


static ngx_int_t
ngx_gravitee_fuzz_check_position(void *conf, ngx_str_t *pos, ngx_pool_t *pool,
    ngx_str_t *error)
{
    if (ngx_strlchr(pos->data, pos->data + pos->len,
                    ngx_gravitee_fuzz_refused)
        == NULL)
    {
        return NGX_OK;
    }

    ngx_str_set(error, "Invalid position: it has a '!'");

    return NGX_DECLINED;
}


static int
ngx_gravitee_fuzz_args_run(const uint8_t *data, size_t size)
{
    u_char                  *p, *d, c;
    size_t                   max, i;
    ngx_int_t                rc, n;
    ngx_str_t                args, limit, cursor, raw, error, decoded, value;
    ngx_uint_t               flags, k, np, made, valid, expect_limit, b;
    const char              *name;
    ngx_pool_t              *pool;
    ngx_http_request_t      *r;
    ngx_gravitee_get_ctx_t   ctx;
    ngx_gravitee_get_conf_t  gcf;
    ngx_gravitee_fuzz_in_t   in;

    static const char  *names[] = {
        "limit", "LIMIT", "cursor", "Cursor", "xlimit", "limitx", "cursorx",
        "acursor", "", "limit", "cursor", "CURSOR"
    };

    static const char  *numbers[] = {
        "9223372036854775807", "9223372036854775808", "-1", "+1", " 1",
        "1 ", "", "00000000000000000000000000000042"
    };

    in.pos = data;
    in.last = data + size;

    pool = ngx_gravitee_fuzz_pool();
    r = ngx_gravitee_fuzz_request(pool);

    flags = ngx_gravitee_fuzz_byte(&in);
    made = flags & 1;

    ngx_gravitee_fuzz_get_endpoint.check_position =
                             (flags & 2) ? ngx_gravitee_fuzz_check_position : NULL;

    k = ngx_gravitee_fuzz_byte(&in);
    gcf.limit_count = (k == 0) ? 500 : k - 1;

    k = ngx_gravitee_fuzz_byte(&in);
    max = (k == 0xff) ? (size_t) -1 : k * 2;
    ngx_gravitee_fuzz_get_endpoint.max_position = max;

    ngx_str_null(&raw);

    if (!made) {
        args = ngx_gravitee_fuzz_bytes(&in, in.last - in.pos);

    } else {
        /* the parameters, and a cursor's value encoded from any bytes */

        args.data = ngx_pnalloc(pool, 16 * (size + 16));
        if (args.data == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        p = args.data;
        np = ngx_gravitee_fuzz_byte(&in) % 6;

        for (k = 0; k < np; k++) {
            b = ngx_gravitee_fuzz_byte(&in);
            name = names[(b & 0x0f) % (sizeof(names) / sizeof(names[0]))];

            if (k) {
                p = ngx_sprintf(p, "%s", (b & 0x80) ? "&&" : "&");
            }

            p = ngx_sprintf(p, "%s", name);

            if (b & 0x40) {
                /* no "=": not a parameter with a value */
                continue;
            }

            *p++ = '=';

            if (ngx_strcasecmp((u_char *) name, (u_char *) "cursor") == 0
                && raw.data == NULL)
            {
                raw = ngx_gravitee_fuzz_string(&in);
                p = ngx_gravitee_fuzz_encode(p, &raw, b >> 4);
                continue;
            }

            b = ngx_gravitee_fuzz_byte(&in);

            if (b < 0x80) {
                p = ngx_sprintf(p, "%ui", b);
                continue;
            }

            if (b < 0xc0) {
                p = ngx_sprintf(p, "%s", numbers[b & 7]);
                continue;
            }

            value = ngx_gravitee_fuzz_string(&in);

            for (i = 0; i < value.len; i++) {
                c = value.data[i];
                *p++ = (c == '&') ? '_' : c;
            }
        }

        args.len = p - args.data;
    }

    r->args = args;

    ngx_memzero(&ctx, sizeof(ngx_gravitee_get_ctx_t));
    ctx.request = r;
    ctx.glcf = &ngx_gravitee_fuzz_get_glcf;
    ctx.conf = &gcf;
    ctx.limit = gcf.limit_count;

    ngx_str_null(&error);

    rc = ngx_gravitee_get_args(r, &ctx, &error);

    /* what a plain reading of the query expects */

    limit = ngx_gravitee_fuzz_arg(&args, "limit");
    expect_limit = gcf.limit_count;

    if (limit.data) {
        n = 0;
        valid = (limit.len > 0);

        for (i = 0; i < limit.len && valid; i++) {
            if (limit.data[i] < '0' || limit.data[i] > '9'
                || n > (NGX_MAX_INT_T_VALUE - (limit.data[i] - '0')) / 10)
            {
                valid = 0;
                break;
            }

            n = n * 10 + (limit.data[i] - '0');
        }

        if (!valid) {
            ngx_gravitee_fuzz_assert(rc == NGX_DECLINED,
                                     "a limit that is not a whole number "
                                     "is taken");
            ngx_gravitee_fuzz_assert(error.len > 16
                                     && ngx_strncmp(error.data,
                                                    "Invalid limit \"", 15)
                                        == 0
                                     && error.len == limit.len
                                                     + sizeof("Invalid limit "
                                                     "\"\": a whole number of "
                                                     "messages is expected")
                                                     - 1
                                     && ngx_memcmp(error.data + 15,
                                                   limit.data, limit.len)
                                        == 0,
                                     "the 400 does not quote the limit");
            goto done;
        }

        expect_limit = ngx_min(expect_limit, (ngx_uint_t) n);

        ngx_gravitee_fuzz_assert(ctx.limit_arg.data == limit.data
                                 && ctx.limit_arg.len == limit.len,
                                 "the limit echoed is not the one given");
    }

    ngx_gravitee_fuzz_assert(ctx.limit == expect_limit,
                             "the limit does not lower the count");

    cursor = ngx_gravitee_fuzz_arg(&args, "cursor");

    if (cursor.len == 0) {
        ngx_gravitee_fuzz_assert(rc == NGX_OK && ctx.sub.resume.len == 0,
                                 "a position without a cursor");
        goto done;
    }

    /* percent-decoding: exact when every '%' starts an escape */

    decoded.data = ngx_pnalloc(pool, cursor.len);
    if (decoded.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    d = decoded.data;
    valid = 1;

    for (i = 0; i < cursor.len; i++) {
        if (cursor.data[i] != '%') {
            *d++ = cursor.data[i];
            continue;
        }

        if (i + 2 >= cursor.len) {
            valid = 0;
            break;
        }

        p = cursor.data + i + 1;

        if (!isxdigit(p[0]) || !isxdigit(p[1])) {
            valid = 0;
            break;
        }

        *d++ = (u_char) ((ngx_hextoi(p, 2)) & 0xff);
        i += 2;
    }

    decoded.len = d - decoded.data;

    if (rc == NGX_ERROR) {
        ngx_gravitee_fuzz_fail("the query parser failed");
    }

    ngx_gravitee_fuzz_assert(ctx.sub.resume.len <= cursor.len,
                             "decoding made the cursor longer");

    if (valid) {
        ngx_gravitee_fuzz_assert(ctx.sub.resume.len == decoded.len
                                 && ngx_memcmp(ctx.sub.resume.data,
                                               decoded.data, decoded.len)
                                    == 0,
                                 "the cursor is not percent-decoded");
    }

    if (made && raw.data && ngx_gravitee_fuzz_arg(&args, "cursor").data
                            == cursor.data)
    {
        /* the driver's own encoding comes back as the bytes it encoded */
        ngx_gravitee_fuzz_assert(ctx.sub.resume.len == raw.len
                                 && ngx_memcmp(ctx.sub.resume.data, raw.data,
                                               raw.len) == 0,
                                 "an encoded cursor does not decode to its "
                                 "bytes");
    }

    if (ctx.sub.resume.len > max) {
        ngx_gravitee_fuzz_assert(rc == NGX_DECLINED
                                 && error.len > 26
                                 && ngx_strncmp(error.data,
                                                "Resume position too long: ",
                                                26) == 0,
                                 "a position over the endpoint's maximum is "
                                 "taken");

    } else if (ctx.sub.resume.len
               && ngx_gravitee_fuzz_get_endpoint.check_position
               && ngx_strlchr(ctx.sub.resume.data,
                              ctx.sub.resume.data + ctx.sub.resume.len,
                              ngx_gravitee_fuzz_refused))
    {
        ngx_gravitee_fuzz_assert(rc == NGX_DECLINED
                                 && error.len
                                 && error.data[0] == 'I',
                                 "a position the endpoint refuses is taken");

    } else {
        ngx_gravitee_fuzz_assert(rc == NGX_OK,
                                 "a good position is refused");
    }

done:

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


/* the first "name=value" of the query, as a reader of RFC 3986 sees it */

ngx_gravitee_fuzz_checker
static ngx_str_t
ngx_gravitee_fuzz_arg(ngx_str_t *args, const char *name)
{
    u_char     *p, *last, *end;
    size_t      len;
    ngx_str_t   value;

    len = ngx_strlen(name);
    p = args->data;
    last = args->data + args->len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');

        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > len && p[len] == '='
            && ngx_strncasecmp(p, (u_char *) name, len) == 0)
        {
            value.data = p + len + 1;
            value.len = end - value.data;
            return value;
        }

        p = end + 1;
    }

    ngx_str_null(&value);

    return value;
}


/* every byte escaped, or only those a query cannot hold; hex in any case */

ngx_gravitee_fuzz_checker
static u_char *
ngx_gravitee_fuzz_encode(u_char *p, ngx_str_t *s, ngx_uint_t how)
{
    u_char      c;
    size_t      i;
    const char *hex;

    hex = (how & 1) ? "0123456789ABCDEF" : "0123456789abcdef";

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!(how & 2)
            && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '-' || c == '.'
                || c == '_' || c == '~'))
        {
            *p++ = c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    return p;
}


/*
 * writers: a batch of up to 12 messages, an error message or not, the
 * conf flags, a limit and a cursor, written in JSON, XML or text (or all
 * three) and read back.
 */

static int
ngx_gravitee_fuzz_writers_run(const uint8_t *data, size_t size)
{
    ngx_str_t                 doc;
    ngx_uint_t                flags, n, i, f;
    ngx_pool_t               *pool;
    ngx_gravitee_get_ctx_t    ctx;
    ngx_gravitee_get_conf_t   gcf;
    ngx_gravitee_fuzz_in_t    in;
    ngx_gravitee_message_t  **item;

    in.pos = data;
    in.last = data + size;

    pool = ngx_gravitee_fuzz_pool();

    flags = ngx_gravitee_fuzz_byte(&in);
    n = ngx_gravitee_fuzz_byte(&in) % (NGX_GRAVITEE_FUZZ_ITEMS + 1);

    ngx_memzero(&gcf, sizeof(ngx_gravitee_get_conf_t));
    gcf.headers_in_payload = (flags & 0x04) ? 1 : 0;
    gcf.metadata_in_payload = (flags & 0x08) ? 1 : 0;

    ngx_memzero(&ctx, sizeof(ngx_gravitee_get_ctx_t));
    ctx.request = ngx_gravitee_fuzz_request(pool);
    ctx.glcf = &ngx_gravitee_fuzz_get_glcf;
    ctx.conf = &gcf;

    if (flags & 0x20) {
        ctx.limit_arg = ngx_gravitee_fuzz_string(&in);

        if (ctx.limit_arg.data == NULL) {
            /* present, if empty: the writers test the pointer */
            ctx.limit_arg.data = (u_char *) "";
        }
    }

    if (flags & 0x40) {
        ctx.cursor = ngx_gravitee_fuzz_string(&in);
    }

    if (ngx_array_init(&ngx_gravitee_fuzz_batch, pool, 4,
                       sizeof(ngx_gravitee_message_t *))
        != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    for (i = 0; i < n; i++) {
        item = ngx_array_push(&ngx_gravitee_fuzz_batch);
        if (item == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        *item = ngx_gravitee_fuzz_message(&in, 0);
    }

    if (flags & 0x10) {
        ctx.error = ngx_gravitee_fuzz_message(&in, 1);
        ctx.error->error = 1;
    }

    for (f = 0; f < 3; f++) {

        if ((flags & 3) != 3 && f != (flags & 3)) {
            continue;
        }

        /* the items as they come, one at a time, then the batch's end */

        ngx_gravitee_out_release(&ctx.out);
        ngx_gravitee_out_init(&ctx.out, pool);
        ctx.format = f;
        ctx.nitems = 0;

        item = ngx_gravitee_fuzz_batch.elts;

        for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
            ngx_gravitee_fuzz_assert(ngx_gravitee_get_item(&ctx, item[i])
                                     == NGX_OK, "an item's writer failed");
            ctx.nitems++;
        }

        switch (f) {

        case NGX_GRAVITEE_GET_JSON:
            ngx_gravitee_fuzz_assert(ngx_gravitee_json_batch(&ctx, &ctx.out)
                                     == NGX_OK, "the JSON writer failed");
            doc = ngx_gravitee_fuzz_flatten(pool, &ctx.out);
            ngx_gravitee_fuzz_check_json(&ctx, &doc);
            break;

        case NGX_GRAVITEE_GET_XML:
            ngx_gravitee_fuzz_assert(ngx_gravitee_xml_batch(&ctx, &ctx.out)
                                     == NGX_OK, "the XML writer failed");
            doc = ngx_gravitee_fuzz_flatten(pool, &ctx.out);
            ngx_gravitee_fuzz_check_xml(&ctx, pool, &doc);
            break;

        default:
            ngx_gravitee_fuzz_assert(ngx_gravitee_text_batch(&ctx, &ctx.out)
                                     == NGX_OK, "the text writer failed");
            doc = ngx_gravitee_fuzz_flatten(pool, &ctx.out);
            ngx_gravitee_fuzz_check_text(&ctx, pool, &doc);
        }
    }

    /* what the request's cleanup does with the batch and its buffers */

    ngx_gravitee_out_release(&ctx.out);

    item = ngx_gravitee_fuzz_batch.elts;

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        ngx_gravitee_message_unref(item[i]);
    }

    if (ctx.error) {
        ngx_gravitee_message_unref(ctx.error);
    }

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


/* the chain the writers made, in one piece; each buffer within bounds */

ngx_gravitee_fuzz_checker
static ngx_str_t
ngx_gravitee_fuzz_flatten(ngx_pool_t *pool, ngx_gravitee_out_t *out)
{
    u_char       *p;
    size_t        len;
    ngx_str_t     doc;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = out->first; cl; cl = cl->next) {
        ngx_gravitee_fuzz_assert(cl->buf->pos <= cl->buf->last
                                 && cl->buf->last <= cl->buf->end,
                                 "a writer's buffer is past its end");

        len += cl->buf->last - cl->buf->pos;

        ngx_gravitee_fuzz_assert(cl->next || cl->buf == out->buf,
                                 "the writer's last buffer is not the "
                                 "chain's");
    }

    ngx_gravitee_fuzz_assert(out->buf != NULL, "a writer wrote nothing");

    doc.data = ngx_pnalloc(pool, len + 1);
    if (doc.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    p = doc.data;

    for (cl = out->first; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    doc.len = len;

    return doc;
}


/* JSON: parsed by jansson, every value compared with what it encodes */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_json(ngx_gravitee_get_ctx_t *ctx, ngx_str_t *doc)
{
    size_t                    keys;
    json_t                   *root, *items, *v, *pg;
    ngx_uint_t                i;
    json_error_t              err;
    ngx_gravitee_message_t  **item;

    item = ngx_gravitee_fuzz_batch.elts;

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        if ((ctx->conf->headers_in_payload || ctx->conf->metadata_in_payload)
            && ngx_gravitee_fuzz_nul_names(item[i]))
        {
            return;
        }
    }

    if (ctx->error && ngx_gravitee_fuzz_nul_names(ctx->error)) {
        return;
    }

    root = json_loadb((const char *) doc->data, doc->len, JSON_ALLOW_NUL,
                      &err);

    if (root == NULL) {
        ngx_gravitee_fuzz_fail("the JSON batch does not parse: %s at %d: "
                               "%.*s", err.text, err.position,
                               (int) ngx_min(doc->len, 2000), doc->data);
    }

    ngx_gravitee_fuzz_assert(json_is_object(root), "the batch is an object");

    keys = 1;

    items = json_object_get(root, "items");
    ngx_gravitee_fuzz_assert(json_is_array(items)
                             && json_array_size(items)
                                == ngx_gravitee_fuzz_batch.nelts,
                             "\"items\" holds every message");

    item = ngx_gravitee_fuzz_batch.elts;

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        ngx_gravitee_fuzz_check_json_message(json_array_get(items, i),
                                             item[i],
                                             ctx->conf->headers_in_payload,
                                             ctx->conf->metadata_in_payload);
    }

    v = json_object_get(root, "error");

    if (ctx->error) {
        keys++;
        ngx_gravitee_fuzz_assert(v != NULL, "the error is in the batch");
        ngx_gravitee_fuzz_check_json_message(v, ctx->error, 1, 1);

    } else {
        ngx_gravitee_fuzz_assert(v == NULL, "an error nobody had");
    }

    pg = json_object_get(root, "pagination");

    if (ctx->cursor.len) {
        keys++;
        ngx_gravitee_fuzz_assert(json_is_object(pg)
                                 && json_object_size(pg)
                                    == (ctx->limit_arg.data ? 2u : 1u),
                                 "\"pagination\" has nextCursor and limit");

        ngx_gravitee_fuzz_check_json_str(json_object_get(pg, "nextCursor"),
                                         &ctx->cursor, "nextCursor");

        if (ctx->limit_arg.data) {
            ngx_gravitee_fuzz_check_json_str(json_object_get(pg, "limit"),
                                             &ctx->limit_arg, "limit");
        }

    } else {
        ngx_gravitee_fuzz_assert(pg == NULL, "pagination without a cursor");
    }

    ngx_gravitee_fuzz_assert(json_object_size(root) == keys,
                             "the batch has keys of its own");

    json_decref(root);
}


ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_json_message(json_t *item,
    ngx_gravitee_message_t *msg, ngx_uint_t headers, ngx_uint_t metadata)
{
    size_t       keys, nkeys;
    json_t      *v, *o, *a;
    ngx_str_t    key[9], value;
    ngx_uint_t   i, j, n, last;
    ngx_pool_t  *pool;

    static ngx_str_t  ts = ngx_string("sourceTimestamp");

    ngx_gravitee_fuzz_assert(json_is_object(item), "an item is an object");

    keys = 1;

    v = json_object_get(item, "id");

    if (msg->id.len) {
        keys++;
        ngx_gravitee_fuzz_check_json_str(v, &msg->id, "id");

    } else {
        ngx_gravitee_fuzz_assert(v == NULL, "an id the message has not");
    }

    ngx_gravitee_fuzz_check_json_str(json_object_get(item, "content"),
                                     &msg->content, "content");

    pool = ngx_gravitee_fuzz_pool();

    /*
     * Headers: one key per name (case aside), its values in order.  Names
     * alike once escaped (two bad bytes are both U+FFFD) make duplicate
     * keys, of which jansson keeps the last.
     */

    o = json_object_get(item, "headers");

    if (headers) {
        keys++;
        ngx_gravitee_fuzz_assert(json_is_object(o), "\"headers\" is there");

        for (i = 0; i < msg->nheaders; i++) {
            key[i] = ngx_gravitee_fuzz_json_expect(pool,
                                                   &msg->headers[i].name);
        }

        nkeys = 0;

        for (i = 0; i < msg->nheaders; i++) {
            if (ngx_gravitee_message_header_first(msg, i) != i) {
                continue;
            }

            last = 1;

            for (j = i + 1; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) == j
                    && ngx_gravitee_fuzz_str_eq(&key[i], &key[j]))
                {
                    last = 0;
                }
            }

            if (!last) {
                continue;
            }

            nkeys++;

            a = json_object_getn(o, (const char *) key[i].data, key[i].len);
            ngx_gravitee_fuzz_assert(json_is_array(a), "a header's values");

            n = 0;

            for (j = i; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) == i) {
                    ngx_gravitee_fuzz_check_json_str(json_array_get(a, n++),
                                                     &msg->headers[j].value,
                                                     "a header value");
                }
            }

            ngx_gravitee_fuzz_assert(json_array_size(a) == n,
                                     "a header with values of its own");
        }

        ngx_gravitee_fuzz_assert(json_object_size(o) == nkeys,
                                 "headers of their own");

    } else {
        ngx_gravitee_fuzz_assert(o == NULL, "headers not asked for");
    }

    /* metadata: sourceTimestamp, then each entry; the last of a key wins */

    o = json_object_get(item, "metadata");

    if (metadata) {
        keys++;
        ngx_gravitee_fuzz_assert(json_is_object(o), "\"metadata\" is there");

        key[0] = ts;

        for (i = 0; i < msg->nmetadata; i++) {
            key[i + 1] = ngx_gravitee_fuzz_json_expect(pool,
                                                     &msg->metadata[i].name);
        }

        nkeys = 0;

        for (i = 0; i <= msg->nmetadata; i++) {
            last = 1;

            for (j = i + 1; j <= msg->nmetadata; j++) {
                if (ngx_gravitee_fuzz_str_eq(&key[i], &key[j])) {
                    last = 0;
                }
            }

            if (!last) {
                continue;
            }

            nkeys++;
            v = json_object_getn(o, (const char *) key[i].data, key[i].len);

            if (i == 0) {
                ngx_gravitee_fuzz_assert(json_is_integer(v)
                                         && json_integer_value(v)
                                            == msg->timestamp,
                                         "sourceTimestamp is the message's");
                continue;
            }

            value = msg->metadata[i - 1].value;
            ngx_gravitee_fuzz_check_json_str(v, &value, "a metadata value");
        }

        ngx_gravitee_fuzz_assert(json_object_size(o) == nkeys,
                                 "metadata of their own");

    } else {
        ngx_gravitee_fuzz_assert(o == NULL, "metadata not asked for");
    }

    ngx_destroy_pool(pool);

    ngx_gravitee_fuzz_assert(json_object_size(item) == keys,
                             "an item has keys of its own");
}


ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_json_str(json_t *v, ngx_str_t *raw, const char *what)
{
    ngx_str_t    expect;
    ngx_pool_t  *pool;

    if (!json_is_string(v)) {
        ngx_gravitee_fuzz_fail("JSON: %s is not a string", what);
    }

    pool = ngx_gravitee_fuzz_pool();
    expect = ngx_gravitee_fuzz_json_expect(pool, raw);

    if (json_string_length(v) != expect.len
        || ngx_memcmp(json_string_value(v), expect.data, expect.len) != 0)
    {
        ngx_gravitee_fuzz_fail("JSON: %s \"%.*s\" reads back as \"%.*s\"",
                               what, (int) raw->len, raw->data,
                               (int) json_string_length(v),
                               json_string_value(v));
    }

    ngx_destroy_pool(pool);
}


/* what a JSON string of these bytes decodes to: U+FFFD for each bad byte */

ngx_gravitee_fuzz_checker
static ngx_str_t
ngx_gravitee_fuzz_json_expect(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char     *p;
    size_t      i, n;
    ngx_str_t   e;

    e.data = ngx_pnalloc(pool, 3 * s->len + 1);
    if (e.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    p = e.data;

    for (i = 0; i < s->len; /* void */ ) {
        n = ngx_gravitee_fuzz_utf8(s->data + i, ngx_min(4, s->len - i));

        if (n == 0) {
            *p++ = 0xef; *p++ = 0xbf; *p++ = 0xbd;
            i++;
            continue;
        }

        /* one character at a time: the prefix may hold several */

        n = (s->data[i] < 0x80) ? 1 : (s->data[i] < 0xe0) ? 2
            : (s->data[i] < 0xf0) ? 3 : 4;

        p = ngx_cpymem(p, s->data + i, n);
        i += n;
    }

    e.len = p - e.data;

    return e;
}


/*
 * XML: read by the small reader below, which says whether the document is
 * well-formed as far as tags go (balanced, names of letters, digits, "_",
 * "-", "."), no raw "<" or "&" in text, entities known, CDATA closed; then
 * every element is compared with the message it writes.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_xml(ngx_gravitee_get_ctx_t *ctx, ngx_pool_t *pool,
    ngx_str_t *doc)
{
    ngx_uint_t                   i, n;
    ngx_gravitee_fuzz_xml_t     *root, *items, *e, *pg;
    ngx_gravitee_fuzz_xml_in_t   in;
    ngx_gravitee_message_t     **item;

    in.p = doc->data;
    in.last = doc->data + doc->len;
    in.pool = pool;

    root = ngx_gravitee_fuzz_xml_element(&in, 0);

    if (root == NULL || in.p != in.last) {
        ngx_gravitee_fuzz_fail("the XML batch is not well-formed at byte "
                               "%d: %.*s", (int) (in.p - doc->data),
                               (int) ngx_min(doc->len, 2000), doc->data);
    }

    ngx_gravitee_fuzz_assert(root->name.len == 8
                             && ngx_strncmp(root->name.data, "response", 8)
                                == 0, "the root is <response>");

    n = 0;
    items = ngx_gravitee_fuzz_xml_child(root, n++, "items");
    ngx_gravitee_fuzz_assert(items->children.nelts
                             == ngx_gravitee_fuzz_batch.nelts,
                             "<items> holds every message");

    item = ngx_gravitee_fuzz_batch.elts;

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        e = ngx_gravitee_fuzz_xml_child(items, i, "item");
        ngx_gravitee_fuzz_check_xml_message(e, item[i],
                                            ctx->conf->headers_in_payload,
                                            ctx->conf->metadata_in_payload,
                                            pool);
    }

    if (ctx->error) {
        e = ngx_gravitee_fuzz_xml_child(root, n++, "error");
        ngx_gravitee_fuzz_check_xml_message(e, ctx->error, 1, 1, pool);
    }

    if (ctx->cursor.len) {
        pg = ngx_gravitee_fuzz_xml_child(root, n++, "pagination");

        e = ngx_gravitee_fuzz_xml_child(pg, 0, "nextCursor");
        ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&e->text,
                                                          &ctx->cursor),
                                 "<nextCursor> is the cursor");

        if (ctx->limit_arg.data) {
            e = ngx_gravitee_fuzz_xml_child(pg, 1, "limit");
            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&e->text,
                                                           &ctx->limit_arg),
                                     "<limit> is the limit");
        }

        ngx_gravitee_fuzz_assert(pg->children.nelts
                                 == (ctx->limit_arg.data ? 2u : 1u),
                                 "<pagination> has elements of its own");
    }

    ngx_gravitee_fuzz_assert(root->children.nelts == n,
                             "<response> has elements of its own");

    /* the characters XML 1.0 allows: not checked unless asked */

    if (ngx_gravitee_fuzz_strict) {
        ngx_gravitee_fuzz_xml_chars(doc, "the XML batch");
    }
}


ngx_gravitee_fuzz_checker
static ngx_gravitee_fuzz_xml_t *
ngx_gravitee_fuzz_xml_element(ngx_gravitee_fuzz_xml_in_t *in,
    ngx_uint_t depth)
{
    u_char                   *p, *start, *end, *t, *run;
    size_t                    len;
    ngx_gravitee_fuzz_xml_t  *e, *child, *slot;

    p = in->p;

    if (depth > NGX_GRAVITEE_FUZZ_XML_DEPTH || p == in->last || *p != '<') {
        return NULL;
    }

    e = ngx_pcalloc(in->pool, sizeof(ngx_gravitee_fuzz_xml_t));
    if (e == NULL
        || ngx_array_init(&e->children, in->pool, 4,
                          sizeof(ngx_gravitee_fuzz_xml_t))
           != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    /* <name> */

    start = ++p;

    while (p < in->last
           && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
               || *p == '_'
               || (p > start
                   && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))))
    {
        p++;
    }

    if (p == start || p == in->last || *p != '>') {
        in->p = p;
        return NULL;
    }

    e->name.data = start;
    e->name.len = p - start;
    p++;

    /* text (each piece decoded into a copy) and child elements */

    e->text.data = ngx_pnalloc(in->pool, in->last - p + 1);
    if (e->text.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    t = e->text.data;
    run = p;       /* where the character data being read began */

    for ( ;; ) {

        if (p == in->last) {
            in->p = p;
            return NULL;
        }

        if (*p == '&') {
            end = ngx_strlchr(p, in->last, ';');

            if (end == NULL) {
                in->p = p;
                return NULL;
            }

            len = end + 1 - p;

            if (len == 4 && ngx_strncmp(p, "&lt;", 4) == 0) {
                *t++ = '<';

            } else if (len == 4 && ngx_strncmp(p, "&gt;", 4) == 0) {
                *t++ = '>';

            } else if (len == 5 && ngx_strncmp(p, "&amp;", 5) == 0) {
                *t++ = '&';

            } else if (len == 6 && ngx_strncmp(p, "&quot;", 6) == 0) {
                *t++ = '"';

            } else if (len == 6 && ngx_strncmp(p, "&apos;", 6) == 0) {
                *t++ = '\'';

            } else {
                in->p = p;
                return NULL;
            }

            p = end + 1;
            run = p;
            continue;
        }

        if (*p != '<') {
            /* "]]>" may not appear in character data either */

            if (*p == '>' && p - run >= 2 && p[-1] == ']' && p[-2] == ']') {
                in->p = p;
                return NULL;
            }

            *t++ = *p++;
            continue;
        }

        if (in->last - p >= 9 && ngx_strncmp(p, "<![CDATA[", 9) == 0) {
            start = p + 9;

            for (end = start; end + 3 <= in->last; end++) {
                if (end[0] == ']' && end[1] == ']' && end[2] == '>') {
                    break;
                }
            }

            if (end + 3 > in->last) {
                in->p = p;
                return NULL;
            }

            t = ngx_cpymem(t, start, end - start);
            p = end + 3;
            run = p;
            continue;
        }

        if (in->last - p >= 2 && p[1] == '/') {
            /* </name> closes this element, by the same name */

            if ((size_t) (in->last - p) < e->name.len + 3
                || ngx_strncmp(p + 2, e->name.data, e->name.len) != 0
                || p[2 + e->name.len] != '>')
            {
                in->p = p;
                return NULL;
            }

            e->text.len = t - e->text.data;
            in->p = p + 3 + e->name.len;

            /* mixed content is not what the writer makes */

            if (e->children.nelts && e->text.len) {
                return NULL;
            }

            return e;
        }

        in->p = p;

        child = ngx_gravitee_fuzz_xml_element(in, depth + 1);
        if (child == NULL) {
            return NULL;
        }

        p = in->p;

        slot = ngx_array_push(&e->children);
        if (slot == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        *slot = *child;
        run = p;
    }
}


ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_xml_message(ngx_gravitee_fuzz_xml_t *item,
    ngx_gravitee_message_t *msg, ngx_uint_t headers, ngx_uint_t metadata,
    ngx_pool_t *pool)
{
    u_char                   *p;
    ngx_str_t                 name, values;
    ngx_uint_t                i, j, n, k, groups;
    ngx_gravitee_fuzz_xml_t  *e, *g;

    n = 0;

    if (msg->id.len) {
        e = ngx_gravitee_fuzz_xml_child(item, n++, "id");
        ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&e->text, &msg->id),
                                 "<id> is the message's id");
    }

    e = ngx_gravitee_fuzz_xml_child(item, n++, "content");

    if (!ngx_gravitee_fuzz_str_eq(&e->text, &msg->content)) {
        ngx_gravitee_fuzz_fail("XML: <content> \"%.*s\" is not the message's "
                               "\"%.*s\"", (int) e->text.len, e->text.data,
                               (int) msg->content.len, msg->content.data);
    }

    if (headers) {
        e = ngx_gravitee_fuzz_xml_child(item, n++, "headers");
        groups = 0;

        for (i = 0; i < msg->nheaders; i++) {
            if (ngx_gravitee_message_header_first(msg, i) != i) {
                continue;
            }

            name = ngx_gravitee_fuzz_xml_name(pool, &msg->headers[i].name);
            g = ngx_gravitee_fuzz_xml_child(e, groups++, NULL);

            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&g->name,
                                                              &name),
                                     "a header's element is its name");

            /* its values joined by "," */

            values.data = ngx_pnalloc(pool,
                                      ngx_gravitee_fuzz_message_size(msg));
            if (values.data == NULL) {
                ngx_gravitee_fuzz_fail("out of memory");
            }

            p = values.data;
            k = 0;

            for (j = i; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) != i) {
                    continue;
                }

                if (k++) {
                    *p++ = ',';
                }

                p = ngx_cpymem(p, msg->headers[j].value.data,
                               msg->headers[j].value.len);
            }

            values.len = p - values.data;

            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&g->text,
                                                              &values),
                                     "a header's values");
        }

        ngx_gravitee_fuzz_assert(e->children.nelts == groups,
                                 "<headers> has elements of its own");
    }

    if (metadata) {
        e = ngx_gravitee_fuzz_xml_child(item, n++, "metadata");

        g = ngx_gravitee_fuzz_xml_child(e, 0, "sourceTimestamp");
        p = ngx_pnalloc(pool, NGX_INT64_LEN);
        if (p == NULL) {
            ngx_gravitee_fuzz_fail("out of memory");
        }

        values.data = p;
        values.len = ngx_sprintf(p, "%L", msg->timestamp) - p;
        ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&g->text, &values),
                                 "<sourceTimestamp> is the message's");

        for (i = 0; i < msg->nmetadata; i++) {
            name = ngx_gravitee_fuzz_xml_name(pool, &msg->metadata[i].name);
            g = ngx_gravitee_fuzz_xml_child(e, i + 1, NULL);

            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_str_eq(&g->name, &name)
                                     && ngx_gravitee_fuzz_str_eq(&g->text,
                                                     &msg->metadata[i].value),
                                     "a metadata element");
        }

        ngx_gravitee_fuzz_assert(e->children.nelts == msg->nmetadata + 1,
                                 "<metadata> has elements of its own");
    }

    ngx_gravitee_fuzz_assert(item->children.nelts == n,
                             "an item has elements of its own");
}


ngx_gravitee_fuzz_checker
static ngx_gravitee_fuzz_xml_t *
ngx_gravitee_fuzz_xml_child(ngx_gravitee_fuzz_xml_t *e, ngx_uint_t i,
    const char *name)
{
    ngx_gravitee_fuzz_xml_t  *child;

    if (i >= e->children.nelts) {
        ngx_gravitee_fuzz_fail("XML: <%.*s> has no element %d (<%s>)",
                               (int) e->name.len, e->name.data, (int) i,
                               name ? name : "any");
    }

    child = (ngx_gravitee_fuzz_xml_t *) e->children.elts + i;

    if (name
        && (child->name.len != ngx_strlen(name)
            || ngx_strncmp(child->name.data, name, child->name.len) != 0))
    {
        ngx_gravitee_fuzz_fail("XML: <%.*s> where <%s> was expected",
                               (int) child->name.len, child->name.data, name);
    }

    return child;
}


/* an element name as XmlConvert.EncodeName writes it: _xHH_ */

ngx_gravitee_fuzz_checker
static ngx_str_t
ngx_gravitee_fuzz_xml_name(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char     *p, c;
    size_t      i;
    ngx_str_t   name;

    name.data = ngx_pnalloc(pool, 5 * s->len + 1);
    if (name.data == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    if (s->len == 0) {
        name.data[0] = '_';
        name.len = 1;
        return name;
    }

    p = name.data;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (isalpha(c) || c == '_' || (i && (isdigit(c) || c == '-'
                                             || c == '.')))
        {
            *p++ = c;

        } else {
            *p++ = '_'; *p++ = 'x';
            *p++ = "0123456789ABCDEF"[c >> 4];
            *p++ = "0123456789ABCDEF"[c & 0xf];
            *p++ = '_';
        }
    }

    name.len = p - name.data;

    return name;
}


/* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | ... */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_xml_chars(ngx_str_t *s, const char *what)
{
    size_t  i, n;

    for (i = 0; i < s->len; i += n) {
        n = ngx_gravitee_fuzz_utf8(s->data + i, ngx_min(4, s->len - i));

        if (n == 0) {
            ngx_gravitee_fuzz_fail("XML: %s has a byte that is not UTF-8 at "
                                   "%d", what, (int) i);
        }

        n = (s->data[i] < 0x80) ? 1 : (s->data[i] < 0xe0) ? 2
            : (s->data[i] < 0xf0) ? 3 : 4;

        if (s->data[i] < 0x20 && s->data[i] != '\t' && s->data[i] != '\n'
            && s->data[i] != '\r')
        {
            ngx_gravitee_fuzz_fail("XML: %s has control character 0x%02x, "
                                   "which XML 1.0 does not allow even "
                                   "escaped", what, s->data[i]);
        }

        if (n == 3 && s->data[i] == 0xef && s->data[i + 1] == 0xbf
            && s->data[i + 2] >= 0xbe)
        {
            ngx_gravitee_fuzz_fail("XML: %s has U+FFFE or U+FFFF", what);
        }
    }
}


/* text: as the reference prints it, written here from its description */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_check_text(ngx_gravitee_get_ctx_t *ctx, ngx_pool_t *pool,
    ngx_str_t *doc)
{
    u_char                   *p, *start;
    size_t                    size;
    ngx_uint_t                i;
    ngx_gravitee_message_t  **item;

    size = 256 + ctx->cursor.len + ctx->limit_arg.len;
    item = ngx_gravitee_fuzz_batch.elts;

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        size += ngx_gravitee_fuzz_message_size(item[i]);
    }

    if (ctx->error) {
        size += ngx_gravitee_fuzz_message_size(ctx->error);
    }

    start = ngx_pnalloc(pool, size);
    if (start == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    p = ngx_sprintf(start, "items\n");

    for (i = 0; i < ngx_gravitee_fuzz_batch.nelts; i++) {
        p = ngx_sprintf(p, "%sitem\n", i ? "\n" : "");
        p = ngx_gravitee_fuzz_text_message(p, item[i],
                                           ctx->conf->headers_in_payload,
                                           ctx->conf->metadata_in_payload);
    }

    if (ctx->error) {
        p = ngx_sprintf(p, "\nerror\n");
        p = ngx_gravitee_fuzz_text_message(p, ctx->error, 1, 1);
    }

    if (ctx->cursor.len) {
        p = ngx_sprintf(p, "\npagination\nnextCursor: %V", &ctx->cursor);

        if (ctx->limit_arg.data) {
            p = ngx_sprintf(p, "\nlimit: %V", &ctx->limit_arg);
        }
    }

    if ((size_t) (p - start) != doc->len
        || ngx_memcmp(start, doc->data, doc->len) != 0)
    {
        ngx_gravitee_fuzz_fail("the text batch \"%.*s\" is not \"%.*s\"",
                               (int) doc->len, doc->data, (int) (p - start),
                               start);
    }
}


ngx_gravitee_fuzz_checker
static u_char *
ngx_gravitee_fuzz_text_message(u_char *p, ngx_gravitee_message_t *msg,
    ngx_uint_t headers, ngx_uint_t metadata)
{
    ngx_uint_t  i, j, k, groups;

    if (msg->id.len) {
        p = ngx_sprintf(p, "id: %V\n", &msg->id);
    }

    p = ngx_sprintf(p, "content: %V\n", &msg->content);

    if (headers) {
        p = ngx_sprintf(p, "headers: {");
        groups = 0;

        for (i = 0; i < msg->nheaders; i++) {
            if (ngx_gravitee_message_header_first(msg, i) != i) {
                continue;
            }

            p = ngx_sprintf(p, "%s%V=[", groups++ ? ", " : "",
                            &msg->headers[i].name);
            k = 0;

            for (j = i; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) == i) {
                    p = ngx_sprintf(p, "%s%V", k++ ? ", " : "",
                                    &msg->headers[j].value);
                }
            }

            *p++ = ']';
        }

        p = ngx_sprintf(p, "}\n");
    }

    if (metadata) {
        p = ngx_sprintf(p, "metadata: {sourceTimestamp=%L", msg->timestamp);

        for (i = 0; i < msg->nmetadata; i++) {
            p = ngx_sprintf(p, ", %V=%V", &msg->metadata[i].name,
                            &msg->metadata[i].value);
        }

        p = ngx_sprintf(p, "}\n");
    }

    return p;
}


ngx_gravitee_fuzz_checker
static ngx_uint_t
ngx_gravitee_fuzz_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


/* more than any of the writers or readers makes of the message */

ngx_gravitee_fuzz_checker
static size_t
ngx_gravitee_fuzz_message_size(ngx_gravitee_message_t *msg)
{
    size_t      size;
    ngx_uint_t  i;

    size = 128 + NGX_INT64_LEN + msg->id.len + msg->content.len;

    for (i = 0; i < msg->nheaders; i++) {
        size += 16 + msg->headers[i].name.len + msg->headers[i].value.len;
    }

    for (i = 0; i < msg->nmetadata; i++) {
        size += 16 + msg->metadata[i].name.len + msg->metadata[i].value.len;
    }

    return size;
}


/* jansson reads no NUL in a key ("\\u0000", which RFC 8259 allows) */

ngx_gravitee_fuzz_checker
static ngx_uint_t
ngx_gravitee_fuzz_nul_names(ngx_gravitee_message_t *msg)
{
    ngx_uint_t  i;

    for (i = 0; i < msg->nheaders; i++) {
        if (ngx_strlchr(msg->headers[i].name.data,
                        msg->headers[i].name.data + msg->headers[i].name.len,
                        '\0'))
        {
            return 1;
        }
    }

    for (i = 0; i < msg->nmetadata; i++) {
        if (ngx_strlchr(msg->metadata[i].name.data,
                        msg->metadata[i].name.data
                        + msg->metadata[i].name.len, '\0'))
        {
            return 1;
        }
    }

    return 0;
}
