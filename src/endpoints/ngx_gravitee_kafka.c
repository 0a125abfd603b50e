
/*
 * ngx_gravitee_module: the Kafka endpoint (librdkafka).
 *
 * Consuming.  Each worker keeps one consumer per endpoint configuration
 * (brokers, topics, properties): a shared source of the core, started by
 * its first subscriber and stopped a while after its last.  It reads every
 * partition of its topics, without a consumer group and committing
 * nothing, and each record becomes one message (its value not copied: the
 * message wraps the rd_kafka_message_t) fanned out to every subscriber.
 *
 * Positions.  A client's position is the offset of every partition, not
 * one id.  The live stream has one position, the same for all of its
 * clients, carried by each message.  A client that resumes behind it is
 * caught up by a reader (a second consumer, up to a few per source, each
 * serving every client it can: a reconnect storm costs a few readers, not
 * one per client), then joins the live stream where the two meet, with
 * nothing lost or repeated.  src/README.md has the design.
 *
 * librdkafka's threads never touch NGINX.  Each handle's queues wake the
 * event loop through an eventfd (rd_kafka_queue_io_event_enable), and are
 * drained there with zero timeouts.  What blocks in librdkafka (metadata,
 * watermarks, stopping and destroying a handle) runs on a thread of ours,
 * whose result comes back as a task (ngx_gravitee_thread_post).
 *
 * Producing.  One producer per worker and configuration.  A publication
 * becomes one record per produce topic, acknowledged when every delivery
 * report is in.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <pthread.h>
#include <librdkafka/rdkafka.h>
#include <jansson.h>
#include <regex.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_source.h"
#include "ngx_gravitee_worker.h"


#define NGX_GRAVITEE_KAFKA_LATEST       0
#define NGX_GRAVITEE_KAFKA_EARLIEST     1


/* readers per source: what a reconnect storm may cost */
#define NGX_GRAVITEE_KAFKA_READERS      4

/* a reader left without clients waits this long for the next ones */
#define NGX_GRAVITEE_KAFKA_READER_IDLE  10000

/* records taken from a queue per turn of the event loop */
#define NGX_GRAVITEE_KAFKA_BATCH        256
#define NGX_GRAVITEE_KAFKA_HOLD         20      /* ms: a full client */

/* what a thread waits for the brokers, per call */
#define NGX_GRAVITEE_KAFKA_META_TIMEOUT 5000

/* how often the partitions are looked at again, and a failed start */
#define NGX_GRAVITEE_KAFKA_REFRESH      30000
#define NGX_GRAVITEE_KAFKA_RETRY_MIN    1000
#define NGX_GRAVITEE_KAFKA_RETRY_MAX    30000

#define NGX_GRAVITEE_KAFKA_TOPIC_MAX    249

/* a position names every partition: "topic@p#o,p#o;..." in base64 */
#define NGX_GRAVITEE_KAFKA_POSITION_MAX 16384


typedef struct ngx_gravitee_kafka_handle_s  ngx_gravitee_kafka_handle_t;
typedef struct ngx_gravitee_kafka_source_s  ngx_gravitee_kafka_source_t;
typedef struct ngx_gravitee_kafka_reader_s  ngx_gravitee_kafka_reader_t;
typedef struct ngx_gravitee_kafka_producer_s  ngx_gravitee_kafka_producer_t;


typedef struct {
    ngx_str_t                        bootstrap;
    ngx_array_t                     *topics;          /* ngx_str_t */
    ngx_str_t                        topic_pattern;
    ngx_uint_t                       consumer;        /* shared or off */
    ngx_flag_t                       producer;
    ngx_array_t                     *produce_topics;  /* ngx_str_t */
    ngx_array_t                     *produce_cv;      /* complex values */
    ngx_uint_t                       auto_offset_reset;
    ngx_str_t                        key;
    ngx_http_complex_value_t        *key_cv;
    ngx_flag_t                       encode_message_id;
    ngx_uint_t                       compression;
    ngx_msec_t                       publish_timeout;
    ngx_msec_t                       linger;          /* consumer_linger */

    ngx_array_t                     *properties;      /* ngx_gravitee_pair_t,
                                                         from the location */
    ngx_str_t                        consumer_key;    /* what is shared by */
    ngx_str_t                        producer_key;

    /* this worker's */
    ngx_gravitee_kafka_source_t     *source;
    ngx_gravitee_kafka_producer_t   *prod;
} ngx_gravitee_kafka_conf_t;


/* message_proxy_kafka_property, kept by the location */

typedef struct {
    ngx_array_t                     *properties;      /* ngx_gravitee_pair_t */
} ngx_gravitee_kafka_loc_conf_t;


/*
 * A librdkafka handle and what wakes the event loop for it.  It lives as
 * long as something refers to it: its owner (a source, a reader, a
 * producer), a thread of ours working with it, every message that wraps
 * one of its records.  The last reference sends it to a thread to be
 * destroyed, which may wait on the network.
 */

struct ngx_gravitee_kafka_handle_s {
    ngx_queue_t                      link;     /* the worker's handles */
    rd_kafka_t                      *rk;
    rd_kafka_queue_t                *queue;    /* fetched records */
    rd_kafka_queue_t                *main;     /* logs, stats, reports */
    ngx_gravitee_wakeup_t            wakeup;
    ngx_event_t                      drop;     /* posted: the last unref */
    ngx_uint_t                       refs;

    void                           (*records)(ngx_gravitee_kafka_handle_t *h,
                                              rd_kafka_message_t **rkm,
                                              size_t n);
    void                            *owner;    /* NULL: records dropped */

    /* how many records its clients take now (a reader's); NULL: any */
    ngx_uint_t                     (*room)(ngx_gravitee_kafka_handle_t *h);
    ngx_event_t                      hold;     /* the clients had no room:
                                                  try again */

    rd_kafka_topic_t               **rkts;     /* per topic of "parts" */
    ngx_uint_t                       nrkts;

    unsigned                         up:1;     /* a broker is UP (stats) */
    unsigned                         down_told:1;
    unsigned                         consuming:1;
    unsigned                         parked:1; /* an idle reader's: its
                                                  records wait, no hold */
};


/* the topics and partitions a source reads, one index per partition */

typedef struct {
    char                            *name;
    ngx_uint_t                       first;    /* index of partition 0 */
    ngx_uint_t                       npartitions;
} ngx_gravitee_kafka_topic_t;


typedef struct {
    ngx_gravitee_kafka_topic_t      *topics;
    ngx_uint_t                       ntopics;
    ngx_uint_t                       n;        /* partitions in all */
} ngx_gravitee_kafka_parts_t;


/*
 * A position as text, kept from one record to the next: a record moves one
 * partition, and the text is written again from that partition on only.
 * Positions are plain text (an SSE id carries one per event: base64 would
 * make it a third longer); an HTTP GET cursor is encoded from one at the
 * end of its batch (ngx_gravitee_kafka_cursor).
 */

typedef struct {
    u_char                          *data;
    size_t                           raw_len;
    int64_t                         *last;     /* the next[] it is of */
    size_t                          *start;    /* per partition: where its
                                                  part of raw starts */
    size_t                          *off;      /* and its offset's digits */
    ngx_gravitee_kafka_topic_t      *topics;   /* of the parts it is for */
    ngx_uint_t                       n;
} ngx_gravitee_kafka_text_t;


struct ngx_gravitee_kafka_source_s {
    ngx_gravitee_source_t            source;   /* first: the core's */
    ngx_gravitee_kafka_conf_t       *conf;

    ngx_gravitee_kafka_handle_t     *live;
    ngx_gravitee_kafka_parts_t       parts;
    int64_t                         *next;     /* per partition: the offset
                                                  the live stream gives
                                                  next */
    ngx_uint_t                       generation; /* of the live handle */
    ngx_uint_t                       live_index;  /* of the record fanned */
    int64_t                          live_offset; /* out now */

    ngx_queue_t                      readers;
    ngx_uint_t                       nreaders;
    ngx_queue_t                      waiting;  /* for a reader */

    ngx_event_t                      retry;    /* the next start, refresh */
    ngx_msec_t                       backoff;

    ngx_str_t                        scratch;  /* a client's own position */
    size_t                           scratch_size;
    ngx_gravitee_kafka_text_t        live_text;  /* the live stream's */
    ngx_gravitee_kafka_text_t        step;     /* a reader's own: for its
                                                  clients at its position */

    unsigned                         ready:1;  /* partitions known */
    unsigned                         starting:1;
    unsigned                         down:1;
};


/* a subscriber not on the live stream yet (catching up, or waiting) */

typedef struct {
    ngx_gravitee_sub_t              *sub;
    ngx_queue_t                      queue;    /* reader's or waiting */
    ngx_gravitee_kafka_reader_t     *reader;
    int64_t                         *next;     /* what it wants next, per
                                                  partition */
    ngx_uint_t                       npartitions;
    ngx_str_t                        resume;   /* as given, until ready */
    unsigned                         parsed:1;
    unsigned                         earliest:1; /* from the beginning */
    unsigned                         live:1;   /* on the live stream, the
                                                  "next" offsets still
                                                  filtering what it got */
} ngx_gravitee_kafka_sub_t;


struct ngx_gravitee_kafka_reader_s {
    ngx_queue_t                      queue;    /* in the source's list */
    ngx_gravitee_kafka_source_t     *source;
    ngx_gravitee_kafka_handle_t     *handle;
    ngx_queue_t                      subs;     /* ngx_gravitee_kafka_sub_t */
    int64_t                         *next;     /* where it reads, per
                                                  partition */
    int64_t                         *start;
    ngx_event_t                      idle;     /* kept for a while, for the
                                                  next client to catch up */
    unsigned                         idling:1;
};


/* where a record's id, metadata and headers are made, for one message */

typedef struct {
    u_char                           id[NGX_GRAVITEE_KAFKA_TOPIC_MAX + 48];
    u_char                           b64[ngx_base64_encoded_length(
                                         NGX_GRAVITEE_KAFKA_TOPIC_MAX + 48)];
    ngx_gravitee_pair_t              meta[4];
    ngx_gravitee_pair_t             *headers;  /* ngx_alloc'd */
} ngx_gravitee_kafka_details_t;


/* a producer and its publications waiting for delivery reports */

struct ngx_gravitee_kafka_producer_s {
    ngx_queue_t                      queue;    /* the worker's producers */
    ngx_str_t                        key;      /* brokers and properties */
    ngx_gravitee_kafka_handle_t     *handle;
    ngx_gravitee_kafka_conf_t       *conf;
};


typedef struct {
    ngx_gravitee_pub_t              *pub;      /* NULL: cancelled, or
                                                  answered by the timer */
    ngx_gravitee_message_t          *msg;      /* its bytes are librdkafka's
                                                  until the last report */
    ngx_gravitee_kafka_handle_t     *handle;
    ngx_uint_t                       pending;  /* records without report */
    ngx_event_t                      timer;    /* publish_timeout */
    rd_kafka_resp_err_t              err;
    unsigned                         up:1;     /* a broker was up when it
                                                  was made */
} ngx_gravitee_kafka_pub_t;


/* what a request gives the producer: a key and topics from variables */

typedef struct {
    ngx_str_t                        key;
    ngx_uint_t                       ntopics;
    ngx_str_t                        topics[1];
} ngx_gravitee_kafka_bind_t;


typedef struct {
    void                          *(*run)(void *data);
    void                            *arg;
} ngx_gravitee_kafka_run_t;


/* work for a thread of ours: metadata and watermarks, or the end */

typedef struct {
    ngx_gravitee_task_t              task;
    ngx_gravitee_kafka_handle_t     *handle;
    ngx_gravitee_kafka_source_t     *source;
    ngx_uint_t                       generation;

    /* in */
    char                           **names;    /* NULL: all, for pattern */
    ngx_uint_t                       nnames;
    regex_t                         *pattern;

    /* out */
    rd_kafka_resp_err_t              err;
    ngx_gravitee_kafka_parts_t       parts;
    int64_t                         *high;     /* each partition's end */
} ngx_gravitee_kafka_job_t;


static void *ngx_gravitee_kafka_create_loc_conf(ngx_conf_t *cf);
static char *ngx_gravitee_kafka_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_gravitee_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static void *ngx_gravitee_kafka_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_kafka_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_gravitee_kafka_param_consumer(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);
static char *ngx_gravitee_kafka_param_reset(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);
static char *ngx_gravitee_kafka_param_compression(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf);
static char *ngx_gravitee_kafka_compile(ngx_conf_t *cf,
    ngx_gravitee_kafka_conf_t *kcf);
static char *ngx_gravitee_kafka_finish_conf(ngx_conf_t *cf,
    ngx_gravitee_kafka_conf_t *kcf);
static rd_kafka_conf_t *ngx_gravitee_kafka_rdconf(
    ngx_gravitee_kafka_conf_t *kcf, ngx_uint_t producer, char *errstr,
    size_t size);
static ngx_int_t ngx_gravitee_kafka_valid_topic(ngx_str_t *name);

static ngx_int_t ngx_gravitee_kafka_check_position(void *conf,
    ngx_str_t *pos, ngx_pool_t *pool, ngx_str_t *error);
static ngx_int_t ngx_gravitee_kafka_subscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static void ngx_gravitee_kafka_unsubscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_kafka_position(void *conf,
    ngx_gravitee_sub_t *sub, ngx_pool_t *pool, ngx_str_t *pos);
static ngx_int_t ngx_gravitee_kafka_cursor(void *conf, ngx_str_t *pos,
    ngx_pool_t *pool, ngx_str_t *cursor);
static ngx_int_t ngx_gravitee_kafka_bind(void *conf, ngx_http_request_t *r,
    ngx_uint_t what, void **binding, ngx_str_t *error);
static void ngx_gravitee_kafka_unbind(void *conf, void *binding);
static ngx_int_t ngx_gravitee_kafka_publish(void *conf,
    ngx_gravitee_pub_t *pub);
static void ngx_gravitee_kafka_cancel(void *conf, ngx_gravitee_pub_t *pub);
static void ngx_gravitee_kafka_exit_process(ngx_cycle_t *cycle, void *conf);
static void ngx_gravitee_kafka_pin(ngx_log_t *log);

static ngx_int_t ngx_gravitee_kafka_source_start(ngx_gravitee_source_t *src);
static void ngx_gravitee_kafka_source_stop(ngx_gravitee_source_t *src);
static ngx_uint_t ngx_gravitee_kafka_accept(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg);
static ngx_int_t ngx_gravitee_kafka_start_job(
    ngx_gravitee_kafka_source_t *ks);
static void ngx_gravitee_kafka_retry(ngx_event_t *ev);
static void *ngx_gravitee_kafka_job_thread(void *data);
static rd_kafka_resp_err_t ngx_gravitee_kafka_job_ends(
    ngx_gravitee_kafka_job_t *job);
static void ngx_gravitee_kafka_job_done(void *data);
static void ngx_gravitee_kafka_job_free(ngx_gravitee_kafka_job_t *job);
static void ngx_gravitee_kafka_parts_free(ngx_gravitee_kafka_parts_t *parts);
static ngx_int_t ngx_gravitee_kafka_ready(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_job_t *job);
static ngx_int_t ngx_gravitee_kafka_grow(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_job_t *job);
static ngx_int_t ngx_gravitee_kafka_consume(ngx_gravitee_kafka_handle_t *h,
    ngx_gravitee_kafka_parts_t *parts, int64_t *from, ngx_uint_t first);
static void ngx_gravitee_kafka_live_records(ngx_gravitee_kafka_handle_t *h,
    rd_kafka_message_t **rkm, size_t n);
static ngx_int_t ngx_gravitee_kafka_index(ngx_gravitee_kafka_parts_t *parts,
    ngx_gravitee_kafka_handle_t *h,
    rd_kafka_message_t *rkm, ngx_uint_t *index);
static ngx_gravitee_message_t *ngx_gravitee_kafka_take(
    ngx_gravitee_kafka_handle_t *h, ngx_gravitee_kafka_source_t *ks,
    rd_kafka_message_t *rkm, ngx_str_t *position, ngx_uint_t skips,
    ngx_gravitee_message_t *lent, ngx_gravitee_kafka_details_t *d);
static void ngx_gravitee_kafka_give_back(ngx_gravitee_message_t *msg,
    ngx_gravitee_message_t *lent, rd_kafka_message_t *rkm,
    ngx_gravitee_kafka_details_t *d, ngx_log_t *log);
static ngx_int_t ngx_gravitee_kafka_init(ngx_gravitee_kafka_conf_t *kcf,
    rd_kafka_message_t *rkm, ngx_str_t *position, ngx_uint_t skips,
    ngx_gravitee_message_init_t *init, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log);
static ngx_int_t ngx_gravitee_kafka_lend(ngx_gravitee_message_t *lent,
    ngx_gravitee_kafka_conf_t *kcf, rd_kafka_message_t *rkm,
    ngx_str_t *position, ngx_uint_t skips, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log);
static void ngx_gravitee_kafka_unlend(ngx_gravitee_message_t *lent,
    rd_kafka_message_t *rkm, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log);
static ngx_gravitee_message_t *ngx_gravitee_kafka_message(
    ngx_gravitee_kafka_handle_t *h, ngx_gravitee_kafka_conf_t *kcf,
    rd_kafka_message_t *rkm, ngx_str_t *position, ngx_uint_t skips,
    ngx_log_t *log);
static void ngx_gravitee_kafka_id(ngx_gravitee_kafka_conf_t *kcf,
    rd_kafka_message_t *rkm, ngx_gravitee_message_init_t *init,
    ngx_gravitee_kafka_details_t *d, ngx_uint_t skips);
static ngx_int_t ngx_gravitee_kafka_headers(rd_kafka_message_t *rkm,
    ngx_gravitee_message_init_t *init, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log);
static ngx_uint_t ngx_gravitee_kafka_reader_skips(
    ngx_gravitee_kafka_reader_t *rd, ngx_uint_t *borrows);
static void ngx_gravitee_kafka_release(void *data);
static void ngx_gravitee_kafka_record_error(ngx_gravitee_kafka_source_t *ks,
    rd_kafka_message_t *rkm, const char *who);

static ngx_int_t ngx_gravitee_kafka_sub_place(
    ngx_gravitee_kafka_source_t *ks, ngx_gravitee_sub_t *sub);
static ngx_gravitee_kafka_sub_t *ngx_gravitee_kafka_sub_state(
    ngx_gravitee_sub_t *sub, ngx_uint_t n);
static void ngx_gravitee_kafka_sub_free(ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_kafka_parse(ngx_gravitee_kafka_conf_t *kcf,
    ngx_str_t *pos, ngx_gravitee_kafka_parts_t *parts, int64_t *next,
    ngx_str_t *error, ngx_pool_t *pool);
static ngx_int_t ngx_gravitee_kafka_render(ngx_gravitee_kafka_parts_t *parts,
    int64_t *next, ngx_str_t *out, ngx_str_t *buf, size_t *size);
static ngx_int_t ngx_gravitee_kafka_text(ngx_gravitee_kafka_parts_t *parts,
    int64_t *next, ngx_gravitee_kafka_text_t *text, ngx_str_t *out);
static ngx_int_t ngx_gravitee_kafka_text_one(
    ngx_gravitee_kafka_parts_t *parts, int64_t *next,
    ngx_gravitee_kafka_text_t *text, ngx_uint_t k, u_char *raw);
static u_char *ngx_gravitee_kafka_raw_write(ngx_gravitee_kafka_parts_t *parts,
    int64_t *next, u_char *raw, u_char *p, ngx_uint_t from,
    ngx_gravitee_kafka_text_t *text);
static ngx_int_t ngx_gravitee_kafka_text_init(
    ngx_gravitee_kafka_parts_t *parts, ngx_gravitee_kafka_text_t *text);
static void ngx_gravitee_kafka_text_free(ngx_gravitee_kafka_text_t *text);
static size_t ngx_gravitee_kafka_raw_len(ngx_gravitee_kafka_parts_t *parts);
static ngx_int_t ngx_gravitee_kafka_decode(ngx_str_t *pos, ngx_str_t *raw,
    ngx_pool_t *pool);

static void ngx_gravitee_kafka_catch_up(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_sub_t *ksub);
static ngx_gravitee_kafka_reader_t *ngx_gravitee_kafka_reader_new(
    ngx_gravitee_kafka_source_t *ks, int64_t *from);
static void ngx_gravitee_kafka_reader_records(ngx_gravitee_kafka_handle_t *h,
    rd_kafka_message_t **rkm, size_t n);
static void ngx_gravitee_kafka_reader_check(ngx_gravitee_kafka_reader_t *rd);
static void ngx_gravitee_kafka_reader_retire(ngx_gravitee_kafka_reader_t *rd);
static ngx_int_t ngx_gravitee_kafka_reader_reuse(
    ngx_gravitee_kafka_reader_t *rd, int64_t *from);
static u_char *ngx_gravitee_kafka_decimal(u_char *p, int64_t v);
static void ngx_gravitee_kafka_handle_hold(ngx_event_t *ev);
static ngx_uint_t ngx_gravitee_kafka_reader_room(
    ngx_gravitee_kafka_handle_t *h);
static void ngx_gravitee_kafka_nudge(ngx_gravitee_kafka_reader_t *rd,
    ngx_log_t *log);
static void *ngx_gravitee_kafka_nudge_thread(void *data);
static void ngx_gravitee_kafka_nudge_done(void *data);
static void ngx_gravitee_kafka_reader_expire(ngx_event_t *ev);
static void ngx_gravitee_kafka_reader_free(ngx_gravitee_kafka_reader_t *rd);
static void ngx_gravitee_kafka_serve_waiting(ngx_gravitee_kafka_source_t *ks);
static void ngx_gravitee_kafka_go_live(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_sub_t *ksub);

static ngx_gravitee_kafka_handle_t *ngx_gravitee_kafka_handle_new(
    ngx_gravitee_kafka_conf_t *kcf, ngx_uint_t producer, void *owner,
    ngx_uint_t reader, ngx_log_t *log);
static ngx_int_t ngx_gravitee_kafka_reader_conf(rd_kafka_conf_t *rdconf,
    ngx_uint_t partitions, char *errstr, size_t size);
static void ngx_gravitee_kafka_handle_wake(void *data);
static void ngx_gravitee_kafka_handle_unref(ngx_gravitee_kafka_handle_t *h);
static void ngx_gravitee_kafka_handle_drop(ngx_event_t *ev);
static void *ngx_gravitee_kafka_destroy_thread(void *data);
static ngx_int_t ngx_gravitee_kafka_thread(void *(*run)(void *), void *data,
    ngx_log_t *log);
static void *ngx_gravitee_kafka_thread_main(void *data);
static void ngx_gravitee_kafka_log_cb(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void ngx_gravitee_kafka_error_cb(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static int ngx_gravitee_kafka_stats_cb(rd_kafka_t *rk, char *json,
    size_t len, void *opaque);
static void ngx_gravitee_kafka_state(ngx_gravitee_kafka_handle_t *h,
    ngx_uint_t up);

static ngx_gravitee_kafka_producer_t *ngx_gravitee_kafka_producer(
    ngx_gravitee_kafka_conf_t *kcf, ngx_log_t *log);
static ngx_int_t ngx_gravitee_kafka_produce(ngx_gravitee_kafka_conf_t *kcf,
    ngx_gravitee_kafka_pub_t *kp, ngx_str_t *topic, ngx_str_t *key);
static void ngx_gravitee_kafka_dr_cb(rd_kafka_t *rk,
    const rd_kafka_message_t *rkm, void *opaque);
static void ngx_gravitee_kafka_pub_timeout(ngx_event_t *ev);
static void ngx_gravitee_kafka_pub_outcome(ngx_gravitee_kafka_pub_t *kp,
    rd_kafka_resp_err_t err, ngx_uint_t timed_out);
static void ngx_gravitee_kafka_pub_free(ngx_gravitee_kafka_pub_t *kp);


static ngx_conf_enum_t  ngx_gravitee_kafka_compressions[] = {
    { ngx_string("none"), 0 },
    { ngx_string("gzip"), 1 },
    { ngx_string("snappy"), 2 },
    { ngx_string("lz4"), 3 },
    { ngx_string("zstd"), 4 },
    { ngx_null_string, 0 }
};


static ngx_gravitee_param_t  ngx_gravitee_kafka_params[] = {

    { ngx_string("bootstrap_servers"),
      ngx_gravitee_param_str,
      offsetof(ngx_gravitee_kafka_conf_t, bootstrap),
      NULL },

    { ngx_string("topics"),
      ngx_gravitee_param_list,
      offsetof(ngx_gravitee_kafka_conf_t, topics),
      NULL },

    { ngx_string("topic_pattern"),
      ngx_gravitee_param_str,
      offsetof(ngx_gravitee_kafka_conf_t, topic_pattern),
      NULL },

    { ngx_string("consumer"),
      ngx_gravitee_kafka_param_consumer,
      offsetof(ngx_gravitee_kafka_conf_t, consumer),
      NULL },

    { ngx_string("producer"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_kafka_conf_t, producer),
      NULL },

    { ngx_string("produce_topics"),
      ngx_gravitee_param_list,
      offsetof(ngx_gravitee_kafka_conf_t, produce_topics),
      NULL },

    { ngx_string("auto_offset_reset"),
      ngx_gravitee_kafka_param_reset,
      offsetof(ngx_gravitee_kafka_conf_t, auto_offset_reset),
      NULL },

    { ngx_string("key"),
      ngx_gravitee_param_str,
      offsetof(ngx_gravitee_kafka_conf_t, key),
      NULL },

    { ngx_string("encode_message_id"),
      ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_kafka_conf_t, encode_message_id),
      NULL },

    { ngx_string("compression"),
      ngx_gravitee_kafka_param_compression,
      offsetof(ngx_gravitee_kafka_conf_t, compression),
      NULL },

    { ngx_string("publish_timeout"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_kafka_conf_t, publish_timeout),
      NULL },

    { ngx_string("consumer_linger"),
      ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_kafka_conf_t, linger),
      NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_endpoint_t  ngx_gravitee_kafka_endpoint = {
    ngx_string("kafka"),
    ngx_gravitee_kafka_params,
    NGX_GRAVITEE_KAFKA_POSITION_MAX,
    ngx_gravitee_kafka_check_position,
    ngx_gravitee_kafka_create_conf,
    ngx_gravitee_kafka_init_conf,
    ngx_gravitee_kafka_subscribe,
    ngx_gravitee_kafka_unsubscribe,
    ngx_gravitee_kafka_position,
    ngx_gravitee_kafka_bind,
    ngx_gravitee_kafka_unbind,
    ngx_gravitee_kafka_publish,
    ngx_gravitee_kafka_cancel,
    NULL,
    ngx_gravitee_kafka_exit_process,
    ngx_gravitee_kafka_cursor
};


static ngx_gravitee_source_ops_t  ngx_gravitee_kafka_source_ops = {
    ngx_gravitee_kafka_source_start,
    ngx_gravitee_kafka_source_stop,
    ngx_gravitee_kafka_accept,
    NULL,
    NULL
};


static ngx_command_t  ngx_gravitee_kafka_commands[] = {

    { ngx_string("message_proxy_kafka_property"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_gravitee_kafka_property,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_gravitee_kafka_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_gravitee_kafka_create_loc_conf,    /* create location configuration */
    ngx_gravitee_kafka_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_gravitee_kafka_module = {
    NGX_MODULE_V1,
    &ngx_gravitee_kafka_module_ctx,        /* module context */
    ngx_gravitee_kafka_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* threads of ours still running: the worker's exit waits for them */
static ngx_uint_t  ngx_gravitee_kafka_threads;
static pthread_mutex_t  ngx_gravitee_kafka_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  ngx_gravitee_kafka_done = PTHREAD_COND_INITIALIZER;

static ngx_uint_t  ngx_gravitee_kafka_handles;   /* a client.id apart */
static ngx_uint_t  ngx_gravitee_kafka_exiting;
static pthread_t   ngx_gravitee_kafka_loop;     /* the event loop's thread */

static ngx_queue_t  ngx_gravitee_kafka_producers;
static ngx_queue_t  ngx_gravitee_kafka_all = {
    &ngx_gravitee_kafka_all, &ngx_gravitee_kafka_all
};


/* configuration */

static void *
ngx_gravitee_kafka_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_kafka_loc_conf_t));
}


/*
 * After the whole location is read: its properties, wherever they stand,
 * go to its Kafka endpoint, and what the endpoint is shared by is known.
 */

static char *
ngx_gravitee_kafka_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_gravitee_kafka_loc_conf_t *conf = child;

    ngx_gravitee_loc_conf_t  *glcf;

    glcf = ngx_http_conf_get_module_loc_conf(cf, ngx_gravitee_module);

    if (glcf->endpoint != &ngx_gravitee_kafka_endpoint) {
        if (conf->properties) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"message_proxy_kafka_property\" in location "
                          "\"%V\" that has no kafka endpoint",
                          &glcf->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    return ngx_gravitee_kafka_finish_conf(cf, glcf->endpoint_conf);
}


/* librdkafka checks the property now: nginx -t names the line */

static char *
ngx_gravitee_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_gravitee_kafka_loc_conf_t *klcf = conf;

    char                  errstr[512];
    ngx_str_t            *value;
    rd_kafka_conf_t      *rdconf;
    rd_kafka_conf_res_t   res;
    ngx_gravitee_pair_t  *pair;

    value = cf->args->elts;

    if (klcf->properties == NULL) {
        klcf->properties = ngx_array_create(cf->pool, 4,
                                            sizeof(ngx_gravitee_pair_t));
        if (klcf->properties == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rdconf = rd_kafka_conf_new();
    res = rd_kafka_conf_set(rdconf, (char *) value[1].data,
                            (char *) value[2].data, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(rdconf);

    if (res != RD_KAFKA_CONF_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "librdkafka refuses property \"%V\": %s",
                           &value[1], errstr);
        return NGX_CONF_ERROR;
    }

    pair = ngx_array_push(klcf->properties);
    if (pair == NULL) {
        return NGX_CONF_ERROR;
    }

    pair->name = value[1];
    pair->value = value[2];

    return NGX_CONF_OK;
}


static void *
ngx_gravitee_kafka_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_kafka_conf_t  *kcf;

    kcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_kafka_conf_t));
    if (kcf == NULL) {
        return NULL;
    }

    kcf->consumer = NGX_CONF_UNSET_UINT;
    kcf->producer = NGX_CONF_UNSET;
    kcf->auto_offset_reset = NGX_CONF_UNSET_UINT;
    kcf->encode_message_id = NGX_CONF_UNSET;
    kcf->compression = NGX_CONF_UNSET_UINT;
    kcf->publish_timeout = NGX_CONF_UNSET_MSEC;
    kcf->linger = NGX_CONF_UNSET_MSEC;

    return kcf;
}


static char *
ngx_gravitee_kafka_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    ngx_uint_t   i;
    ngx_str_t   *t;

    ngx_conf_init_uint_value(kcf->consumer, 1);
    ngx_conf_init_value(kcf->producer, 1);
    ngx_conf_init_uint_value(kcf->auto_offset_reset,
                             NGX_GRAVITEE_KAFKA_LATEST);
    ngx_conf_init_value(kcf->encode_message_id, 1);
    ngx_conf_init_uint_value(kcf->compression, 0);
    ngx_conf_init_msec_value(kcf->publish_timeout, 30000);

    /* a poller that comes back finds the consumer still there */
    ngx_conf_init_msec_value(kcf->linger, 30000);

    if (kcf->bootstrap.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "endpoint \"kafka\" needs bootstrap_servers=");
        return NGX_CONF_ERROR;
    }

    if ((kcf->topics == NULL) == (kcf->topic_pattern.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "endpoint \"kafka\" needs either topics= or "
                           "topic_pattern=");
        return NGX_CONF_ERROR;
    }

    if (kcf->topics) {
        t = kcf->topics->elts;

        for (i = 0; i < kcf->topics->nelts; i++) {
            if (ngx_gravitee_kafka_valid_topic(&t[i]) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" is not a valid Kafka topic name",
                                   &t[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (kcf->topic_pattern.len && kcf->produce_topics == NULL
        && kcf->producer)
    {
        /* a pattern names no topic to produce to */
        kcf->producer = 0;
    }

    if (kcf->publish_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"publish_timeout\" of endpoint "
                           "\"kafka\" must be at least 1ms");
        return NGX_CONF_ERROR;
    }

    return ngx_gravitee_kafka_compile(cf, kcf);
}


static char *
ngx_gravitee_kafka_param_consumer(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_uint_t  *np;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    if (value->len == 6 && ngx_strncmp(value->data, "shared", 6) == 0) {
        *np = 1;

    } else if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        *np = 0;

    } else {
        return "must be \"shared\" or \"off\"";
    }

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_kafka_param_reset(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_uint_t  *np;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    if (value->len == 6 && ngx_strncmp(value->data, "latest", 6) == 0) {
        *np = NGX_GRAVITEE_KAFKA_LATEST;

    } else if (value->len == 8
               && ngx_strncmp(value->data, "earliest", 8) == 0)
    {
        *np = NGX_GRAVITEE_KAFKA_EARLIEST;

    } else {
        return "must be \"latest\" or \"earliest\"";
    }

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_kafka_param_compression(ngx_conf_t *cf,
    ngx_gravitee_param_t *param, ngx_str_t *value, void *conf)
{
    ngx_uint_t        *np;
    ngx_conf_enum_t   *e;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    for (e = ngx_gravitee_kafka_compressions; e->name.len; e++) {
        if (e->name.len == value->len
            && ngx_strncmp(e->name.data, value->data, value->len) == 0)
        {
            *np = e->value;
            return NGX_CONF_OK;
        }
    }

    return "must be \"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\"";
}


/* key= and produce_topics= may hold variables: computed per request */

static char *
ngx_gravitee_kafka_compile(ngx_conf_t *cf, ngx_gravitee_kafka_conf_t *kcf)
{
    ngx_str_t                         *t, *src;
    ngx_uint_t                         i, n;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (kcf->key.len) {
        kcf->key_cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (kcf->key_cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &kcf->key;
        ccv.complex_value = kcf->key_cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    src = kcf->produce_topics ? kcf->produce_topics->elts
                              : (kcf->topics ? kcf->topics->elts : NULL);
    n = kcf->produce_topics ? kcf->produce_topics->nelts
                            : (kcf->topics ? kcf->topics->nelts : 0);

    kcf->produce_cv = ngx_array_create(cf->pool, ngx_max(n, 1),
                                       sizeof(ngx_http_complex_value_t));
    if (kcf->produce_cv == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        t = &src[i];

        cv = ngx_array_push(kcf->produce_cv);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = t;
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        if (cv->lengths == NULL
            && ngx_gravitee_kafka_valid_topic(&cv->value) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is not a valid Kafka topic name", t);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * With the location's properties: librdkafka checks the whole consumer
 * and producer configurations now (nginx -t fails with its message), and
 * the keys that sources and producers are shared by are made: the
 * brokers, the topics and every property.
 */

static char *
ngx_gravitee_kafka_finish_conf(ngx_conf_t *cf, ngx_gravitee_kafka_conf_t *kcf)
{
    u_char                         *p;
    char                            errstr[512];
    size_t                          len;
    ngx_str_t                      *t;
    ngx_uint_t                      i;
    rd_kafka_conf_t                *rdconf;
    ngx_gravitee_pair_t            *pr;
    ngx_gravitee_kafka_loc_conf_t  *klcf;

    klcf = ngx_http_conf_get_module_loc_conf(cf, ngx_gravitee_kafka_module);
    kcf->properties = klcf->properties;

    t = kcf->topics ? kcf->topics->elts : NULL;
    pr = kcf->properties ? kcf->properties->elts : NULL;

    for (i = 0; i < 2; i++) {
        rdconf = ngx_gravitee_kafka_rdconf(kcf, i, errstr, sizeof(errstr));

        if (rdconf == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "kafka endpoint of location: librdkafka refuses "
                          "the %s configuration: %s",
                          i ? "producer" : "consumer", errstr);
            return NGX_CONF_ERROR;
        }

        rd_kafka_conf_destroy(rdconf);
    }

    len = kcf->bootstrap.len + 1 + kcf->topic_pattern.len + 1;

    if (kcf->topics) {
        for (i = 0; i < kcf->topics->nelts; i++) {
            len += t[i].len + 1;
        }
    }

    if (kcf->properties) {
        for (i = 0; i < kcf->properties->nelts; i++) {
            len += pr[i].name.len + pr[i].value.len + 2;
        }
    }

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    kcf->producer_key.data = p;
    p = ngx_sprintf(p, "%V\n", &kcf->bootstrap);

    if (kcf->properties) {
        for (i = 0; i < kcf->properties->nelts; i++) {
            p = ngx_sprintf(p, "%V=%V\n", &pr[i].name, &pr[i].value);
        }
    }

    kcf->producer_key.len = p - kcf->producer_key.data;

    /* the consumer's: the same, and what it reads */

    kcf->consumer_key.data = kcf->producer_key.data;

    p = ngx_sprintf(p, "%V\n", &kcf->topic_pattern);

    if (kcf->topics) {
        for (i = 0; i < kcf->topics->nelts; i++) {
            p = ngx_sprintf(p, "%V,", &t[i]);
        }
    }

    kcf->consumer_key.len = p - kcf->consumer_key.data;

    return NGX_CONF_OK;
}


/*
 * A librdkafka configuration: our defaults, then the location's
 * properties, which may override them.  NULL: errstr says why.
 */

static rd_kafka_conf_t *
ngx_gravitee_kafka_rdconf(ngx_gravitee_kafka_conf_t *kcf,
    ngx_uint_t producer, char *errstr, size_t size)
{
    char                  buf[NGX_INT_T_LEN + 1];
    ngx_uint_t            i;
    rd_kafka_conf_t      *rdconf;
    ngx_gravitee_pair_t  *pr;

    static char  *compressions[] = { "none", "gzip", "snappy", "lz4",
                                     "zstd" };

    rdconf = rd_kafka_conf_new();

    /* a parameter's value ends its word: it is NUL-terminated */

    if (rd_kafka_conf_set(rdconf, "bootstrap.servers",
                          (char *) kcf->bootstrap.data, errstr, size)
        != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    if (producer) {
        /* as the reference: no record is lost or written twice */

        if (rd_kafka_conf_set(rdconf, "acks", "all", errstr, size)
               != RD_KAFKA_CONF_OK
            || rd_kafka_conf_set(rdconf, "enable.idempotence", "true",
                                 errstr, size)
               != RD_KAFKA_CONF_OK
            /*
             * a POST or a WebSocket message waits for its delivery
             * report: librdkafka's 5 ms of batching would be added to
             * every one of them (bench/RESULTS.md, Kafka run 12)
             */
            || rd_kafka_conf_set(rdconf, "linger.ms", "1", errstr, size)
               != RD_KAFKA_CONF_OK
            || rd_kafka_conf_set(rdconf, "compression.codec",
                                 compressions[kcf->compression],
                                 errstr, size)
               != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }

        (void) ngx_sprintf((u_char *) buf, "%M%Z", kcf->publish_timeout);

        if (rd_kafka_conf_set(rdconf, "message.timeout.ms", buf, errstr,
                              size)
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }

    } else if (rd_kafka_conf_set(rdconf, "enable.partition.eof", "false",
                                 errstr, size)
                  != RD_KAFKA_CONF_OK
               /*
                * a consumer always starts at offsets it knows: one the
                * broker no longer keeps goes to the earliest kept, so that
                * nothing newer is skipped
                */
               || rd_kafka_conf_set(rdconf, "auto.offset.reset", "earliest",
                                    errstr, size)
                  != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    /* logs and statistics come to the event loop, not to stderr */

    if (rd_kafka_conf_set(rdconf, "log.queue", "true", errstr, size)
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(rdconf, "statistics.interval.ms", "1000",
                             errstr, size)
           != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    if (kcf->properties) {
        pr = kcf->properties->elts;

        for (i = 0; i < kcf->properties->nelts; i++) {
            if (rd_kafka_conf_set(rdconf, (char *) pr[i].name.data,
                                  (char *) pr[i].value.data, errstr, size)
                != RD_KAFKA_CONF_OK)
            {
                goto failed;
            }
        }
    }

    rd_kafka_conf_set_log_cb(rdconf, ngx_gravitee_kafka_log_cb);
    rd_kafka_conf_set_error_cb(rdconf, ngx_gravitee_kafka_error_cb);
    rd_kafka_conf_set_stats_cb(rdconf, ngx_gravitee_kafka_stats_cb);

    if (producer) {
        rd_kafka_conf_set_dr_msg_cb(rdconf, ngx_gravitee_kafka_dr_cb);
    }

    return rdconf;

failed:

    rd_kafka_conf_destroy(rdconf);

    return NULL;
}


/* [a-zA-Z0-9._-]{1,249}, as Kafka's own check */

static ngx_int_t
ngx_gravitee_kafka_valid_topic(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > NGX_GRAVITEE_KAFKA_TOPIC_MAX) {
        return NGX_DECLINED;
    }

    if ((name->len == 1 && name->data[0] == '.')
        || (name->len == 2 && name->data[0] == '.' && name->data[1] == '.'))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* subscription */

/*
 * Syntax only, before anything is answered: "topic@p#o[,p#o...][;...]",
 * in base64 (standard or URL-safe, padding optional) or, with
 * encode_message_id=off, as it is; every topic named must be one the
 * endpoint reads.
 */

static ngx_int_t
ngx_gravitee_kafka_check_position(void *conf, ngx_str_t *pos,
    ngx_pool_t *pool, ngx_str_t *error)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    return ngx_gravitee_kafka_parse(kcf, pos, NULL, NULL, error, pool);
}


static ngx_int_t
ngx_gravitee_kafka_subscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    ngx_int_t                     rc;
    ngx_gravitee_source_t        *src;
    ngx_gravitee_kafka_sub_t     *ksub;
    ngx_gravitee_kafka_source_t  *ks;

    if (!kcf->consumer) {
        ngx_log_error(NGX_LOG_ERR, sub->log, 0,
                      "kafka endpoint has consumer=off: nothing to "
                      "subscribe to");
        return NGX_ERROR;
    }

    src = ngx_gravitee_source_get(&ngx_gravitee_kafka_source_ops,
                                  &kcf->consumer_key,
                                  sizeof(ngx_gravitee_kafka_source_t),
                                  kcf->linger);
    if (src == NULL) {
        return NGX_ERROR;
    }

    ks = (ngx_gravitee_kafka_source_t *) src;

    if (ks->conf == NULL) {
        ks->conf = kcf;
        ngx_queue_init(&ks->readers);
        ngx_queue_init(&ks->waiting);

        ks->retry.handler = ngx_gravitee_kafka_retry;
        ks->retry.data = ks;
        ks->retry.log = src->log;
        ks->retry.cancelable = 1;
    }

    kcf->source = ks;
    sub->endpoint_data = NULL;

    /*
     * a client with a position, or one that starts from the earliest
     * record, is not on the live stream until it is caught up; the
     * position is parsed once the partitions are known
     */

    if (sub->resume.len || kcf->auto_offset_reset == NGX_GRAVITEE_KAFKA_EARLIEST)
    {
        ksub = ngx_gravitee_kafka_sub_state(sub, 0);
        if (ksub == NULL) {
            return NGX_ERROR;
        }

        ksub->earliest = (sub->resume.len == 0);

        if (sub->resume.len) {
            /* kept until the partitions are known */
            ksub->resume.data = ngx_alloc(sub->resume.len, sub->log);
            if (ksub->resume.data == NULL) {
                ngx_gravitee_kafka_sub_free(sub);
                return NGX_ERROR;
            }

            ngx_memcpy(ksub->resume.data, sub->resume.data, sub->resume.len);
            ksub->resume.len = sub->resume.len;
        }
    }

    rc = ngx_gravitee_source_subscribe(src, sub);

    if (rc != NGX_OK) {
        ngx_gravitee_kafka_sub_free(sub);
        return rc;
    }

    if (ks->down && sub->handler->state) {
        /* not from inside subscribe(): only a flag for the entrypoint */
        sub->handler->state(sub, NGX_GRAVITEE_STATE_DOWN);
    }

    if (ks->ready) {
        return ngx_gravitee_kafka_sub_place(ks, sub);
    }

    return NGX_OK;
}


static void
ngx_gravitee_kafka_unsubscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    ngx_gravitee_kafka_sub_t     *ksub;
    ngx_gravitee_kafka_reader_t  *rd;

    ksub = sub->endpoint_data;

    if (ksub) {
        rd = ksub->reader;

        if (ksub->queue.next) {
            ngx_queue_remove(&ksub->queue);
        }

        ngx_gravitee_kafka_sub_free(sub);

        if (rd && ngx_queue_empty(&rd->subs)) {
            ngx_gravitee_kafka_reader_retire(rd);
            ngx_gravitee_kafka_serve_waiting(kcf->source);
        }
    }

    ngx_gravitee_source_unsubscribe(&kcf->source->source, sub);
}


/* where a client that got nothing yet stands: an empty batch's cursor */

static ngx_int_t
ngx_gravitee_kafka_position(void *conf, ngx_gravitee_sub_t *sub,
    ngx_pool_t *pool, ngx_str_t *pos)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    size_t                        size;
    int64_t                      *next;
    ngx_str_t                     buf;
    ngx_gravitee_kafka_sub_t     *ksub;
    ngx_gravitee_kafka_source_t  *ks;

    ks = kcf->source;
    ksub = sub->endpoint_data;

    if (ks == NULL) {
        return NGX_DECLINED;
    }

    if (!ks->ready || (ksub && !ksub->parsed)) {
        if (ksub == NULL || ksub->resume.len == 0) {
            return NGX_DECLINED;
        }

        /*
         * not read yet: where it asked to be, as text, as every position
         * (checked when it came: it decodes)
         */

        if (ngx_gravitee_kafka_decode(&ksub->resume, pos, pool) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (pos->data == ksub->resume.data) {
            /* text already: the resume itself goes when it is placed */
            pos->data = ngx_pnalloc(pool, pos->len);
            if (pos->data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(pos->data, ksub->resume.data, pos->len);
        }

        return NGX_OK;
    }

    next = ksub ? ksub->next : ks->next;

    size = ngx_gravitee_kafka_raw_len(&ks->parts);
    buf.data = ngx_pnalloc(pool, size);
    if (buf.data == NULL) {
        return NGX_ERROR;
    }

    buf.len = size;

    return ngx_gravitee_kafka_render(&ks->parts, next, pos, &buf, &size);
}


/* an HTTP GET cursor: base64 of the position, as the reference's ids */

static ngx_int_t
ngx_gravitee_kafka_cursor(void *conf, ngx_str_t *pos, ngx_pool_t *pool,
    ngx_str_t *cursor)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    ngx_str_t  raw;

    if (!kcf->encode_message_id) {
        *cursor = *pos;
        return NGX_OK;
    }

    raw = *pos;

    cursor->data = ngx_pnalloc(pool, ngx_base64_encoded_length(raw.len));
    if (cursor->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64(cursor, &raw);

    return NGX_OK;
}


/*
 * The live stream's clients need no state of their own: sub->endpoint_data
 * is NULL.  Others (catching up, waiting, or just joined with offsets
 * still ahead of the live stream) get a struct and offsets per partition.
 */

static ngx_gravitee_kafka_sub_t *
ngx_gravitee_kafka_sub_state(ngx_gravitee_sub_t *sub, ngx_uint_t n)
{
    ngx_gravitee_kafka_sub_t  *ksub;

    ksub = sub->endpoint_data;

    if (ksub == NULL) {
        ksub = ngx_calloc(sizeof(ngx_gravitee_kafka_sub_t), sub->log);
        if (ksub == NULL) {
            return NULL;
        }

        ksub->sub = sub;
        sub->endpoint_data = ksub;
    }

    if (n > ksub->npartitions) {
        if (ksub->next) {
            ngx_free(ksub->next);
        }

        ksub->next = ngx_alloc(n * sizeof(int64_t), sub->log);
        if (ksub->next == NULL) {
            ksub->npartitions = 0;
            return NULL;
        }

        ksub->npartitions = n;
    }

    return ksub;
}


static void
ngx_gravitee_kafka_sub_free(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_kafka_sub_t  *ksub;

    ksub = sub->endpoint_data;

    if (ksub == NULL) {
        return;
    }

    if (ksub->next) {
        ngx_free(ksub->next);
    }

    if (ksub->resume.data) {
        ngx_free(ksub->resume.data);
    }

    ngx_free(ksub);
    sub->endpoint_data = NULL;
}


/*
 * The partitions are known: a client goes on the live stream, or is
 * caught up first.  A position that names offsets beyond the live stream
 * (a cursor from elsewhere, or from before a topic was recreated) is
 * brought back to it.
 */

static ngx_int_t
ngx_gravitee_kafka_sub_place(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_sub_t *sub)
{
    ngx_str_t                  error;
    ngx_uint_t                 i, behind;
    ngx_gravitee_kafka_sub_t  *ksub;

    ksub = sub->endpoint_data;

    if (ksub == NULL) {
        return NGX_OK;
    }

    if (ngx_gravitee_kafka_sub_state(sub, ks->parts.n) == NULL) {
        return NGX_ERROR;
    }

    /* unnamed partitions start where a client without a position does */

    for (i = 0; i < ks->parts.n; i++) {
        ksub->next[i] = ksub->earliest ? 0 : ks->next[i];
    }

    if (ksub->resume.len) {
        if (ngx_gravitee_kafka_parse(ks->conf, &ksub->resume, &ks->parts,
                                     ksub->next, &error, NULL)
            != NGX_OK)
        {
            /* checked before: a topic recreated with fewer partitions */
            ngx_log_error(NGX_LOG_WARN, sub->log, 0,
                          "kafka: resume position ignored: %V", &error);
        }

        ngx_free(ksub->resume.data);
        ngx_str_null(&ksub->resume);
    }

    ksub->parsed = 1;
    behind = 0;

    for (i = 0; i < ks->parts.n; i++) {
        if (ksub->next[i] > ks->next[i]) {
            ngx_log_error(NGX_LOG_INFO, sub->log, 0,
                          "kafka: resume offset %L is past the end of "
                          "partition %ui, resuming at %L", ksub->next[i],
                          i, ks->next[i]);
            ksub->next[i] = ks->next[i];

        } else if (ksub->next[i] < ks->next[i]) {
            behind = 1;
        }
    }

    if (!behind) {
        /* where the live stream is: nothing to catch up */
        ngx_gravitee_kafka_sub_free(sub);
        return NGX_OK;
    }

    ngx_gravitee_kafka_catch_up(ks, ksub);

    return NGX_OK;
}


/*
 * Live records go to the clients on the live stream; a client that just
 * joined it from a reader may have got some already (the reader ran
 * ahead): those it skips, until the live stream has caught up with it.
 */

static ngx_uint_t
ngx_gravitee_kafka_accept(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg)
{
    ngx_gravitee_kafka_source_t *ks = (ngx_gravitee_kafka_source_t *) src;

    size_t                     size;
    ngx_uint_t                 i, idx;
    ngx_gravitee_kafka_sub_t  *ksub;

    ksub = sub->endpoint_data;

    if (ksub == NULL) {
        return 1;
    }

    if (!ksub->live || msg->error) {
        return msg->error ? 1 : 0;
    }

    idx = ks->live_index;

    if (ks->live_offset < ksub->next[idx]) {
        return 0;
    }

    ksub->next[idx] = ks->live_offset + 1;

    for (i = 0; i < ks->parts.n; i++) {
        if (ksub->next[i] > ks->next[i]) {
            break;
        }
    }

    if (i == ks->parts.n) {
        /* met: it is one of the live stream's clients now */
        ngx_gravitee_kafka_sub_free(sub);
        return 1;
    }

    size = ks->scratch_size;

    if (ngx_gravitee_kafka_render(&ks->parts, ksub->next,
                                  &sub->position, &ks->scratch, &size)
        != NGX_OK)
    {
        ngx_str_null(&sub->position);
    }

    ks->scratch_size = size;

    return 1;
}


/* the live consumer */

static ngx_int_t
ngx_gravitee_kafka_source_start(ngx_gravitee_source_t *src)
{
    ngx_gravitee_kafka_source_t *ks = (ngx_gravitee_kafka_source_t *) src;

    ngx_gravitee_source_reset(src);

    ks->live = ngx_gravitee_kafka_handle_new(ks->conf, 0, ks, 0, src->log);
    if (ks->live == NULL) {
        return NGX_ERROR;
    }

    ks->live->records = ngx_gravitee_kafka_live_records;
    ks->generation++;
    ks->backoff = NGX_GRAVITEE_KAFKA_RETRY_MIN;

    ngx_log_error(NGX_LOG_INFO, src->log, 0,
                  "kafka consumer %p started for %V",
                  ks->live->rk, &ks->conf->bootstrap);

    /* what the partitions are and where they end: from a thread */

    if (ngx_gravitee_kafka_start_job(ks) != NGX_OK) {
        ngx_add_timer(&ks->retry, ks->backoff);
    }

    return NGX_OK;
}


static void
ngx_gravitee_kafka_source_stop(ngx_gravitee_source_t *src)
{
    ngx_gravitee_kafka_source_t *ks = (ngx_gravitee_kafka_source_t *) src;

    ngx_queue_t                  *q;
    ngx_gravitee_kafka_reader_t  *rd;

    ngx_log_error(NGX_LOG_INFO, src->log, 0,
                  "kafka consumer %p stopped: no subscriber left",
                  ks->live ? ks->live->rk : NULL);

    while (!ngx_queue_empty(&ks->readers)) {
        q = ngx_queue_head(&ks->readers);
        rd = ngx_queue_data(q, ngx_gravitee_kafka_reader_t, queue);
        ngx_gravitee_kafka_reader_free(rd);
    }

    if (ks->retry.timer_set) {
        ngx_del_timer(&ks->retry);
    }

    if (ks->live) {
        ks->live->owner = NULL;
        ngx_gravitee_kafka_handle_unref(ks->live);
        ks->live = NULL;
    }

    /* a job still out finds the generation changed, and drops its result */
    ks->generation++;
    ks->ready = 0;
    ks->starting = 0;
    ks->down = 0;

    if (ks->next) {
        ngx_free(ks->next);
        ks->next = NULL;
    }

    ngx_gravitee_kafka_parts_free(&ks->parts);

    ngx_gravitee_kafka_text_free(&ks->step);
    ngx_gravitee_kafka_text_free(&ks->live_text);

    if (ks->scratch.data) {
        ngx_free(ks->scratch.data);
        ngx_str_null(&ks->scratch);
        ks->scratch_size = 0;
    }
}


static void
ngx_gravitee_kafka_retry(ngx_event_t *ev)
{
    ngx_gravitee_kafka_source_t *ks = ev->data;

    if (ks->live == NULL || ks->starting) {
        return;
    }

    if (ngx_gravitee_kafka_start_job(ks) != NGX_OK) {
        ngx_add_timer(&ks->retry, ks->backoff);
    }
}


static ngx_int_t
ngx_gravitee_kafka_start_job(ngx_gravitee_kafka_source_t *ks)
{
    ngx_str_t                 *t;
    ngx_uint_t                 i;
    ngx_gravitee_kafka_job_t  *job;
    ngx_gravitee_kafka_conf_t *kcf;

    kcf = ks->conf;

    job = ngx_calloc(sizeof(ngx_gravitee_kafka_job_t), ks->source.log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->task.handler = ngx_gravitee_kafka_job_done;
    job->task.data = job;
    job->handle = ks->live;
    job->source = ks;
    job->generation = ks->generation;

    if (kcf->topics) {
        t = kcf->topics->elts;
        job->nnames = kcf->topics->nelts;

        job->names = ngx_calloc(job->nnames * sizeof(char *), ks->source.log);
        if (job->names == NULL) {
            goto failed;
        }

        for (i = 0; i < job->nnames; i++) {
            job->names[i] = ngx_alloc(t[i].len + 1, ks->source.log);
            if (job->names[i] == NULL) {
                goto failed;
            }

            (void) ngx_cpystrn((u_char *) job->names[i], t[i].data,
                               t[i].len + 1);
        }

    } else {
        job->pattern = ngx_alloc(sizeof(regex_t), ks->source.log);
        if (job->pattern == NULL) {
            goto failed;
        }

        /* checked at configuration: it compiles */
        if (regcomp(job->pattern, (char *) kcf->topic_pattern.data,
                    REG_EXTENDED | REG_NOSUB)
            != 0)
        {
            ngx_free(job->pattern);
            job->pattern = NULL;
            goto failed;
        }
    }

    ks->live->refs++;

    if (ngx_gravitee_kafka_thread(ngx_gravitee_kafka_job_thread, job,
                                  ks->source.log)
        != NGX_OK)
    {
        ks->live->refs--;
        goto failed;
    }

    ks->starting = 1;

    return NGX_OK;

failed:

    job->handle = NULL;
    ngx_gravitee_kafka_job_free(job);

    return NGX_ERROR;
}


/*
 * On a thread of ours: what may block on the network.  The topics'
 * partitions, and where each one starts and ends.  Nothing of NGINX is
 * touched here: the result goes back to the event loop as a task.
 */

static void *
ngx_gravitee_kafka_job_thread(void *data)
{
    ngx_gravitee_kafka_job_t *job = data;

    int                                   i, all;
    ngx_uint_t                            n, k, t;
    rd_kafka_t                           *rk;
    rd_kafka_topic_t                     *rkt;
    rd_kafka_resp_err_t                   err;
    const struct rd_kafka_metadata       *md;
    const struct rd_kafka_metadata_topic *mt;

    rk = job->handle->rk;
    all = (job->names == NULL);
    n = all ? 1 : job->nnames;

    job->parts.topics = calloc(1, sizeof(ngx_gravitee_kafka_topic_t));

    for (t = 0; t < n && job->parts.topics; t++) {
        rkt = all ? NULL : rd_kafka_topic_new(rk, job->names[t], NULL);

        err = rd_kafka_metadata(rk, all, rkt, &md,
                                NGX_GRAVITEE_KAFKA_META_TIMEOUT);

        if (rkt) {
            rd_kafka_topic_destroy(rkt);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            job->err = err;
            goto done;
        }

        for (i = 0; i < md->topic_cnt; i++) {
            mt = &md->topics[i];

            if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR
                || mt->partition_cnt <= 0
                || (all && regexec(job->pattern, mt->topic, 0, NULL, 0)
                           != 0)
                || (all && mt->topic[0] == '_'))
            {
                /* missing for now: looked at again at the next refresh */
                continue;
            }

            k = job->parts.ntopics;

            job->parts.topics = realloc(job->parts.topics,
                                    (k + 1) * sizeof(ngx_gravitee_kafka_topic_t));
            if (job->parts.topics == NULL) {
                rd_kafka_metadata_destroy(md);
                goto done;
            }

            job->parts.topics[k].name = strdup(mt->topic);
            job->parts.topics[k].first = job->parts.n;
            job->parts.topics[k].npartitions = mt->partition_cnt;
            job->parts.ntopics++;
            job->parts.n += mt->partition_cnt;
        }

        rd_kafka_metadata_destroy(md);
    }

    if (job->parts.topics == NULL) {
        job->err = RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE;
        goto done;
    }

    job->err = ngx_gravitee_kafka_job_ends(job);

done:

    if (ngx_gravitee_thread_post(&job->task) != NGX_OK) {
        /* the worker is gone: nobody will read it */
        ngx_gravitee_kafka_job_free(job);
    }

    return NULL;
}


/*
 * Where every partition ends: one ListOffsets request per leader for all
 * of its partitions, not a round trip per partition, which would make a
 * start over a hundred partitions of a distant cluster last seconds.
 */

static rd_kafka_resp_err_t
ngx_gravitee_kafka_job_ends(ngx_gravitee_kafka_job_t *job)
{
    int                               i;
    int32_t                           p;
    ngx_uint_t                        t;
    rd_kafka_resp_err_t               err;
    ngx_gravitee_kafka_topic_t       *topic;
    rd_kafka_topic_partition_list_t  *list;

    job->high = calloc(job->parts.n + 1, sizeof(int64_t));
    list = rd_kafka_topic_partition_list_new((int) job->parts.n);

    if (job->high == NULL || list == NULL) {
        err = RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE;
        goto done;
    }

    if (job->parts.n == 0) {
        err = RD_KAFKA_RESP_ERR_NO_ERROR;
        goto done;
    }

    /* in the list's order, as job->high: topic after topic */

    for (t = 0; t < job->parts.ntopics; t++) {
        topic = &job->parts.topics[t];

        for (p = 0; p < (int32_t) topic->npartitions; p++) {
            /* "the time" RD_KAFKA_OFFSET_END (-1) asks for the end */
            rd_kafka_topic_partition_list_add(list, topic->name, p)->offset =
                RD_KAFKA_OFFSET_END;
        }
    }

    err = rd_kafka_offsets_for_times(job->handle->rk, list,
                                     NGX_GRAVITEE_KAFKA_META_TIMEOUT);

    for (i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            err = list->elems[i].err;

        } else if (list->elems[i].offset < 0) {
            /* no answer for it */
            err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;

        } else {
            job->high[i] = list->elems[i].offset;
        }
    }

done:

    if (list) {
        rd_kafka_topic_partition_list_destroy(list);
    }

    return err;
}


static void
ngx_gravitee_kafka_job_done(void *data)
{
    ngx_gravitee_kafka_job_t *job = data;

    ngx_gravitee_kafka_source_t  *ks;

    if (ngx_gravitee_kafka_exiting) {
        /* the source is gone with the worker */
        goto done;
    }

    ks = job->source;

    if (job->generation != ks->generation || ks->live == NULL) {
        /* stopped since: the result is stale */
        goto done;
    }

    ks->starting = 0;

    if (job->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ks->source.log, 0,
                      "kafka: brokers \"%V\" could not tell the partitions "
                      "of the endpoint's topics: %s, again in %Mms",
                      &ks->conf->bootstrap, rd_kafka_err2str(job->err),
                      ks->backoff);

        ngx_gravitee_kafka_state(ks->live, 0);

        ngx_add_timer(&ks->retry, ks->backoff);
        ks->backoff = ngx_min(ks->backoff * 2, NGX_GRAVITEE_KAFKA_RETRY_MAX);

        goto done;
    }

    ks->backoff = NGX_GRAVITEE_KAFKA_RETRY_MIN;

    if ((ks->ready ? ngx_gravitee_kafka_grow(ks, job)
                   : ngx_gravitee_kafka_ready(ks, job))
        != NGX_OK)
    {
        ngx_add_timer(&ks->retry, ks->backoff);
        goto done;
    }

    ngx_add_timer(&ks->retry, NGX_GRAVITEE_KAFKA_REFRESH);

done:

    ngx_gravitee_kafka_job_free(job);
}


static void
ngx_gravitee_kafka_job_free(ngx_gravitee_kafka_job_t *job)
{
    ngx_uint_t  i;

    if (job->names) {
        for (i = 0; i < job->nnames; i++) {
            free(job->names[i]);
        }

        free(job->names);
    }

    if (job->pattern) {
        regfree(job->pattern);
        free(job->pattern);
    }

    ngx_gravitee_kafka_parts_free(&job->parts);

    free(job->high);

    if (job->handle) {
        ngx_gravitee_kafka_handle_unref(job->handle);
    }

    free(job);
}


/* the thread's malloc()s: free() them */

static void
ngx_gravitee_kafka_parts_free(ngx_gravitee_kafka_parts_t *parts)
{
    ngx_uint_t  i;

    if (parts->topics) {
        for (i = 0; i < parts->ntopics; i++) {
            free(parts->topics[i].name);
        }

        free(parts->topics);
    }

    ngx_memzero(parts, sizeof(ngx_gravitee_kafka_parts_t));
}


/*
 * The first answer: the live stream starts at the end of every partition
 * ("latest"), its clients waiting so far are placed.  The parts move from
 * the job to the source.
 */

static ngx_int_t
ngx_gravitee_kafka_ready(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_job_t *job)
{
    ngx_uint_t           i;
    ngx_queue_t         *q, *next;
    ngx_gravitee_sub_t  *sub;

    ks->next = ngx_alloc((job->parts.n + 1) * sizeof(int64_t),
                         ks->source.log);
    if (ks->next == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < job->parts.n; i++) {
        ks->next[i] = job->high[i];
    }

    ks->parts = job->parts;
    ngx_memzero(&job->parts, sizeof(ngx_gravitee_kafka_parts_t));

    /* texts of other partitions, should the same memory come back */
    ngx_gravitee_kafka_text_free(&ks->live_text);
    ngx_gravitee_kafka_text_free(&ks->step);

    if (ngx_gravitee_kafka_consume(ks->live, &ks->parts, ks->next, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ks->ready = 1;

    ngx_log_error(NGX_LOG_INFO, ks->source.log, 0,
                  "kafka consumer %p reads %ui partitions of %ui topics",
                  ks->live->rk, ks->parts.n, ks->parts.ntopics);

    for (q = ngx_queue_head(&ks->source.subs);
         q != ngx_queue_sentinel(&ks->source.subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);

        if (ngx_gravitee_kafka_sub_place(ks, sub) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, sub->log, 0,
                          "kafka: a subscriber could not be placed");
        }
    }

    return NGX_OK;
}


/*
 * A refresh found more partitions (or a topic that was missing): they
 * are read from their start, everything in them came after the client.
 * Clients off the live stream get offsets for them too.  Fewer
 * partitions than before (a topic recreated) restarts nothing: it is
 * logged.
 */

static ngx_int_t
ngx_gravitee_kafka_grow(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_job_t *job)
{
    ngx_uint_t                    i, j, n, old;
    int64_t                      *next;
    ngx_queue_t                  *q;
    ngx_gravitee_sub_t           *sub;
    ngx_gravitee_kafka_parts_t    parts;
    ngx_gravitee_kafka_sub_t     *ksub;

    if (job->parts.n <= ks->parts.n) {
        if (job->parts.n < ks->parts.n) {
            ngx_log_error(NGX_LOG_WARN, ks->source.log, 0,
                          "kafka: the endpoint's topics now have %ui "
                          "partitions, not %ui", job->parts.n, ks->parts.n);
        }

        return NGX_OK;
    }

    /* the topics known keep their indexes: new ones come after */

    for (i = 0; i < ks->parts.ntopics; i++) {
        for (j = 0; j < job->parts.ntopics; j++) {
            if (ngx_strcmp(ks->parts.topics[i].name,
                           job->parts.topics[j].name) == 0)
            {
                break;
            }
        }

        if (j == job->parts.ntopics
            || job->parts.topics[j].npartitions
               != ks->parts.topics[i].npartitions)
        {
            /* partitions added to a known topic: not handled yet */
            ngx_log_error(NGX_LOG_WARN, ks->source.log, 0,
                          "kafka: topic \"%s\" changed its partitions; "
                          "new ones are read once the consumer restarts",
                          ks->parts.topics[i].name);
            return NGX_OK;
        }
    }

    n = job->parts.n;
    old = ks->parts.n;

    next = ngx_alloc((n + 1) * sizeof(int64_t), ks->source.log);
    if (next == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(next, ks->next, old * sizeof(int64_t));

    for (i = old; i < n; i++) {
        next[i] = 0;
    }

    parts.topics = ngx_alloc(job->parts.ntopics
                             * sizeof(ngx_gravitee_kafka_topic_t),
                             ks->source.log);
    if (parts.topics == NULL) {
        ngx_free(next);
        return NGX_ERROR;
    }

    ngx_memcpy(parts.topics, ks->parts.topics,
               ks->parts.ntopics * sizeof(ngx_gravitee_kafka_topic_t));

    parts.ntopics = ks->parts.ntopics;
    parts.n = old;

    for (j = 0; j < job->parts.ntopics; j++) {
        for (i = 0; i < ks->parts.ntopics; i++) {
            if (ngx_strcmp(ks->parts.topics[i].name,
                           job->parts.topics[j].name) == 0)
            {
                break;
            }
        }

        if (i < ks->parts.ntopics) {
            continue;
        }

        parts.topics[parts.ntopics].name = job->parts.topics[j].name;
        parts.topics[parts.ntopics].first = parts.n;
        parts.topics[parts.ntopics].npartitions =
                                        job->parts.topics[j].npartitions;
        parts.n += job->parts.topics[j].npartitions;
        parts.ntopics++;

        job->parts.topics[j].name = NULL;
    }

    free(ks->parts.topics);
    ngx_free(ks->next);

    ks->parts = parts;
    ks->next = next;

    ngx_gravitee_kafka_text_free(&ks->live_text);
    ngx_gravitee_kafka_text_free(&ks->step);

    for (q = ngx_queue_head(&ks->source.subs);
         q != ngx_queue_sentinel(&ks->source.subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);
        ksub = sub->endpoint_data;

        if (ksub && ksub->parsed) {
            if (ngx_gravitee_kafka_sub_state(sub, 0) == NULL) {
                continue;
            }

            /* widen its offsets: realloc keeps the known ones */
            next = ngx_alloc((n + 1) * sizeof(int64_t), sub->log);
            if (next == NULL) {
                continue;
            }

            ngx_memcpy(next, ksub->next, old * sizeof(int64_t));

            for (i = old; i < n; i++) {
                next[i] = 0;
            }

            ngx_free(ksub->next);
            ksub->next = next;
            ksub->npartitions = n;
        }
    }

    ngx_log_error(NGX_LOG_INFO, ks->source.log, 0,
                  "kafka consumer %p reads %ui partitions of %ui topics now",
                  ks->live->rk, ks->parts.n, ks->parts.ntopics);

    return ngx_gravitee_kafka_consume(ks->live, &ks->parts, ks->next, old);
}


/*
 * rd_kafka_consume_start_queue() does not wait: partitions from "first"
 * on start at the given offsets, their records to the handle's queue.
 */

static ngx_int_t
ngx_gravitee_kafka_consume(ngx_gravitee_kafka_handle_t *h,
    ngx_gravitee_kafka_parts_t *parts, int64_t *from, ngx_uint_t first)
{
    ngx_uint_t                   t, p, k;
    rd_kafka_topic_t           **rkts;
    rd_kafka_topic_conf_t       *tconf;
    ngx_gravitee_kafka_topic_t  *topic;

    if (parts->ntopics > h->nrkts) {
        rkts = ngx_calloc(parts->ntopics * sizeof(rd_kafka_topic_t *),
                          ngx_cycle->log);
        if (rkts == NULL) {
            return NGX_ERROR;
        }

        if (h->rkts) {
            ngx_memcpy(rkts, h->rkts, h->nrkts * sizeof(rd_kafka_topic_t *));
            ngx_free(h->rkts);
        }

        h->rkts = rkts;
        h->nrkts = parts->ntopics;
    }

    for (t = 0; t < parts->ntopics; t++) {
        topic = &parts->topics[t];

        if (topic->first + topic->npartitions <= first) {
            continue;
        }

        if (h->rkts[t] == NULL) {
            /* its records find their handle through the topic's opaque */
            tconf = rd_kafka_default_topic_conf_dup(h->rk);
            if (tconf == NULL) {
                return NGX_ERROR;
            }

            rd_kafka_topic_conf_set_opaque(tconf, h);

            h->rkts[t] = rd_kafka_topic_new(h->rk, topic->name, tconf);
            if (h->rkts[t] == NULL) {
                return NGX_ERROR;
            }
        }

        for (p = 0; p < topic->npartitions; p++) {
            k = topic->first + p;

            if (k < first) {
                continue;
            }

            if (rd_kafka_consume_start_queue(h->rkts[t], (int32_t) p,
                                             from[k], h->queue)
                == -1)
            {
                ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                              "kafka: reading \"%s\" [%ui] from %L failed: "
                              "%s", topic->name, p, from[k],
                              rd_kafka_err2str(rd_kafka_last_error()));
                return NGX_ERROR;
            }
        }
    }

    h->consuming = 1;

    return NGX_OK;
}


/*
 * A record of the live stream: the live position moves past it, and the
 * message, which carries that position, goes to every live client.
 */

static void
ngx_gravitee_kafka_live_records(ngx_gravitee_kafka_handle_t *h,
    rd_kafka_message_t **rkm, size_t n)
{
    size_t                         i;
    ngx_str_t                      position;
    ngx_uint_t                     idx, skips, borrows;
    ngx_gravitee_message_t        *msg, lent;
    ngx_gravitee_kafka_source_t   *ks;
    ngx_gravitee_kafka_details_t   details;

    ks = h->owner;
    skips = ngx_gravitee_source_skips(&ks->source);
    borrows = ngx_gravitee_source_borrows(&ks->source);

    for (i = 0; i < n; i++) {

        if (rkm[i]->err) {
            ngx_gravitee_kafka_record_error(ks, rkm[i], "consumer");
            rd_kafka_message_destroy(rkm[i]);
            continue;
        }

        if (ngx_gravitee_kafka_index(&ks->parts, h, rkm[i], &idx) != NGX_OK) {
            rd_kafka_message_destroy(rkm[i]);
            continue;
        }

        ks->next[idx] = rkm[i]->offset + 1;
        ks->live_index = idx;
        ks->live_offset = rkm[i]->offset;

        if (ngx_gravitee_kafka_text(&ks->parts, ks->next,
                                    &ks->live_text, &position)
            != NGX_OK)
        {
            ngx_str_null(&position);
        }

        msg = ngx_gravitee_kafka_take(h, ks, rkm[i], &position, skips,
                                      borrows ? &lent : NULL, &details);
        if (msg == NULL) {
            continue;
        }

        ngx_gravitee_source_fanout(&ks->source, msg);

        ngx_gravitee_kafka_give_back(msg, &lent, rkm[i], &details,
                                     ks->source.log);
    }
}


static ngx_int_t
ngx_gravitee_kafka_index(ngx_gravitee_kafka_parts_t *parts,
    ngx_gravitee_kafka_handle_t *h, rd_kafka_message_t *rkm,
    ngx_uint_t *index)
{
    const char  *name;
    ngx_uint_t   t;

    /* per record: the handle's own topic objects first, names if not */

    for (t = 0; t < parts->ntopics && t < h->nrkts; t++) {
        if (h->rkts[t] == rkm->rkt) {
            goto found;
        }
    }

    name = rd_kafka_topic_name(rkm->rkt);

    for (t = 0; t < parts->ntopics; t++) {
        if (ngx_strcmp(parts->topics[t].name, name) == 0) {
            goto found;
        }
    }

    return NGX_DECLINED;

found:

    if (rkm->partition < 0
        || (ngx_uint_t) rkm->partition >= parts->topics[t].npartitions)
    {
        return NGX_DECLINED;
    }

    *index = parts->topics[t].first + rkm->partition;

    return NGX_OK;
}


/*
 * One record, one message, as the reference maps it: the value is the
 * content (not copied: the message holds the record until its last
 * client is done), the record headers are headers, and the metadata are
 * key, topic, partition and offset; sourceTimestamp is the record's.  The
 * id is base64 of "topic@partition#offset".  What no client reads
 * ("skips") is left out: librdkafka allocates even to tell that a record
 * has no headers.
 */

static ngx_gravitee_message_t *
ngx_gravitee_kafka_message(ngx_gravitee_kafka_handle_t *h,
    ngx_gravitee_kafka_conf_t *kcf, rd_kafka_message_t *rkm,
    ngx_str_t *position, ngx_uint_t skips, ngx_log_t *log)
{
    ngx_gravitee_message_t        *msg;
    ngx_gravitee_message_init_t    init;
    ngx_gravitee_kafka_details_t   details;

    if (ngx_gravitee_kafka_init(kcf, rkm, position, skips, &init, &details,
                                log)
        != NGX_OK)
    {
        return NULL;
    }

    msg = ngx_gravitee_message_create(log, &init);

    if (details.headers) {
        ngx_free(details.headers);
    }

    if (msg == NULL) {
        return NULL;
    }

    /* the record is the handle's: the handle lives as long as it */

    msg->release = ngx_gravitee_kafka_release;
    msg->release_data = rkm;
    h->refs++;

    return msg;
}


/*
 * The message of a record for one turn of the handlers: lent (in "lent")
 * when every client borrows, made otherwise.  NULL: it could not be had,
 * and the record is gone.
 */

static ngx_gravitee_message_t *
ngx_gravitee_kafka_take(ngx_gravitee_kafka_handle_t *h,
    ngx_gravitee_kafka_source_t *ks, rd_kafka_message_t *rkm,
    ngx_str_t *position, ngx_uint_t skips, ngx_gravitee_message_t *lent,
    ngx_gravitee_kafka_details_t *d)
{
    ngx_gravitee_message_t  *msg;

    if (lent == NULL) {
        msg = ngx_gravitee_kafka_message(h, ks->conf, rkm, position, skips,
                                         ks->source.log);

    } else if (ngx_gravitee_kafka_lend(lent, ks->conf, rkm, position, skips,
                                       d, ks->source.log)
               == NGX_OK)
    {
        msg = lent;

    } else {
        msg = NULL;
    }

    if (msg == NULL) {
        rd_kafka_message_destroy(rkm);
    }

    return msg;
}


/* the handlers are done with the message: a lent one takes its record */

static void
ngx_gravitee_kafka_give_back(ngx_gravitee_message_t *msg,
    ngx_gravitee_message_t *lent, rd_kafka_message_t *rkm,
    ngx_gravitee_kafka_details_t *d, ngx_log_t *log)
{
    if (msg == lent) {
        ngx_gravitee_kafka_unlend(msg, rkm, d, log);
        return;
    }

    ngx_gravitee_message_unref(msg);
}


/* what a message of the record is made of, as far as it is read */

static ngx_int_t
ngx_gravitee_kafka_init(ngx_gravitee_kafka_conf_t *kcf,
    rd_kafka_message_t *rkm, ngx_str_t *position, ngx_uint_t skips,
    ngx_gravitee_message_init_t *init, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log)
{
    int64_t  ts;

    ngx_memzero(init, sizeof(ngx_gravitee_message_init_t));

    init->position = *position;
    init->content.data = rkm->payload;
    init->content.len = rkm->len;
    init->wrap_content = 1;

    ts = rd_kafka_message_timestamp(rkm, NULL);
    init->timestamp = (ts > 0) ? ts : 0;

    d->headers = NULL;

    if ((skips & (NGX_GRAVITEE_SKIP_ID|NGX_GRAVITEE_SKIP_METADATA))
        != (NGX_GRAVITEE_SKIP_ID|NGX_GRAVITEE_SKIP_METADATA))
    {
        ngx_gravitee_kafka_id(kcf, rkm, init, d, skips);
    }

    if (!(skips & NGX_GRAVITEE_SKIP_HEADERS)
        && ngx_gravitee_kafka_headers(rkm, init, d, log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A message lent for the handlers' calls only, when every client of the
 * batch borrows (handler->borrows: an HTTP GET renders it there and then):
 * no allocation and no copy, its parts point into the record and "d",
 * and the record goes when the calls are over (ngx_gravitee_kafka_unlend).
 */

static ngx_int_t
ngx_gravitee_kafka_lend(ngx_gravitee_message_t *lent,
    ngx_gravitee_kafka_conf_t *kcf, rd_kafka_message_t *rkm,
    ngx_str_t *position, ngx_uint_t skips, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log)
{
    ngx_gravitee_message_init_t  init;

    if (ngx_gravitee_kafka_init(kcf, rkm, position, skips, &init, d, log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(lent, sizeof(ngx_gravitee_message_t));

    lent->refs = 1;
    lent->id = init.id;
    lent->position = init.position;
    lent->content = init.content;
    lent->headers = init.headers;
    lent->nheaders = init.nheaders;
    lent->metadata = init.metadata;
    lent->nmetadata = init.nmetadata;
    lent->timestamp = init.timestamp ? init.timestamp : ngx_gravitee_now_ms();

    return NGX_OK;
}


static void
ngx_gravitee_kafka_unlend(ngx_gravitee_message_t *lent,
    rd_kafka_message_t *rkm, ngx_gravitee_kafka_details_t *d, ngx_log_t *log)
{
    if (lent->refs != 1) {
        /* a borrower took a reference it may not take: a bug */
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "kafka: a lent message was kept (%ui references)",
                      lent->refs);
        ngx_debug_point();
    }

    if (d->headers) {
        ngx_free(d->headers);
        d->headers = NULL;
    }

    rd_kafka_message_destroy(rkm);
}


/* the id and metadata of a record, made in "d", as far as they are read */

static void
ngx_gravitee_kafka_id(ngx_gravitee_kafka_conf_t *kcf,
    rd_kafka_message_t *rkm, ngx_gravitee_message_init_t *init,
    ngx_gravitee_kafka_details_t *d, ngx_uint_t skips)
{
    u_char               *p, *part, *off;
    size_t                i, name_len;
    ngx_str_t             raw;
    const char           *name;
    ngx_gravitee_pair_t  *meta;

    name = rd_kafka_topic_name(rkm->rkt);
    name_len = ngx_min(ngx_strlen(name), NGX_GRAVITEE_KAFKA_TOPIC_MAX);

    /*
     * topic@partition#offset, per record: without ngx_sprintf(), and the
     * metadata's partition and offset are slices of it
     */

    p = ngx_cpymem(d->id, name, name_len);
    *p++ = '@';
    part = p;
    p = ngx_gravitee_kafka_decimal(p, rkm->partition);
    *p++ = '#';
    off = p;
    p = ngx_gravitee_kafka_decimal(p, rkm->offset);

    raw.data = d->id;
    raw.len = p - d->id;

    if (skips & NGX_GRAVITEE_SKIP_ID) {
        /* the metadata only */

    } else if (kcf->encode_message_id) {
        init->id.data = d->b64;
        ngx_encode_base64(&init->id, &raw);

    } else {
        init->id = raw;
    }

    if (skips & NGX_GRAVITEE_SKIP_METADATA) {
        return;
    }

    /* metadata: key (when there is one), topic, partition, offset */

    meta = d->meta;
    i = 0;

    if (rkm->key) {
        ngx_str_set(&meta[i].name, "key");
        meta[i].value.data = rkm->key;
        meta[i].value.len = rkm->key_len;
        i++;
    }

    ngx_str_set(&meta[i].name, "topic");
    meta[i].value.data = (u_char *) name;
    meta[i].value.len = name_len;
    i++;

    ngx_str_set(&meta[i].name, "partition");
    meta[i].value.data = part;
    meta[i].value.len = off - 1 - part;
    i++;

    ngx_str_set(&meta[i].name, "offset");
    meta[i].value.data = off;
    meta[i].value.len = p - off;
    i++;

    init->metadata = meta;
    init->nmetadata = i;
}


/* the headers of a record, in d->headers (freed by the caller) */

static ngx_int_t
ngx_gravitee_kafka_headers(rd_kafka_message_t *rkm,
    ngx_gravitee_message_init_t *init, ngx_gravitee_kafka_details_t *d,
    ngx_log_t *log)
{
    size_t               nh, i, size;
    const void          *value;
    const char          *name;
    rd_kafka_headers_t  *hdrs;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NGX_OK;
    }

    nh = rd_kafka_header_cnt(hdrs);

    d->headers = ngx_alloc(nh * sizeof(ngx_gravitee_pair_t), log);
    if (d->headers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < nh; i++) {
        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size)
            != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            break;
        }

        d->headers[i].name.data = (u_char *) name;
        d->headers[i].name.len = ngx_strlen(name);
        d->headers[i].value.data = (u_char *) value;
        d->headers[i].value.len = value ? size : 0;
    }

    init->headers = d->headers;
    init->nheaders = i;

    return NGX_OK;
}


/* what every client the reader has skips of a message; whether all borrow */

static ngx_uint_t
ngx_gravitee_kafka_reader_skips(ngx_gravitee_kafka_reader_t *rd,
    ngx_uint_t *borrows)
{
    ngx_uint_t                 skips;
    ngx_queue_t               *q;
    ngx_gravitee_kafka_sub_t  *ksub;

    skips = NGX_GRAVITEE_SKIP_ALL;
    *borrows = 1;

    for (q = ngx_queue_head(&rd->subs);
         q != ngx_queue_sentinel(&rd->subs);
         q = ngx_queue_next(q))
    {
        ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);
        skips &= ksub->sub->skips;

        if (!ksub->sub->handler->borrows) {
            *borrows = 0;
        }
    }

    return skips;
}


static void
ngx_gravitee_kafka_release(void *data)
{
    rd_kafka_message_t *rkm = data;

    ngx_gravitee_kafka_handle_t  *h;

    h = rd_kafka_topic_opaque(rkm->rkt);

    rd_kafka_message_destroy(rkm);

    if (h) {
        ngx_gravitee_kafka_handle_unref(h);
    }
}


/*
 * A partition's error.  A reader whose position was older than what the
 * broker keeps starts from the earliest record kept: said once, at warn.
 */

static void
ngx_gravitee_kafka_record_error(ngx_gravitee_kafka_source_t *ks,
    rd_kafka_message_t *rkm, const char *who)
{
    ngx_uint_t  level;

    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        return;
    }

    level = (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
            ? NGX_LOG_WARN : NGX_LOG_ERR;

    ngx_log_error(level, ks->source.log, 0,
                  "kafka %s: \"%s\" [%D]: %s%s", who,
                  rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-",
                  rkm->partition, rd_kafka_message_errstr(rkm),
                  rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
                  ? " (a position older than the broker keeps: resuming "
                    "at the earliest record kept)" : "");
}


/* catching up */

/*
 * A reader that has not passed the client's position on any partition
 * takes it along: records it reads from there on are the client's.  Else
 * a new reader starts at the client's position, up to a few per source;
 * beyond them the client waits for one.
 */

static void
ngx_gravitee_kafka_catch_up(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_sub_t *ksub)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_gravitee_kafka_reader_t  *rd, *idle;

    idle = NULL;

    for (q = ngx_queue_head(&ks->readers);
         q != ngx_queue_sentinel(&ks->readers);
         q = ngx_queue_next(q))
    {
        rd = ngx_queue_data(q, ngx_gravitee_kafka_reader_t, queue);

        if (rd->idling) {
            idle = rd;
            continue;
        }

        for (i = 0; i < ks->parts.n; i++) {
            if (rd->next[i] > ksub->next[i]) {
                break;
            }
        }

        if (i == ks->parts.n) {
            ksub->reader = rd;
            ngx_queue_insert_tail(&rd->subs, &ksub->queue);
            return;
        }
    }

    /* a reader without clients is sent where this one starts */

    if (idle && ngx_gravitee_kafka_reader_reuse(idle, ksub->next) == NGX_OK) {
        ksub->reader = idle;
        ngx_queue_insert_tail(&idle->subs, &ksub->queue);
        return;
    }

    if (ks->nreaders < NGX_GRAVITEE_KAFKA_READERS) {
        rd = ngx_gravitee_kafka_reader_new(ks, ksub->next);

        if (rd) {
            ksub->reader = rd;
            ngx_queue_insert_tail(&rd->subs, &ksub->queue);
            return;
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ksub->sub->log, 0,
                   "kafka: %ui readers busy, a subscriber waits",
                   ks->nreaders);

    ksub->reader = NULL;
    ngx_queue_insert_tail(&ks->waiting, &ksub->queue);
}


static ngx_gravitee_kafka_reader_t *
ngx_gravitee_kafka_reader_new(ngx_gravitee_kafka_source_t *ks, int64_t *from)
{
    size_t                        size;
    ngx_gravitee_kafka_reader_t  *rd;

    size = sizeof(ngx_gravitee_kafka_reader_t)
           + 2 * (ks->parts.n + 1) * sizeof(int64_t);

    rd = ngx_calloc(size, ks->source.log);
    if (rd == NULL) {
        return NULL;
    }

    rd->source = ks;
    rd->next = (int64_t *) (rd + 1);
    rd->start = rd->next + ks->parts.n + 1;
    ngx_queue_init(&rd->subs);

    rd->idle.handler = ngx_gravitee_kafka_reader_expire;
    rd->idle.data = rd;
    rd->idle.log = ks->source.log;
    rd->idle.cancelable = 1;

    ngx_memcpy(rd->next, from, ks->parts.n * sizeof(int64_t));
    ngx_memcpy(rd->start, from, ks->parts.n * sizeof(int64_t));

    /* a position older than the broker keeps resumes at the earliest */

    rd->handle = ngx_gravitee_kafka_handle_new(ks->conf, 0, rd,
                                               ngx_max(ks->parts.n, 1),
                                               ks->source.log);
    if (rd->handle == NULL) {
        ngx_free(rd);
        return NULL;
    }

    rd->handle->records = ngx_gravitee_kafka_reader_records;
    rd->handle->room = ngx_gravitee_kafka_reader_room;

    if (ngx_gravitee_kafka_consume(rd->handle, &ks->parts, rd->start, 0)
        != NGX_OK)
    {
        rd->handle->owner = NULL;
        ngx_gravitee_kafka_handle_unref(rd->handle);
        ngx_free(rd);
        return NULL;
    }

    ngx_queue_insert_tail(&ks->readers, &rd->queue);
    ks->nreaders++;

    ngx_log_error(NGX_LOG_INFO, ks->source.log, 0,
                  "kafka reader %p started to catch clients up, %ui of %d",
                  rd->handle->rk, ks->nreaders, NGX_GRAVITEE_KAFKA_READERS);

    return rd;
}


/*
 * A record a reader read: each of its clients that wants it gets it, with
 * its own position.  A partition's end (EOF) says that the reader has seen
 * all of it up to there: a client wanting less is past it too.
 */

static void
ngx_gravitee_kafka_reader_records(ngx_gravitee_kafka_handle_t *h,
    rd_kafka_message_t **rkm, size_t n)
{
    size_t                         i, size;
    int64_t                        o;
    ngx_str_t                      none;
    ngx_uint_t                     idx, skips, borrows;
    ngx_queue_t                   *q, *next;
    ngx_gravitee_sub_t            *sub;
    ngx_gravitee_message_t        *msg, lent;
    ngx_gravitee_kafka_sub_t      *ksub;
    ngx_gravitee_kafka_reader_t   *rd;
    ngx_gravitee_kafka_source_t   *ks;
    ngx_gravitee_kafka_details_t   details;

    rd = h->owner;
    ks = rd->source;
    skips = ngx_gravitee_kafka_reader_skips(rd, &borrows);

    ngx_str_null(&none);

    if (rd->idling) {
        /* fetched before the pause */
        for (i = 0; i < n; i++) {
            rd_kafka_message_destroy(rkm[i]);
        }

        return;
    }

    for (i = 0; i < n; i++) {

        if (ngx_gravitee_kafka_index(&ks->parts, h, rkm[i], &idx) != NGX_OK) {
            if (rkm[i]->err) {
                ngx_gravitee_kafka_record_error(ks, rkm[i], "reader");
            }

            rd_kafka_message_destroy(rkm[i]);
            continue;
        }

        o = rkm[i]->offset;

        if (rkm[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd->next[idx] = ngx_max(rd->next[idx], o);

            for (q = ngx_queue_head(&rd->subs);
                 q != ngx_queue_sentinel(&rd->subs);
                 q = ngx_queue_next(q))
            {
                ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);
                ksub->next[idx] = ngx_max(ksub->next[idx], o);
            }

            rd_kafka_message_destroy(rkm[i]);
            continue;
        }

        if (rkm[i]->err) {
            ngx_gravitee_kafka_record_error(ks, rkm[i], "reader");
            rd_kafka_message_destroy(rkm[i]);
            continue;
        }

        if (rd->next[idx] == rd->start[idx] && o > rd->start[idx]) {
            ngx_log_error(NGX_LOG_WARN, ks->source.log, 0,
                          "kafka reader: \"%s\" [%D] resumes at offset %L, "
                          "not %L: a position older than the broker keeps "
                          "resumes at the earliest record kept",
                          rd_kafka_topic_name(rkm[i]->rkt),
                          rkm[i]->partition, o, rd->start[idx]);
        }

        rd->next[idx] = o + 1;

        msg = ngx_gravitee_kafka_take(h, ks, rkm[i], &none, skips,
                                      borrows ? &lent : NULL, &details);
        if (msg == NULL) {
            continue;
        }

        for (q = ngx_queue_head(&rd->subs);
             q != ngx_queue_sentinel(&rd->subs);
             q = next)
        {
            next = ngx_queue_next(q);
            ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);

            if (o < ksub->next[idx]) {
                continue;
            }

            ksub->next[idx] = o + 1;
            sub = ksub->sub;

            if (sub->handler->no_position || sub->handler->position_at_end) {
                /* none, or asked of position() once, at the end */
                ngx_str_null(&sub->position);

            } else if (ngx_memcmp(ksub->next, rd->next,
                                  ks->parts.n * sizeof(int64_t))
                       == 0)
            {
                /*
                 * at the reader's own position, as every client that
                 * started with it: rendered once for all of them, and
                 * their SSE event framed once, as on the live stream
                 */
                if (msg->position.len == 0
                    && ngx_gravitee_kafka_text(&ks->parts,
                                               rd->next, &ks->step,
                                               &msg->position)
                       != NGX_OK)
                {
                    ngx_str_null(&msg->position);
                }

                sub->position = msg->position;

            } else {
                size = ks->scratch_size;

                if (ngx_gravitee_kafka_render(&ks->parts,
                                              ksub->next, &sub->position,
                                              &ks->scratch, &size)
                    != NGX_OK)
                {
                    ngx_str_null(&sub->position);
                }

                ks->scratch_size = size;
            }

            sub->handler->message(sub, msg);
        }

        /* the reader's position was for this turn only (ks->step) */
        ngx_str_null(&msg->position);

        ngx_gravitee_kafka_give_back(msg, &lent, rkm[i], &details,
                                     ks->source.log);
    }

    ngx_gravitee_kafka_reader_check(rd);
}


/* clients that met the live stream join it; a reader left alone goes */

static void
ngx_gravitee_kafka_reader_check(ngx_gravitee_kafka_reader_t *rd)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q, *next;
    ngx_gravitee_kafka_sub_t     *ksub;
    ngx_gravitee_kafka_source_t  *ks;

    ks = rd->source;

    for (q = ngx_queue_head(&rd->subs);
         q != ngx_queue_sentinel(&rd->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);

        for (i = 0; i < ks->parts.n; i++) {
            if (ksub->next[i] < ks->next[i]) {
                break;
            }
        }

        if (i == ks->parts.n) {
            ngx_gravitee_kafka_go_live(ks, ksub);
        }
    }

    if (ngx_queue_empty(&rd->subs) && !rd->idling) {
        ngx_gravitee_kafka_reader_retire(rd);
        ngx_gravitee_kafka_serve_waiting(ks);
    }
}


/*
 * At or ahead of the live stream on every partition: on it from now.
 * Ahead (the reader ran ahead of the live consumer), the live records it
 * already got are skipped (ngx_gravitee_kafka_accept) until they meet.
 */

static void
ngx_gravitee_kafka_go_live(ngx_gravitee_kafka_source_t *ks,
    ngx_gravitee_kafka_sub_t *ksub)
{
    ngx_uint_t  i;

    ngx_queue_remove(&ksub->queue);
    ksub->queue.next = NULL;
    ksub->reader = NULL;

    for (i = 0; i < ks->parts.n; i++) {
        if (ksub->next[i] > ks->next[i]) {
            ksub->live = 1;
            return;
        }
    }

    ngx_gravitee_kafka_sub_free(ksub->sub);
}


/*
 * A reader left without clients is kept a while: the next client to catch
 * up (a reconnecting browser, an HTTP GET paging with its cursor) is served
 * without a new consumer and its connections.  It takes nothing from its
 * queue meanwhile (librdkafka stops fetching at the queue's limits), so
 * that a client that starts where it stopped, as the next page of a
 * poller does, finds the records fetched already: not paused, which would
 * have librdkafka drop them and fetch them again on resume.
 */

static void
ngx_gravitee_kafka_reader_retire(ngx_gravitee_kafka_reader_t *rd)
{
    rd->idling = 1;
    rd->handle->parked = 1;

    if (rd->handle->hold.timer_set) {
        ngx_del_timer(&rd->handle->hold);
    }

    ngx_add_timer(&rd->idle, NGX_GRAVITEE_KAFKA_READER_IDLE);
}


static ngx_int_t
ngx_gravitee_kafka_reader_reuse(ngx_gravitee_kafka_reader_t *rd,
    int64_t *from)
{
    ngx_uint_t                    t, p, k, seeks;
    rd_kafka_resp_err_t           err;
    ngx_gravitee_kafka_topic_t   *topic;
    ngx_gravitee_kafka_source_t  *ks;

    ks = rd->source;
    seeks = 0;

    for (t = 0; t < ks->parts.ntopics && t < rd->handle->nrkts; t++) {
        topic = &ks->parts.topics[t];

        for (p = 0; p < topic->npartitions; p++) {
            k = topic->first + p;

            rd->start[k] = from[k];

            if (from[k] == rd->next[k]) {
                /* its queue goes on from there */
                continue;
            }

            /* asynchronous: a timeout of 0 does not wait */
            err = rd_kafka_seek(rd->handle->rkts[t], (int32_t) p, from[k], 0);

            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                ngx_log_error(NGX_LOG_ERR, ks->source.log, 0,
                              "kafka reader: seeking \"%s\" [%ui] failed: %s",
                              topic->name, p, rd_kafka_err2str(err));
                return NGX_ERROR;
            }

            rd->next[k] = from[k];
            seeks++;
        }
    }

    if (seeks) {
        ngx_gravitee_kafka_nudge(rd, ks->source.log);
    }

    if (rd->idle.timer_set) {
        ngx_del_timer(&rd->idle);
    }

    rd->idling = 0;
    rd->handle->parked = 0;

    /* what waits in its queue: librdkafka wakes us only when it was empty */
    ngx_gravitee_wakeup_post(&rd->handle->wakeup);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ks->source.log, 0,
                   "kafka reader %p reused", rd->handle->rk);

    return NGX_OK;
}


/*
 * librdkafka's broker thread learns of a seek and a resume only at its
 * next turn, up to a second later when nothing was being fetched (its
 * rd_kafka_max_block_ms): a reused reader would sit idle that long.  A
 * request to the broker wakes that thread at once; it is made on a thread
 * of ours, since librdkafka's call waits for the answer.
 */

typedef struct {
    ngx_gravitee_task_t              task;
    ngx_gravitee_kafka_handle_t     *handle;
    rd_kafka_topic_partition_list_t *list;     /* every partition: each
                                                  leader is asked */
} ngx_gravitee_kafka_nudge_t;


static void
ngx_gravitee_kafka_nudge(ngx_gravitee_kafka_reader_t *rd, ngx_log_t *log)
{
    ngx_uint_t                    t, p;
    ngx_gravitee_kafka_topic_t   *topic;
    ngx_gravitee_kafka_source_t  *ks;
    ngx_gravitee_kafka_nudge_t   *n;

    ks = rd->source;

    n = ngx_calloc(sizeof(ngx_gravitee_kafka_nudge_t), log);
    if (n == NULL) {
        return;
    }

    n->list = rd_kafka_topic_partition_list_new((int) ks->parts.n);

    for (t = 0; t < ks->parts.ntopics; t++) {
        topic = &ks->parts.topics[t];

        for (p = 0; p < topic->npartitions; p++) {
            rd_kafka_topic_partition_list_add(n->list, topic->name,
                                              (int32_t) p)
                ->offset = RD_KAFKA_OFFSET_END;
        }
    }

    n->handle = rd->handle;
    n->task.handler = ngx_gravitee_kafka_nudge_done;
    n->task.data = n;

    n->handle->refs++;

    if (ngx_gravitee_kafka_thread(ngx_gravitee_kafka_nudge_thread, n, log)
        != NGX_OK)
    {
        ngx_gravitee_kafka_nudge_done(n);
    }
}


static void *
ngx_gravitee_kafka_nudge_thread(void *data)
{
    ngx_gravitee_kafka_nudge_t *n = data;

    /* the answer is not used: the request is what wakes the brokers */
    (void) rd_kafka_offsets_for_times(n->handle->rk, n->list, 1000);

    if (ngx_gravitee_thread_post(&n->task) != NGX_OK) {
        /* the worker is gone: its exit destroys the handle */
        rd_kafka_topic_partition_list_destroy(n->list);
        free(n);
    }

    return NULL;
}


static void
ngx_gravitee_kafka_nudge_done(void *data)
{
    ngx_gravitee_kafka_nudge_t *n = data;

    if (!ngx_gravitee_kafka_exiting) {
        ngx_gravitee_kafka_handle_unref(n->handle);
    }

    rd_kafka_topic_partition_list_destroy(n->list);
    ngx_free(n);
}


static void
ngx_gravitee_kafka_reader_expire(ngx_event_t *ev)
{
    ngx_gravitee_kafka_reader_t *rd = ev->data;

    ngx_gravitee_kafka_reader_free(rd);
}


static void
ngx_gravitee_kafka_reader_free(ngx_gravitee_kafka_reader_t *rd)
{
    ngx_queue_t                  *q;
    ngx_gravitee_kafka_sub_t     *ksub;
    ngx_gravitee_kafka_source_t  *ks;

    ks = rd->source;

    /* its clients wait for another (only when the source stops) */

    while (!ngx_queue_empty(&rd->subs)) {
        q = ngx_queue_head(&rd->subs);
        ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);

        ngx_queue_remove(q);
        ksub->reader = NULL;
        ngx_queue_insert_tail(&ks->waiting, q);
    }

    if (rd->idle.timer_set) {
        ngx_del_timer(&rd->idle);
    }

    ngx_queue_remove(&rd->queue);
    ks->nreaders--;

    ngx_log_error(NGX_LOG_INFO, ks->source.log, 0,
                  "kafka reader %p done", rd->handle->rk);

    rd->handle->owner = NULL;
    ngx_gravitee_kafka_handle_unref(rd->handle);

    ngx_free(rd);
}


static void
ngx_gravitee_kafka_serve_waiting(ngx_gravitee_kafka_source_t *ks)
{
    ngx_queue_t               *q;
    ngx_gravitee_kafka_sub_t  *ksub;

    if (!ks->ready) {
        return;
    }

    while (!ngx_queue_empty(&ks->waiting)) {
        q = ngx_queue_head(&ks->waiting);
        ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);
        ngx_queue_remove(q);

        ngx_gravitee_kafka_catch_up(ks, ksub);

        if (ksub->reader == NULL) {
            /* no reader could be made: it waits on */
            break;
        }
    }
}


/* handles */

/* reader: 0, or the number of partitions a reader reads */

static ngx_gravitee_kafka_handle_t *
ngx_gravitee_kafka_handle_new(ngx_gravitee_kafka_conf_t *kcf,
    ngx_uint_t producer, void *owner, ngx_uint_t reader, ngx_log_t *log)
{
    char                          errstr[512], id[64];
    rd_kafka_conf_t              *rdconf;
    ngx_gravitee_kafka_handle_t  *h;

    /* an eventfd takes 8 bytes at a time (a pipe takes them too) */
    static const uint64_t  one = 1;

    h = ngx_calloc(sizeof(ngx_gravitee_kafka_handle_t), log);
    if (h == NULL) {
        return NULL;
    }

    ngx_gravitee_kafka_loop = pthread_self();

    rdconf = ngx_gravitee_kafka_rdconf(kcf, producer, errstr, sizeof(errstr));
    if (rdconf == NULL) {
        /* checked at configuration: out of memory */
        ngx_log_error(NGX_LOG_ERR, log, 0, "kafka: %s", errstr);
        ngx_free(h);
        return NULL;
    }

    /* a client.id per worker and handle: the brokers tell them apart */

    (void) ngx_sprintf((u_char *) id, "nginx-gravitee-%s-%P-%ui%Z",
                       producer ? "producer" : (reader ? "reader"
                                                       : "consumer"),
                       ngx_pid, ++ngx_gravitee_kafka_handles);

    if (rd_kafka_conf_set(rdconf, "client.id", id, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || (reader
            && ngx_gravitee_kafka_reader_conf(rdconf, reader, errstr,
                                              sizeof(errstr))
               != NGX_OK))
    {
        ngx_log_error(NGX_LOG_ERR, log, 0, "kafka: %s", errstr);
        rd_kafka_conf_destroy(rdconf);
        ngx_free(h);
        return NULL;
    }

    rd_kafka_conf_set_opaque(rdconf, h);

    h->rk = rd_kafka_new(producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                         rdconf, errstr, sizeof(errstr));
    if (h->rk == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "kafka: rd_kafka_new(): %s",
                      errstr);
        rd_kafka_conf_destroy(rdconf);
        ngx_free(h);
        return NULL;
    }

    h->owner = owner;
    h->refs = 1;

    ngx_queue_insert_tail(&ngx_gravitee_kafka_all, &h->link);

    h->drop.handler = ngx_gravitee_kafka_handle_drop;
    h->drop.data = h;
    h->drop.log = ngx_cycle->log;

    h->hold.handler = ngx_gravitee_kafka_handle_hold;
    h->hold.data = h;
    h->hold.log = ngx_cycle->log;
    h->hold.cancelable = 1;

    h->wakeup.handler = ngx_gravitee_kafka_handle_wake;
    h->wakeup.data = h;

    /* the handle outlives the client it was made for: the cycle's log */

    if (ngx_gravitee_wakeup_open(&h->wakeup, ngx_cycle->log) != NGX_OK) {
        goto failed;
    }

    /* logs, stats and reports: the main queue; records: a queue of ours */

    h->main = rd_kafka_queue_get_main(h->rk);

    if (rd_kafka_set_log_queue(h->rk, h->main) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        goto failed;
    }

    rd_kafka_queue_io_event_enable(h->main, h->wakeup.fd, &one, sizeof(one));

    if (!producer) {
        h->queue = rd_kafka_queue_new(h->rk);
        rd_kafka_queue_io_event_enable(h->queue, h->wakeup.fd, &one,
                                       sizeof(one));
    }

    /*
     * librdkafka writes the fd when a queue stops being empty: what it
     * queued before (logs of rd_kafka_new) is drained once, now
     */
    ngx_gravitee_wakeup_post(&h->wakeup);

    return h;

failed:

    ngx_log_error(NGX_LOG_ERR, log, 0, "kafka: a handle could not be set up");

    h->owner = NULL;
    ngx_gravitee_kafka_handle_unref(h);

    return NULL;
}


/*
 * librdkafka wrote to the fd: its queues are drained, with zero timeouts.
 * A long backlog is taken in batches, one per turn of the event loop.
 */

/*
 * A reader learns of a partition's end (its clients are past it), and
 * counts queued.min.messages per partition, as librdkafka's simple consumer
 * does with a queue per partition: all of a reader's partitions share one
 * queue, whose length librdkafka compares with the setting, and once past
 * it librdkafka's broker thread stops fetching and looks again only at its
 * next turn, up to a second later (librdkafka 2.0), however soon the
 * worker drained the queue.  queued.max.messages.kbytes still bounds what
 * a reader holds.
 */

static ngx_int_t
ngx_gravitee_kafka_reader_conf(rd_kafka_conf_t *rdconf, ngx_uint_t partitions,
    char *errstr, size_t size)
{
    char        value[32];
    size_t      len;
    ngx_int_t   n;

    if (rd_kafka_conf_set(rdconf, "enable.partition.eof", "true", errstr,
                          size)
        != RD_KAFKA_CONF_OK)
    {
        return NGX_ERROR;
    }

    len = sizeof(value);

    if (rd_kafka_conf_get(rdconf, "queued.min.messages", value, &len)
        != RD_KAFKA_CONF_OK)
    {
        return NGX_OK;
    }

    n = ngx_atoi((u_char *) value, ngx_strlen(value));

    if (n == NGX_ERROR) {
        return NGX_OK;
    }

    /* librdkafka's maximum */
    n = ngx_min((uint64_t) n * partitions, 10000000);

    (void) ngx_sprintf((u_char *) value, "%i%Z", n);

    if (rd_kafka_conf_set(rdconf, "queued.min.messages", value, errstr, size)
        != RD_KAFKA_CONF_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_gravitee_kafka_handle_wake(void *data)
{
    ngx_gravitee_kafka_handle_t *h = data;

    size_t               room;
    ssize_t              n, i;
    rd_kafka_message_t  *rkm[NGX_GRAVITEE_KAFKA_BATCH];

    /* logs, stats, delivery reports: their callbacks run here */

    while (rd_kafka_poll(h->rk, 0) > 0) {
        /* void */
    }

    if (h->queue == NULL) {
        return;
    }

    room = NGX_GRAVITEE_KAFKA_BATCH;

    if (h->owner && h->room) {
        room = ngx_min(h->room(h), NGX_GRAVITEE_KAFKA_BATCH);

        if (room == 0) {
            /*
             * a client catching up has its queue half full: the records
             * wait in librdkafka's queue (which stops fetching when it is
             * full) until the client has read
             */
            if (!h->hold.timer_set && !h->parked) {
                ngx_add_timer(&h->hold, NGX_GRAVITEE_KAFKA_HOLD);
            }

            return;
        }
    }

    n = rd_kafka_consume_batch_queue(h->queue, 0, rkm, room);
    if (n <= 0) {
        return;
    }

    if (h->owner && h->records) {
        h->records(h, rkm, (size_t) n);

    } else {
        for (i = 0; i < n; i++) {
            rd_kafka_message_destroy(rkm[i]);
        }
    }

    if ((size_t) n == room) {
        /* more may wait, and librdkafka wakes us only on an empty queue */
        ngx_gravitee_wakeup_post(&h->wakeup);
    }
}


static void
ngx_gravitee_kafka_handle_hold(ngx_event_t *ev)
{
    ngx_gravitee_kafka_handle_t *h = ev->data;

    ngx_gravitee_wakeup_post(&h->wakeup);
}


/* a reader hands over what the fullest of its clients takes */

static ngx_uint_t
ngx_gravitee_kafka_reader_room(ngx_gravitee_kafka_handle_t *h)
{
    ngx_gravitee_kafka_reader_t *rd = h->owner;

    ngx_uint_t                 room, r;
    ngx_queue_t               *q;
    ngx_gravitee_sub_t        *sub;
    ngx_gravitee_kafka_sub_t  *ksub;

    if (rd->idling) {
        /* what it fetched waits for the next client, in librdkafka's queue */
        return 0;
    }

    room = NGX_GRAVITEE_KAFKA_BATCH;

    for (q = ngx_queue_head(&rd->subs);
         q != ngx_queue_sentinel(&rd->subs);
         q = ngx_queue_next(q))
    {
        ksub = ngx_queue_data(q, ngx_gravitee_kafka_sub_t, queue);
        sub = ksub->sub;

        if (sub->handler->room) {
            r = sub->handler->room(sub);
            room = ngx_min(room, r);
        }
    }

    return room;
}


static void
ngx_gravitee_kafka_handle_unref(ngx_gravitee_kafka_handle_t *h)
{
    if (--h->refs) {
        return;
    }

    /* not from inside the wake-up handler, which may be on the stack */

    if (ngx_gravitee_kafka_exiting) {
        ngx_gravitee_kafka_handle_drop(&h->drop);
        return;
    }

    ngx_post_event(&h->drop, &ngx_posted_events);
}


/*
 * The handle leaves the event loop now and is destroyed on a thread:
 * stopping its partitions and rd_kafka_destroy() may wait on brokers.
 */

static void
ngx_gravitee_kafka_handle_drop(ngx_event_t *ev)
{
    ngx_gravitee_kafka_handle_t *h = ev->data;

    if (h->drop.posted) {
        ngx_delete_posted_event(&h->drop);
    }

    if (h->hold.timer_set) {
        ngx_del_timer(&h->hold);
    }

    if (h->link.next) {
        ngx_queue_remove(&h->link);
        h->link.next = NULL;
    }

    if (h->main) {
        rd_kafka_queue_io_event_enable(h->main, -1, NULL, 0);
    }

    if (h->queue) {
        rd_kafka_queue_io_event_enable(h->queue, -1, NULL, 0);
    }

    ngx_gravitee_wakeup_close(&h->wakeup);

    if (ngx_gravitee_kafka_exiting
        || ngx_gravitee_kafka_thread(ngx_gravitee_kafka_destroy_thread, h,
                                     ngx_cycle->log)
           != NGX_OK)
    {
        /* the worker exits, or no thread: it may wait here */
        (void) ngx_gravitee_kafka_destroy_thread(h);
    }
}


static void *
ngx_gravitee_kafka_destroy_thread(void *data)
{
    ngx_gravitee_kafka_handle_t *h = data;

    ngx_uint_t  t;

    for (t = 0; t < h->nrkts; t++) {
        if (h->rkts[t]) {
            rd_kafka_topic_destroy(h->rkts[t]);
        }
    }

    free(h->rkts);

    if (h->main) {
        rd_kafka_queue_destroy(h->main);
    }

    if (h->queue) {
        rd_kafka_queue_destroy(h->queue);
    }

    rd_kafka_destroy(h->rk);

    free(h);

    return NULL;
}


/* a thread of ours, detached; the worker's exit waits for them all */

static void *
ngx_gravitee_kafka_thread_main(void *data)
{
    void                   *(*run)(void *);
    void                    *arg;
    ngx_gravitee_kafka_run_t *r = data;

    run = r->run;
    arg = r->arg;
    free(r);

    (void) run(arg);

    (void) pthread_mutex_lock(&ngx_gravitee_kafka_lock);

    if (--ngx_gravitee_kafka_threads == 0) {
        (void) pthread_cond_broadcast(&ngx_gravitee_kafka_done);
    }

    (void) pthread_mutex_unlock(&ngx_gravitee_kafka_lock);

    return NULL;
}


static ngx_int_t
ngx_gravitee_kafka_thread(void *(*run)(void *), void *data, ngx_log_t *log)
{
    int                        err;
    pthread_t                  tid;
    pthread_attr_t             attr;
    ngx_gravitee_kafka_run_t  *r;

    r = ngx_alloc(sizeof(ngx_gravitee_kafka_run_t), log);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->run = run;
    r->arg = data;

    (void) pthread_mutex_lock(&ngx_gravitee_kafka_lock);
    ngx_gravitee_kafka_threads++;
    (void) pthread_mutex_unlock(&ngx_gravitee_kafka_lock);

    (void) pthread_attr_init(&attr);
    (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    err = pthread_create(&tid, &attr, ngx_gravitee_kafka_thread_main, r);

    (void) pthread_attr_destroy(&attr);

    if (err) {
        ngx_log_error(NGX_LOG_ERR, log, err,
                      "kafka: pthread_create() failed");

        (void) pthread_mutex_lock(&ngx_gravitee_kafka_lock);
        ngx_gravitee_kafka_threads--;
        (void) pthread_mutex_unlock(&ngx_gravitee_kafka_lock);

        ngx_free(r);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* librdkafka's callbacks: all served by rd_kafka_poll() on the event loop */

static void
ngx_gravitee_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t  nlevel;

    if (!pthread_equal(pthread_self(), ngx_gravitee_kafka_loop)) {
        /*
         * before rd_kafka_set_log_queue(), librdkafka logs from its own
         * threads: NGINX's log is not theirs to write
         */
        return;
    }

    /* syslog levels, as librdkafka's; its chatter stays at debug */

    nlevel = (level <= 3) ? NGX_LOG_ERR
             : (level == 4) ? NGX_LOG_WARN
             : (level <= 6) ? NGX_LOG_INFO : NGX_LOG_DEBUG;

    ngx_log_error(nlevel, ngx_cycle->log, 0, "librdkafka %s %s: %s",
                  rd_kafka_name(rk), fac, buf);
}


static void
ngx_gravitee_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_gravitee_kafka_handle_t *h = opaque;

    ngx_uint_t  level;

    level = (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) ? NGX_LOG_WARN
                                                        : NGX_LOG_INFO;

    ngx_log_error(level, ngx_cycle->log, 0, "librdkafka %s: %s",
                  rd_kafka_name(rk), reason);

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        ngx_gravitee_kafka_state(h, 0);
    }
}


/*
 * Every second: is any broker UP?  That is what tells a client (an HTTP
 * GET's 503, a POST's 503) that the brokers cannot be reached.
 */

static int
ngx_gravitee_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len,
    void *opaque)
{
    ngx_gravitee_kafka_handle_t *h = opaque;

    const char    *name;
    json_t        *root, *brokers, *b, *state;
    ngx_uint_t     up;
    json_error_t   error;

    root = json_loadb(json, len, 0, &error);
    if (root == NULL) {
        return 0;
    }

    up = 0;
    brokers = json_object_get(root, "brokers");

    json_object_foreach(brokers, name, b) {
        state = json_object_get(b, "state");

        if (json_is_string(state)
            && ngx_strcmp(json_string_value(state), "UP") == 0)
        {
            up = 1;
            break;
        }
    }

    json_decref(root);

    ngx_gravitee_kafka_state(h, up);

    /* 0: librdkafka frees the json */
    return 0;
}


static void
ngx_gravitee_kafka_state(ngx_gravitee_kafka_handle_t *h, ngx_uint_t up)
{
    ngx_gravitee_kafka_source_t  *ks;

    if (h->up == up && (up || h->down_told)) {
        return;
    }

    h->up = up;
    h->down_told = !up;

    if (up) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "kafka %s: brokers reachable", rd_kafka_name(h->rk));

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "kafka %s: brokers unreachable", rd_kafka_name(h->rk));
    }

    if (h->records != ngx_gravitee_kafka_live_records || h->owner == NULL) {
        return;
    }

    ks = h->owner;
    ks->down = !up;

    ngx_gravitee_source_state(&ks->source, up ? NGX_GRAVITEE_STATE_UP
                                              : NGX_GRAVITEE_STATE_DOWN);
}


/* positions: "topic@p#o,p#o;topic2@p#o", resume after those offsets */

static ngx_int_t
ngx_gravitee_kafka_decode(ngx_str_t *pos, ngx_str_t *raw, ngx_pool_t *pool)
{
    u_char      c;
    ngx_uint_t  i, url, pad;

    if (ngx_strlchr(pos->data, pos->data + pos->len, '@')) {
        *raw = *pos;
        return NGX_OK;
    }

    /* base64, standard (as the reference's Java encoder) or URL-safe */

    url = 0;
    pad = 0;

    for (i = 0; i < pos->len; i++) {
        c = pos->data[i];

        if (c == '=') {
            pad++;
            continue;
        }

        if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                     || (c >= '0' && c <= '9') || c == '+' || c == '/'
                     || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }

        if (c == '-' || c == '_') {
            url = 1;
        }
    }

    if (pad > 2) {
        return NGX_DECLINED;
    }

    raw->data = pool ? ngx_pnalloc(pool, ngx_base64_decoded_length(pos->len))
                     : ngx_alloc(ngx_base64_decoded_length(pos->len),
                                 ngx_cycle->log);
    if (raw->data == NULL) {
        return NGX_ERROR;
    }

    if ((url ? ngx_decode_base64url(raw, pos) : ngx_decode_base64(raw, pos))
        != NGX_OK)
    {
        if (pool == NULL) {
            ngx_free(raw->data);
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Checks "pos" (parts NULL: against the configured topics, if any), or
 * reads it into next[] (the offset wanted next, per partition of parts).
 */

static ngx_int_t
ngx_gravitee_kafka_parse(ngx_gravitee_kafka_conf_t *kcf, ngx_str_t *pos,
    ngx_gravitee_kafka_parts_t *parts, int64_t *next, ngx_str_t *error,
    ngx_pool_t *pool)
{
    u_char      *p, *last, *start;
    int64_t      o;
    ngx_int_t    rc, part;
    ngx_str_t    raw, topic, *t;
    ngx_uint_t   i, k, known;

    rc = ngx_gravitee_kafka_decode(pos, &raw, pool);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_set(error, "Invalid cursor: neither base64 nor "
                           "topic@partition#offset");
        return NGX_DECLINED;
    }

    p = raw.data;
    last = raw.data + raw.len;
    rc = NGX_DECLINED;

    while (p < last) {

        /* topic "@" */

        start = p;
        p = ngx_strlchr(p, last, '@');
        if (p == NULL) {
            goto invalid;
        }

        topic.data = start;
        topic.len = p - start;
        p++;

        if (ngx_gravitee_kafka_valid_topic(&topic) != NGX_OK) {
            goto invalid;
        }

        known = 1;
        k = 0;

        if (parts) {
            for (i = 0; i < parts->ntopics; i++) {
                if (ngx_strlen(parts->topics[i].name) == topic.len
                    && ngx_strncmp(parts->topics[i].name, topic.data,
                                   topic.len) == 0)
                {
                    break;
                }
            }

            known = (i < parts->ntopics);
            k = i;

        } else if (kcf->topics) {
            t = kcf->topics->elts;

            for (i = 0; i < kcf->topics->nelts; i++) {
                if (t[i].len == topic.len
                    && ngx_strncmp(t[i].data, topic.data, topic.len) == 0)
                {
                    break;
                }
            }

            if (i == kcf->topics->nelts) {
                error->data = ngx_pnalloc(pool, 80 + topic.len);
                if (error->data == NULL) {
                    goto failed;
                }

                error->len = ngx_sprintf(error->data, "Invalid cursor: "
                                         "topic \"%V\" is not read here",
                                         &topic)
                             - error->data;
                goto failed;
            }
        }

        /* p "#" o, ... */

        for ( ;; ) {
            start = p;

            while (p < last && *p >= '0' && *p <= '9') {
                p++;
            }

            part = ngx_atoi(start, p - start);

            if (part == NGX_ERROR || part > 0x7fffffff || p == last
                || *p++ != '#')
            {
                goto invalid;
            }

            start = p;

            if (p < last && *p == '-') {
                p++;
            }

            while (p < last && *p >= '0' && *p <= '9') {
                p++;
            }

            if (p - start == 2 && start[0] == '-' && start[1] == '1') {
                o = -1;

            } else {
                o = ngx_atoof(start, p - start);

                if (o == NGX_ERROR) {
                    goto invalid;
                }
            }

            if (parts && known
                && (ngx_uint_t) part < parts->topics[k].npartitions)
            {
                next[parts->topics[k].first + part] = o + 1;
            }

            if (p == last || *p == ';') {
                break;
            }

            if (*p++ != ',') {
                goto invalid;
            }
        }

        if (p < last) {
            p++;

            if (p == last) {
                goto invalid;
            }
        }
    }

    rc = NGX_OK;
    goto done;

invalid:

    ngx_str_set(error, "Invalid cursor: topic@partition#offset[,...][;...] "
                       "expected");

failed:

    rc = NGX_DECLINED;

done:

    if (pool == NULL && raw.data != pos->data) {
        ngx_free(raw.data);
    }

    return rc;
}


/* the most a position of these partitions takes, raw */

static size_t
ngx_gravitee_kafka_raw_len(ngx_gravitee_kafka_parts_t *parts)
{
    size_t      raw;
    ngx_uint_t  t;

    raw = 1;

    for (t = 0; t < parts->ntopics; t++) {
        raw += ngx_strlen(parts->topics[t].name) + 2;
    }

    return raw + parts->n * (NGX_INT32_LEN + NGX_INT64_LEN + 2);
}


/*
 * The position of next[] into "out", made in buf (of *size bytes; grown,
 * malloc'd, when it is too small): every partition, with the offset
 * delivered last, or the one before the first the client could get.
 */

static ngx_int_t
ngx_gravitee_kafka_render(ngx_gravitee_kafka_parts_t *parts, int64_t *next,
    ngx_str_t *out, ngx_str_t *buf, size_t *size)
{
    u_char  *p;
    size_t   need;

    need = ngx_gravitee_kafka_raw_len(parts);

    if (*size < need) {
        if (buf->data) {
            ngx_free(buf->data);
        }

        buf->data = ngx_alloc(need, ngx_cycle->log);
        if (buf->data == NULL) {
            *size = 0;
            return NGX_ERROR;
        }

        *size = need;
    }

    p = ngx_gravitee_kafka_raw_write(parts, next, buf->data, buf->data, 0,
                                     NULL);

    out->data = buf->data;
    out->len = p - buf->data;

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_kafka_text(ngx_gravitee_kafka_parts_t *parts, int64_t *next,
    ngx_gravitee_kafka_text_t *text, ngx_str_t *out)
{
    u_char      *raw, *p;
    ngx_uint_t   from;

    if (text->topics != parts->topics || text->n != parts->n) {
        if (ngx_gravitee_kafka_text_init(parts, text) != NGX_OK) {
            return NGX_ERROR;
        }

        from = 0;

    } else {
        for (from = 0; from < parts->n; from++) {
            if (next[from] != text->last[from]) {
                break;
            }
        }
    }

    raw = text->data;

    if (from < parts->n
        && ngx_gravitee_kafka_text_one(parts, next, text, from, raw)
           != NGX_OK)
    {
        p = ngx_gravitee_kafka_raw_write(parts, next, raw,
                                         raw + text->start[from], from, text);
        text->raw_len = p - raw;
    }

    out->data = raw;
    out->len = text->raw_len;

    return NGX_OK;
}


/*
 * The common case: partition k alone moved, and its offset has as many
 * digits as before.  The digits are written over.
 */

static ngx_int_t
ngx_gravitee_kafka_text_one(ngx_gravitee_kafka_parts_t *parts,
    int64_t *next, ngx_gravitee_kafka_text_t *text, ngx_uint_t k,
    u_char *raw)
{
    u_char      digits[NGX_INT64_LEN + 1], *last;
    size_t      end;
    ngx_uint_t  i;

    for (i = k + 1; i < parts->n; i++) {
        if (next[i] != text->last[i]) {
            return NGX_DECLINED;
        }
    }

    end = (k + 1 < parts->n) ? text->start[k + 1] : text->raw_len;

    last = ngx_gravitee_kafka_decimal(digits, next[k] - 1);

    if ((size_t) (last - digits) != end - text->off[k]) {
        return NGX_DECLINED;
    }

    ngx_memcpy(raw + text->off[k], digits, last - digits);
    text->last[k] = next[k];

    return NGX_OK;
}


/*
 * The raw text of partitions "from" on, written at p (where partition
 * "from" starts); with a text, where each starts is kept in it.
 */

static u_char *
ngx_gravitee_kafka_raw_write(ngx_gravitee_kafka_parts_t *parts,
    int64_t *next, u_char *raw, u_char *p, ngx_uint_t from,
    ngx_gravitee_kafka_text_t *text)
{
    ngx_uint_t                   t, i, k;
    ngx_gravitee_kafka_topic_t  *topic;

    for (t = 0; t < parts->ntopics; t++) {
        topic = &parts->topics[t];

        for (i = 0; i < topic->npartitions; i++) {
            k = topic->first + i;

            if (k < from) {
                continue;
            }

            if (text) {
                text->start[k] = p - raw;
            }

            /* per record: no ngx_sprintf() here */

            if (i) {
                *p++ = ',';

            } else {
                if (p != raw) {
                    *p++ = ';';
                }

                p = ngx_cpymem(p, topic->name, ngx_strlen(topic->name));
                *p++ = '@';
            }

            p = ngx_gravitee_kafka_decimal(p, (int64_t) i);
            *p++ = '#';

            if (text) {
                text->off[k] = p - raw;
                text->last[k] = next[k];
            }

            p = ngx_gravitee_kafka_decimal(p, next[k] - 1);
        }
    }

    return p;
}


/* for these partitions; "last" is made such that every one differs */

static ngx_int_t
ngx_gravitee_kafka_text_init(ngx_gravitee_kafka_parts_t *parts,
    ngx_gravitee_kafka_text_t *text)
{
    size_t      room;
    ngx_uint_t  i;

    ngx_gravitee_kafka_text_free(text);

    if (parts->n == 0) {
        return NGX_ERROR;
    }

    room = ngx_align(ngx_gravitee_kafka_raw_len(parts), sizeof(int64_t));

    text->data = ngx_alloc(room + parts->n * (sizeof(int64_t)
                                              + 2 * sizeof(size_t)),
                           ngx_cycle->log);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    text->last = (int64_t *) (text->data + room);
    text->start = (size_t *) (text->last + parts->n);
    text->off = text->start + parts->n;

    for (i = 0; i < parts->n; i++) {
        text->last[i] = INT64_MIN;
    }

    text->start[0] = 0;
    text->topics = parts->topics;
    text->n = parts->n;

    return NGX_OK;
}


static void
ngx_gravitee_kafka_text_free(ngx_gravitee_kafka_text_t *text)
{
    if (text->data) {
        ngx_free(text->data);
    }

    ngx_memzero(text, sizeof(ngx_gravitee_kafka_text_t));
}


static u_char *
ngx_gravitee_kafka_decimal(u_char *p, int64_t v)
{
    u_char    tmp[NGX_INT64_LEN], *d;
    uint64_t  u;

    /* two digits a division: written for every partition of a position */
    static const u_char  pairs[] =
        "00010203040506070809101112131415161718192021222324"
        "25262728293031323334353637383940414243444546474849"
        "50515253545556575859606162636465666768697071727374"
        "75767778798081828384858687888990919293949596979899";

    if (v >= 0 && v < 10) {
        *p++ = (u_char) ('0' + v);
        return p;
    }

    if (v < 0) {
        *p++ = '-';
        u = (uint64_t) -(v + 1) + 1;

    } else {
        u = (uint64_t) v;
    }

    d = tmp + sizeof(tmp);

    while (u >= 100) {
        d -= 2;
        ngx_memcpy(d, &pairs[(u % 100) * 2], 2);
        u /= 100;
    }

    if (u >= 10) {
        d -= 2;
        ngx_memcpy(d, &pairs[u * 2], 2);

    } else {
        *--d = (u_char) ('0' + u);
    }

    return ngx_cpymem(p, d, tmp + sizeof(tmp) - d);
}


/* producing */

/*
 * key= and produce_topics= with variables are computed from the client's
 * request, once: a WebSocket client's records all get the values of its
 * handshake.  Static values need no binding.
 */

static ngx_int_t
ngx_gravitee_kafka_bind(void *conf, ngx_http_request_t *r, ngx_uint_t what,
    void **binding, ngx_str_t *error)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    u_char                     *p;
    size_t                      size;
    ngx_str_t                   key, *topics;
    ngx_uint_t                  i, n, dynamic;
    ngx_http_complex_value_t   *cv;
    ngx_gravitee_kafka_bind_t  *b;

    ngx_str_null(&key);
    dynamic = 0;

    if (!kcf->producer || !(what & NGX_GRAVITEE_BIND_PUBLISH)) {
        /* a subscriber keeps nothing of its request */
        return NGX_OK;
    }

    if (kcf->key_cv && kcf->key_cv->lengths) {
        if (ngx_http_complex_value(r, kcf->key_cv, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        dynamic = 1;
    }

    cv = kcf->produce_cv->elts;
    n = kcf->produce_cv->nelts;

    topics = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (topics == NULL) {
        return NGX_ERROR;
    }

    size = key.len;

    for (i = 0; i < n; i++) {
        if (cv[i].lengths == NULL) {
            topics[i] = cv[i].value;
            continue;
        }

        if (ngx_http_complex_value(r, &cv[i], &topics[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_gravitee_kafka_valid_topic(&topics[i]) != NGX_OK) {
            error->data = ngx_pnalloc(r->pool, 64 + topics[i].len);
            if (error->data == NULL) {
                return NGX_ERROR;
            }

            error->len = ngx_sprintf(error->data, "\"%V\" is not a valid "
                                     "Kafka topic name", &topics[i])
                         - error->data;
            return NGX_DECLINED;
        }

        dynamic = 1;
    }

    if (!dynamic) {
        return NGX_OK;
    }

    for (i = 0; i < n; i++) {
        size += topics[i].len;
    }

    b = ngx_alloc(sizeof(ngx_gravitee_kafka_bind_t)
                  + n * sizeof(ngx_str_t) + size, r->connection->log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) &b->topics[n + 1];

    b->key.data = p;
    b->key.len = key.len;
    p = ngx_cpymem(p, key.data, key.len);

    for (i = 0; i < n; i++) {
        b->topics[i].data = p;
        b->topics[i].len = topics[i].len;
        p = ngx_cpymem(p, topics[i].data, topics[i].len);
    }

    b->ntopics = n;
    *binding = b;

    return NGX_OK;
}


static void
ngx_gravitee_kafka_unbind(void *conf, void *binding)
{
    ngx_free(binding);
}


/*
 * One record per produce topic, with the message's headers and the key
 * (key=, else the message id, else a random one); NGX_AGAIN: done() when
 * every delivery report is in, or publish_timeout ran out.
 */

static ngx_int_t
ngx_gravitee_kafka_publish(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_kafka_conf_t *kcf = conf;

    u_char                          rnd[32];
    ngx_str_t                       key, *topic;
    ngx_uint_t                      i, n;
    rd_kafka_resp_err_t             err;
    ngx_http_complex_value_t       *cv;
    ngx_gravitee_kafka_pub_t       *kp;
    ngx_gravitee_kafka_bind_t      *b;
    ngx_gravitee_kafka_producer_t  *prod;

    if (!kcf->producer) {
        pub->rc = NGX_ERROR;
        pub->status = NGX_HTTP_NOT_ALLOWED;
        ngx_str_set(&pub->error, "This endpoint does not produce "
                                 "(producer=off)");
        return NGX_ERROR;
    }

    prod = ngx_gravitee_kafka_producer(kcf, pub->log);
    if (prod == NULL) {
        pub->rc = NGX_ERROR;
        pub->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return NGX_ERROR;
    }

    kp = ngx_calloc(sizeof(ngx_gravitee_kafka_pub_t), pub->log);
    if (kp == NULL) {
        pub->rc = NGX_ERROR;
        pub->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    kp->pub = pub;
    kp->msg = ngx_gravitee_message_ref(pub->msg);
    kp->handle = prod->handle;
    kp->handle->refs++;
    kp->up = prod->handle->up;

    b = pub->binding;

    if (b && (b->key.len || kcf->key_cv == NULL || kcf->key_cv->lengths)) {
        key = b->key;

    } else if (kcf->key_cv) {
        key = kcf->key_cv->value;

    } else if (pub->msg->id.len) {
        key = pub->msg->id;

    } else {
        /* as the reference keys by its random message id */
        key.data = rnd;
        key.len = ngx_sprintf(rnd, "%08xD%08xD", (uint32_t) ngx_random(),
                              (uint32_t) ngx_random())
                  - rnd;
    }

    cv = kcf->produce_cv->elts;
    n = kcf->produce_cv->nelts;
    err = RD_KAFKA_RESP_ERR_NO_ERROR;

    for (i = 0; i < n; i++) {
        topic = b ? &b->topics[i] : &cv[i].value;

        if (ngx_gravitee_kafka_produce(kcf, kp, topic, &key) == NGX_OK) {
            kp->pending++;

        } else if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            err = kp->err;
        }
    }

    if (kp->pending == 0) {
        /* refused at once: no report will come */
        kp->pub = NULL;
        ngx_gravitee_kafka_pub_free(kp);

        pub->rc = NGX_ERROR;
        pub->status = (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                      ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_BAD_GATEWAY;
        pub->error.data = (u_char *) rd_kafka_err2str(err);
        pub->error.len = ngx_strlen(pub->error.data);

        ngx_log_error(NGX_LOG_ERR, pub->log, 0,
                      "kafka producer refused the record: %V", &pub->error);

        return NGX_ERROR;
    }

    kp->err = err;

    /* not cancelable: a worker that stops answers its publications first */

    kp->timer.handler = ngx_gravitee_kafka_pub_timeout;
    kp->timer.data = kp;
    kp->timer.log = pub->log;

    ngx_add_timer(&kp->timer, kcf->publish_timeout + 1000);

    pub->endpoint_data = kp;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_gravitee_kafka_produce(ngx_gravitee_kafka_conf_t *kcf,
    ngx_gravitee_kafka_pub_t *kp, ngx_str_t *topic, ngx_str_t *key)
{
    char                     name[NGX_GRAVITEE_KAFKA_TOPIC_MAX + 1];
    ngx_uint_t               i;
    rd_kafka_headers_t      *hdrs;
    rd_kafka_resp_err_t      err;
    ngx_gravitee_pair_t     *h;
    ngx_gravitee_message_t  *msg;

    msg = kp->msg;

    (void) ngx_cpystrn((u_char *) name, topic->data,
                       ngx_min(topic->len, NGX_GRAVITEE_KAFKA_TOPIC_MAX) + 1);

    hdrs = rd_kafka_headers_new(msg->nheaders);
    h = msg->headers;

    for (i = 0; i < msg->nheaders; i++) {
        (void) rd_kafka_header_add(hdrs, (char *) h[i].name.data,
                                   h[i].name.len, h[i].value.data,
                                   h[i].value.len);
    }

    /* the value is not copied: the message lives until the report */

    err = rd_kafka_producev(kp->handle->rk,
                  RD_KAFKA_V_TOPIC(name),
                  RD_KAFKA_V_VALUE(msg->content.len ? msg->content.data
                                                    : (u_char *) "",
                                   msg->content.len),
                  RD_KAFKA_V_KEY(key->data, key->len),
                  RD_KAFKA_V_HEADERS(hdrs),
                  RD_KAFKA_V_OPAQUE(kp),
                  RD_KAFKA_V_MSGFLAGS(0),
                  RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* the headers are still ours */
        rd_kafka_headers_destroy(hdrs);
        kp->err = err;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "kafka: producing to \"%s\" failed: %s", name,
                      rd_kafka_err2str(err));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* on the event loop, from rd_kafka_poll() */

static void
ngx_gravitee_kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
    void *opaque)
{
    ngx_gravitee_kafka_pub_t  *kp;

    kp = rkm->_private;

    if (ngx_gravitee_kafka_exiting) {
        /* purged at the exit: nobody waits for the answer any more */
        kp->pub = NULL;
    }

    if (rkm->err && kp->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kp->err = rkm->err;
    }

    if (--kp->pending) {
        return;
    }

    ngx_gravitee_kafka_pub_outcome(kp, kp->err, 0);
    ngx_gravitee_kafka_pub_free(kp);
}


static void
ngx_gravitee_kafka_pub_timeout(ngx_event_t *ev)
{
    ngx_gravitee_kafka_pub_t *kp = ev->data;

    /* the record may still be written: the report frees what it holds */
    ngx_gravitee_kafka_pub_outcome(kp, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, 1);
}


/*
 * As the issue of a record is told to the client: 502 the broker refused
 * it, 503 no broker could be reached (or the worker stops), 504 no report
 * within publish_timeout.
 */

static void
ngx_gravitee_kafka_pub_outcome(ngx_gravitee_kafka_pub_t *kp,
    rd_kafka_resp_err_t err, ngx_uint_t timed_out)
{
    ngx_gravitee_pub_t  *pub;

    pub = kp->pub;

    if (pub == NULL) {
        return;
    }

    kp->pub = NULL;
    pub->endpoint_data = NULL;

    if (kp->timer.timer_set) {
        ngx_del_timer(&kp->timer);
    }

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pub->rc = NGX_OK;
        pub->done(pub);
        return;
    }

    pub->rc = NGX_ERROR;

    if (err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
        || err == RD_KAFKA_RESP_ERR__TIMED_OUT)
    {
        /*
         * a request that timed out takes the connection down with it: the
         * brokers were reachable if they were when the record was made
         */

        if (kp->up || kp->handle->up) {
            pub->status = NGX_HTTP_GATEWAY_TIME_OUT;
            ngx_str_set(&pub->error, "Kafka did not acknowledge the record "
                                     "within publish_timeout");

        } else {
            pub->status = NGX_HTTP_SERVICE_UNAVAILABLE;
            ngx_str_set(&pub->error, "No Kafka broker could be reached");
        }

    } else if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE
               || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT
               || err == RD_KAFKA_RESP_ERR__QUEUE_FULL
               || err == RD_KAFKA_RESP_ERR__TRANSPORT
               || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    {
        pub->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_str_set(&pub->error, "No Kafka broker could be reached");

    } else {
        pub->status = NGX_HTTP_BAD_GATEWAY;
        pub->error.data = (u_char *) rd_kafka_err2str(err);
        pub->error.len = ngx_strlen(pub->error.data);
    }

    ngx_log_error(NGX_LOG_ERR, pub->log, 0,
                  "kafka publication failed%s: %s",
                  timed_out ? " (publish_timeout)" : "",
                  rd_kafka_err2str(err));

    pub->done(pub);
}


static void
ngx_gravitee_kafka_pub_free(ngx_gravitee_kafka_pub_t *kp)
{
    if (kp->timer.timer_set) {
        ngx_del_timer(&kp->timer);
    }

    ngx_gravitee_message_unref(kp->msg);
    ngx_gravitee_kafka_handle_unref(kp->handle);

    ngx_free(kp);
}


/* the client left: nobody is told, the report still frees the record */

static void
ngx_gravitee_kafka_cancel(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_kafka_pub_t  *kp;

    kp = pub->endpoint_data;

    if (kp == NULL) {
        return;
    }

    kp->pub = NULL;
    pub->endpoint_data = NULL;

    if (kp->timer.timer_set) {
        ngx_del_timer(&kp->timer);
    }
}


/* one producer per worker for every location with the same brokers */

static ngx_gravitee_kafka_producer_t *
ngx_gravitee_kafka_producer(ngx_gravitee_kafka_conf_t *kcf, ngx_log_t *log)
{
    ngx_queue_t                    *q;
    ngx_gravitee_kafka_producer_t  *prod;

    if (kcf->prod) {
        return kcf->prod;
    }

    if (ngx_gravitee_kafka_producers.next == NULL) {
        ngx_queue_init(&ngx_gravitee_kafka_producers);
    }

    for (q = ngx_queue_head(&ngx_gravitee_kafka_producers);
         q != ngx_queue_sentinel(&ngx_gravitee_kafka_producers);
         q = ngx_queue_next(q))
    {
        prod = ngx_queue_data(q, ngx_gravitee_kafka_producer_t, queue);

        if (prod->key.len == kcf->producer_key.len
            && ngx_memcmp(prod->key.data, kcf->producer_key.data,
                          prod->key.len) == 0)
        {
            kcf->prod = prod;
            return prod;
        }
    }

    prod = ngx_calloc(sizeof(ngx_gravitee_kafka_producer_t), log);
    if (prod == NULL) {
        return NULL;
    }

    prod->handle = ngx_gravitee_kafka_handle_new(kcf, 1, prod, 0, log);
    if (prod->handle == NULL) {
        ngx_free(prod);
        return NULL;
    }

    prod->key = kcf->producer_key;
    prod->conf = kcf;

    ngx_queue_insert_tail(&ngx_gravitee_kafka_producers, &prod->queue);

    kcf->prod = prod;

    ngx_log_error(NGX_LOG_INFO, log, 0, "kafka producer %p started for %V",
                  prod->handle->rk, &kcf->bootstrap);

    return prod;
}


/*
 * The worker exits: nothing serves clients any more, so waiting is fine.
 * Publications still out are purged (the worker answered them before),
 * threads of ours are waited for (10 s at most), and every handle that
 * nothing refers to is destroyed here.
 */

static void
ngx_gravitee_kafka_exit_process(ngx_cycle_t *cycle, void *conf)
{
    ngx_uint_t                      i, kept;
    ngx_queue_t                    *q, *next;
    struct timespec                 ts;
    ngx_gravitee_kafka_handle_t    *h;
    ngx_gravitee_kafka_producer_t  *prod;

    if (ngx_gravitee_kafka_exiting) {
        return;
    }

    ngx_gravitee_kafka_exiting = 1;
    kept = 0;

    if (ngx_gravitee_kafka_producers.next) {
        while (!ngx_queue_empty(&ngx_gravitee_kafka_producers)) {
            q = ngx_queue_head(&ngx_gravitee_kafka_producers);
            prod = ngx_queue_data(q, ngx_gravitee_kafka_producer_t, queue);
            ngx_queue_remove(q);

            (void) rd_kafka_purge(prod->handle->rk,
                                  RD_KAFKA_PURGE_F_QUEUE
                                  | RD_KAFKA_PURGE_F_INFLIGHT
                                  | RD_KAFKA_PURGE_F_NON_BLOCKING);

            /* the reports of what was purged free their records */

            for (i = 0; i < 50 && rd_kafka_outq_len(prod->handle->rk); i++)
            {
                (void) rd_kafka_poll(prod->handle->rk, 100);
            }

            while (rd_kafka_poll(prod->handle->rk, 0) > 0) {
                /* void */
            }

            prod->handle->owner = NULL;
            ngx_gravitee_kafka_handle_unref(prod->handle);
            ngx_free(prod);
        }
    }

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;

    (void) pthread_mutex_lock(&ngx_gravitee_kafka_lock);

    while (ngx_gravitee_kafka_threads) {
        if (pthread_cond_timedwait(&ngx_gravitee_kafka_done,
                                   &ngx_gravitee_kafka_lock, &ts)
            != 0)
        {
            break;
        }
    }

    (void) pthread_mutex_unlock(&ngx_gravitee_kafka_lock);

    /* handles dropped but not yet destroyed: their events will not run */

    /*
     * what nothing refers to goes now; a handle whose records some client
     * still holds at the exit keeps librdkafka's memory, not its fd
     */

    for (q = ngx_queue_head(&ngx_gravitee_kafka_all);
         q != ngx_queue_sentinel(&ngx_gravitee_kafka_all);
         q = next)
    {
        next = ngx_queue_next(q);
        h = ngx_queue_data(q, ngx_gravitee_kafka_handle_t, link);

        if (h->refs == 0) {
            ngx_gravitee_kafka_handle_drop(&h->drop);
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                       "kafka %s: %ui references at the exit",
                       rd_kafka_name(h->rk), h->refs);

        ngx_gravitee_wakeup_close(&h->wakeup);

        kept = 1;
    }

    if (kept) {
        ngx_gravitee_kafka_pin(cycle->log);
    }
}


/*
 * A handle kept at the exit keeps its librdkafka threads running until
 * the process ends; but NGINX unloads the module when it destroys the
 * cycle, after this, and librdkafka with it: a thread of it would then
 * run unmapped code (a SIGSEGV of the exiting worker).  Both are marked
 * never to be unloaded.
 */

static void
ngx_gravitee_kafka_pin(ngx_log_t *log)
{
    void        *code[2];
    Dl_info      info;
    ngx_uint_t   i;

    code[0] = (void *) rd_kafka_version;
    code[1] = (void *) ngx_gravitee_kafka_pin;

    for (i = 0; i < 2; i++) {
        if (dladdr(code[i], &info) == 0 || info.dli_fname == NULL) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "kafka: no shared object found to keep loaded at "
                          "the exit");
            continue;
        }

        /* a reference for the rest of the process: never closed */

        if (dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)
            == NULL)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "kafka: keeping \"%s\" loaded at the exit "
                          "failed: %s", info.dli_fname, dlerror());
        }
    }
}
