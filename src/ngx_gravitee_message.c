
/*
 * ngx_gravitee_module: the message shared by every client that receives it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_gravitee_message.h"

#if (defined __has_include)
#if (__has_include(<valgrind/valgrind.h>))
#include <valgrind/valgrind.h>
#define NGX_GRAVITEE_VALGRIND  1
#endif
#endif

#if (defined __SANITIZE_ADDRESS__)
#define NGX_GRAVITEE_ASAN  1
#elif (defined __has_feature)
#if (__has_feature(address_sanitizer))
#define NGX_GRAVITEE_ASAN  1
#endif
#endif


/*
 * A broker stream makes and frees a message, and an entrypoint a framing of
 * it, per record: hundreds of thousands a second, in bursts of a batch,
 * more than glibc's per-thread cache keeps.  Blocks that fit in
 * NGX_GRAVITEE_MESSAGE_BLOCK (a Kafka record's message with the position
 * of ten partitions, or a framing of a small message) go back to a free
 * list of at most NGX_GRAVITEE_MESSAGE_FREE_MAX of them (512 KiB a worker:
 * a few batches of records and a framing of each), so that a steady
 * stream allocates nothing.  Not with ASan, nor under valgrind: there a
 * message used after its last unref must still be caught.
 */

#define NGX_GRAVITEE_MESSAGE_BLOCK     512
#define NGX_GRAVITEE_MESSAGE_FREE_MAX  1024

/*
 * The same for the buffers of a response built in memory: a page of
 * 10,000 items is some 25 of them.  Freed, they would be the top of
 * glibc's heap, which it gives back to the kernel, and the next page
 * would be written into fresh pages the kernel zeroes first: a fifth of
 * the worker's time when a client pages through a topic.  At most
 * NGX_GRAVITEE_BUFFER_FREE_MAX are kept (2 MiB a worker).
 */

#define NGX_GRAVITEE_BUFFER_FREE_MAX   32


typedef union ngx_gravitee_block_u  ngx_gravitee_block_t;

union ngx_gravitee_block_u {
    ngx_gravitee_block_t       *next;         /* on the free list */
    ngx_uint_t                  listed;       /* in use: may go back to it */
    u_char                      align[16];
};


static ngx_uint_t ngx_gravitee_blocks_off(void);
static ngx_inline uint64_t ngx_gravitee_utf8_word(u_char *p);
static size_t ngx_gravitee_pairs_size(ngx_gravitee_pair_t *pairs,
    ngx_uint_t n);
static u_char *ngx_gravitee_pairs_copy(ngx_gravitee_pair_t *dst,
    ngx_gravitee_pair_t *src, ngx_uint_t n, u_char *p);


ngx_uint_t  ngx_gravitee_messages_alive;

#if (NGX_GRAVITEE_VALGRIND)
/* t/valgrind.sh checks for it: this build steps aside under valgrind */
ngx_uint_t  ngx_gravitee_message_valgrind_aware = 1;
#endif

static ngx_gravitee_block_t  *ngx_gravitee_blocks;
static ngx_uint_t             ngx_gravitee_nblocks;
static ngx_uint_t             ngx_gravitee_blocks_exited;

static ngx_gravitee_block_t  *ngx_gravitee_buffers;
static ngx_uint_t             ngx_gravitee_nbuffers;


ngx_gravitee_message_t *
ngx_gravitee_message_create(ngx_log_t *log, ngx_gravitee_message_init_t *init)
{
    size_t                   size;
    u_char                  *p;
    ngx_gravitee_message_t  *msg;

    size = sizeof(ngx_gravitee_message_t)
           + (init->nheaders + init->nmetadata) * sizeof(ngx_gravitee_pair_t)
           + ngx_gravitee_pairs_size(init->headers, init->nheaders)
           + ngx_gravitee_pairs_size(init->metadata, init->nmetadata)
           + init->id.len;

    if (init->position.data != init->id.data) {
        size += init->position.len;
    }

    if (!init->wrap_content) {
        size += init->content.len;
    }

    msg = ngx_gravitee_message_alloc(size, log);
    if (msg == NULL) {
        return NULL;
    }

    ngx_memzero(msg, sizeof(ngx_gravitee_message_t));

    msg->refs = 1;
    msg->error = init->error;
    msg->timestamp = init->timestamp ? init->timestamp : ngx_gravitee_now_ms();

    msg->headers = (ngx_gravitee_pair_t *) (msg + 1);
    msg->nheaders = init->nheaders;
    msg->metadata = msg->headers + init->nheaders;
    msg->nmetadata = init->nmetadata;

    p = (u_char *) (msg->metadata + init->nmetadata);

    p = ngx_gravitee_pairs_copy(msg->headers, init->headers, init->nheaders,
                                p);
    p = ngx_gravitee_pairs_copy(msg->metadata, init->metadata,
                                init->nmetadata, p);

    msg->id.len = init->id.len;
    msg->id.data = p;

    if (init->id.len) {
        p = ngx_cpymem(p, init->id.data, init->id.len);
    }

    if (init->position.data == init->id.data) {
        /* the Mock: where a client is, is the id of what it got last */
        msg->position = msg->id;

    } else if (init->position.len) {
        msg->position.len = init->position.len;
        msg->position.data = p;
        p = ngx_cpymem(p, init->position.data, init->position.len);
    }

    msg->content.len = init->content.len;

    if (init->wrap_content) {
        msg->content.data = init->content.data;

    } else {
        /* no data: room for the creator to write the content into */
        msg->content.data = p;

        if (init->content.data && init->content.len) {
            ngx_memcpy(p, init->content.data, init->content.len);
        }
    }

    ngx_gravitee_messages_alive++;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "gravitee message %p created, id:\"%V\", alive:%ui",
                   msg, &msg->id, ngx_gravitee_messages_alive);

    return msg;
}


/*
 * An endpoint failure travels to the entrypoints as a message flagged as an
 * error: its content is the text, its metadata the reference's failure key
 * and the HTTP status an entrypoint that answers with a status should use.
 */

ngx_gravitee_message_t *
ngx_gravitee_message_error(ngx_log_t *log, ngx_str_t *text, ngx_str_t *key,
    ngx_uint_t status)
{
    u_char                       buf[NGX_INT_T_LEN];
    ngx_gravitee_pair_t          meta[2];
    ngx_gravitee_message_init_t  init;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));

    ngx_str_set(&meta[0].name, "key");
    meta[0].value = *key;
    ngx_str_set(&meta[1].name, "statusCode");
    meta[1].value.data = buf;
    meta[1].value.len = ngx_sprintf(buf, "%ui", status) - buf;

    init.content = *text;
    init.metadata = meta;
    init.nmetadata = 2;
    init.error = 1;

    return ngx_gravitee_message_create(log, &init);
}


void
ngx_gravitee_message_unref(ngx_gravitee_message_t *msg)
{
    if (--msg->refs) {
        return;
    }

    ngx_gravitee_messages_alive--;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "gravitee message %p freed, alive:%ui",
                   msg, ngx_gravitee_messages_alive);

    if (msg->release) {
        msg->release(msg->release_data);
    }

    if (msg->encoded.data && !msg->encoded_inline) {
        ngx_gravitee_message_free(msg->encoded.data);
    }

    if (msg->alt) {
        ngx_gravitee_message_unref(msg->alt);
    }

    ngx_gravitee_message_free(msg);
}


void *
ngx_gravitee_message_alloc(size_t size, ngx_log_t *log)
{
    ngx_gravitee_block_t  *b;

    if (size > NGX_GRAVITEE_MESSAGE_BLOCK - sizeof(ngx_gravitee_block_t)
        || ngx_gravitee_blocks_off())
    {
        b = ngx_alloc(sizeof(ngx_gravitee_block_t) + size, log);
        if (b == NULL) {
            return NULL;
        }

        b->listed = 0;

        return b + 1;
    }

    b = ngx_gravitee_blocks;

    if (b) {
        ngx_gravitee_blocks = b->next;
        ngx_gravitee_nblocks--;

    } else {
        b = ngx_alloc(NGX_GRAVITEE_MESSAGE_BLOCK, log);
        if (b == NULL) {
            return NULL;
        }
    }

    b->listed = 1;

    return b + 1;
}


void
ngx_gravitee_message_free(void *p)
{
    ngx_gravitee_block_t  *b;

    b = (ngx_gravitee_block_t *) p - 1;

    if (b->listed
        && ngx_gravitee_nblocks < NGX_GRAVITEE_MESSAGE_FREE_MAX
        && !ngx_gravitee_blocks_exited)
    {
        b->next = ngx_gravitee_blocks;
        ngx_gravitee_blocks = b;
        ngx_gravitee_nblocks++;
        return;
    }

    ngx_free(b);
}


void *
ngx_gravitee_buffer_alloc(ngx_log_t *log)
{
    ngx_gravitee_block_t  *b;

    b = ngx_gravitee_buffers;

    if (b == NULL) {
        return ngx_alloc(NGX_GRAVITEE_BUFFER_SIZE, log);
    }

    ngx_gravitee_buffers = b->next;
    ngx_gravitee_nbuffers--;

    return b;
}


void
ngx_gravitee_buffer_free(void *p)
{
    ngx_gravitee_block_t  *b;

    if (ngx_gravitee_nbuffers >= NGX_GRAVITEE_BUFFER_FREE_MAX
        || ngx_gravitee_blocks_exited || ngx_gravitee_blocks_off())
    {
        ngx_free(p);
        return;
    }

    b = p;
    b->next = ngx_gravitee_buffers;
    ngx_gravitee_buffers = b;
    ngx_gravitee_nbuffers++;
}


/* at worker exit: what is freed later goes straight back to libc */

void
ngx_gravitee_message_blocks_exit(void)
{
    ngx_gravitee_block_t  *b;

    ngx_gravitee_blocks_exited = 1;

    while (ngx_gravitee_blocks) {
        b = ngx_gravitee_blocks;
        ngx_gravitee_blocks = b->next;
        ngx_free(b);
    }

    ngx_gravitee_nblocks = 0;

    while (ngx_gravitee_buffers) {
        b = ngx_gravitee_buffers;
        ngx_gravitee_buffers = b->next;
        ngx_free(b);
    }

    ngx_gravitee_nbuffers = 0;
}


static ngx_uint_t
ngx_gravitee_blocks_off(void)
{
#if (NGX_GRAVITEE_ASAN)

    return 1;

#elif (NGX_GRAVITEE_VALGRIND)

    static ngx_int_t  off = -1;

    if (off == -1) {
        off = RUNNING_ON_VALGRIND ? 1 : 0;
    }

    return off;

#else

    return 0;

#endif
}


ngx_gravitee_message_t *
ngx_gravitee_message_encoding(ngx_gravitee_message_t *msg, const void *key)
{
    for ( /* void */ ; msg; msg = msg->alt) {
        if (msg->encoded_by == key) {
            return msg;
        }
    }

    return NULL;
}


/*
 * The first framing made goes into the message itself; one for another
 * kind of client goes into an empty message that msg holds a reference to,
 * so that each kind still encodes once per message.
 */

ngx_gravitee_message_t *
ngx_gravitee_message_add_encoding(ngx_gravitee_message_t *msg,
    const void *key, ngx_str_t *value, ngx_log_t *log)
{
    ngx_gravitee_message_t       *holder;
    ngx_gravitee_message_init_t   init;

    if (msg->encoded_by == NULL) {
        holder = msg;

    } else {
        ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
        init.timestamp = msg->timestamp;

        holder = ngx_gravitee_message_create(log, &init);
        if (holder == NULL) {
            ngx_gravitee_message_free(value->data);
            return NULL;
        }

        holder->alt = msg->alt;
        msg->alt = holder;
    }

    holder->encoded_by = key;
    holder->encoded = *value;

    return holder;
}


ngx_str_t *
ngx_gravitee_message_metadata(ngx_gravitee_message_t *msg, ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < msg->nmetadata; i++) {
        if (msg->metadata[i].name.len == name->len
            && ngx_strncmp(msg->metadata[i].name.data, name->data, name->len)
               == 0)
        {
            return &msg->metadata[i].value;
        }
    }

    return NULL;
}


/*
 * The index of the first header named as header i: a header with several
 * values is several pairs, and entrypoints that group them by name (HTTP
 * GET, SSE comments) write a name where this returns i.
 */

ngx_uint_t
ngx_gravitee_message_header_first(ngx_gravitee_message_t *msg, ngx_uint_t i)
{
    ngx_uint_t  j;

    for (j = 0; j < i; j++) {
        if (msg->headers[j].name.len == msg->headers[i].name.len
            && ngx_strncasecmp(msg->headers[j].name.data,
                               msg->headers[i].name.data,
                               msg->headers[i].name.len) == 0)
        {
            return j;
        }
    }

    return i;
}


/* whether the content is UTF-8: checked once, for every client */

ngx_uint_t
ngx_gravitee_message_is_utf8(ngx_gravitee_message_t *msg)
{
    if (!msg->utf8_known) {
        msg->utf8 = (ngx_gravitee_utf8_valid(msg->content.data,
                                             msg->content.len)
                     == msg->content.len);
        msg->utf8_known = 1;
    }

    return msg->utf8;
}


/*
 * The length of the longest valid UTF-8 prefix: "len" when all of it is.
 * Strict, as a WebSocket peer must be: no overlong forms, no surrogates,
 * nothing above U+10FFFF.
 */

size_t
ngx_gravitee_utf8_valid(u_char *p, size_t len)
{
    u_char  *start, *last, c, lo, hi;
    size_t   n, i;

    if (len == 0) {
        /* an empty close reason has no buffer at all: p may be NULL */
        return 0;
    }

    start = p;
    last = p + len;

    while (p < last) {
        c = *p;

        if (c < 0x80) {
            p++;

            /* text is mostly ASCII: eight bytes at a time while it is */

            while (last - p >= 8
                   && (ngx_gravitee_utf8_word(p) & 0x8080808080808080ULL)
                      == 0)
            {
                p += 8;
            }

            continue;
        }

        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;

            if (c == 0xe0) {
                lo = 0xa0;

            } else if (c == 0xed) {
                hi = 0x9f;
            }

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;

            if (c == 0xf0) {
                lo = 0x90;

            } else if (c == 0xf4) {
                hi = 0x8f;
            }

        } else {
            break;
        }

        if ((size_t) (last - p) <= n) {
            break;
        }

        if (p[1] < lo || p[1] > hi) {
            break;
        }

        for (i = 2; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                break;
            }
        }

        if (i <= n) {
            break;
        }

        p += n + 1;
    }

    return p - start;
}


static ngx_inline uint64_t
ngx_gravitee_utf8_word(u_char *p)
{
    uint64_t  w;

    ngx_memcpy(&w, p, sizeof(uint64_t));

    return w;
}


int64_t
ngx_gravitee_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


static size_t
ngx_gravitee_pairs_size(ngx_gravitee_pair_t *pairs, ngx_uint_t n)
{
    size_t      size;
    ngx_uint_t  i;

    size = 0;

    for (i = 0; i < n; i++) {
        size += pairs[i].name.len + pairs[i].value.len;
    }

    return size;
}


static u_char *
ngx_gravitee_pairs_copy(ngx_gravitee_pair_t *dst, ngx_gravitee_pair_t *src,
    ngx_uint_t n, u_char *p)
{
    ngx_uint_t  i;

    /* an empty name or value may have no data: memcpy() wants some */

    for (i = 0; i < n; i++) {
        dst[i].name.data = p;
        dst[i].name.len = src[i].name.len;

        if (src[i].name.len) {
            p = ngx_cpymem(p, src[i].name.data, src[i].name.len);
        }

        dst[i].value.data = p;
        dst[i].value.len = src[i].value.len;

        if (src[i].value.len) {
            p = ngx_cpymem(p, src[i].value.data, src[i].value.len);
        }
    }

    return p;
}
