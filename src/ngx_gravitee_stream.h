
/*
 * ngx_gravitee_module: a long-lived subscriber (WebSocket, SSE over
 * HTTP/1.x) on its bare connection.
 *
 * The entrypoint answers the handshake as a normal request (so access,
 * auth, rewrite and variables all apply), sends its response header, then
 * hands the request to ngx_gravitee_stream_start().  Once the header is
 * flushed, the stream frees the request ("detaches", from a posted event)
 * and keeps only the connection and this small struct: an idle subscriber
 * costs the connection pool and sizeof(ngx_gravitee_stream_t) plus the
 * entrypoint's state, not a request.
 *
 * Output is a bounded queue of frames.  A frame is a body that points into
 * a shared, reference-counted message (its payload, or a framing of it made
 * once for every client), with a few bytes of per-client framing in front
 * where needed (a WebSocket header, a chunk size): nothing is copied per
 * client.  The queue is written from a posted write event, so a fan-out
 * only queues, and one write serves every message queued in the same turn
 * of the event loop: send() for one buffer, c->send_chain otherwise.
 *
 * When the queue of a slow client is full, conf->policy applies: "close"
 * calls handler->overflow() (the entrypoint says goodbye, e.g. WebSocket
 * close 1008, then finishes the stream); "drop" drops the new message.
 * Either is logged once per client.
 */


#ifndef _NGX_GRAVITEE_STREAM_H_INCLUDED_
#define _NGX_GRAVITEE_STREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"


#define NGX_GRAVITEE_SLOW_CLOSE  0
#define NGX_GRAVITEE_SLOW_DROP   1


typedef struct ngx_gravitee_stream_s  ngx_gravitee_stream_t;


/* the per-client queue's limits, part of an entrypoint's configuration */

typedef struct {
    ngx_uint_t                     max_messages;  /* max_queued_messages */
    size_t                         max_size;      /* max_queued_size */
    ngx_uint_t                     policy;        /* slow_client=close|drop */
    ngx_msec_t                     send_timeout;  /* a write that makes no
                                                     progress this long
                                                     closes the stream */
} ngx_gravitee_stream_conf_t;


typedef struct {
    /* detached: push the first bytes, subscribe (ngx_gravitee_stream_
       subscribe); a failure is for the entrypoint to tell the client, and
       it may finish the stream here, not close it */
    void                         (*started)(ngx_gravitee_stream_t *s);
    /* the client sent something (s->connection->read is ready) */
    void                         (*read)(ngx_gravitee_stream_t *s);
    /* the timer set with ngx_gravitee_stream_timer() fired */
    void                         (*timer)(ngx_gravitee_stream_t *s);
    /* the worker is shutting down or reloading: say goodbye, finish */
    void                         (*shutdown)(ngx_gravitee_stream_t *s);
    /* the queue is full under slow_client=close: say why, finish */
    void                         (*overflow)(ngx_gravitee_stream_t *s);
    /* the stream is being freed (closed, or its request died before the
       detach): free what the entrypoint holds; may be NULL */
    void                         (*closed)(ngx_gravitee_stream_t *s);
    /* the caller's credential expired (identity->expires): say why,
       finish */
    void                         (*expired)(ngx_gravitee_stream_t *s);
} ngx_gravitee_stream_handler_t;


/* what the end of a stream's access log record needs of its request */

typedef struct {
    ngx_http_connection_t         *http_connection;
    void                         **srv_conf;
    void                         **loc_conf;
    ngx_str_t                      request_line;
    ngx_str_t                      host;
    ngx_uint_t                     status;      /* of the handshake */
    /* then the request line, the host and, if a plan let the caller in,
       a copy of its identity (s->tally.identity) */
} ngx_gravitee_stream_record_t;


typedef struct {
    ngx_gravitee_message_t        *msg;       /* owns body; NULL: static */
    u_char                        *body;
    size_t                         body_len;
    u_char                         head[24];  /* per-client framing: a
                                                 chunk size, a WebSocket
                                                 frame header */
    u_char                         head_len;
    u_char                         tail_len;  /* 2: "\r\n" ends a chunk */
} ngx_gravitee_frame_t;


struct ngx_gravitee_stream_s {
    ngx_gravitee_tally_t           tally;       /* first: the request ctx */

    ngx_connection_t              *connection;
    ngx_gravitee_stream_handler_t *handler;
    ngx_gravitee_stream_conf_t    *conf;
    ngx_gravitee_loc_conf_t       *glcf;
    ngx_str_t                     *entrypoint;  /* its name, for logs */

    ngx_gravitee_sub_t             sub;

    /*
     * the queue: a ring of frames.  A client that keeps up has one frame
     * at a time, which the stream holds inline; a longer queue is
     * allocated while it waits.
     */
    ngx_gravitee_frame_t          *frames;
    ngx_uint_t                     first;
    ngx_uint_t                     nframes;
    ngx_uint_t                     capacity;
    size_t                         queued;      /* body bytes in the ring */
    size_t                         offset;      /* of frames[first], sent */

    /* bytes the client sent right after its handshake (a WebSocket
       frame): freed with the stream; an entrypoint that takes them sets
       preread.data to NULL and frees them itself */
    ngx_str_t                      preread;

    ngx_pool_cleanup_t            *cleanup;     /* until the detach */

    ngx_gravitee_frame_t           frame;       /* the inline ring */

    ngx_msec_t                     start;
    off_t                          sent_before; /* c->sent at the detach */

    /* for the access log record at the end: the request is gone by then */
    ngx_gravitee_stream_record_t  *record;

    unsigned                       chunked:1;   /* HTTP/1.1 chunked body */
    unsigned                       detached:1;
    unsigned                       subscribed:1;
    unsigned                       finishing:1;
    unsigned                       overflowed:1;
    unsigned                       linger:1;    /* set by the entrypoint:
                                                   after the goodbye, wait
                                                   for the client to hang
                                                   up before closing */
    unsigned                       lingering:1;
    unsigned                       record_allocated:1;
    unsigned                       expiring:1;  /* the timer is the
                                                   credential's end */

    /* the entrypoint's own state follows, "size" bytes in all */
};


ngx_gravitee_stream_t *ngx_gravitee_stream_create(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_stream_conf_t *conf,
    ngx_gravitee_stream_handler_t *handler, ngx_str_t *entrypoint,
    size_t size);
ngx_int_t ngx_gravitee_stream_start(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r);

ngx_int_t ngx_gravitee_stream_set_position(ngx_gravitee_stream_t *s,
    ngx_str_t *pos);
/* the room left in a stream's queue before it is half full */
ngx_uint_t ngx_gravitee_stream_room(ngx_gravitee_sub_t *sub);
ngx_int_t ngx_gravitee_stream_subscribe(ngx_gravitee_stream_t *s,
    ngx_gravitee_sub_handler_t *handler);

/*
 * push: queue "head" (at most 14 bytes, copied) then "len" bytes of "body",
 * which lies in "msg" (a reference is taken) or, with msg NULL, in static
 * memory.  On a chunked stream the stream adds the chunk framing itself.
 * NGX_OK: queued; NGX_DECLINED: the queue is full (the policy applied);
 * NGX_ERROR: the stream is closing.  Control frames (WebSocket ping, pong,
 * close; SSE heartbeat, goaway) go through push_control, which is not
 * subject to the limits; "copy" copies data that is not static, and
 * push_control_msg queues a message of the caller's (a reference is
 * taken; its release callback tells when the frame is sent or dropped).
 * The entrypoint keeps their number bounded: one pong at a time, pings
 * and heartbeats only to a client with nothing queued.
 */
ngx_int_t ngx_gravitee_stream_push(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len);
/*
 * push_chunk: the same for a body that is already framed for this stream,
 * an HTTP chunk on a chunked one, which the stream then sends as it is: a
 * message in one buffer costs one send() per client, not a writev().
 */
ngx_int_t ngx_gravitee_stream_push_chunk(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *chunk, size_t len);
ngx_int_t ngx_gravitee_stream_push_control(ngx_gravitee_stream_t *s,
    u_char *data, size_t len, ngx_uint_t copy);
ngx_int_t ngx_gravitee_stream_push_control_msg(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg);

/*
 * timer: (re)arm the one timer of the stream (ping, heartbeat, idle).
 * finish: stop the subscription, send what is queued (and, on a chunked
 * stream, the last chunk), then close; any stream handler may call it.
 * close: now, which frees the stream: only from the read and timer
 * handlers, as their last act.  Neither is called from inside a
 * subscription handler: post an event instead.
 */
void ngx_gravitee_stream_timer(ngx_gravitee_stream_t *s, ngx_msec_t timer);
void ngx_gravitee_stream_finish(ngx_gravitee_stream_t *s,
    const char *reason);
void ngx_gravitee_stream_close(ngx_gravitee_stream_t *s, const char *reason);

/*
 * An entrypoint that streams embeds an ngx_gravitee_stream_conf_t named
 * "stream" in its configuration, lists ngx_gravitee_stream_params(its
 * type) in its parameter table, and calls the two functions below from its
 * create_conf and init_conf.
 */
#define ngx_gravitee_stream_params(type)                                      \
    { ngx_string("max_queued_messages"), ngx_gravitee_param_num,             \
      offsetof(type, stream.max_messages), NULL },                           \
    { ngx_string("max_queued_size"), ngx_gravitee_param_size,                \
      offsetof(type, stream.max_size), NULL },                               \
    { ngx_string("slow_client"), ngx_gravitee_param_slow_client,             \
      offsetof(type, stream.policy), NULL },                                 \
    { ngx_string("send_timeout"), ngx_gravitee_param_msec,                   \
      offsetof(type, stream.send_timeout), NULL }

char *ngx_gravitee_param_slow_client(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);
void ngx_gravitee_stream_create_conf(ngx_gravitee_stream_conf_t *conf);
char *ngx_gravitee_stream_init_conf(ngx_conf_t *cf,
    ngx_gravitee_stream_conf_t *conf, const char *entrypoint);

#define ngx_gravitee_stream_data(s)  ((void *) ((s) + 1))


extern ngx_uint_t  ngx_gravitee_streams_alive;


#endif /* _NGX_GRAVITEE_STREAM_H_INCLUDED_ */
