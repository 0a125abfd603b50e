
/*
 * ngx_gravitee_module: the interface between entrypoints and endpoints.
 *
 * An entrypoint speaks to web clients (http-get, websocket, sse, http-post,
 * webhook); an endpoint speaks to a broker (mock, kafka, mqtt).  Neither
 * knows the other: they meet here, through three things.
 *
 *   parameters    each connector lists its "key=value" parameters in a table
 *                 of ngx_gravitee_param_t, parsed by the core, so that every
 *                 directive reports errors the same way;
 *
 *   subscription  an entrypoint fills an ngx_gravitee_sub_t (its handlers,
 *                 the position to resume from) and calls subscribe(); the
 *                 endpoint calls sub->handler->message() for each message,
 *                 then ->end() when the stream is over, or ->message() with
 *                 an error message (msg->error) and ->end().  A broker
 *                 endpoint keeps one connection per worker and location and
 *                 fans each message out to all of its subscriptions;
 *
 *   publication   an entrypoint fills an ngx_gravitee_pub_t around one
 *                 message and calls publish(): NGX_OK means the endpoint has
 *                 it, NGX_ERROR means it failed (pub->status, pub->error),
 *                 NGX_AGAIN means pub->done() will be called later, from the
 *                 event loop, once the broker acknowledged (or refused) it.
 *
 * Rules that keep both sides simple:
 *   - the endpoint calls the handlers from the event loop only, never from a
 *     broker library's thread;
 *   - a handler takes a reference on a message it keeps
 *     (ngx_gravitee_message_ref) and must not unsubscribe, nor free the
 *     subscription, from inside the call: it posts an event to do so;
 *   - handlers are not called once unsubscribe() has returned, nor done()
 *     once cancel() has returned;
 *   - a message given to publish() is the entrypoint's: it holds it until
 *     done() or cancel(), then unrefs it.  An endpoint that keeps it, or
 *     its bytes, longer (librdkafka until its delivery report, after a
 *     cancel too) takes a reference of its own;
 *   - a position (sub->resume) is valid during subscribe() only, and
 *     sub->position during the message() call only: both are copied by
 *     whoever keeps them.
 */


#ifndef _NGX_GRAVITEE_CONNECTOR_H_INCLUDED_
#define _NGX_GRAVITEE_CONNECTOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_message.h"


typedef struct ngx_gravitee_param_s       ngx_gravitee_param_t;
typedef struct ngx_gravitee_sub_s         ngx_gravitee_sub_t;
typedef struct ngx_gravitee_pub_s         ngx_gravitee_pub_t;
typedef struct ngx_gravitee_entrypoint_s  ngx_gravitee_entrypoint_t;
typedef struct ngx_gravitee_endpoint_s    ngx_gravitee_endpoint_t;
typedef struct ngx_gravitee_loc_conf_s    ngx_gravitee_loc_conf_t;


/* parameters: "key=value" words of a directive, like ngx_command_t */

typedef char *(*ngx_gravitee_param_set_pt)(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);

struct ngx_gravitee_param_s {
    ngx_str_t                   name;
    ngx_gravitee_param_set_pt   set;
    ngx_uint_t                  offset;
    void                       *post;        /* e.g. the minimum of a msec */
};

#define ngx_gravitee_null_param  { ngx_null_string, NULL, 0, NULL }

char *ngx_gravitee_param_flag(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* on|off -> ngx_flag_t */
char *ngx_gravitee_param_msec(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* 5s, 500ms -> ngx_msec_t */
char *ngx_gravitee_param_size(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* 1m, 64k -> size_t */
char *ngx_gravitee_param_num(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* 500 -> ngx_uint_t */
char *ngx_gravitee_param_str(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* any -> ngx_str_t */
char *ngx_gravitee_param_pair(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* Name:value, repeatable ->
                                                 ngx_array_t * of pairs */
char *ngx_gravitee_param_list(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf);            /* a,b,c -> ngx_array_t * of
                                                 ngx_str_t */


/* subscription: broker -> client */

/* what a client of bind() may do */
#define NGX_GRAVITEE_BIND_SUBSCRIBE  1
#define NGX_GRAVITEE_BIND_PUBLISH    2

/* what ->state() tells: the broker can be reached, or cannot for now */
#define NGX_GRAVITEE_STATE_UP    1
#define NGX_GRAVITEE_STATE_DOWN  2

typedef struct {
    /* one message, or an endpoint failure (msg->error) */
    void  (*message)(ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg);
    /* the endpoint's flow is over (a Mock count reached, a failure) */
    void  (*end)(ngx_gravitee_sub_t *sub);
    /* the broker went away or came back, the subscription stays; may be
       NULL */
    void  (*state)(ngx_gravitee_sub_t *sub, ngx_uint_t state);
    /*
     * how many more messages the client's queue takes before it is half
     * full (0: it is), or an HTTP GET's batch before its limit: an
     * endpoint that can wait (a reader catching a client up on what the
     * broker keeps) hands over no more than that and holds back the rest,
     * instead of filling the queue up to the slow-client limit; may be
     * NULL (no limit)
     */
    ngx_uint_t  (*room)(ngx_gravitee_sub_t *sub);
    /* the entrypoint never reads sub->position (a WebSocket's frames
       carry none): an endpoint may leave it empty rather than make it */
    ngx_uint_t    no_position;
    /*
     * the entrypoint reads the position after the last message it takes
     * only (an HTTP GET's nextCursor), from position() when sub->position
     * was left empty: an endpoint with position() may leave it so
     */
    ngx_uint_t    position_at_end;
    /*
     * the entrypoint takes no reference to a message that is not an
     * endpoint failure (an HTTP GET writes an item during the call): an
     * endpoint whose every client of a message borrows may lend it, made
     * for the calls only, without allocating it or copying its parts
     */
    ngx_uint_t    borrows;
} ngx_gravitee_sub_handler_t;


/*
 * Positions.  An endpoint that can resume says where a client is after
 * each message it hands over: sub->position, valid during the message()
 * call (a live fan-out points it at msg->position, the same for every
 * client of the stream; a client catching up gets its own).  It is opaque
 * to the entrypoints, which give it back as sub->resume (HTTP GET cursor,
 * SSE Last-Event-ID, WebSocket cursor) to resume after it, and apart from
 * the message id, which says what a message is, not where a client is.
 * Ids and positions are the same thing on the Mock (one counter), not on
 * Kafka (a position names every partition).
 */

/* the parts of a message a subscriber does not read (sub->skips) */
#define NGX_GRAVITEE_SKIP_ID        0x01
#define NGX_GRAVITEE_SKIP_HEADERS   0x02
#define NGX_GRAVITEE_SKIP_METADATA  0x04     /* and the timestamp */
#define NGX_GRAVITEE_SKIP_ALL       0x07     /* reads the content only */

struct ngx_gravitee_sub_s {
    ngx_gravitee_sub_handler_t *handler;
    void                       *data;        /* the entrypoint's client */
    ngx_log_t                  *log;

    ngx_str_t                   resume;      /* resume after this position,
                                                if any: kept until
                                                subscribe() returns */
    ngx_str_t                   position;    /* after the message being
                                                handed over */
    ngx_str_t                   error;       /* why subscribe() declined */
    void                       *binding;     /* the endpoint's, from bind() */

    /*
     * what of a message the entrypoint does not read (NGX_GRAVITEE_SKIP_):
     * an endpoint whose every client skips a part may leave it out of the
     * messages it makes; 0, the default, reads everything
     */
    ngx_uint_t                  skips;

    /* owned by the endpoint while subscribed */
    void                       *endpoint_data;
    ngx_queue_t                 queue;       /* in a shared source's list */
};


/* publication: client -> broker */

struct ngx_gravitee_pub_s {
    ngx_gravitee_message_t     *msg;
    void                      (*done)(ngx_gravitee_pub_t *pub);
    void                       *data;        /* the entrypoint's client */
    ngx_log_t                  *log;

    /* the outcome, set by the endpoint before NGX_ERROR or done() */
    ngx_int_t                   rc;          /* NGX_OK or NGX_ERROR */
    ngx_uint_t                  status;      /* HTTP status of a failure */
    ngx_str_t                   error;       /* its text, static or in msg */

    void                       *binding;     /* the endpoint's, from bind() */
    void                       *endpoint_data;
};


struct ngx_gravitee_endpoint_s {
    ngx_str_t                   name;
    ngx_gravitee_param_t       *params;

    /*
     * the longest resume position it can use, in bytes: a longer one
     * (cursor, Last-Event-ID) is refused with 400, before anything of it
     * is kept
     */
    size_t                      max_position;
    /* whether a position can be used at all, before anything is answered:
       NGX_DECLINED with "error" for a 400; may be NULL */
    ngx_int_t                 (*check_position)(void *conf, ngx_str_t *pos,
                                                ngx_pool_t *pool,
                                                ngx_str_t *error);

    void                     *(*create_conf)(ngx_conf_t *cf);
    /* after all parameters: defaults, checks; NGX_CONF_OK or an error */
    char                     *(*init_conf)(ngx_conf_t *cf, void *conf);

    /*
     * NGX_OK; NGX_ERROR: the endpoint is unavailable; NGX_DECLINED: the
     * position to resume from (sub->resume) cannot be used, sub->error
     * says why, nothing is subscribed (the client hears a 400)
     */
    ngx_int_t                 (*subscribe)(void *conf,
                                           ngx_gravitee_sub_t *sub);
    void                      (*unsubscribe)(void *conf,
                                             ngx_gravitee_sub_t *sub);
    /*
     * where a subscriber that was handed nothing yet stands (an HTTP GET
     * batch without items still gives a cursor); NGX_DECLINED: nowhere
     * known yet (such a batch is a 503 to retry: without a cursor, the
     * poller would start again at the end); may be NULL: the endpoint has
     * no positions
     */
    ngx_int_t                 (*position)(void *conf, ngx_gravitee_sub_t *sub,
                                          ngx_pool_t *pool, ngx_str_t *pos);

    /*
     * what the endpoint takes from the client's request (a record key, a
     * topic from NGINX variables), computed while the request exists and
     * kept with the client as sub->binding and pub->binding, until
     * unbind(); "what" says what the client may do
     * (NGX_GRAVITEE_BIND_SUBSCRIBE, _PUBLISH), so that a subscriber does
     * not keep a producer's key; NGX_DECLINED: "error" for a 400; both may
     * be NULL
     */
    ngx_int_t                 (*bind)(void *conf, ngx_http_request_t *r,
                                      ngx_uint_t what, void **binding,
                                      ngx_str_t *error);
    void                      (*unbind)(void *conf, void *binding);

    ngx_int_t                 (*publish)(void *conf,
                                         ngx_gravitee_pub_t *pub);
    void                      (*cancel)(void *conf, ngx_gravitee_pub_t *pub);

    /* per worker, for every location using this endpoint; may be NULL */
    ngx_int_t                 (*init_process)(ngx_cycle_t *cycle,
                                              void *conf);
    void                      (*exit_process)(ngx_cycle_t *cycle,
                                              void *conf);

    /*
     * a position (sub->position, or position()'s) as an HTTP GET cursor
     * shows it (Kafka: base64, unless encode_message_id=off), in pool; the
     * last member, so that it may be left out: NULL, the position as it is
     */
    ngx_int_t                 (*cursor)(void *conf, ngx_str_t *pos,
                                        ngx_pool_t *pool, ngx_str_t *cursor);
};


struct ngx_gravitee_entrypoint_s {
    ngx_str_t                   name;
    ngx_gravitee_param_t       *params;

    /*
     * how specific the entrypoint's match is, as in the reference:
     * websocket 4, sse 2, http-get 1, http-post 1; the highest that
     * matches a request serves it
     */
    ngx_uint_t                  match_criteria;
    ngx_int_t                 (*match)(ngx_http_request_t *r);

    void                     *(*create_conf)(ngx_conf_t *cf);
    char                     *(*init_conf)(ngx_conf_t *cf, void *conf);

    /* the content handler of a request this entrypoint matched */
    ngx_int_t                 (*handler)(ngx_http_request_t *r,
                                         ngx_gravitee_loc_conf_t *glcf,
                                         void *conf);
};


typedef struct {
    ngx_gravitee_entrypoint_t  *entrypoint;
    void                       *conf;
} ngx_gravitee_entrypoint_conf_t;


struct ngx_gravitee_loc_conf_s {
    ngx_array_t                *entrypoints; /* ngx_gravitee_entrypoint_conf_t */

    ngx_gravitee_endpoint_t    *endpoint;
    void                       *endpoint_conf;

    ngx_flag_t                  started;
    ngx_str_t                   name;        /* the location, for logs */

    u_char                     *file;        /* where the API is declared */
    ngx_uint_t                  line;
};


/* helpers of the core, for entrypoints */

/*
 * What the access log tells of a request that an entrypoint serves, in
 * $message_proxy_messages, $message_proxy_dropped and
 * $message_proxy_close_reason: an entrypoint that sets the module's request
 * ctx starts that ctx with this struct.
 */

/*
 * Who the caller is, as the plan that let it in says
 * ($message_proxy_plan, _application, _subject); a detached stream keeps a
 * copy.  "expires": when the credential stops being valid (a JWT's exp),
 * which ends a stream; 0: never.
 */

typedef struct {
    ngx_str_t                   plan;
    ngx_str_t                   application;
    ngx_str_t                   subject;
    time_t                      expires;
} ngx_gravitee_identity_t;


typedef struct {
    ngx_gravitee_identity_t    *identity;    /* NULL: no plan declared */
    ngx_uint_t                  messages;    /* sent to the client */
    ngx_uint_t                  dropped;
    const char                 *reason;      /* why a stream ended; NULL
                                                while it runs */
} ngx_gravitee_tally_t;


/*
 * The request's header lines of one name, one after the other: every line
 * counts, not only the one NGINX keeps in headers_in.  Start from a zeroed
 * iterator: ngx_gravitee_header_iter_t it = { NULL, 0 };
 */

typedef struct {
    ngx_list_part_t            *part;
    ngx_uint_t                  i;
} ngx_gravitee_header_iter_t;

/*
 * An entrypoint sets its request ctx (which starts with the tally) with
 * this, not ngx_http_set_ctx(): the caller's identity, found by the plans
 * in the access phase, goes along.
 */
void ngx_gravitee_set_ctx(ngx_http_request_t *r, ngx_gravitee_tally_t *tally);

/* the caller's identity, if a plan let it in (src/plans); else NULL */
ngx_gravitee_identity_t *ngx_gravitee_request_identity(
    ngx_http_request_t *r);

ngx_table_elt_t *ngx_gravitee_header_next(ngx_http_request_t *r,
    ngx_gravitee_header_iter_t *it, const char *name);

/* a table of variables ended by ngx_http_null_variable, for other
   modules' preconfiguration */
ngx_int_t ngx_gravitee_conf_add_variables(ngx_conf_t *cf,
    ngx_http_variable_t *vars);

/* the parsing of a directive's key=value words, for other modules */
char *ngx_gravitee_parse_params(ngx_conf_t *cf, const char *kind,
    ngx_str_t *name, ngx_gravitee_param_t *params, void *conf);
char *ngx_gravitee_unknown(ngx_conf_t *cf, const char *kind, ngx_str_t *name,
    ngx_str_t *what, ngx_str_t *allowed, ngx_uint_t n);

ngx_int_t ngx_gravitee_send_error(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *message);
/* a 503's "Retry-After: seconds", added to r's headers */
ngx_int_t ngx_gravitee_retry_after(ngx_http_request_t *r, ngx_uint_t seconds);
ngx_int_t ngx_gravitee_accepts(ngx_http_request_t *r, ngx_str_t *type);
void ngx_gravitee_watch_client(ngx_http_request_t *r);
ngx_int_t ngx_gravitee_position_check(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_str_t *pos, ngx_str_t *error);
ngx_int_t ngx_gravitee_arg_position(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_str_t *pos, ngx_str_t *error);
ngx_int_t ngx_gravitee_bind(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_uint_t what, void **binding,
    ngx_str_t *error);
void ngx_gravitee_unbind(ngx_gravitee_loc_conf_t *glcf, void *binding);
ngx_int_t ngx_gravitee_subscribe(ngx_gravitee_loc_conf_t *glcf,
    ngx_gravitee_sub_t *sub);
void ngx_gravitee_unsubscribe(ngx_gravitee_loc_conf_t *glcf,
    ngx_gravitee_sub_t *sub);
ngx_int_t ngx_gravitee_publish(ngx_gravitee_loc_conf_t *glcf,
    ngx_gravitee_pub_t *pub);
void ngx_gravitee_cancel(ngx_gravitee_loc_conf_t *glcf,
    ngx_gravitee_pub_t *pub);


extern ngx_module_t  ngx_gravitee_module;


#endif /* _NGX_GRAVITEE_CONNECTOR_H_INCLUDED_ */
