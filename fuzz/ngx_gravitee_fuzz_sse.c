
/*
 * ngx_gravitee_module: fuzz target of the SSE encoder.
 *
 *   sse   ngx_gravitee_sse_encode() of a message with any id, position,
 *         content, headers, metadata and error flag, for a client of the
 *         live stream (the message's position: the framing is cached) or
 *         one catching up (its own), under either or both confs
 *         (headers_as_comment, metadata_as_comment); the event is read
 *         back as an EventSource reads a stream, and its chunk checked
 *
 * The entrypoint is included: the encoder is static.
 */


#include "entrypoints/ngx_gravitee_sse.c"
#include "ngx_gravitee_fuzz.h"


static int ngx_gravitee_fuzz_sse_run(const uint8_t *data, size_t size);
static void ngx_gravitee_fuzz_sse_check(ngx_gravitee_sse_conf_t *conf,
    ngx_gravitee_message_t *msg, ngx_str_t *position,
    ngx_gravitee_message_t *holder, ngx_str_t *event, ngx_str_t *chunk);
static u_char *ngx_gravitee_fuzz_sse_line(u_char *p, ngx_str_t *s);
static ngx_uint_t ngx_gravitee_fuzz_sse_is(ngx_str_t *line, u_char *p,
    u_char *last);


ngx_gravitee_fuzz_target_t  ngx_gravitee_fuzz_sse = {
    "sse", NULL, ngx_gravitee_fuzz_sse_run
};


/*
 * The first byte: the conf flags of the first encoding, whether a second
 * conf encodes the message too, whether the first conf encodes it again,
 * and whether the client is one of the live stream (at the message's own
 * position: one framing cached with the message for all) or one catching
 * up (a position of its own, from the input: a framing of its own).
 */

static int
ngx_gravitee_fuzz_sse_run(const uint8_t *data, size_t size)
{
    ngx_str_t                 event, chunk, event2, chunk2, own, *position;
    ngx_uint_t                flags, shared;
    ngx_gravitee_fuzz_in_t    in;
    ngx_gravitee_sse_conf_t   conf[2];
    ngx_gravitee_message_t   *msg, *holder, *holder2, *other;

    in.pos = data;
    in.last = data + size;

    flags = ngx_gravitee_fuzz_byte(&in);

    ngx_memzero(conf, sizeof(conf));
    conf[0].headers_as_comment = (flags & 1) ? 1 : 0;
    conf[0].metadata_as_comment = (flags & 2) ? 1 : 0;
    conf[1].headers_as_comment = (flags & 4) ? 1 : 0;
    conf[1].metadata_as_comment = (flags & 8) ? 1 : 0;

    shared = !(flags & 0x40);

    if (!shared) {
        own = ngx_gravitee_fuzz_string(&in);
    }

    msg = ngx_gravitee_fuzz_message(&in, 1);
    position = shared ? &msg->position : &own;

    if (!shared && own.data == msg->position.data) {
        /* the same bytes would be taken for the live stream's */
        shared = 1;
    }

    holder = ngx_gravitee_sse_encode(&conf[0], msg, position,
                                     ngx_gravitee_fuzz_log, &event, &chunk);
    ngx_gravitee_fuzz_assert(holder != NULL, "the encoder failed");

    ngx_gravitee_fuzz_sse_check(&conf[0], msg, position, holder, &event,
                                &chunk);

    ngx_gravitee_fuzz_assert((ngx_gravitee_message_encoding(msg, &conf[0])
                              == holder) == (shared != 0),
                             "the live stream's framing is not cached, or "
                             "a client's own is");

    if (flags & 0x10) {
        /* again: from the message's cache, or made again the same */

        holder2 = ngx_gravitee_sse_encode(&conf[0], msg, position,
                                          ngx_gravitee_fuzz_log, &event2,
                                          &chunk2);
        ngx_gravitee_fuzz_assert(holder2 != NULL, "the encoder failed");

        if (shared) {
            ngx_gravitee_fuzz_assert(holder2 == holder
                                     && event2.data == event.data
                                     && event2.len == event.len
                                     && chunk2.data == chunk.data
                                     && chunk2.len == chunk.len,
                                     "a second encoding is not the cached "
                                     "one");

        } else {
            ngx_gravitee_fuzz_assert(holder2 != holder
                                     && chunk2.len == chunk.len
                                     && ngx_memcmp(chunk2.data, chunk.data,
                                                   chunk.len) == 0,
                                     "a client's own framing differs the "
                                     "second time");
        }

        ngx_gravitee_message_unref(holder2);
    }

    if (flags & 0x20) {
        /* another entrypoint's conf: its own framing */

        other = ngx_gravitee_sse_encode(&conf[1], msg, position,
                                        ngx_gravitee_fuzz_log, &event2,
                                        &chunk2);
        ngx_gravitee_fuzz_assert(other != NULL && other != holder,
                                 "two confs share a framing");

        ngx_gravitee_fuzz_sse_check(&conf[1], msg, position, other, &event2,
                                    &chunk2);

        if (shared) {
            ngx_gravitee_fuzz_assert(ngx_gravitee_message_encoding(msg,
                                                                   &conf[0])
                                     == holder
                                     && ngx_gravitee_message_encoding(msg,
                                                                   &conf[1])
                                        == other,
                                     "a framing is lost from the message");
        }

        ngx_gravitee_message_unref(other);
    }

    /* a cached holder is the message or chained to it, and goes with it */

    ngx_gravitee_message_unref(holder);
    ngx_gravitee_message_unref(msg);

    ngx_gravitee_fuzz_check_clean();

    return 0;
}


/*
 * The event as an EventSource reads it (WHATWG HTML, 9.2.6): lines end at
 * LF (the encoder writes no CR); a blank line dispatches, so there is one,
 * last; a line starting with ":" is a comment; "field: value" otherwise.
 * Expected, in order: "id: <position>" (not for an error: the position is
 * what a client that comes back gives as Last-Event-ID), "event: message" or
 * "event: error", "data: <line>" for every line of the content, then the
 * comments the conf asks for.  The data lines joined by LF are the content
 * with its CRLF, CR and LF all LF.
 */

ngx_gravitee_fuzz_checker
static void
ngx_gravitee_fuzz_sse_check(ngx_gravitee_sse_conf_t *conf,
    ngx_gravitee_message_t *msg, ngx_str_t *position,
    ngx_gravitee_message_t *holder, ngx_str_t *event, ngx_str_t *chunk)
{
    u_char      *p, *last, *eol, *d, *c, *data, *expect, head[32];
    size_t       size, n;
    ngx_str_t    line, s;
    ngx_uint_t   i, j, k;
    ngx_pool_t  *pool;

    p = event->data;
    last = event->data + event->len;

    /* within the holder's bytes: nothing a client is sent is elsewhere */

    ngx_gravitee_fuzz_assert(holder->encoded.data
                             && chunk->data >= holder->encoded.data
                             && chunk->data + chunk->len
                                <= holder->encoded.data + holder->encoded.len
                             && event->data >= chunk->data
                             && last <= chunk->data + chunk->len,
                             "the event is not in its holder's bytes");

    /* the chunk: "<hex size>\r\n<event>\r\n", the size in lowercase hex */

    n = ngx_sprintf(head, "%xz\r\n", event->len) - head;

    ngx_gravitee_fuzz_assert(event->data - chunk->data == (ssize_t) n
                             && ngx_memcmp(chunk->data, head, n) == 0
                             && chunk->len == n + event->len + 2
                             && last[0] == '\r' && last[1] == '\n',
                             "the event's chunk is not framed right");

    ngx_gravitee_fuzz_assert(event->len >= 2 && last[-1] == '\n'
                             && last[-2] == '\n',
                             "the event does not end with a blank line");

    ngx_gravitee_fuzz_assert(ngx_strlchr(p, last, '\r') == NULL,
                             "a CR in the event: a line break of its own");

    pool = ngx_gravitee_fuzz_pool();

    size = msg->content.len + position->len + 256;

    for (i = 0; i < msg->nheaders; i++) {
        size += msg->headers[i].name.len + msg->headers[i].value.len + 8;
    }

    for (i = 0; i < msg->nmetadata; i++) {
        size += msg->metadata[i].name.len + msg->metadata[i].value.len + 8;
    }

    data = ngx_pnalloc(pool, size);
    expect = ngx_pnalloc(pool, size);

    if (data == NULL || expect == NULL) {
        ngx_gravitee_fuzz_fail("out of memory");
    }

    /* id, then event */

    if (position->len && !msg->error) {
        d = ngx_cpymem(expect, "id: ", 4);
        d = ngx_gravitee_fuzz_sse_line(d, position);
        line.data = expect;
        line.len = d - expect;

        if (!ngx_gravitee_fuzz_sse_is(&line, p, last)) {
            ngx_gravitee_fuzz_fail("SSE: the first line is not the id line "
                                   "\"%.*s\"", (int) line.len, line.data);
        }

        p += line.len + 1;
    }

    ngx_str_set(&line, "event: message");

    if (msg->error) {
        ngx_str_set(&line, "event: error");
    }

    ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_sse_is(&line, p, last),
                             "SSE: no event line where expected");
    p += line.len + 1;

    /* data lines: one per line of the content, which they give back */

    d = data;
    k = 0;

    while (p < last && last - p >= 6 && ngx_strncmp(p, "data: ", 6) == 0) {
        eol = ngx_strlchr(p, last, '\n');

        if (k++) {
            *d++ = '\n';
        }

        d = ngx_cpymem(d, p + 6, eol - p - 6);
        p = eol + 1;
    }

    ngx_gravitee_fuzz_assert(k > 0, "SSE: no data line");

    c = expect;

    for (i = 0; i < msg->content.len; i++) {
        if (msg->content.data[i] == '\r') {
            *c++ = '\n';

            if (i + 1 < msg->content.len && msg->content.data[i + 1] == '\n')
            {
                i++;
            }

            continue;
        }

        *c++ = msg->content.data[i];
    }

    if (d - data != c - expect || ngx_memcmp(data, expect, d - data) != 0) {
        ngx_gravitee_fuzz_fail("SSE: the data lines give \"%.*s\", not the "
                               "content \"%.*s\"", (int) (d - data), data,
                               (int) msg->content.len, msg->content.data);
    }

    /* the comments: metadata first, then headers grouped by name */

    if (!msg->error && conf->metadata_as_comment) {
        line.data = expect;
        line.len = ngx_sprintf(expect, ":sourceTimestamp: %L", msg->timestamp)
                   - expect;

        ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_sse_is(&line, p, last),
                                 "SSE: no sourceTimestamp comment");
        p += line.len + 1;

        for (i = 0; i < msg->nmetadata; i++) {
            d = expect;
            *d++ = ':';
            d = ngx_gravitee_fuzz_sse_line(d, &msg->metadata[i].name);
            *d++ = ':'; *d++ = ' ';
            d = ngx_gravitee_fuzz_sse_line(d, &msg->metadata[i].value);
            line.data = expect;
            line.len = d - expect;

            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_sse_is(&line, p, last),
                                     "SSE: a metadata comment is wrong");
            p += line.len + 1;
        }
    }

    if (!msg->error && conf->headers_as_comment) {
        for (i = 0; i < msg->nheaders; i++) {
            if (ngx_gravitee_message_header_first(msg, i) != i) {
                continue;
            }

            d = expect;
            *d++ = ':';
            d = ngx_gravitee_fuzz_sse_line(d, &msg->headers[i].name);
            *d++ = ':'; *d++ = ' ';
            n = 0;

            for (j = i; j < msg->nheaders; j++) {
                if (ngx_gravitee_message_header_first(msg, j) != i) {
                    continue;
                }

                if (n++) {
                    *d++ = ',';
                }

                d = ngx_gravitee_fuzz_sse_line(d, &msg->headers[j].value);
            }

            line.data = expect;
            line.len = d - expect;

            ngx_gravitee_fuzz_assert(ngx_gravitee_fuzz_sse_is(&line, p, last),
                                     "SSE: a header comment is wrong");
            p += line.len + 1;
        }
    }

    /* and the blank line, last */

    if (p + 1 != last || *p != '\n') {
        s.data = p;
        s.len = last - p;
        ngx_gravitee_fuzz_fail("SSE: \"%.*s\" after the expected lines",
                               (int) s.len, s.data);
    }

    ngx_destroy_pool(pool);
}


/* what the encoder makes of an id or a comment: CR and LF are spaces */

ngx_gravitee_fuzz_checker
static u_char *
ngx_gravitee_fuzz_sse_line(u_char *p, ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        *p++ = (s->data[i] == '\r' || s->data[i] == '\n') ? ' '
                                                           : s->data[i];
    }

    return p;
}


/* whether the next line, up to its LF, is "line" */

ngx_gravitee_fuzz_checker
static ngx_uint_t
ngx_gravitee_fuzz_sse_is(ngx_str_t *line, u_char *p, u_char *last)
{
    u_char  *eol;

    eol = ngx_strlchr(p, last, '\n');

    return eol && (size_t) (eol - p) == line->len
           && ngx_memcmp(p, line->data, line->len) == 0;
}
