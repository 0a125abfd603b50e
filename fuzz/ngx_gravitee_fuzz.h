
/*
 * ngx_gravitee_module: fuzz targets, run by libFuzzer inside the packaged
 * nginx (see README.md).
 *
 * Debian ships nginx's headers, not its core: a fuzz binary of its own
 * could not link ngx_palloc, ngx_sprintf or the event loop.  So the
 * targets are an NGINX module, ngx_gravitee_fuzz_module, built into a
 * sanitized variant of ngx_gravitee_module.so: once the worker runs, it
 * hands the process to libFuzzer, and each input runs on the real core.
 * Only the client's socket and the endpoint are made up.
 */


#ifndef _NGX_GRAVITEE_FUZZ_H_INCLUDED_
#define _NGX_GRAVITEE_FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_stream.h"


typedef struct {
    const char                 *name;
    /* once, before the first input; may be NULL */
    ngx_int_t                 (*init)(ngx_cycle_t *cycle);
    /* one input: returns 0, or abort()s when an invariant breaks */
    int                       (*run)(const uint8_t *data, size_t size);
} ngx_gravitee_fuzz_target_t;


/* an input, consumed from the front; past its end every byte reads 0 */

typedef struct {
    const u_char               *pos;
    const u_char               *last;
} ngx_gravitee_fuzz_in_t;


extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_websocket;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_accept;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_args;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_writers;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_sse;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_jwt;
extern ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_jwks;


/*
 * Every log line of the code under test goes through this log: a line at
 * "crit" or worse (an alert, "connection already closed") is a finding.
 */
extern ngx_log_t  *ngx_gravitee_fuzz_log;

/*
 * GRAVITEE_FUZZ_STRICT: also what a standard asks and the code chose not
 * to do (XML 1.0 characters, UTF-8 in text frames of frame_type=text)
 */
extern ngx_uint_t  ngx_gravitee_fuzz_strict;

void ngx_gravitee_fuzz_set_log(ngx_log_t *log);

/*
 * The checkers' own loops, kept out of libFuzzer's coverage: they would
 * cost more than the code they check (every comparison traced) and make
 * inputs look new for what the checker did, not the code under test.
 */
#define ngx_gravitee_fuzz_checker  __attribute__((no_sanitize("coverage")))

/* an invariant broke: say which, abort() (libFuzzer keeps the input) */
void ngx_gravitee_fuzz_fail(const char *fmt, ...) ngx_cdecl
    __attribute__((noreturn, format(printf, 1, 2)));

#define ngx_gravitee_fuzz_assert(cond, what)                                  \
    if (!(cond)) {                                                            \
        ngx_gravitee_fuzz_fail("%s:%d: %s (%s)", __FILE__, __LINE__,          \
                               what, #cond);                                  \
    }

/*
 * A pool whose every allocation is malloc()'d on its own, so that ASan
 * knows the bounds of each: a pool block would hide an overflow.
 */
ngx_pool_t *ngx_gravitee_fuzz_pool(void);

/*
 * The request fields the parsers read: pool, connection (for its log),
 * headers_in.headers (in parts of two lines, so that a reader crosses
 * parts), args.
 */
ngx_http_request_t *ngx_gravitee_fuzz_request(ngx_pool_t *pool);
ngx_int_t ngx_gravitee_fuzz_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);

/* what the last input left: messages, streams, posted events, timers */
void ngx_gravitee_fuzz_check_clean(void);

/* the posted events, as the event loop runs them */
void ngx_gravitee_fuzz_run_posted(void);

ngx_uint_t ngx_gravitee_fuzz_byte(ngx_gravitee_fuzz_in_t *in);
ngx_str_t ngx_gravitee_fuzz_bytes(ngx_gravitee_fuzz_in_t *in, size_t len);
/* a length byte (>= 0xf0: a second one, up to 4 KiB), then the bytes */
ngx_str_t ngx_gravitee_fuzz_string(ngx_gravitee_fuzz_in_t *in);

/*
 * A message made from the input (see README.md): two bytes of flags (id,
 * error, how many headers and metadata, timestamp, position), timestamp,
 * id, position, content, then names and values.
 */
ngx_gravitee_message_t *ngx_gravitee_fuzz_message(ngx_gravitee_fuzz_in_t *in,
    ngx_uint_t allow_error);

/* the longest valid UTF-8 prefix, decoded independently of ours */
size_t ngx_gravitee_fuzz_utf8(const u_char *p, size_t len);


#endif /* _NGX_GRAVITEE_FUZZ_H_INCLUDED_ */
