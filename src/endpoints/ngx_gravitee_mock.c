
/*
 * ngx_gravitee_module: the Mock endpoint.
 *
 * It makes a message every "interval", as the reference's Mock does: by
 * default one stream per client, starting when the client subscribes, with
 * ids "0", "1", ... (or from the id after the client's resume position).
 * With shared=on there is one stream per worker and location, started by
 * the first subscriber and stopped when the last one leaves: a shared
 * source of the core (ngx_gravitee_source.h), the path the broker
 * endpoints take, where each message is made once and fanned out.
 * Publishing to the Mock only logs the message.
 *
 * Three knobs make it fail and acknowledge late, as a broker does, so that
 * the entrypoints' failure and asynchronous paths run in tests and demos:
 * fail_after ends a stream with an error message after N messages,
 * publish_delay acknowledges a publication from a timer (NGX_AGAIN, then
 * pub->done()), publish_status refuses it with that status.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_source.h"


#define NGX_GRAVITEE_MOCK_UNLIMITED  ((ngx_uint_t) -1)


typedef struct {
    ngx_msec_t                   interval;
    ngx_str_t                    content;
    ngx_uint_t                   count;
    ngx_array_t                 *headers;    /* ngx_gravitee_pair_t */
    ngx_array_t                 *metadata;   /* ngx_gravitee_pair_t */
    ngx_flag_t                   shared;
    ngx_flag_t                   stamp;
    ngx_uint_t                   fail_after;
    ngx_msec_t                   publish_delay;
    ngx_uint_t                   publish_status;
} ngx_gravitee_mock_conf_t;


/* a stream of messages: one per client, or one shared by the location */

typedef struct {
    ngx_gravitee_mock_conf_t    *conf;
    ngx_event_t                  timer;
    ngx_msec_t                   due;        /* when the last tick was */
    ngx_uint_t                   next_id;
    ngx_uint_t                   sent;       /* for fail_after */
    ngx_gravitee_sub_t          *sub;        /* per client: its subscriber */
    ngx_gravitee_source_t       *shared;     /* shared: its fan-out */
} ngx_gravitee_mock_stream_t;


typedef struct {
    ngx_gravitee_source_t        source;     /* first: the core's */
    ngx_gravitee_mock_stream_t   stream;
} ngx_gravitee_mock_shared_t;


/* a publication acknowledged after publish_delay */

typedef struct {
    ngx_event_t                  timer;
    ngx_gravitee_pub_t          *pub;
    ngx_gravitee_mock_conf_t    *conf;
} ngx_gravitee_mock_ack_t;


static void *ngx_gravitee_mock_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_mock_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_gravitee_mock_subscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static ngx_uint_t ngx_gravitee_mock_first_id(ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_mock_subscribe_shared(
    ngx_gravitee_mock_conf_t *mcf, ngx_gravitee_sub_t *sub);
static void ngx_gravitee_mock_unsubscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_mock_shared_start(ngx_gravitee_source_t *src);
static void ngx_gravitee_mock_shared_stop(ngx_gravitee_source_t *src);
static ngx_gravitee_message_t *ngx_gravitee_mock_shared_failure(
    ngx_gravitee_source_t *src);
static ngx_gravitee_message_t *ngx_gravitee_mock_error(
    ngx_gravitee_mock_conf_t *mcf, ngx_log_t *log);
static void ngx_gravitee_mock_stream_init(ngx_gravitee_mock_stream_t *st,
    ngx_gravitee_mock_conf_t *mcf, ngx_log_t *log);
static void ngx_gravitee_mock_start(ngx_gravitee_mock_stream_t *st);
static void ngx_gravitee_mock_schedule(ngx_gravitee_mock_stream_t *st);
static void ngx_gravitee_mock_tick(ngx_event_t *ev);
static void ngx_gravitee_mock_deliver(ngx_gravitee_mock_stream_t *st,
    ngx_gravitee_message_t *msg);
static ngx_gravitee_message_t *ngx_gravitee_mock_message(
    ngx_gravitee_mock_stream_t *st, ngx_log_t *log);
static void ngx_gravitee_mock_end(ngx_gravitee_mock_stream_t *st);
static void ngx_gravitee_mock_fail(ngx_gravitee_mock_stream_t *st,
    ngx_log_t *log);
static ngx_int_t ngx_gravitee_mock_publish(void *conf,
    ngx_gravitee_pub_t *pub);
static ngx_int_t ngx_gravitee_mock_outcome(ngx_gravitee_mock_conf_t *mcf,
    ngx_gravitee_pub_t *pub);
static void ngx_gravitee_mock_ack(ngx_event_t *ev);
static void ngx_gravitee_mock_cancel(void *conf, ngx_gravitee_pub_t *pub);


static ngx_gravitee_param_t  ngx_gravitee_mock_params[] = {

    { ngx_string("interval"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mock_conf_t, interval),
      NULL },

    { ngx_string("content"),
      ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mock_conf_t, content),
      NULL },

    { ngx_string("count"),
      ngx_gravitee_param_num,
      offsetof(ngx_gravitee_mock_conf_t, count),
      NULL },

    { ngx_string("header"),
      ngx_gravitee_param_pair,
      offsetof(ngx_gravitee_mock_conf_t, headers),
      NULL },

    { ngx_string("metadata"),
      ngx_gravitee_param_pair,
      offsetof(ngx_gravitee_mock_conf_t, metadata),
      NULL },

    { ngx_string("shared"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_mock_conf_t, shared),
      NULL },

    { ngx_string("stamp"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_mock_conf_t, stamp),
      NULL },

    { ngx_string("fail_after"),
      ngx_gravitee_param_num,
      offsetof(ngx_gravitee_mock_conf_t, fail_after),
      NULL },

    { ngx_string("publish_delay"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mock_conf_t, publish_delay),
      NULL },

    { ngx_string("publish_status"),
      ngx_gravitee_param_num,
      offsetof(ngx_gravitee_mock_conf_t, publish_status),
      NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_endpoint_t  ngx_gravitee_mock_endpoint = {
    ngx_string("mock"),
    ngx_gravitee_mock_params,
    NGX_INT64_LEN,                   /* an id is a number */
    NULL,
    ngx_gravitee_mock_create_conf,
    ngx_gravitee_mock_init_conf,
    ngx_gravitee_mock_subscribe,
    ngx_gravitee_mock_unsubscribe,
    NULL,
    NULL,
    NULL,
    ngx_gravitee_mock_publish,
    ngx_gravitee_mock_cancel,
    NULL,
    NULL,
    NULL
};


static ngx_gravitee_source_ops_t  ngx_gravitee_mock_source_ops = {
    ngx_gravitee_mock_shared_start,
    ngx_gravitee_mock_shared_stop,
    NULL,
    ngx_gravitee_mock_shared_failure,
    NULL
};


static void *
ngx_gravitee_mock_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_mock_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_mock_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->interval = NGX_CONF_UNSET_MSEC;
    mcf->count = NGX_CONF_UNSET_UINT;
    mcf->shared = NGX_CONF_UNSET;
    mcf->stamp = NGX_CONF_UNSET;
    mcf->fail_after = NGX_CONF_UNSET_UINT;
    mcf->publish_delay = NGX_CONF_UNSET_MSEC;
    mcf->publish_status = NGX_CONF_UNSET_UINT;

    return mcf;
}


static char *
ngx_gravitee_mock_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_mock_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->interval, 1000);
    ngx_conf_init_uint_value(mcf->count, NGX_GRAVITEE_MOCK_UNLIMITED);
    ngx_conf_init_value(mcf->shared, 0);
    ngx_conf_init_value(mcf->stamp, 0);
    ngx_conf_init_uint_value(mcf->fail_after, NGX_GRAVITEE_MOCK_UNLIMITED);
    ngx_conf_init_msec_value(mcf->publish_delay, 0);
    ngx_conf_init_uint_value(mcf->publish_status, 0);

    if (mcf->content.data == NULL) {
        ngx_str_set(&mcf->content, "mock message");
    }

    if (mcf->interval == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"interval\" of endpoint \"mock\" must "
                           "be at least 1ms");
        return NGX_CONF_ERROR;
    }

    if (mcf->publish_status
        && (mcf->publish_status < 400 || mcf->publish_status > 599))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"publish_status\" of endpoint "
                           "\"mock\" must be an error status, from 400 "
                           "to 599");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_gravitee_mock_subscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_mock_conf_t *mcf = conf;

    ngx_gravitee_mock_stream_t  *st;

    if (mcf->shared) {
        return ngx_gravitee_mock_subscribe_shared(mcf, sub);
    }

    st = ngx_alloc(sizeof(ngx_gravitee_mock_stream_t), sub->log);
    if (st == NULL) {
        return NGX_ERROR;
    }

    ngx_gravitee_mock_stream_init(st, mcf, sub->log);

    st->sub = sub;
    st->next_id = ngx_gravitee_mock_first_id(sub);

    sub->endpoint_data = st;

    if (st->next_id >= mcf->count || mcf->fail_after == 0) {
        /*
         * resumed past the end, or failing at once: said from a posted
         * event, never from inside subscribe()
         */
        ngx_post_event(&st->timer, &ngx_posted_events);
        return NGX_OK;
    }

    ngx_gravitee_mock_start(st);

    return NGX_OK;
}


/* the reference resumes after the given id; an unparsable one restarts */

static ngx_uint_t
ngx_gravitee_mock_first_id(ngx_gravitee_sub_t *sub)
{
    ngx_int_t  n;

    if (sub->resume.len == 0) {
        return 0;
    }

    n = ngx_atoi(sub->resume.data, sub->resume.len);

    if (n == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, sub->log, 0,
                      "mock endpoint cannot resume after id \"%V\": not a "
                      "number, starting from 0", &sub->resume);
        return 0;
    }

    /* unsigned: the id after NGX_MAX_INT_T_VALUE does not overflow */
    return (ngx_uint_t) n + 1;
}


/*
 * One source per location: the key is the configuration itself.  Ids
 * keep counting across subscribers, a cursor does not rewind the stream,
 * and a stream that failed or ended stays so (the core tells newcomers).
 */

static ngx_int_t
ngx_gravitee_mock_subscribe_shared(ngx_gravitee_mock_conf_t *mcf,
    ngx_gravitee_sub_t *sub)
{
    ngx_str_t                    key;
    ngx_gravitee_source_t       *src;
    ngx_gravitee_mock_shared_t  *ms;

    key.data = (u_char *) &mcf;
    key.len = sizeof(ngx_gravitee_mock_conf_t *);

    src = ngx_gravitee_source_get(&ngx_gravitee_mock_source_ops, &key,
                                  sizeof(ngx_gravitee_mock_shared_t), 0);
    if (src == NULL) {
        return NGX_ERROR;
    }

    ms = (ngx_gravitee_mock_shared_t *) src;

    if (ms->stream.conf == NULL) {
        ngx_gravitee_mock_stream_init(&ms->stream, mcf, ngx_cycle->log);
        ms->stream.shared = src;

        if (mcf->count == 0 || mcf->fail_after == 0) {
            /* over before it starts: the core tells every newcomer */
            ngx_gravitee_mock_tick(&ms->stream.timer);
        }
    }

    if (src->failed) {
        ngx_log_error(NGX_LOG_INFO, sub->log, 0,
                      "mock shared stream failed: Mock endpoint failure "
                      "after %ui messages, for a newcomer too",
                      mcf->fail_after);
    }

    sub->endpoint_data = src;

    return ngx_gravitee_source_subscribe(src, sub);
}


static void
ngx_gravitee_mock_unsubscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_mock_conf_t *mcf = conf;

    ngx_gravitee_mock_stream_t  *st;

    if (sub->endpoint_data == NULL) {
        return;
    }

    if (mcf->shared) {
        ngx_gravitee_source_unsubscribe(sub->endpoint_data, sub);
        sub->endpoint_data = NULL;
        return;
    }

    st = sub->endpoint_data;
    sub->endpoint_data = NULL;

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    if (st->timer.posted) {
        ngx_delete_posted_event(&st->timer);
    }

    ngx_free(st);
}


static ngx_int_t
ngx_gravitee_mock_shared_start(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mock_shared_t *ms = (ngx_gravitee_mock_shared_t *) src;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "mock shared source %p started at id %ui",
                  src, ms->stream.next_id);

    ngx_gravitee_mock_start(&ms->stream);

    return NGX_OK;
}


static void
ngx_gravitee_mock_shared_stop(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mock_shared_t *ms = (ngx_gravitee_mock_shared_t *) src;

    if (ms->stream.timer.timer_set) {
        ngx_del_timer(&ms->stream.timer);
    }

    if (ms->stream.timer.posted) {
        ngx_delete_posted_event(&ms->stream.timer);
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "mock shared source %p stopped at id %ui: no "
                  "subscriber left", src, ms->stream.next_id);
}


static void
ngx_gravitee_mock_stream_init(ngx_gravitee_mock_stream_t *st,
    ngx_gravitee_mock_conf_t *mcf, ngx_log_t *log)
{
    ngx_memzero(st, sizeof(ngx_gravitee_mock_stream_t));

    st->conf = mcf;

    st->timer.handler = ngx_gravitee_mock_tick;
    st->timer.data = st;
    st->timer.log = log;
    st->timer.cancelable = 1;
}


static void
ngx_gravitee_mock_start(ngx_gravitee_mock_stream_t *st)
{
    st->due = ngx_current_msec;

    ngx_gravitee_mock_schedule(st);
}


/*
 * At a fixed rate, as the reference's interval: a tick is due one interval
 * after the previous one was due, not after it ran, so that a busy event
 * loop delays a message without slowing the stream down.  A stream more
 * than an interval late (a stalled worker) starts again from now rather
 * than bursting to catch up.
 */

static void
ngx_gravitee_mock_schedule(ngx_gravitee_mock_stream_t *st)
{
    ngx_msec_t      interval;
    ngx_msec_int_t  delay;

    interval = st->conf->interval;

    st->due += interval;
    delay = (ngx_msec_int_t) (st->due - ngx_current_msec);

    if (delay < 0) {
        if (-delay > (ngx_msec_int_t) interval) {
            st->due = ngx_current_msec + interval;
            delay = interval;

        } else {
            delay = 0;
        }
    }

    ngx_add_timer(&st->timer, (ngx_msec_t) delay);
}


static void
ngx_gravitee_mock_tick(ngx_event_t *ev)
{
    ngx_gravitee_mock_stream_t *st = ev->data;

    ngx_gravitee_message_t    *msg;
    ngx_gravitee_mock_conf_t  *mcf;

    mcf = st->conf;

    if (st->sent >= mcf->fail_after) {
        /* fail_after=0 */
        ngx_gravitee_mock_fail(st, ev->log);
        return;
    }

    if (st->next_id >= mcf->count) {
        /* a client resumed past the end, or count=0 */
        ngx_gravitee_mock_end(st);
        return;
    }

    msg = ngx_gravitee_mock_message(st, ev->log);
    if (msg == NULL) {
        /* out of memory: try again at the next tick */
        ngx_gravitee_mock_schedule(st);
        return;
    }

    st->next_id++;
    st->sent++;

    if (st->next_id < mcf->count && st->sent < mcf->fail_after) {
        ngx_gravitee_mock_schedule(st);
    }

    ngx_gravitee_mock_deliver(st, msg);

    ngx_gravitee_message_unref(msg);

    /* the failure comes right after the last message, and wins */

    if (st->sent >= mcf->fail_after) {
        ngx_gravitee_mock_fail(st, ev->log);

    } else if (st->next_id >= mcf->count) {
        ngx_gravitee_mock_end(st);
    }
}


static void
ngx_gravitee_mock_deliver(ngx_gravitee_mock_stream_t *st,
    ngx_gravitee_message_t *msg)
{
    if (st->shared) {
        ngx_gravitee_source_fanout(st->shared, msg);
        return;
    }

    st->sub->position = msg->position;
    st->sub->handler->message(st->sub, msg);
}


/*
 * With stamp=on the content starts with "t=<epoch nanoseconds> ", the time
 * the message was made, so that a client (bench/loadgen) measures the
 * delivery latency.
 */

static ngx_gravitee_message_t *
ngx_gravitee_mock_message(ngx_gravitee_mock_stream_t *st, ngx_log_t *log)
{
    u_char                       *p, id[NGX_INT_T_LEN];
    struct timespec               ts;
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_mock_conf_t     *mcf;
    ngx_gravitee_message_init_t   init;

    mcf = st->conf;

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));

    init.id.data = id;
    init.id.len = ngx_sprintf(id, "%ui", st->next_id) - id;

    /* one counter: where a client is, is the id of what it got last */
    init.position = init.id;

    /* the configuration outlives every message: no copy of the content */
    init.content = mcf->content;
    init.wrap_content = 1;

    if (mcf->headers) {
        init.headers = mcf->headers->elts;
        init.nheaders = mcf->headers->nelts;
    }

    if (mcf->metadata) {
        init.metadata = mcf->metadata->elts;
        init.nmetadata = mcf->metadata->nelts;
    }

    if (!mcf->stamp) {
        return ngx_gravitee_message_create(log, &init);
    }

    init.content.len = sizeof("t=18446744073709551615 ") - 1
                       + mcf->content.len;
    init.content.data = NULL;
    init.wrap_content = 0;

    msg = ngx_gravitee_message_create(log, &init);
    if (msg == NULL) {
        return NULL;
    }

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    p = ngx_sprintf(msg->content.data, "t=%uL ",
                    (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
    p = ngx_cpymem(p, mcf->content.data, mcf->content.len);
    msg->content.len = p - msg->content.data;

    return msg;
}


static void
ngx_gravitee_mock_end(ngx_gravitee_mock_stream_t *st)
{
    if (st->shared == NULL) {
        st->sub->handler->end(st->sub);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "mock shared source %p ended: count %ui reached",
                  st->shared, st->conf->count);

    ngx_gravitee_source_end(st->shared);
}


/*
 * fail_after: the stream fails as a broker connection does, with an error
 * message (a reference key, statusCode 500) and the end of the flow.  A
 * shared stream that failed stays failed: later subscribers get the error
 * at once.
 */

static void
ngx_gravitee_mock_fail(ngx_gravitee_mock_stream_t *st, ngx_log_t *log)
{
    ngx_gravitee_sub_t      *sub;
    ngx_gravitee_message_t  *err;

    ngx_log_error(NGX_LOG_INFO, log, 0, "mock %s stream failed: Mock "
                  "endpoint failure after %ui messages",
                  st->shared ? "shared" : "client", st->conf->fail_after);

    /* out of memory: the flow still ends, without saying why */
    err = ngx_gravitee_mock_error(st->conf, log);

    if (st->shared) {
        ngx_gravitee_source_fail(st->shared, err);

        if (err) {
            ngx_gravitee_message_unref(err);
        }

        return;
    }

    sub = st->sub;

    if (err) {
        ngx_str_null(&sub->position);
        sub->handler->message(sub, err);
        ngx_gravitee_message_unref(err);
    }

    sub->handler->end(sub);
}


static ngx_gravitee_message_t *
ngx_gravitee_mock_shared_failure(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mock_shared_t *ms = (ngx_gravitee_mock_shared_t *) src;

    return ngx_gravitee_mock_error(ms->stream.conf, src->log);
}


static ngx_gravitee_message_t *
ngx_gravitee_mock_error(ngx_gravitee_mock_conf_t *mcf, ngx_log_t *log)
{
    u_char     buf[64];
    ngx_str_t  text;

    static ngx_str_t  key = ngx_string("FAILURE_ENDPOINT_UNKNOWN_ERROR");

    text.data = buf;
    text.len = ngx_sprintf(buf, "Mock endpoint failure after %ui messages",
                           mcf->fail_after)
               - buf;

    return ngx_gravitee_message_error(log, &text, &key,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
}


static ngx_int_t
ngx_gravitee_mock_publish(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_mock_conf_t *mcf = conf;

    ngx_gravitee_mock_ack_t  *ack;

    if (mcf->publish_delay == 0) {
        return ngx_gravitee_mock_outcome(mcf, pub);
    }

    /* as a broker's acknowledgement: later, from the event loop */

    ack = ngx_calloc(sizeof(ngx_gravitee_mock_ack_t), pub->log);
    if (ack == NULL) {
        pub->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    ack->pub = pub;
    ack->conf = mcf;

    ack->timer.handler = ngx_gravitee_mock_ack;
    ack->timer.data = ack;
    ack->timer.log = pub->log;

    pub->endpoint_data = ack;

    /*
     * not cancelable: a worker that stops waits for the acknowledgement,
     * as it would for a broker's, and the client gets its answer
     */

    ngx_add_timer(&ack->timer, mcf->publish_delay);

    return NGX_AGAIN;
}


/* accepted (logged, as the reference does) or refused with publish_status */

static ngx_int_t
ngx_gravitee_mock_outcome(ngx_gravitee_mock_conf_t *mcf,
    ngx_gravitee_pub_t *pub)
{
    if (mcf->publish_status) {
        pub->rc = NGX_ERROR;
        pub->status = mcf->publish_status;
        ngx_str_set(&pub->error, "Mock endpoint refused the message");

        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, pub->log, 0, "Received message: %V",
                  &pub->msg->content);

    pub->rc = NGX_OK;

    return NGX_OK;
}


static void
ngx_gravitee_mock_ack(ngx_event_t *ev)
{
    ngx_gravitee_mock_ack_t *ack = ev->data;

    ngx_gravitee_pub_t  *pub;

    pub = ack->pub;

    (void) ngx_gravitee_mock_outcome(ack->conf, pub);

    /* done() may free the publication: nothing of ours is left by then */

    pub->endpoint_data = NULL;
    ngx_free(ack);

    pub->done(pub);
}


static void
ngx_gravitee_mock_cancel(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_mock_ack_t  *ack;

    ack = pub->endpoint_data;
    pub->endpoint_data = NULL;

    if (ack == NULL) {
        return;
    }

    if (ack->timer.timer_set) {
        ngx_del_timer(&ack->timer);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pub->log, 0,
                   "mock publication cancelled before its acknowledgement: "
                   "%uz bytes", pub->msg->content.len);

    ngx_free(ack);
}
