
/*
 * ngx_gravitee_module: the fuzz driver module.
 *
 * Loaded with the module into the packaged nginx (master_process off), it
 * reads GRAVITEE_FUZZ_TARGET and GRAVITEE_FUZZ_ARGS (the libFuzzer command
 * line) and, from the first turn of the worker's event loop, gives the
 * process to LLVMFuzzerRunDriver(), which calls the target once per input
 * and exits with libFuzzer's status.  See fuzz/README.md.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include "ngx_gravitee_fuzz.h"


#define NGX_GRAVITEE_FUZZ_MAX_ARGS  64


int LLVMFuzzerRunDriver(int *argc, char ***argv,
    int (*cb)(const uint8_t *data, size_t size));


static ngx_int_t ngx_gravitee_fuzz_init_process(ngx_cycle_t *cycle);
static void ngx_gravitee_fuzz_start(ngx_event_t *ev);
static void ngx_gravitee_fuzz_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static ngx_uint_t ngx_gravitee_fuzz_timers(void);


static ngx_http_module_t  ngx_gravitee_fuzz_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_gravitee_fuzz_module = {
    NGX_MODULE_V1,
    &ngx_gravitee_fuzz_module_ctx,         /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_gravitee_fuzz_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_gravitee_fuzz_target_t  *ngx_gravitee_fuzz_targets[] = {
    &ngx_gravitee_fuzz_websocket,
    &ngx_gravitee_fuzz_accept,
    &ngx_gravitee_fuzz_args,
    &ngx_gravitee_fuzz_writers,
    &ngx_gravitee_fuzz_sse,
    &ngx_gravitee_fuzz_jwt,
    &ngx_gravitee_fuzz_jwks,
    NULL
};


ngx_log_t   *ngx_gravitee_fuzz_log;
ngx_uint_t   ngx_gravitee_fuzz_strict;

static ngx_log_t                    ngx_gravitee_fuzz_log_base;
static ngx_uint_t                   ngx_gravitee_fuzz_log_level;
static ngx_uint_t                   ngx_gravitee_fuzz_timers_before;
static ngx_event_t                  ngx_gravitee_fuzz_event;
static ngx_connection_t             ngx_gravitee_fuzz_connection;
static ngx_gravitee_fuzz_target_t  *ngx_gravitee_fuzz_target;


/*
 * Not from here: the modules after this one have their init_process still
 * to run.  A posted event starts the fuzzer from the event loop, where the
 * code under test always runs.
 */

static ngx_int_t
ngx_gravitee_fuzz_init_process(ngx_cycle_t *cycle)
{
    char                         *name, *level;
    ngx_gravitee_fuzz_target_t  **t;

    name = getenv("GRAVITEE_FUZZ_TARGET");

    if (name == NULL) {
        /* loaded without a target (nginx -t): nothing to do */
        return NGX_OK;
    }

    for (t = ngx_gravitee_fuzz_targets; *t; t++) {
        if (ngx_strcmp((*t)->name, name) == 0) {
            break;
        }
    }

    if (*t == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "no fuzz target \"%s\"; targets: websocket, accept, "
                      "args, writers, sse, jwt, jwks", name);
        return NGX_ERROR;
    }

    ngx_gravitee_fuzz_target = *t;

    /*
     * GRAVITEE_FUZZ_LOG=info (or debug, or warn) shows the code's own log
     * lines; by default only those that are findings reach the writer
     */

    level = getenv("GRAVITEE_FUZZ_LOG");

    if (level && ngx_strcmp(level, "debug") == 0) {
        ngx_gravitee_fuzz_log_level = NGX_LOG_DEBUG_ALL;

    } else if (level && ngx_strcmp(level, "info") == 0) {
        ngx_gravitee_fuzz_log_level = NGX_LOG_INFO;

    } else if (level && ngx_strcmp(level, "warn") == 0) {
        ngx_gravitee_fuzz_log_level = NGX_LOG_WARN;

    } else {
        ngx_gravitee_fuzz_log_level = NGX_LOG_CRIT;
    }

    ngx_gravitee_fuzz_strict = (getenv("GRAVITEE_FUZZ_STRICT") != NULL);

    ngx_gravitee_fuzz_log = &ngx_gravitee_fuzz_log_base;
    ngx_gravitee_fuzz_set_log(ngx_gravitee_fuzz_log);

    ngx_gravitee_fuzz_connection.log = ngx_gravitee_fuzz_log;
    ngx_gravitee_fuzz_connection.fd = (ngx_socket_t) -1;

    ngx_gravitee_fuzz_event.handler = ngx_gravitee_fuzz_start;
    ngx_gravitee_fuzz_event.data = cycle;
    ngx_gravitee_fuzz_event.log = cycle->log;

    /* the "next" queue: the loop's first poll then returns at once */
    ngx_post_event(&ngx_gravitee_fuzz_event, &ngx_posted_next_events);

    return NGX_OK;
}


static void
ngx_gravitee_fuzz_start(ngx_event_t *ev)
{
    int          argc, rc;
    char        *args, *p, *argv[NGX_GRAVITEE_FUZZ_MAX_ARGS + 2], **pargv;
    ngx_cycle_t *cycle = ev->data;

    /* what libFuzzer runs to run itself again: run.sh's wrapper */
    argv[0] = getenv("GRAVITEE_FUZZ_ARGV0");
    argc = 1;

    if (argv[0] == NULL) {
        argv[0] = "ngx_gravitee_fuzz";
    }

    args = getenv("GRAVITEE_FUZZ_ARGS");

    if (args) {
        /* blank-separated, as the runner writes them: no quoting */
        args = strdup(args);

        for (p = strtok(args, " \t\n"); p; p = strtok(NULL, " \t\n")) {
            if (argc == NGX_GRAVITEE_FUZZ_MAX_ARGS) {
                break;
            }

            argv[argc++] = p;
        }
    }

    argv[argc] = NULL;
    pargv = argv;

    if (ngx_gravitee_fuzz_target->init
        && ngx_gravitee_fuzz_target->init(cycle) != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("fuzz target \"%s\" failed to initialize",
                               ngx_gravitee_fuzz_target->name);
    }

    ngx_gravitee_fuzz_timers_before = ngx_gravitee_fuzz_timers();

    rc = LLVMFuzzerRunDriver(&argc, &pargv, ngx_gravitee_fuzz_target->run);

    /* libFuzzer usually exits by itself; nginx has nothing to clean up */
    exit(rc);
}


void
ngx_gravitee_fuzz_set_log(ngx_log_t *log)
{
    log->log_level = ngx_gravitee_fuzz_log_level;
    log->writer = ngx_gravitee_fuzz_writer;
    log->file = NULL;
    log->next = NULL;
}


static void
ngx_gravitee_fuzz_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    fprintf(stderr, "%.*s\n", (int) len, buf);

    if (level <= NGX_LOG_CRIT) {
        ngx_gravitee_fuzz_fail("the code under test logged at \"crit\" or "
                               "worse: %.*s", (int) len, buf);
    }
}


void
ngx_gravitee_fuzz_fail(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "\n==gravitee fuzz== INVARIANT VIOLATED (%s): ",
            ngx_gravitee_fuzz_target ? ngx_gravitee_fuzz_target->name : "-");

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fprintf(stderr, "\n");

    abort();
}


ngx_pool_t *
ngx_gravitee_fuzz_pool(void)
{
    ngx_pool_t  *pool;

    /* no room after the header: pool->max is 0, all goes to ngx_alloc() */

    pool = ngx_create_pool(sizeof(ngx_pool_t), ngx_gravitee_fuzz_log);
    if (pool == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    return pool;
}


ngx_http_request_t *
ngx_gravitee_fuzz_request(ngx_pool_t *pool)
{
    ngx_http_request_t  *r;

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    if (r == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    r->pool = pool;
    r->connection = &ngx_gravitee_fuzz_connection;
    r->main = r;
    r->method = NGX_HTTP_GET;
    r->http_version = NGX_HTTP_VERSION_11;

    if (ngx_list_init(&r->headers_in.headers, pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    return r;
}


ngx_int_t
ngx_gravitee_fuzz_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    /* as ngx_http_process_request_headers() leaves it */

    h->key = *name;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, name->len + 1);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, name->data, name->len);

    return NGX_OK;
}


void
ngx_gravitee_fuzz_run_posted(void)
{
    ngx_uint_t  n;

    /*
     * the "next" queue waits for the next turn of the loop, which runs it
     * after a poll that returns at once; bounded, so that a handler that
     * posts itself forever shows
     */

    for (n = 0; n < 1000; n++) {
        ngx_event_process_posted((ngx_cycle_t *) ngx_cycle,
                                 &ngx_posted_events);

        if (ngx_queue_empty(&ngx_posted_next_events)) {
            return;
        }

        ngx_event_move_posted_next((ngx_cycle_t *) ngx_cycle);
    }

    ngx_gravitee_fuzz_fail("an event posts itself for the next turn forever");
}


void
ngx_gravitee_fuzz_check_clean(void)
{
    if (ngx_gravitee_messages_alive) {
        ngx_gravitee_fuzz_fail("%lu message(s) left alive after the input",
                               (unsigned long) ngx_gravitee_messages_alive);
    }

    if (ngx_gravitee_streams_alive) {
        ngx_gravitee_fuzz_fail("%lu stream(s) left alive after the input",
                               (unsigned long) ngx_gravitee_streams_alive);
    }

    if (!ngx_queue_empty(&ngx_posted_events)
        || !ngx_queue_empty(&ngx_posted_next_events))
    {
        ngx_gravitee_fuzz_fail("posted events left after the input");
    }

    if (ngx_gravitee_fuzz_timers() != ngx_gravitee_fuzz_timers_before) {
        ngx_gravitee_fuzz_fail("timers left after the input");
    }
}


static ngx_uint_t
ngx_gravitee_fuzz_timers(void)
{
    ngx_uint_t          n;
    ngx_rbtree_node_t  *node, *root, *sentinel;

    root = ngx_event_timer_rbtree.root;
    sentinel = ngx_event_timer_rbtree.sentinel;

    if (root == sentinel) {
        return 0;
    }

    n = 0;

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_event_timer_rbtree, node))
    {
        n++;
    }

    return n;
}


ngx_uint_t
ngx_gravitee_fuzz_byte(ngx_gravitee_fuzz_in_t *in)
{
    return (in->pos < in->last) ? *in->pos++ : 0;
}


ngx_str_t
ngx_gravitee_fuzz_bytes(ngx_gravitee_fuzz_in_t *in, size_t len)
{
    ngx_str_t  s;

    s.len = ngx_min(len, (size_t) (in->last - in->pos));
    s.data = (u_char *) in->pos;
    in->pos += s.len;

    return s;
}


ngx_str_t
ngx_gravitee_fuzz_string(ngx_gravitee_fuzz_in_t *in)
{
    size_t  len;

    len = ngx_gravitee_fuzz_byte(in);

    if (len >= 0xf0) {
        len = ((len - 0xf0) << 8) + ngx_gravitee_fuzz_byte(in);
    }

    return ngx_gravitee_fuzz_bytes(in, len);
}


/*
 * A header name of length byte 0xef is an earlier header's name in
 * another case: headers that repeat a name are grouped by the writers.
 */

static void
ngx_gravitee_fuzz_pairs(ngx_gravitee_fuzz_in_t *in, ngx_pool_t *pool,
    ngx_gravitee_pair_t *pairs, ngx_uint_t n)
{
    u_char      *p;
    size_t       k;
    ngx_uint_t   i, j;

    for (i = 0; i < n; i++) {

        if (i && in->pos < in->last && *in->pos == 0xef) {
            in->pos++;
            j = ngx_gravitee_fuzz_byte(in) % i;

            p = ngx_pnalloc(pool, pairs[j].name.len + 1);
            if (p == NULL) {
                ngx_gravitee_fuzz_fail("out of memory");
            }

            for (k = 0; k < pairs[j].name.len; k++) {
                p[k] = pairs[j].name.data[k];

                if ((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z') {
                    p[k] ^= 0x20;
                }
            }

            pairs[i].name.data = p;
            pairs[i].name.len = pairs[j].name.len;

        } else {
            pairs[i].name = ngx_gravitee_fuzz_string(in);
        }

        pairs[i].value = ngx_gravitee_fuzz_string(in);
    }
}


ngx_gravitee_message_t *
ngx_gravitee_fuzz_message(ngx_gravitee_fuzz_in_t *in, ngx_uint_t allow_error)
{
    ngx_int_t                     k;
    ngx_uint_t                    flags, more;
    ngx_pool_t                   *pool;
    uint64_t                      ts;
    ngx_gravitee_pair_t           headers[8], metadata[4];
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_message_init_t   init;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));

    flags = ngx_gravitee_fuzz_byte(in);
    more = ngx_gravitee_fuzz_byte(in);

    init.error = (allow_error && (flags & 0x02)) ? 1 : 0;
    init.nheaders = ((flags >> 2) & 3) + ((flags & 0x40) ? 4 : 0);
    init.nmetadata = (flags >> 4) & 3;

    if (flags & 0x80) {
        /* any timestamp, INT64_MIN and negative ones included */
        ts = 0;

        for (k = 0; k < 8; k++) {
            ts = (ts << 8) | ngx_gravitee_fuzz_byte(in);
        }

        init.timestamp = (int64_t) ts;
    }

    if (flags & 0x01) {
        init.id = ngx_gravitee_fuzz_string(in);
    }

    /* the position: none, the id's own bytes (the Mock's), or its own */

    if (more & 0x01) {
        init.position = init.id;

    } else if (more & 0x02) {
        init.position = ngx_gravitee_fuzz_string(in);
    }

    init.content = ngx_gravitee_fuzz_string(in);

    /* the names made up in another case live until the message copies */
    pool = ngx_gravitee_fuzz_pool();

    ngx_gravitee_fuzz_pairs(in, pool, headers, init.nheaders);
    ngx_gravitee_fuzz_pairs(in, pool, metadata, init.nmetadata);

    init.headers = headers;
    init.metadata = metadata;

    msg = ngx_gravitee_message_create(ngx_gravitee_fuzz_log, &init);

    ngx_destroy_pool(pool);

    if (msg == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    return msg;
}


/* by code points, not by the byte ranges ngx_gravitee_utf8_valid() uses */

ngx_gravitee_fuzz_checker
size_t
ngx_gravitee_fuzz_utf8(const u_char *p, size_t len)
{
    size_t      i, n, k;
    uint32_t    cp, min;

    i = 0;

    while (i < len) {

        if (p[i] < 0x80) {
            i++;
            continue;
        }

        if (p[i] < 0xc0) {
            break;

        } else if (p[i] < 0xe0) {
            n = 2; cp = p[i] & 0x1f; min = 0x80;

        } else if (p[i] < 0xf0) {
            n = 3; cp = p[i] & 0x0f; min = 0x800;

        } else if (p[i] < 0xf8) {
            n = 4; cp = p[i] & 0x07; min = 0x10000;

        } else {
            break;
        }

        if (len - i < n) {
            break;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                break;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        if (k < n || cp < min || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
        {
            break;
        }

        i += n;
    }

    return i;
}
