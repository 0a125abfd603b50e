
/*
 * ngx_gravitee_module: a shared source, the broker side of a fan-out.
 * See ngx_gravitee_source.h for what it is and why.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_gravitee_source.h"


static void ngx_gravitee_source_stop_handler(ngx_event_t *ev);
static void ngx_gravitee_source_tell_handler(ngx_event_t *ev);
static void ngx_gravitee_source_tell(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *failure);
static void ngx_gravitee_source_disarm(ngx_gravitee_source_t *src);


/* the worker's sources: a few per endpoint configuration, found by key */
static ngx_queue_t  ngx_gravitee_sources = { &ngx_gravitee_sources,
                                             &ngx_gravitee_sources };


ngx_gravitee_source_t *
ngx_gravitee_source_get(ngx_gravitee_source_ops_t *ops, ngx_str_t *key,
    size_t size, ngx_msec_t linger)
{
    ngx_queue_t            *q;
    ngx_gravitee_source_t  *src;

    for (q = ngx_queue_head(&ngx_gravitee_sources);
         q != ngx_queue_sentinel(&ngx_gravitee_sources);
         q = ngx_queue_next(q))
    {
        src = ngx_queue_data(q, ngx_gravitee_source_t, queue);

        if (src->ops == ops && src->key.len == key->len
            && ngx_memcmp(src->key.data, key->data, key->len) == 0)
        {
            return src;
        }
    }

    src = ngx_calloc(size + key->len, ngx_cycle->log);
    if (src == NULL) {
        return NULL;
    }

    src->ops = ops;
    src->key.data = (u_char *) src + size;
    src->key.len = key->len;
    ngx_memcpy(src->key.data, key->data, key->len);

    src->log = ngx_cycle->log;
    src->linger = linger;

    ngx_queue_init(&src->subs);
    ngx_queue_init(&src->told);

    /* neither holds a worker that exits */

    src->stop.handler = ngx_gravitee_source_stop_handler;
    src->stop.data = src;
    src->stop.log = src->log;
    src->stop.cancelable = 1;

    src->tell.handler = ngx_gravitee_source_tell_handler;
    src->tell.data = src;
    src->tell.log = src->log;

    ngx_queue_insert_tail(&ngx_gravitee_sources, &src->queue);

    return src;
}


ngx_int_t
ngx_gravitee_source_subscribe(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub)
{
    if (src->stop.timer_set) {
        /* came back within the linger: nothing restarts */
        ngx_del_timer(&src->stop);
    }

    if (src->ended) {
        /* the news is told from a posted event, never from subscribe() */
        ngx_queue_insert_tail(&src->told, &sub->queue);
        src->nsubs++;

        if (!src->tell.posted) {
            ngx_post_event(&src->tell, &ngx_posted_events);
        }

        return NGX_OK;
    }

    if (!src->running) {
        if (src->ops->start(src) != NGX_OK) {
            return NGX_ERROR;
        }

        src->running = 1;
    }

    ngx_queue_insert_tail(&src->subs, &sub->queue);
    src->nsubs++;

    return NGX_OK;
}


void
ngx_gravitee_source_unsubscribe(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub)
{
    ngx_queue_remove(&sub->queue);
    src->nsubs--;

    if (src->nsubs || !src->running) {
        return;
    }

    if (src->linger == 0) {
        ngx_gravitee_source_stop_handler(&src->stop);
        return;
    }

    ngx_add_timer(&src->stop, src->linger);
}


static void
ngx_gravitee_source_stop_handler(ngx_event_t *ev)
{
    ngx_gravitee_source_t *src = ev->data;

    if (src->nsubs || !src->running) {
        return;
    }

    src->running = 0;

    if (src->ops->stop) {
        src->ops->stop(src);
    }

    if (src->discard) {
        ngx_gravitee_source_disarm(src);
        ngx_queue_remove(&src->queue);

        if (src->ops->free) {
            src->ops->free(src);
        }

        ngx_free(src);
    }
}


/*
 * An endpoint may leave a message's id, headers or metadata out when no
 * subscriber reads them: asked once per batch, not per message.
 */

ngx_uint_t
ngx_gravitee_source_skips(ngx_gravitee_source_t *src)
{
    ngx_uint_t           skips;
    ngx_queue_t         *q;
    ngx_gravitee_sub_t  *sub;

    skips = NGX_GRAVITEE_SKIP_ALL;

    for (q = ngx_queue_head(&src->subs);
         q != ngx_queue_sentinel(&src->subs) && skips;
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);
        skips &= sub->skips;
    }

    return skips;
}


ngx_uint_t
ngx_gravitee_source_borrows(ngx_gravitee_source_t *src)
{
    ngx_queue_t         *q;
    ngx_gravitee_sub_t  *sub;

    for (q = ngx_queue_head(&src->subs);
         q != ngx_queue_sentinel(&src->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        if (!sub->handler->borrows) {
            return 0;
        }
    }

    return 1;
}


/* handlers do not unsubscribe from inside the call: the list holds */

void
ngx_gravitee_source_fanout(ngx_gravitee_source_t *src,
    ngx_gravitee_message_t *msg)
{
    ngx_queue_t         *q, *next;
    ngx_gravitee_sub_t  *sub;

    for (q = ngx_queue_head(&src->subs);
         q != ngx_queue_sentinel(&src->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        /* accept() may give a subscriber a position of its own */

        sub->position = msg->position;

        if (src->ops->accept && !src->ops->accept(src, sub, msg)) {
            continue;
        }

        sub->handler->message(sub, msg);
    }
}


void
ngx_gravitee_source_fail(ngx_gravitee_source_t *src,
    ngx_gravitee_message_t *msg)
{
    ngx_queue_t         *q, *next;
    ngx_gravitee_sub_t  *sub;

    src->ended = 1;
    src->failed = (msg != NULL);

    for (q = ngx_queue_head(&src->subs);
         q != ngx_queue_sentinel(&src->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        ngx_gravitee_source_tell(sub, msg);
    }
}


void
ngx_gravitee_source_end(ngx_gravitee_source_t *src)
{
    ngx_gravitee_source_fail(src, NULL);
}


void
ngx_gravitee_source_state(ngx_gravitee_source_t *src, ngx_uint_t state)
{
    ngx_queue_t         *q, *next;
    ngx_gravitee_sub_t  *sub;

    for (q = ngx_queue_head(&src->subs);
         q != ngx_queue_sentinel(&src->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        if (sub->handler->state) {
            sub->handler->state(sub, state);
        }
    }
}


/* newcomers to a source that failed or ended hear of it now */

static void
ngx_gravitee_source_tell_handler(ngx_event_t *ev)
{
    ngx_gravitee_source_t *src = ev->data;

    ngx_queue_t             *q;
    ngx_gravitee_sub_t      *sub;
    ngx_gravitee_message_t  *failure;

    failure = NULL;

    if (src->failed && src->ops->failure) {
        /* out of memory: the newcomers hear the end only */
        failure = src->ops->failure(src);
    }

    while (!ngx_queue_empty(&src->told)) {
        q = ngx_queue_head(&src->told);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&src->subs, q);

        ngx_gravitee_source_tell(sub, failure);
    }

    if (failure) {
        ngx_gravitee_message_unref(failure);
    }
}


static void
ngx_gravitee_source_tell(ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *failure)
{
    if (failure) {
        ngx_str_null(&sub->position);
        sub->handler->message(sub, failure);
    }

    sub->handler->end(sub);
}


/* the endpoint starts afresh: what stuck is forgotten */

void
ngx_gravitee_source_reset(ngx_gravitee_source_t *src)
{
    src->ended = 0;
    src->failed = 0;
}


static void
ngx_gravitee_source_disarm(ngx_gravitee_source_t *src)
{
    if (src->stop.timer_set) {
        ngx_del_timer(&src->stop);
    }

    if (src->tell.posted) {
        ngx_delete_posted_event(&src->tell);
    }
}


/* the worker exits: its clients are gone, the sources go too */

void
ngx_gravitee_sources_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t            *q;
    ngx_gravitee_source_t  *src;

    while (!ngx_queue_empty(&ngx_gravitee_sources)) {
        q = ngx_queue_head(&ngx_gravitee_sources);
        src = ngx_queue_data(q, ngx_gravitee_source_t, queue);

        ngx_queue_remove(q);
        ngx_gravitee_source_disarm(src);

        if (src->running && src->ops->stop) {
            src->ops->stop(src);
        }

        if (src->ops->free) {
            src->ops->free(src);
        }

        ngx_gravitee_source_reset(src);
        ngx_free(src);
    }
}
