
/*
 * ngx_gravitee_module: the message shared by every client that receives it.
 */


#ifndef _NGX_GRAVITEE_MESSAGE_H_INCLUDED_
#define _NGX_GRAVITEE_MESSAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
} ngx_gravitee_pair_t;


typedef struct ngx_gravitee_message_s  ngx_gravitee_message_t;

typedef void (*ngx_gravitee_release_pt)(void *data);


/*
 * A message is one block of memory holding the struct, its id, headers,
 * metadata and (unless it wraps a broker's buffer) its content.  It is
 * created with one reference, owned by its creator; whoever keeps a pointer
 * to it beyond the current call (a client queue, an HTTP GET batch) takes a
 * reference and gives it back when done.  The last unref frees it.
 *
 * Headers may repeat a name: a header with several values is several pairs.
 */

struct ngx_gravitee_message_s {
    ngx_uint_t                  refs;

    ngx_str_t                   id;           /* len 0: the message has none */
    ngx_str_t                   position;     /* where a client of the
                                                 live stream is after it
                                                 (ngx_gravitee_connector.h);
                                                 len 0: nowhere */
    ngx_str_t                   content;

    ngx_gravitee_pair_t        *headers;
    ngx_uint_t                  nheaders;
    ngx_gravitee_pair_t        *metadata;
    ngx_uint_t                  nmetadata;

    int64_t                     timestamp;    /* sourceTimestamp, epoch ms */

    /* content owned elsewhere (a Kafka record), released with the message */
    ngx_gravitee_release_pt     release;
    void                       *release_data;

    /*
     * one framing of the message cached for every client of an entrypoint
     * (an SSE event, a WebSocket frame), so that a fan-out encodes it once,
     * not per client; another kind's framing is in an empty message
     * chained in "alt" (ngx_gravitee_message_add_encoding)
     */
    const void                 *encoded_by;
    ngx_str_t                   encoded;      /* message_alloc'd, freed with
                                                 it, or in the message's
                                                 own block
                                                 (encoded_inline) */
    ngx_gravitee_message_t     *alt;

    unsigned                    error:1;      /* an endpoint failure */
    unsigned                    encoded_inline:1;
    unsigned                    utf8_known:1;
    unsigned                    utf8:1;       /* content is valid UTF-8 */
};


typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   position;     /* the id's own bytes: shared */
    ngx_str_t                   content;
    ngx_gravitee_pair_t        *headers;
    ngx_uint_t                  nheaders;
    ngx_gravitee_pair_t        *metadata;
    ngx_uint_t                  nmetadata;
    int64_t                     timestamp;    /* 0: now */
    unsigned                    error:1;
    unsigned                    wrap_content:1; /* do not copy content */
} ngx_gravitee_message_init_t;


ngx_gravitee_message_t *ngx_gravitee_message_create(ngx_log_t *log,
    ngx_gravitee_message_init_t *init);
ngx_gravitee_message_t *ngx_gravitee_message_error(ngx_log_t *log,
    ngx_str_t *text, ngx_str_t *key, ngx_uint_t status);
void ngx_gravitee_message_unref(ngx_gravitee_message_t *msg);
ngx_str_t *ngx_gravitee_message_metadata(ngx_gravitee_message_t *msg,
    ngx_str_t *name);
ngx_uint_t ngx_gravitee_message_header_first(ngx_gravitee_message_t *msg,
    ngx_uint_t i);
ngx_uint_t ngx_gravitee_message_is_utf8(ngx_gravitee_message_t *msg);
size_t ngx_gravitee_utf8_valid(u_char *p, size_t len);
int64_t ngx_gravitee_now_ms(void);

/*
 * The message holding the framing "key" of msg, or NULL: not referenced,
 * it lives as long as msg.  add_encoding stores "value" (message_alloc'd;
 * freed here on failure) as the framing "key" of msg and returns its holder.
 */
ngx_gravitee_message_t *ngx_gravitee_message_encoding(
    ngx_gravitee_message_t *msg, const void *key);
ngx_gravitee_message_t *ngx_gravitee_message_add_encoding(
    ngx_gravitee_message_t *msg, const void *key, ngx_str_t *value,
    ngx_log_t *log);

#define ngx_gravitee_message_ref(msg)  ((msg)->refs++, (msg))

/*
 * Memory for a message and for a framing of it (the value given to
 * add_encoding): small blocks come from the worker's free list.  What one
 * returns only message_free() may free; blocks_exit() at worker exit.
 */
void *ngx_gravitee_message_alloc(size_t size, ngx_log_t *log);
void ngx_gravitee_message_free(void *p);
void ngx_gravitee_message_blocks_exit(void);

/*
 * Buffers of NGX_GRAVITEE_BUFFER_SIZE for a response built in memory (an
 * HTTP GET batch), kept by the worker from one response to the next.
 */
#define NGX_GRAVITEE_BUFFER_SIZE  65536

void *ngx_gravitee_buffer_alloc(ngx_log_t *log);
void ngx_gravitee_buffer_free(void *p);


/* messages alive in this worker: a debug aid, and checked by the tests */
extern ngx_uint_t  ngx_gravitee_messages_alive;


#endif /* _NGX_GRAVITEE_MESSAGE_H_INCLUDED_ */
