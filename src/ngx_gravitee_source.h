
/*
 * ngx_gravitee_module: a shared source, the broker side of a fan-out.
 *
 * A broker endpoint keeps one connection per worker for all the clients of
 * that worker (a Kafka consumer, an MQTT subscription, the Mock's shared
 * stream).  The source is what they share: its subscribers, its life (it
 * starts with the first subscriber and stops some time after the last one
 * leaves), a failure that sticks (a newcomer hears of it), and the fan-out
 * of each message to every subscriber that wants it.
 *
 * A source is found by the endpoint's choice of key (brokers, topics and
 * properties for Kafka; the location for the Mock), so that two locations
 * with the same endpoint configuration share it.  The endpoint's own
 * struct starts with the core's.
 */


#ifndef _NGX_GRAVITEE_SOURCE_H_INCLUDED_
#define _NGX_GRAVITEE_SOURCE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_gravitee_connector.h"


typedef struct ngx_gravitee_source_s  ngx_gravitee_source_t;


typedef struct {
    /* the first subscriber came (again): start reading the broker */
    ngx_int_t                    (*start)(ngx_gravitee_source_t *src);
    /* the last subscriber left "linger" ago: stop; may be NULL */
    void                         (*stop)(ngx_gravitee_source_t *src);
    /* whether a subscriber gets a message (a topic filter, a resume
       point not yet reached); it may set a sub->position of its own;
       NULL: every subscriber gets every message */
    ngx_uint_t                   (*accept)(ngx_gravitee_source_t *src,
                                           ngx_gravitee_sub_t *sub,
                                           ngx_gravitee_message_t *msg);
    /* the failure a newcomer to a failed source hears, made anew (so that
       nothing stays allocated while nobody listens); NULL: only the end */
    ngx_gravitee_message_t      *(*failure)(ngx_gravitee_source_t *src);
    /* the worker exits: free what the endpoint holds; may be NULL */
    void                         (*free)(ngx_gravitee_source_t *src);
} ngx_gravitee_source_ops_t;


struct ngx_gravitee_source_s {
    ngx_queue_t                    queue;       /* the worker's sources */
    ngx_gravitee_source_ops_t     *ops;
    ngx_str_t                      key;
    ngx_log_t                     *log;

    ngx_queue_t                    subs;        /* ngx_gravitee_sub_t */
    ngx_uint_t                     nsubs;

    ngx_msec_t                     linger;
    ngx_event_t                    stop;        /* linger after the last */
    ngx_event_t                    tell;        /* posted: a newcomer hears
                                                   of the end or failure */

    ngx_queue_t                    told;        /* newcomers to tell */

    unsigned                       running:1;
    unsigned                       ended:1;     /* sticky until reset */
    unsigned                       failed:1;    /* sticky until reset */
    unsigned                       fanning:1;
    unsigned                       discard:1;   /* set by stop(): freed
                                                   once stop() returns (a
                                                   source per MQTT topic
                                                   does not outlive its
                                                   clients) */
};


/*
 * get: the worker's source of this ops and key, or a new one of "size"
 * bytes (the endpoint's struct, starting with this one), zeroed, not
 * started.  NULL: out of memory.
 */
ngx_gravitee_source_t *ngx_gravitee_source_get(
    ngx_gravitee_source_ops_t *ops, ngx_str_t *key, size_t size,
    ngx_msec_t linger);

/*
 * subscribe: the subscriber joins (sub->endpoint_data is the endpoint's);
 * a stopped source starts; one that failed or ended tells it so from a
 * posted event.  NGX_ERROR: the source could not start.
 */
ngx_int_t ngx_gravitee_source_subscribe(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub);
void ngx_gravitee_source_unsubscribe(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub);

/* what every subscriber skips of a message (sub->skips, all of them) */
ngx_uint_t ngx_gravitee_source_skips(ngx_gravitee_source_t *src);
/* whether every subscriber borrows messages (handler->borrows) */
ngx_uint_t ngx_gravitee_source_borrows(ngx_gravitee_source_t *src);

/* to every subscriber that accepts it: sub->position is msg->position */
void ngx_gravitee_source_fanout(ngx_gravitee_source_t *src,
    ngx_gravitee_message_t *msg);

/* every subscriber: a failure (msg->error) and the end; it sticks */
void ngx_gravitee_source_fail(ngx_gravitee_source_t *src,
    ngx_gravitee_message_t *msg);
/* every subscriber: the end of the flow; it sticks */
void ngx_gravitee_source_end(ngx_gravitee_source_t *src);
/* every subscriber: the broker is reachable or not (NGX_GRAVITEE_STATE_*) */
void ngx_gravitee_source_state(ngx_gravitee_source_t *src,
    ngx_uint_t state);

/* the endpoint starts afresh (e.g. in start()): a failure no longer sticks */
void ngx_gravitee_source_reset(ngx_gravitee_source_t *src);

void ngx_gravitee_sources_exit(ngx_cycle_t *cycle);


#endif /* _NGX_GRAVITEE_SOURCE_H_INCLUDED_ */
