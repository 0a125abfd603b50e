
/*
 * ngx_gravitee_module: the MQTT endpoint (MQTT 5 and 3.1.1, paho.mqtt.c's
 * asynchronous client).
 *
 * Each worker keeps one connection per connection settings (server,
 * version, credentials, TLS, client id prefix), shared by every location
 * that uses them.  Each distinct topic filter its clients ask for (a
 * static topic= or one made from the request's variables) is one MQTT
 * subscription on it and one shared source of the core: subscribed when
 * its first client comes, unsubscribed and freed "linger" after its last
 * one left.  A message is stored once and fanned out to the sources it
 * was sent for: the subscription identifiers of MQTT 5 say which; on
 * 3.1.1, every source whose filter matches its topic.
 *
 * paho runs its own threads; its callbacks only copy what they were told
 * into an event and hand it to the event loop (ngx_gravitee_thread_post).
 * Calls into paho from the event loop only queue commands for its
 * threads: nothing waits on the network.  Requests are matched to their
 * answers by paho's tokens, so nothing of ours is pointed to by paho and
 * a client that leaves frees its state at once.  The client is destroyed
 * at the worker's exit only (paho joins its threads there).
 *
 * MQTT keeps no history: a message has no id and no position, and a
 * client that asks to resume from a position is refused with 400.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <MQTTAsync.h>
#include "ngx_gravitee_connector.h"
#include "ngx_gravitee_source.h"
#include "ngx_gravitee_worker.h"


#define NGX_GRAVITEE_MQTT_V311         4     /* paho's MQTTVERSION_3_1_1 */
#define NGX_GRAVITEE_MQTT_V5           5

#define NGX_GRAVITEE_MQTT_IDLE         0
#define NGX_GRAVITEE_MQTT_CONNECTING   1
#define NGX_GRAVITEE_MQTT_UP           2
#define NGX_GRAVITEE_MQTT_DOWN         3

/* what paho told, on its thread */
#define NGX_GRAVITEE_MQTT_EV_CONNECTED   1
#define NGX_GRAVITEE_MQTT_EV_FAILED      2
#define NGX_GRAVITEE_MQTT_EV_LOST        3
#define NGX_GRAVITEE_MQTT_EV_MESSAGE     4
#define NGX_GRAVITEE_MQTT_EV_SUBACK      5
#define NGX_GRAVITEE_MQTT_EV_PUBLISHED   6

/* a subscriber and the retained messages (sub->endpoint_data) */
#define NGX_GRAVITEE_MQTT_LIVE         0     /* retained ones not for it */
#define NGX_GRAVITEE_MQTT_JOINING      1     /* wants them, no SUBSCRIBE
                                                sent for it yet */
#define NGX_GRAVITEE_MQTT_ASKED        2     /* SUBSCRIBE sent for it */
#define NGX_GRAVITEE_MQTT_RETAINED     3     /* SUBACK came: retained
                                                messages are for it */

#define NGX_GRAVITEE_MQTT_AGAIN        100   /* ms between two SUBSCRIBEs
                                                of one topic for joiners */
#define NGX_GRAVITEE_MQTT_BACKOFF_MIN  1000
#define NGX_GRAVITEE_MQTT_BACKOFF_MAX  30000


typedef struct ngx_gravitee_mqtt_conn_s  ngx_gravitee_mqtt_conn_t;


typedef struct {
    ngx_str_t                        server;
    ngx_str_t                        topic;
    ngx_str_t                        publish_topic;
    ngx_uint_t                       qos;
    ngx_str_t                        version_text;
    ngx_uint_t                       version;
    ngx_flag_t                       retain;
    ngx_flag_t                       retained_on_subscribe;
    ngx_str_t                        client_id_prefix;
    ngx_msec_t                       session_expiry;
    ngx_str_t                        username;
    ngx_str_t                        password;
    ngx_str_t                        password_file;
    ngx_flag_t                       tls;
    ngx_str_t                        ca_file;
    ngx_str_t                        cert_file;
    ngx_str_t                        key_file;
    ngx_msec_t                       message_expiry;
    ngx_str_t                        response_topic;
    ngx_msec_t                       keepalive;
    ngx_msec_t                       publish_timeout;
    ngx_msec_t                       linger;     /* topic_linger */

    ngx_http_complex_value_t        *topic_cv;
    ngx_http_complex_value_t        *publish_cv;
    ngx_uint_t                       topic_marks;   /* '/', '+', '#' in the
                                                       static text */
    ngx_uint_t                       publish_marks;
    unsigned                         publish_wild:1;

    ngx_str_t                        conn_key;
    ngx_gravitee_mqtt_conn_t        *conn;       /* this worker's */
} ngx_gravitee_mqtt_conf_t;


struct ngx_gravitee_mqtt_conn_s {
    ngx_queue_t                      queue;      /* the worker's */
    ngx_str_t                        key;
    ngx_gravitee_mqtt_conf_t        *conf;       /* its settings */
    MQTTAsync                        client;
    char                            *uri;
    char                            *client_id;
    ngx_log_t                       *log;

    ngx_uint_t                       state;
    ngx_event_t                      retry;
    ngx_msec_t                       backoff;
    ngx_uint_t                       attempts;

    ngx_queue_t                      topics;     /* ngx_gravitee_mqtt_topic_t */
    ngx_rbtree_t                     by_id;      /* the same, by MQTT 5
                                                    subscription id */
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      pubs;       /* ngx_gravitee_mqtt_pub_t */
    int                              next_sub_id;

    u_char                           error[256]; /* why it cannot connect */
    size_t                           error_len;
    unsigned                         fatal:1;    /* credentials, TLS: told
                                                    to the clients */

    pthread_mutex_t                  lock;       /* tls_error: paho's */
    char                             tls_error[160];
};


/* one subscription of the connection, and its clients */

typedef struct {
    ngx_gravitee_source_t            source;     /* first: the core's */
    ngx_queue_t                      link;       /* in conn->topics */
    ngx_rbtree_node_t                node;       /* in conn->by_id */
    ngx_gravitee_mqtt_conn_t        *conn;
    ngx_gravitee_mqtt_conf_t        *conf;
    char                            *filter;
    int                              sub_id;
    MQTTAsync_token                  token;      /* SUBSCRIBE in flight */
    ngx_event_t                      again;      /* the next SUBSCRIBE for
                                                    clients that joined */
    unsigned                         asking:1;
} ngx_gravitee_mqtt_topic_t;


typedef struct {
    ngx_queue_t                      queue;      /* in conn->pubs */
    ngx_gravitee_pub_t              *pub;
    ngx_gravitee_mqtt_conn_t        *conn;
    ngx_gravitee_mqtt_conf_t        *conf;     /* the location's */
    MQTTAsync_token                  token;
    ngx_event_t                      timer;
    unsigned                         sent:1;
    u_char                           error[128];
} ngx_gravitee_mqtt_pub_t;


/* what a client's request made of topic= and publish_topic= */

typedef struct {
    ngx_str_t                        filter;
    ngx_str_t                        publish;
} ngx_gravitee_mqtt_bind_t;


typedef struct {
    ngx_gravitee_task_t              task;
    ngx_gravitee_mqtt_conn_t        *conn;
    ngx_uint_t                       kind;
    MQTTAsync_token                  token;
    int                              code;       /* paho's */
    int                              reason;     /* MQTT's reason code */
    char                            *topic;      /* a message: paho's */
    MQTTAsync_message               *msg;
    char                             text[192];
} ngx_gravitee_mqtt_event_t;


static void *ngx_gravitee_mqtt_create_conf(ngx_conf_t *cf);
static char *ngx_gravitee_mqtt_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_gravitee_mqtt_compile(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cvp);
static ngx_uint_t ngx_gravitee_mqtt_marks(ngx_str_t *s);
static char *ngx_gravitee_mqtt_read_password(ngx_conf_t *cf,
    ngx_gravitee_mqtt_conf_t *mcf);
static ngx_int_t ngx_gravitee_mqtt_check_position(void *conf, ngx_str_t *pos,
    ngx_pool_t *pool, ngx_str_t *error);
static ngx_int_t ngx_gravitee_mqtt_init_process(ngx_cycle_t *cycle,
    void *conf);
static void ngx_gravitee_mqtt_exit_process(ngx_cycle_t *cycle, void *conf);
static ngx_gravitee_mqtt_conn_t *ngx_gravitee_mqtt_conn(
    ngx_gravitee_mqtt_conf_t *mcf);
static void ngx_gravitee_mqtt_connect(ngx_gravitee_mqtt_conn_t *mc);
static void ngx_gravitee_mqtt_retry(ngx_event_t *ev);
static void ngx_gravitee_mqtt_down(ngx_gravitee_mqtt_conn_t *mc,
    ngx_uint_t fatal);
static ngx_gravitee_message_t *ngx_gravitee_mqtt_error_message(
    ngx_gravitee_mqtt_conn_t *mc, ngx_log_t *log);
static void ngx_gravitee_mqtt_run(void *data);
static void ngx_gravitee_mqtt_connected(ngx_gravitee_mqtt_conn_t *mc);
static void ngx_gravitee_mqtt_failed(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev);
static void ngx_gravitee_mqtt_arrived(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev);
static ngx_gravitee_mqtt_topic_t *ngx_gravitee_mqtt_topic_by_id(
    ngx_gravitee_mqtt_conn_t *mc, int id);
static ngx_int_t ngx_gravitee_mqtt_deliver(ngx_gravitee_mqtt_topic_t *t,
    ngx_gravitee_mqtt_event_t *ev, ngx_gravitee_message_t **msg);
static ngx_gravitee_message_t *ngx_gravitee_mqtt_message(
    ngx_gravitee_mqtt_event_t *ev, ngx_log_t *log);
static void ngx_gravitee_mqtt_release(void *data);
static void ngx_gravitee_mqtt_suback(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev);
static void ngx_gravitee_mqtt_ask_again(ngx_event_t *ev);
static void ngx_gravitee_mqtt_published(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev);
static ngx_gravitee_mqtt_topic_t *ngx_gravitee_mqtt_topic_asking(
    ngx_gravitee_mqtt_conn_t *mc, MQTTAsync_token token);
static ngx_gravitee_mqtt_pub_t *ngx_gravitee_mqtt_pub_sent(
    ngx_gravitee_mqtt_conn_t *mc, MQTTAsync_token token);
static ngx_uint_t ngx_gravitee_mqtt_match(const char *filter,
    const char *topic, size_t len);

static ngx_int_t ngx_gravitee_mqtt_subscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static void ngx_gravitee_mqtt_unsubscribe(void *conf,
    ngx_gravitee_sub_t *sub);
static ngx_int_t ngx_gravitee_mqtt_source_start(ngx_gravitee_source_t *src);
static void ngx_gravitee_mqtt_source_stop(ngx_gravitee_source_t *src);
static ngx_uint_t ngx_gravitee_mqtt_accept(ngx_gravitee_source_t *src,
    ngx_gravitee_sub_t *sub, ngx_gravitee_message_t *msg);
static ngx_gravitee_message_t *ngx_gravitee_mqtt_source_failure(
    ngx_gravitee_source_t *src);
static void ngx_gravitee_mqtt_source_free(ngx_gravitee_source_t *src);
static void ngx_gravitee_mqtt_ask(ngx_gravitee_mqtt_topic_t *t);

static ngx_int_t ngx_gravitee_mqtt_bind(void *conf, ngx_http_request_t *r,
    ngx_uint_t what, void **binding, ngx_str_t *error);
static ngx_int_t ngx_gravitee_mqtt_resolve(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_uint_t marks, ngx_str_t *value,
    ngx_str_t *error);
static void ngx_gravitee_mqtt_unbind(void *conf, void *binding);
static ngx_int_t ngx_gravitee_mqtt_publish(void *conf,
    ngx_gravitee_pub_t *pub);
static ngx_int_t ngx_gravitee_mqtt_send(ngx_gravitee_mqtt_pub_t *mp);
static void ngx_gravitee_mqtt_answer(ngx_gravitee_mqtt_pub_t *mp,
    ngx_uint_t status, const char *text);
static void ngx_gravitee_mqtt_pub_timeout(ngx_event_t *ev);
static void ngx_gravitee_mqtt_pub_free(ngx_gravitee_mqtt_pub_t *mp);
static void ngx_gravitee_mqtt_cancel(void *conf, ngx_gravitee_pub_t *pub);

/* paho's threads */
static void ngx_gravitee_mqtt_on_connect(void *context,
    MQTTAsync_successData *response);
static void ngx_gravitee_mqtt_on_connect5(void *context,
    MQTTAsync_successData5 *response);
static void ngx_gravitee_mqtt_on_connect_failure(void *context,
    MQTTAsync_failureData *response);
static void ngx_gravitee_mqtt_on_connect_failure5(void *context,
    MQTTAsync_failureData5 *response);
static void ngx_gravitee_mqtt_on_lost(void *context, char *cause);
static int ngx_gravitee_mqtt_on_message(void *context, char *topic,
    int topic_len, MQTTAsync_message *msg);
static void ngx_gravitee_mqtt_on_suback(void *context,
    MQTTAsync_successData *response);
static void ngx_gravitee_mqtt_on_suback5(void *context,
    MQTTAsync_successData5 *response);
static void ngx_gravitee_mqtt_on_sub_failure(void *context,
    MQTTAsync_failureData *response);
static void ngx_gravitee_mqtt_on_sub_failure5(void *context,
    MQTTAsync_failureData5 *response);
static void ngx_gravitee_mqtt_on_sent(void *context,
    MQTTAsync_successData *response);
static void ngx_gravitee_mqtt_on_sent5(void *context,
    MQTTAsync_successData5 *response);
static void ngx_gravitee_mqtt_on_send_failure(void *context,
    MQTTAsync_failureData *response);
static void ngx_gravitee_mqtt_on_send_failure5(void *context,
    MQTTAsync_failureData5 *response);
static int ngx_gravitee_mqtt_on_tls_error(const char *str, size_t len,
    void *u);
static void ngx_gravitee_mqtt_post(ngx_gravitee_mqtt_conn_t *mc,
    ngx_uint_t kind, MQTTAsync_token token, int code, int reason,
    const char *text);


static ngx_gravitee_param_t  ngx_gravitee_mqtt_params[] = {

    { ngx_string("server"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, server), NULL },

    { ngx_string("topic"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, topic), NULL },

    { ngx_string("publish_topic"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, publish_topic), NULL },

    { ngx_string("qos"), ngx_gravitee_param_num,
      offsetof(ngx_gravitee_mqtt_conf_t, qos), NULL },

    { ngx_string("version"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, version_text), NULL },

    { ngx_string("retain"), ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_mqtt_conf_t, retain), NULL },

    { ngx_string("retained_on_subscribe"), ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_mqtt_conf_t, retained_on_subscribe), NULL },

    { ngx_string("client_id_prefix"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, client_id_prefix), NULL },

    { ngx_string("session_expiry"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mqtt_conf_t, session_expiry), NULL },

    { ngx_string("username"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, username), NULL },

    { ngx_string("password"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, password), NULL },

    { ngx_string("password_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, password_file), NULL },

    { ngx_string("tls"), ngx_gravitee_param_flag,
      offsetof(ngx_gravitee_mqtt_conf_t, tls), NULL },

    { ngx_string("ca_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, ca_file), NULL },

    { ngx_string("cert_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, cert_file), NULL },

    { ngx_string("key_file"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, key_file), NULL },

    { ngx_string("message_expiry"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mqtt_conf_t, message_expiry), NULL },

    { ngx_string("response_topic"), ngx_gravitee_param_str,
      offsetof(ngx_gravitee_mqtt_conf_t, response_topic), NULL },

    { ngx_string("keepalive"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mqtt_conf_t, keepalive), NULL },

    { ngx_string("publish_timeout"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mqtt_conf_t, publish_timeout), NULL },

    { ngx_string("topic_linger"), ngx_gravitee_param_msec,
      offsetof(ngx_gravitee_mqtt_conf_t, linger), NULL },

      ngx_gravitee_null_param
};


ngx_gravitee_endpoint_t  ngx_gravitee_mqtt_endpoint = {
    ngx_string("mqtt"),
    ngx_gravitee_mqtt_params,
    NGX_MAX_SIZE_T_VALUE,       /* any position is refused, with a reason */
    ngx_gravitee_mqtt_check_position,
    ngx_gravitee_mqtt_create_conf,
    ngx_gravitee_mqtt_init_conf,
    ngx_gravitee_mqtt_subscribe,
    ngx_gravitee_mqtt_unsubscribe,
    NULL,
    ngx_gravitee_mqtt_bind,
    ngx_gravitee_mqtt_unbind,
    ngx_gravitee_mqtt_publish,
    ngx_gravitee_mqtt_cancel,
    ngx_gravitee_mqtt_init_process,
    ngx_gravitee_mqtt_exit_process,
    NULL
};


static ngx_gravitee_source_ops_t  ngx_gravitee_mqtt_source_ops = {
    ngx_gravitee_mqtt_source_start,
    ngx_gravitee_mqtt_source_stop,
    ngx_gravitee_mqtt_accept,
    ngx_gravitee_mqtt_source_failure,
    ngx_gravitee_mqtt_source_free
};


static ngx_queue_t  ngx_gravitee_mqtt_conns = {
    &ngx_gravitee_mqtt_conns, &ngx_gravitee_mqtt_conns
};

static ngx_uint_t  ngx_gravitee_mqtt_initialized;
static ngx_uint_t  ngx_gravitee_mqtt_exiting;
static ngx_uint_t  ngx_gravitee_mqtt_nconns;    /* a client id apart */


/* configuration */

static void *
ngx_gravitee_mqtt_create_conf(ngx_conf_t *cf)
{
    ngx_gravitee_mqtt_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_gravitee_mqtt_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->qos = NGX_CONF_UNSET_UINT;
    mcf->retain = NGX_CONF_UNSET;
    mcf->retained_on_subscribe = NGX_CONF_UNSET;
    mcf->session_expiry = NGX_CONF_UNSET_MSEC;
    mcf->tls = NGX_CONF_UNSET;
    mcf->message_expiry = NGX_CONF_UNSET_MSEC;
    mcf->keepalive = NGX_CONF_UNSET_MSEC;
    mcf->publish_timeout = NGX_CONF_UNSET_MSEC;
    mcf->linger = NGX_CONF_UNSET_MSEC;

    return mcf;
}


static char *
ngx_gravitee_mqtt_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    u_char     *p;
    ngx_str_t  *pub;

    if (mcf->server.len == 0 || ngx_strlchr(mcf->server.data,
                                            mcf->server.data
                                            + mcf->server.len, ':')
                                == NULL)
    {
        return "needs server=HOST:PORT";
    }

    if (mcf->topic.len == 0) {
        return "needs topic=FILTER";
    }

    ngx_conf_init_uint_value(mcf->qos, 1);

    if (mcf->qos > 2) {
        return "has qos= other than 0, 1 or 2";
    }

    if (mcf->version_text.len == 0
        || (mcf->version_text.len == 1 && mcf->version_text.data[0] == '5'))
    {
        mcf->version = NGX_GRAVITEE_MQTT_V5;

    } else if (mcf->version_text.len == 5
               && ngx_strncmp(mcf->version_text.data, "3.1.1", 5) == 0)
    {
        mcf->version = NGX_GRAVITEE_MQTT_V311;

    } else {
        return "has version= other than 5 or 3.1.1";
    }

    ngx_conf_init_value(mcf->retain, 0);
    ngx_conf_init_value(mcf->retained_on_subscribe, 1);
    ngx_conf_init_msec_value(mcf->session_expiry, 0);
    ngx_conf_init_value(mcf->tls, 0);
    ngx_conf_init_msec_value(mcf->message_expiry, 0);
    ngx_conf_init_msec_value(mcf->keepalive, 30000);
    ngx_conf_init_msec_value(mcf->publish_timeout, 30000);
    ngx_conf_init_msec_value(mcf->linger, 5000);

    if (mcf->client_id_prefix.len == 0) {
        ngx_str_set(&mcf->client_id_prefix, "gravitee-nginx-");
    }

    if (mcf->keepalive < 1000) {
        return "has keepalive= under 1s";
    }

    if ((mcf->cert_file.len == 0) != (mcf->key_file.len == 0)) {
        return "needs both cert_file= and key_file=, or neither";
    }

    if (!mcf->tls && (mcf->ca_file.len || mcf->cert_file.len)) {
        return "has ca_file= or cert_file= without tls=on";
    }

    if (mcf->password.len && mcf->password_file.len) {
        return "has both password= and password_file=";
    }

    if (mcf->password_file.len
        && ngx_gravitee_mqtt_read_password(cf, mcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_strlchr(mcf->topic.data, mcf->topic.data + mcf->topic.len, '#')
        && mcf->topic.data[mcf->topic.len - 1] != '#')
    {
        return "has topic= with \"#\" elsewhere than at its end";
    }

    pub = mcf->publish_topic.len ? &mcf->publish_topic : &mcf->topic;

    mcf->publish_wild = (ngx_strlchr(pub->data, pub->data + pub->len, '+')
                         || ngx_strlchr(pub->data, pub->data + pub->len, '#'));

    if (mcf->publish_topic.len && mcf->publish_wild) {
        return "has publish_topic= with a wildcard";
    }

    mcf->topic_marks = ngx_gravitee_mqtt_marks(&mcf->topic);
    mcf->publish_marks = ngx_gravitee_mqtt_marks(pub);

    if (ngx_gravitee_mqtt_compile(cf, &mcf->topic, &mcf->topic_cv)
        != NGX_CONF_OK
        || ngx_gravitee_mqtt_compile(cf, pub, &mcf->publish_cv)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* what a connection is shared by: every setting of the connection */

    mcf->conn_key.len = mcf->server.len + mcf->username.len
                        + mcf->password.len + mcf->ca_file.len
                        + mcf->cert_file.len + mcf->key_file.len
                        + mcf->client_id_prefix.len + 8 + 3 * NGX_INT_T_LEN;

    mcf->conn_key.data = ngx_pnalloc(cf->pool, mcf->conn_key.len);
    if (mcf->conn_key.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(mcf->conn_key.data, "%V\n%V\n%V\n%V\n%V\n%V\n%V\n%ui %ui %M",
                    &mcf->server, &mcf->username, &mcf->password,
                    &mcf->ca_file, &mcf->cert_file, &mcf->key_file,
                    &mcf->client_id_prefix, mcf->version, mcf->tls,
                    mcf->keepalive + mcf->session_expiry * 7);

    mcf->conn_key.len = p - mcf->conn_key.data;

    return NGX_CONF_OK;
}


static char *
ngx_gravitee_mqtt_compile(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cvp)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    *cvp = cv;

    return NGX_CONF_OK;
}


/*
 * The levels and wildcards of a topic: a variable's value adds some if it
 * holds any, since variable names hold none of '/', '+', '#'.
 */

static ngx_uint_t
ngx_gravitee_mqtt_marks(ngx_str_t *s)
{
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '/' || s->data[i] == '+' || s->data[i] == '#') {
            n++;
        }
    }

    return n;
}


/* read when the configuration is: the first line, without its end */

static char *
ngx_gravitee_mqtt_read_password(ngx_conf_t *cf, ngx_gravitee_mqtt_conf_t *mcf)
{
    u_char     *p, *end;
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_str_t   name;

    name = mcf->password_file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "mqtt password_file \"%V\" cannot be opened",
                           &name);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, 1024);
    if (p == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = read(fd, p, 1024);
    (void) ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "mqtt password_file \"%V\" cannot be read", &name);
        return NGX_CONF_ERROR;
    }

    end = p;
    while (end < p + n && *end != CR && *end != LF) {
        end++;
    }

    mcf->password.data = p;
    mcf->password.len = end - p;

    return NGX_CONF_OK;
}


/* MQTT keeps no history: a position cannot be resumed from, say so */

static ngx_int_t
ngx_gravitee_mqtt_check_position(void *conf, ngx_str_t *pos,
    ngx_pool_t *pool, ngx_str_t *error)
{
    ngx_str_set(error, "The MQTT endpoint cannot resume from a position: "
                       "MQTT keeps no history");
    return NGX_DECLINED;
}


/* the worker's connection, made when the worker starts */

static ngx_int_t
ngx_gravitee_mqtt_init_process(ngx_cycle_t *cycle, void *conf)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    MQTTAsync_init_options  init = MQTTAsync_init_options_initializer;

    if (!ngx_gravitee_mqtt_initialized) {
        /* NGINX initialised OpenSSL already */
        init.do_openssl_init = 0;
        MQTTAsync_global_init(&init);

        /*
         * At paho's default trace level ("minimum") every entry to and
         * exit from its functions is recorded in an in-memory trace ring,
         * under a lock, and its minimum-level log lines are formatted
         * into it, though nothing reads the ring unless tracing was asked
         * for: about a fifth of its receive thread's time per message.
         * Errors only, unless MQTT_C_CLIENT_TRACE or _LEVEL was passed on
         * with "env".
         */
        if (getenv("MQTT_C_CLIENT_TRACE") == NULL
            && getenv("MQTT_C_CLIENT_TRACE_LEVEL") == NULL)
        {
            MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
        }

        ngx_gravitee_mqtt_initialized = 1;
        ngx_gravitee_mqtt_exiting = 0;
    }

    if (ngx_gravitee_mqtt_conn(mcf) == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_gravitee_mqtt_conn_t *
ngx_gravitee_mqtt_conn(ngx_gravitee_mqtt_conf_t *mcf)
{
    int                        rc;
    u_char                    *p;
    size_t                     len;
    ngx_queue_t               *q;
    ngx_gravitee_mqtt_conn_t  *mc;
    MQTTAsync_createOptions    create = MQTTAsync_createOptions_initializer;

    if (mcf->conn) {
        return mcf->conn;
    }

    for (q = ngx_queue_head(&ngx_gravitee_mqtt_conns);
         q != ngx_queue_sentinel(&ngx_gravitee_mqtt_conns);
         q = ngx_queue_next(q))
    {
        mc = ngx_queue_data(q, ngx_gravitee_mqtt_conn_t, queue);

        if (mc->key.len == mcf->conn_key.len
            && ngx_memcmp(mc->key.data, mcf->conn_key.data, mc->key.len)
               == 0)
        {
            mcf->conn = mc;
            return mc;
        }
    }

    len = sizeof(ngx_gravitee_mqtt_conn_t) + sizeof("ssl://") + mcf->server.len
          + mcf->client_id_prefix.len + ngx_cycle->hostname.len
          + 2 * NGX_INT_T_LEN + 3;

    mc = ngx_calloc(len, ngx_cycle->log);
    if (mc == NULL) {
        return NULL;
    }

    p = (u_char *) &mc[1];
    mc->uri = (char *) p;
    p = ngx_sprintf(p, "%s%V%Z", mcf->tls ? "ssl://" : "tcp://",
                    &mcf->server);

    /* unique per worker and host: two never take each other's place */
    mc->client_id = (char *) p;
    (void) ngx_sprintf(p, "%V%V-%P-%ui%Z", &mcf->client_id_prefix,
                       &ngx_cycle->hostname, ngx_pid,
                       ngx_gravitee_mqtt_nconns++);

    mc->key = mcf->conn_key;
    mc->conf = mcf;
    mc->log = ngx_cycle->log;
    mc->next_sub_id = 1;
    ngx_queue_init(&mc->topics);
    ngx_rbtree_init(&mc->by_id, &mc->sentinel, ngx_rbtree_insert_value);
    ngx_queue_init(&mc->pubs);
    (void) pthread_mutex_init(&mc->lock, NULL);

    mc->retry.handler = ngx_gravitee_mqtt_retry;
    mc->retry.data = mc;
    mc->retry.log = mc->log;
    mc->retry.cancelable = 1;

    create.MQTTVersion = (mcf->version == NGX_GRAVITEE_MQTT_V5)
                         ? MQTTVERSION_5 : MQTTVERSION_3_1_1;

    /* never a file: persistence off */
    rc = MQTTAsync_createWithOptions(&mc->client, mc->uri, mc->client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                     &create);
    if (rc != MQTTASYNC_SUCCESS) {
        ngx_log_error(NGX_LOG_EMERG, mc->log, 0,
                      "mqtt: client for %s cannot be made: %s", mc->uri,
                      MQTTAsync_strerror(rc));
        ngx_free(mc);
        return NULL;
    }

    rc = MQTTAsync_setCallbacks(mc->client, mc, ngx_gravitee_mqtt_on_lost,
                                ngx_gravitee_mqtt_on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        ngx_log_error(NGX_LOG_EMERG, mc->log, 0,
                      "mqtt: MQTTAsync_setCallbacks() failed: %s",
                      MQTTAsync_strerror(rc));
        MQTTAsync_destroy(&mc->client);
        ngx_free(mc);
        return NULL;
    }

    ngx_queue_insert_tail(&ngx_gravitee_mqtt_conns, &mc->queue);
    mcf->conn = mc;

    ngx_gravitee_mqtt_connect(mc);

    return mc;
}


/* queued for paho's thread: nothing here waits on the network */

static void
ngx_gravitee_mqtt_connect(ngx_gravitee_mqtt_conn_t *mc)
{
    int                        rc;
    MQTTProperties             props = MQTTProperties_initializer;
    MQTTProperty               prop;
    ngx_gravitee_mqtt_conf_t  *mcf;
    MQTTAsync_SSLOptions       ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_connectOptions   opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions   opts5 = MQTTAsync_connectOptions_initializer5;

    mcf = mc->conf;

    if (mcf->version == NGX_GRAVITEE_MQTT_V5) {
        opts = opts5;
        opts.cleanstart = (mcf->session_expiry == 0);
        opts.onSuccess5 = ngx_gravitee_mqtt_on_connect5;
        opts.onFailure5 = ngx_gravitee_mqtt_on_connect_failure5;

        if (mcf->session_expiry) {
            prop.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
            prop.value.integer4 = mcf->session_expiry / 1000;
            (void) MQTTProperties_add(&props, &prop);
            opts.connectProperties = &props;
        }

    } else {
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        opts.cleansession = (mcf->session_expiry == 0);
        opts.onSuccess = ngx_gravitee_mqtt_on_connect;
        opts.onFailure = ngx_gravitee_mqtt_on_connect_failure;
    }

    opts.keepAliveInterval = mcf->keepalive / 1000;
    opts.connectTimeout = 10;
    opts.context = mc;
    opts.automaticReconnect = 0;        /* ours, with the event loop's
                                           timer and one log line each */

    /* the strings are copied by paho's connect */
    opts.username = mcf->username.len ? (char *) mcf->username.data : NULL;
    opts.password = mcf->password.len ? (char *) mcf->password.data : NULL;

    if (mcf->tls) {
        ssl.trustStore = mcf->ca_file.len ? (char *) mcf->ca_file.data : NULL;
        ssl.keyStore = mcf->cert_file.len ? (char *) mcf->cert_file.data
                                          : NULL;
        ssl.privateKey = mcf->key_file.len ? (char *) mcf->key_file.data
                                           : NULL;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        ssl.ssl_error_cb = ngx_gravitee_mqtt_on_tls_error;
        ssl.ssl_error_context = mc;
        opts.ssl = &ssl;
    }

    mc->state = NGX_GRAVITEE_MQTT_CONNECTING;
    mc->attempts++;

    (void) pthread_mutex_lock(&mc->lock);
    mc->tls_error[0] = '\0';
    (void) pthread_mutex_unlock(&mc->lock);

    rc = MQTTAsync_connect(mc->client, &opts);

    MQTTProperties_free(&props);

    if (rc != MQTTASYNC_SUCCESS) {
        mc->error_len = ngx_sprintf(mc->error, "%s",
                                    MQTTAsync_strerror(rc))
                        - mc->error;
        ngx_log_error(NGX_LOG_WARN, mc->log, 0,
                      "mqtt: cannot connect to %s: %s", mc->uri,
                      MQTTAsync_strerror(rc));
        ngx_gravitee_mqtt_down(mc, 0);
    }
}


static void
ngx_gravitee_mqtt_retry(ngx_event_t *ev)
{
    ngx_gravitee_mqtt_conn_t *mc = ev->data;

    if (ngx_gravitee_stopping || ngx_gravitee_mqtt_exiting) {
        return;
    }

    ngx_gravitee_mqtt_connect(mc);
}


/*
 * The broker cannot be reached (or refused us): streams stay and hear the
 * broker is down, or, for credentials and TLS, hear why and end; waiting
 * publications are answered; the next attempt comes after a back-off.
 */

static void
ngx_gravitee_mqtt_down(ngx_gravitee_mqtt_conn_t *mc, ngx_uint_t fatal)
{
    ngx_queue_t                *q, *next;
    ngx_gravitee_message_t     *msg;
    ngx_gravitee_mqtt_pub_t    *mp;
    ngx_gravitee_mqtt_topic_t  *t;

    mc->state = NGX_GRAVITEE_MQTT_DOWN;
    mc->fatal = fatal;

    for (q = ngx_queue_head(&mc->topics);
         q != ngx_queue_sentinel(&mc->topics);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_gravitee_mqtt_topic_t, link);
        t->asking = 0;

        ngx_gravitee_source_state(&t->source, NGX_GRAVITEE_STATE_DOWN);

        if (fatal && !t->source.ended) {
            msg = ngx_gravitee_mqtt_error_message(mc, mc->log);
            ngx_gravitee_source_fail(&t->source, msg);

            if (msg) {
                ngx_gravitee_message_unref(msg);
            }
        }
    }

    for (q = ngx_queue_head(&mc->pubs);
         q != ngx_queue_sentinel(&mc->pubs);
         q = next)
    {
        next = ngx_queue_next(q);
        mp = ngx_queue_data(q, ngx_gravitee_mqtt_pub_t, queue);

        if (!mp->sent) {
            ngx_gravitee_mqtt_answer(mp, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "The MQTT broker cannot be reached");
        }
    }

    if (ngx_gravitee_stopping || ngx_gravitee_mqtt_exiting) {
        return;
    }

    mc->backoff = mc->backoff ? ngx_min(mc->backoff * 2,
                                        NGX_GRAVITEE_MQTT_BACKOFF_MAX)
                              : NGX_GRAVITEE_MQTT_BACKOFF_MIN;

    if (!mc->retry.timer_set) {
        ngx_add_timer(&mc->retry, mc->backoff);
    }
}


/* what a client hears when the broker refuses us: a 503 for HTTP GET */

static ngx_gravitee_message_t *
ngx_gravitee_mqtt_error_message(ngx_gravitee_mqtt_conn_t *mc, ngx_log_t *log)
{
    u_char     buf[320];
    ngx_str_t  text;

    static ngx_str_t  key = ngx_string("FAILURE_ENDPOINT_CONNECTION_REFUSED");

    text.data = buf;
    text.len = ngx_snprintf(buf, sizeof(buf),
                            "The MQTT broker refused the connection: %*s",
                            mc->error_len, mc->error)
               - buf;

    return ngx_gravitee_message_error(log, &text, &key,
                                      NGX_HTTP_SERVICE_UNAVAILABLE);
}


/* on the event loop: what paho's threads told */

static void
ngx_gravitee_mqtt_run(void *data)
{
    ngx_gravitee_mqtt_event_t  *ev = data;

    ngx_gravitee_mqtt_conn_t  *mc;

    mc = ev->conn;

    if (ngx_gravitee_mqtt_exiting) {
        /* the connection is gone: only what the event holds is freed */
        goto done;
    }

    switch (ev->kind) {

    case NGX_GRAVITEE_MQTT_EV_CONNECTED:
        ngx_gravitee_mqtt_connected(mc);
        break;

    case NGX_GRAVITEE_MQTT_EV_FAILED:
    case NGX_GRAVITEE_MQTT_EV_LOST:
        ngx_gravitee_mqtt_failed(mc, ev);
        break;

    case NGX_GRAVITEE_MQTT_EV_MESSAGE:
        ngx_gravitee_mqtt_arrived(mc, ev);
        break;

    case NGX_GRAVITEE_MQTT_EV_SUBACK:
        ngx_gravitee_mqtt_suback(mc, ev);
        break;

    case NGX_GRAVITEE_MQTT_EV_PUBLISHED:
        ngx_gravitee_mqtt_published(mc, ev);
        break;
    }

done:

    if (ev->msg) {
        MQTTAsync_freeMessage(&ev->msg);
    }

    if (ev->topic) {
        MQTTAsync_free(ev->topic);
    }

    free(ev);
}


/* (re)connected: every topic that has clients is asked for again */

static void
ngx_gravitee_mqtt_connected(ngx_gravitee_mqtt_conn_t *mc)
{
    ngx_queue_t                *q;
    ngx_gravitee_mqtt_topic_t  *t;

    ngx_log_error(NGX_LOG_INFO, mc->log, 0,
                  "mqtt: connected to %s as \"%s\"", mc->uri, mc->client_id);

    mc->state = NGX_GRAVITEE_MQTT_UP;
    mc->backoff = 0;
    mc->fatal = 0;
    mc->error_len = 0;

    for (q = ngx_queue_head(&mc->topics);
         q != ngx_queue_sentinel(&mc->topics);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_gravitee_mqtt_topic_t, link);

        if (t->source.ended) {
            /* what a refused connection stuck on it: it may start anew */
            continue;
        }

        ngx_gravitee_source_state(&t->source, NGX_GRAVITEE_STATE_UP);
        t->asking = 0;
        ngx_gravitee_mqtt_ask(t);
    }
}


static void
ngx_gravitee_mqtt_failed(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev)
{
    char        tls[160];
    ngx_uint_t  fatal, level;

    if (ev->kind == NGX_GRAVITEE_MQTT_EV_LOST) {
        if (mc->state != NGX_GRAVITEE_MQTT_UP) {
            return;
        }

        ngx_log_error(NGX_LOG_WARN, mc->log, 0,
                      "mqtt: connection to %s lost: %s; reconnecting",
                      mc->uri, ev->text[0] ? ev->text : "no reason given");

        mc->error_len = ngx_sprintf(mc->error, "connection lost") - mc->error;
        ngx_gravitee_mqtt_down(mc, 0);
        return;
    }

    (void) pthread_mutex_lock(&mc->lock);
    ngx_cpystrn((u_char *) tls, (u_char *) mc->tls_error, sizeof(tls));
    (void) pthread_mutex_unlock(&mc->lock);

    /*
     * credentials refused (3.1.1's return codes 4 and 5, MQTT 5's reason
     * codes 0x86, 0x87, 0x8c), or TLS failed: the clients hear why
     */

    if (ev->reason == 0 && ev->code >= 0x80) {
        /* paho gives MQTT 5's CONNACK reason as its code */
        ev->reason = ev->code;
    }

    fatal = (ev->code == 4 || ev->code == 5
             || ev->reason == MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD
             || ev->reason == MQTTREASONCODE_NOT_AUTHORIZED
             || ev->reason == MQTTREASONCODE_BAD_AUTHENTICATION_METHOD
             || tls[0] != '\0');

    if (tls[0]) {
        mc->error_len = ngx_snprintf(mc->error, sizeof(mc->error),
                                     "TLS: %s", tls)
                        - mc->error;

    } else if (ev->reason >= 0x80) {
        mc->error_len = ngx_snprintf(mc->error, sizeof(mc->error), "%s",
                                     MQTTReasonCode_toString(ev->reason))
                        - mc->error;

    } else if (ev->code == 4) {
        mc->error_len = ngx_sprintf(mc->error, "Bad user name or password")
                        - mc->error;

    } else if (ev->code == 5) {
        mc->error_len = ngx_sprintf(mc->error, "Not authorized") - mc->error;

    } else {
        mc->error_len = ngx_snprintf(mc->error, sizeof(mc->error), "%s",
                                     ev->text[0] ? ev->text
                                                 : "connection failed")
                        - mc->error;
    }

    /* once per attempt, whatever the number of clients */

    level = fatal ? NGX_LOG_ERR : NGX_LOG_WARN;

    ngx_log_error(level, mc->log, 0,
                  "mqtt: cannot connect to %s (attempt %ui): %*s "
                  "(code %d, reason %d); next attempt in %Mms", mc->uri, mc->attempts, mc->error_len,
                  mc->error, ev->code, ev->reason,
                  mc->backoff ? ngx_min(mc->backoff * 2,
                                        NGX_GRAVITEE_MQTT_BACKOFF_MAX)
                              : NGX_GRAVITEE_MQTT_BACKOFF_MIN);

    ngx_gravitee_mqtt_down(mc, fatal);
}


/*
 * A message, to the topics it was sent for: MQTT 5 names their
 * subscription identifiers, found in a tree; on 3.1.1 every filter is
 * matched against the topic.
 */

static void
ngx_gravitee_mqtt_arrived(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev)
{
    int                         i, n;
    ngx_queue_t                *q;
    MQTTProperties             *props;
    ngx_gravitee_message_t     *msg;
    ngx_gravitee_mqtt_topic_t  *t;

    msg = NULL;
    props = &ev->msg->properties;
    n = MQTTProperties_propertyCount(props,
                                     MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);

    if (n > 0) {
        for (i = 0; i < n; i++) {
            t = ngx_gravitee_mqtt_topic_by_id(mc,
                    MQTTProperties_getNumericValueAt(props,
                               MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, i));

            if (t && ngx_gravitee_mqtt_deliver(t, ev, &msg) != NGX_OK) {
                break;
            }
        }

    } else {
        for (q = ngx_queue_head(&mc->topics);
             q != ngx_queue_sentinel(&mc->topics);
             q = ngx_queue_next(q))
        {
            t = ngx_queue_data(q, ngx_gravitee_mqtt_topic_t, link);

            if (ngx_gravitee_mqtt_match(t->filter, ev->topic,
                                        strlen(ev->topic))
                && ngx_gravitee_mqtt_deliver(t, ev, &msg) != NGX_OK)
            {
                break;
            }
        }
    }

    if (msg) {
        ngx_gravitee_message_unref(msg);
    }
}


static ngx_gravitee_mqtt_topic_t *
ngx_gravitee_mqtt_topic_by_id(ngx_gravitee_mqtt_conn_t *mc, int id)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) id;
    node = mc->by_id.root;
    sentinel = mc->by_id.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_gravitee_mqtt_topic_t *)
                   ((u_char *) node - offsetof(ngx_gravitee_mqtt_topic_t,
                                               node));
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


/* the message is made once, for the first topic that has clients */

static ngx_int_t
ngx_gravitee_mqtt_deliver(ngx_gravitee_mqtt_topic_t *t,
    ngx_gravitee_mqtt_event_t *ev, ngx_gravitee_message_t **msg)
{
    if (t->source.nsubs == 0 || t->source.ended) {
        return NGX_OK;
    }

    if (*msg == NULL) {
        *msg = ngx_gravitee_mqtt_message(ev, t->conn->log);
        if (*msg == NULL) {
            return NGX_ERROR;
        }

        /* the message holds paho's payload from now on */
        ev->msg = NULL;
    }

    ngx_gravitee_source_fanout(&t->source, *msg);

    return NGX_OK;
}


/*
 * The payload is not copied: the message wraps paho's, which it frees.
 * User properties become headers; the rest of what MQTT tells, metadata.
 */

static ngx_gravitee_message_t *
ngx_gravitee_mqtt_message(ngx_gravitee_mqtt_event_t *ev, ngx_log_t *log)
{
    int                           i, k, nh, nm;
    u_char                       *p, *last;
    u_char                        buf[3 * NGX_INT_T_LEN + 512];
    MQTTProperty                 *prop;
    MQTTProperties               *props;
    MQTTAsync_message            *m;
    ngx_gravitee_pair_t          *headers, meta[8];
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_message_init_t   init;

    m = ev->msg;
    props = &m->properties;
    p = buf;
    last = buf + sizeof(buf);

    nh = MQTTProperties_propertyCount(props, MQTTPROPERTY_CODE_USER_PROPERTY);

    headers = NULL;

    if (nh > 0) {
        headers = ngx_alloc(nh * sizeof(ngx_gravitee_pair_t), log);
        if (headers == NULL) {
            return NULL;
        }
    }

    for (i = 0, k = 0; i < nh; i++) {
        prop = MQTTProperties_getPropertyAt(props,
                                            MQTTPROPERTY_CODE_USER_PROPERTY,
                                            i);
        if (prop == NULL) {
            continue;
        }

        headers[k].name.data = (u_char *) prop->value.data.data;
        headers[k].name.len = prop->value.data.len;
        headers[k].value.data = (u_char *) prop->value.value.data;
        headers[k].value.len = prop->value.value.len;
        k++;
    }

    nh = k;
    nm = 0;

    ngx_str_set(&meta[nm].name, "topic");
    meta[nm].value.data = (u_char *) ev->topic;
    meta[nm].value.len = strlen(ev->topic);
    nm++;

    ngx_str_set(&meta[nm].name, "qos");
    meta[nm].value.data = p;
    p = ngx_sprintf(p, "%d", m->qos);
    meta[nm].value.len = p - meta[nm].value.data;
    nm++;

    ngx_str_set(&meta[nm].name, "retain");
    if (m->retained) {
        ngx_str_set(&meta[nm].value, "true");
    } else {
        ngx_str_set(&meta[nm].value, "false");
    }
    nm++;

    prop = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_CONTENT_TYPE);
    if (prop) {
        ngx_str_set(&meta[nm].name, "contentType");
        meta[nm].value.data = (u_char *) prop->value.data.data;
        meta[nm].value.len = prop->value.data.len;
        nm++;
    }

    if (MQTTProperties_hasProperty(props,
                                   MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL))
    {
        ngx_str_set(&meta[nm].name, "messageExpiryInterval");
        meta[nm].value.data = p;
        p = ngx_sprintf(p, "%d", MQTTProperties_getNumericValue(props,
                               MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL));
        meta[nm].value.len = p - meta[nm].value.data;
        nm++;
    }

    prop = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
    if (prop) {
        ngx_str_set(&meta[nm].name, "responseTopic");
        meta[nm].value.data = (u_char *) prop->value.data.data;
        meta[nm].value.len = prop->value.data.len;
        nm++;
    }

    prop = MQTTProperties_getProperty(props,
                                      MQTTPROPERTY_CODE_CORRELATION_DATA);
    if (prop) {
        ngx_str_t  src, dst;

        src.data = (u_char *) prop->value.data.data;
        src.len = prop->value.data.len;

        if ((size_t) (last - p) >= ngx_base64_encoded_length(src.len)) {
            dst.data = p;
            ngx_encode_base64(&dst, &src);
            p += dst.len;

            ngx_str_set(&meta[nm].name, "correlationData");
            meta[nm].value = dst;
            nm++;
        }
    }

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));

    init.content.data = m->payload;
    init.content.len = m->payloadlen;
    init.wrap_content = 1;
    init.headers = headers;
    init.nheaders = nh;
    init.metadata = meta;
    init.nmetadata = nm;

    msg = ngx_gravitee_message_create(log, &init);

    if (headers) {
        ngx_free(headers);
    }

    if (msg == NULL) {
        return NULL;
    }

    msg->release = ngx_gravitee_mqtt_release;
    msg->release_data = m;

    return msg;
}


/* the last client let go of the message: paho's payload goes */

static void
ngx_gravitee_mqtt_release(void *data)
{
    MQTTAsync_message  *m = data;

    MQTTAsync_freeMessage(&m);
}


/*
 * A SUBSCRIBE was answered: the clients it was sent for get the retained
 * messages that follow it (the broker sends them after the SUBACK, on the
 * same connection, so they come after it here too); those of the SUBSCRIBE
 * before no longer do.  Clients that came meanwhile need another one.
 */

static void
ngx_gravitee_mqtt_suback(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev)
{
    uintptr_t                   state;
    ngx_uint_t                  joining;
    ngx_queue_t                *q, *next;
    ngx_gravitee_sub_t         *sub;
    ngx_gravitee_message_t     *msg;
    ngx_gravitee_mqtt_topic_t  *t;

    t = ngx_gravitee_mqtt_topic_asking(mc, ev->token);
    if (t == NULL) {
        /* the topic is gone since */
        return;
    }

    t->asking = 0;

    if (ev->code != MQTTASYNC_SUCCESS || ev->reason >= 0x80) {
        /* refused: its clients hear why, and end */
        mc->error_len = ngx_snprintf(mc->error, sizeof(mc->error),
                                     "subscription to \"%s\" refused: %s",
                                     t->filter,
                                     ev->reason >= 0x80
                                     ? MQTTReasonCode_toString(ev->reason)
                                     : (ev->text[0] ? ev->text
                                                    : "failed"))
                        - mc->error;

        ngx_log_error(NGX_LOG_WARN, mc->log, 0, "mqtt: %*s on %s",
                      mc->error_len, mc->error, mc->uri);

        msg = ngx_gravitee_mqtt_error_message(mc, mc->log);
        ngx_gravitee_source_fail(&t->source, msg);

        if (msg) {
            ngx_gravitee_message_unref(msg);
        }

        return;
    }

    joining = 0;

    for (q = ngx_queue_head(&t->source.subs);
         q != ngx_queue_sentinel(&t->source.subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);
        state = (uintptr_t) sub->endpoint_data;

        if (state == NGX_GRAVITEE_MQTT_RETAINED) {
            state = NGX_GRAVITEE_MQTT_LIVE;

        } else if (state == NGX_GRAVITEE_MQTT_ASKED) {
            state = NGX_GRAVITEE_MQTT_RETAINED;

        } else if (state == NGX_GRAVITEE_MQTT_JOINING) {
            joining = 1;
        }

        sub->endpoint_data = (void *) state;
    }

    if (joining && !t->again.timer_set) {
        /*
         * not at once: clients joining at a high rate (a reload storm)
         * share one SUBSCRIBE every NGX_GRAVITEE_MQTT_AGAIN ms at most
         */
        ngx_add_timer(&t->again, NGX_GRAVITEE_MQTT_AGAIN);
    }
}


static void
ngx_gravitee_mqtt_ask_again(ngx_event_t *ev)
{
    ngx_gravitee_mqtt_topic_t *t = ev->data;

    if (t->conn && t->conn->state == NGX_GRAVITEE_MQTT_UP && !t->asking) {
        ngx_gravitee_mqtt_ask(t);
    }
}


static void
ngx_gravitee_mqtt_published(ngx_gravitee_mqtt_conn_t *mc,
    ngx_gravitee_mqtt_event_t *ev)
{
    u_char                    buf[160];
    ngx_gravitee_mqtt_pub_t  *mp;

    mp = ngx_gravitee_mqtt_pub_sent(mc, ev->token);
    if (mp == NULL) {
        /* answered already (timeout), or the client left */
        return;
    }

    if (ev->code == MQTTASYNC_SUCCESS && ev->reason < 0x80) {
        ngx_gravitee_mqtt_answer(mp, NGX_HTTP_OK, NULL);
        return;
    }

    if (ev->reason >= 0x80) {
        /* the broker refused it, with MQTT 5's reason */
        (void) ngx_snprintf(buf, sizeof(buf), "The MQTT broker refused the "
                            "message: %s%Z",
                            MQTTReasonCode_toString(ev->reason));
        ngx_gravitee_mqtt_answer(mp, NGX_HTTP_BAD_GATEWAY, (char *) buf);
        return;
    }

    (void) ngx_snprintf(buf, sizeof(buf), "The MQTT broker did not take the "
                        "message: %s%Z",
                        ev->text[0] ? ev->text : "connection lost");
    ngx_gravitee_mqtt_answer(mp, NGX_HTTP_SERVICE_UNAVAILABLE, (char *) buf);
}


/* the answers of paho are matched to what asked by its token */

static ngx_gravitee_mqtt_topic_t *
ngx_gravitee_mqtt_topic_asking(ngx_gravitee_mqtt_conn_t *mc,
    MQTTAsync_token token)
{
    ngx_queue_t                *q;
    ngx_gravitee_mqtt_topic_t  *t;

    for (q = ngx_queue_head(&mc->topics);
         q != ngx_queue_sentinel(&mc->topics);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_gravitee_mqtt_topic_t, link);

        if (t->asking && t->token == token) {
            return t;
        }
    }

    return NULL;
}


static ngx_gravitee_mqtt_pub_t *
ngx_gravitee_mqtt_pub_sent(ngx_gravitee_mqtt_conn_t *mc,
    MQTTAsync_token token)
{
    ngx_queue_t              *q;
    ngx_gravitee_mqtt_pub_t  *mp;

    for (q = ngx_queue_head(&mc->pubs);
         q != ngx_queue_sentinel(&mc->pubs);
         q = ngx_queue_next(q))
    {
        mp = ngx_queue_data(q, ngx_gravitee_mqtt_pub_t, queue);

        if (mp->sent && mp->token == token) {
            return mp;
        }
    }

    return NULL;
}


/* MQTT's topic matching: "+" one level, "#" the rest, "$" topics apart */

static ngx_uint_t
ngx_gravitee_mqtt_match(const char *filter, const char *topic, size_t len)
{
    const char  *t, *end;

    t = topic;
    end = topic + len;

    if (len && *t == '$' && *filter != '$') {
        return 0;
    }

    while (*filter) {
        if (*filter == '#') {
            return 1;
        }

        if (*filter == '+') {
            while (t < end && *t != '/') {
                t++;
            }

            filter++;

        } else {
            if (t == end || *filter != *t) {
                /* "a/#" matches "a" too */
                return t == end && filter[0] == '/' && filter[1] == '#'
                       && filter[2] == '\0';
            }

            filter++;
            t++;
        }
    }

    return t == end;
}


/* subscribing: one source per connection and filter */

static ngx_int_t
ngx_gravitee_mqtt_subscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    u_char                     *p;
    ngx_int_t                   rc;
    ngx_str_t                   filter, key;
    ngx_gravitee_source_t      *src;
    ngx_gravitee_mqtt_bind_t   *b;
    ngx_gravitee_mqtt_conn_t   *mc;
    ngx_gravitee_mqtt_topic_t  *t;

    mc = ngx_gravitee_mqtt_conn(mcf);
    if (mc == NULL) {
        return NGX_ERROR;
    }

    b = sub->binding;
    filter = (b && b->filter.len) ? b->filter : mcf->topic;

    key.len = mc->key.len + 1 + filter.len;
    key.data = ngx_alloc(key.len, sub->log);
    if (key.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key.data, mc->key.data, mc->key.len);
    *p++ = '\0';
    ngx_memcpy(p, filter.data, filter.len);

    src = ngx_gravitee_source_get(&ngx_gravitee_mqtt_source_ops, &key,
                                  sizeof(ngx_gravitee_mqtt_topic_t),
                                  mcf->linger);
    ngx_free(key.data);

    if (src == NULL) {
        return NGX_ERROR;
    }

    t = (ngx_gravitee_mqtt_topic_t *) src;

    if (t->conn == NULL) {
        t->filter = ngx_alloc(filter.len + 1, sub->log);
        if (t->filter == NULL) {
            src->discard = 1;
            return NGX_ERROR;
        }

        (void) ngx_cpystrn((u_char *) t->filter, filter.data, filter.len + 1);

        t->conn = mc;
        t->conf = mcf;
        t->sub_id = mc->next_sub_id++;

        t->again.handler = ngx_gravitee_mqtt_ask_again;
        t->again.data = t;
        t->again.log = src->log;
        t->again.cancelable = 1;
        ngx_queue_insert_tail(&mc->topics, &t->link);

        t->node.key = (ngx_rbtree_key_t) t->sub_id;
        ngx_rbtree_insert(&mc->by_id, &t->node);
    }

    /* a client that comes gets the retained messages of its topic */
    sub->endpoint_data = (void *) (uintptr_t)
                         (mcf->retained_on_subscribe
                          ? NGX_GRAVITEE_MQTT_JOINING
                          : NGX_GRAVITEE_MQTT_LIVE);

    if (src->ended && src->nsubs == 0 && !src->running) {
        /* what a refused connection stuck on it: start anew */
        ngx_gravitee_source_reset(src);
    }

    if (mc->state == NGX_GRAVITEE_MQTT_DOWN && mc->fatal && !src->ended) {
        /*
         * the broker refuses us (credentials, TLS): the newcomer hears
         * why, from the core's posted event, as those before it did
         */
        src->ended = 1;
        src->failed = 1;
    }

    rc = ngx_gravitee_source_subscribe(src, sub);
    if (rc != NGX_OK) {
        return rc;
    }

    if (mc->state != NGX_GRAVITEE_MQTT_UP && sub->handler->state) {
        sub->handler->state(sub, NGX_GRAVITEE_STATE_DOWN);
    }

    if (mcf->retained_on_subscribe && mc->state == NGX_GRAVITEE_MQTT_UP
        && !t->asking && !t->again.timer_set)
    {
        ngx_gravitee_mqtt_ask(t);
    }

    return NGX_OK;
}


static void
ngx_gravitee_mqtt_unsubscribe(void *conf, ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    ngx_str_t                   filter;
    ngx_queue_t                *q;
    ngx_gravitee_mqtt_bind_t   *b;
    ngx_gravitee_mqtt_topic_t  *t;

    b = sub->binding;
    filter = (b && b->filter.len) ? b->filter : mcf->topic;

    /* the source of this client's filter */

    for (q = ngx_queue_head(&mcf->conn->topics);
         q != ngx_queue_sentinel(&mcf->conn->topics);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_gravitee_mqtt_topic_t, link);

        if (ngx_strlen(t->filter) == filter.len
            && ngx_strncmp(t->filter, filter.data, filter.len) == 0)
        {
            sub->endpoint_data = NULL;
            ngx_gravitee_source_unsubscribe(&t->source, sub);
            return;
        }
    }

    ngx_log_error(NGX_LOG_ALERT, sub->log, 0,
                  "mqtt: unsubscribe from \"%V\" that has no source",
                  &filter);
}


static ngx_int_t
ngx_gravitee_mqtt_source_start(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mqtt_topic_t *t = (ngx_gravitee_mqtt_topic_t *) src;

    ngx_gravitee_source_reset(src);

    if (t->conn->state == NGX_GRAVITEE_MQTT_UP && !t->asking) {
        /* sent once subscribe() has put the first client in */
        ngx_gravitee_mqtt_ask(t);
    }

    return NGX_OK;
}


/* "linger" after the last client: unsubscribed and forgotten */

static void
ngx_gravitee_mqtt_source_stop(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mqtt_topic_t *t = (ngx_gravitee_mqtt_topic_t *) src;

    int                         rc;
    MQTTAsync_responseOptions   opts = MQTTAsync_responseOptions_initializer;

    if (t->conn->state == NGX_GRAVITEE_MQTT_UP && !ngx_gravitee_mqtt_exiting)
    {
        rc = MQTTAsync_unsubscribe(t->conn->client, t->filter, &opts);

        if (rc != MQTTASYNC_SUCCESS) {
            ngx_log_error(NGX_LOG_WARN, src->log, 0,
                          "mqtt: unsubscribe from \"%s\" failed: %s",
                          t->filter, MQTTAsync_strerror(rc));
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, src->log, 0,
                   "mqtt: topic \"%s\" has no client left", t->filter);

    src->discard = 1;
}


/*
 * Retained messages (the retain flag set: sent because of a SUBSCRIBE)
 * go only to the clients that SUBSCRIBE was for; live ones to everybody,
 * and they close the retained window of those that had it.
 */

static ngx_uint_t
ngx_gravitee_mqtt_accept(ngx_gravitee_source_t *src, ngx_gravitee_sub_t *sub,
    ngx_gravitee_message_t *msg)
{
    uintptr_t   state;
    ngx_str_t  *retain;

    static ngx_str_t  name = ngx_string("retain");

    if (msg->error) {
        return 1;
    }

    state = (uintptr_t) sub->endpoint_data;
    retain = ngx_gravitee_message_metadata(msg, &name);

    if (retain && retain->len == 4) {
        return state == NGX_GRAVITEE_MQTT_RETAINED;
    }

    if (state == NGX_GRAVITEE_MQTT_RETAINED) {
        sub->endpoint_data = (void *) NGX_GRAVITEE_MQTT_LIVE;
    }

    return 1;
}


static ngx_gravitee_message_t *
ngx_gravitee_mqtt_source_failure(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mqtt_topic_t *t = (ngx_gravitee_mqtt_topic_t *) src;

    return ngx_gravitee_mqtt_error_message(t->conn, src->log);
}


static void
ngx_gravitee_mqtt_source_free(ngx_gravitee_source_t *src)
{
    ngx_gravitee_mqtt_topic_t *t = (ngx_gravitee_mqtt_topic_t *) src;

    if (t->again.timer_set) {
        ngx_del_timer(&t->again);
    }

    if (t->conn) {
        ngx_queue_remove(&t->link);
        ngx_rbtree_delete(&t->conn->by_id, &t->node);
        t->conn = NULL;
    }

    if (t->filter) {
        ngx_free(t->filter);
        t->filter = NULL;
    }
}


/*
 * SUBSCRIBE, for the first client or again for clients that want the
 * retained messages (the broker sends them at every SUBSCRIBE); MQTT 5
 * tags the messages with the subscription's identifier.
 */

static void
ngx_gravitee_mqtt_ask(ngx_gravitee_mqtt_topic_t *t)
{
    int                         rc;
    uintptr_t                   state;
    ngx_queue_t                *q;
    MQTTProperty                prop;
    ngx_gravitee_sub_t         *sub;
    ngx_gravitee_mqtt_conn_t   *mc;
    MQTTAsync_responseOptions   opts = MQTTAsync_responseOptions_initializer;

    mc = t->conn;

    opts.context = mc;

    if (t->conf->version == NGX_GRAVITEE_MQTT_V5) {
        opts.onSuccess5 = ngx_gravitee_mqtt_on_suback5;
        opts.onFailure5 = ngx_gravitee_mqtt_on_sub_failure5;

        prop.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER;
        prop.value.integer4 = t->sub_id;
        (void) MQTTProperties_add(&opts.properties, &prop);

        opts.subscribeOptions.retainHandling =
                                    t->conf->retained_on_subscribe ? 0 : 2;

    } else {
        opts.onSuccess = ngx_gravitee_mqtt_on_suback;
        opts.onFailure = ngx_gravitee_mqtt_on_sub_failure;
    }

    rc = MQTTAsync_subscribe(mc->client, t->filter, t->conf->qos, &opts);

    MQTTProperties_free(&opts.properties);

    if (rc != MQTTASYNC_SUCCESS) {
        ngx_log_error(NGX_LOG_WARN, t->source.log, 0,
                      "mqtt: subscribe to \"%s\" failed: %s", t->filter,
                      MQTTAsync_strerror(rc));
        return;
    }

    t->token = opts.token;
    t->asking = 1;

    for (q = ngx_queue_head(&t->source.subs);
         q != ngx_queue_sentinel(&t->source.subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_gravitee_sub_t, queue);
        state = (uintptr_t) sub->endpoint_data;

        if (state == NGX_GRAVITEE_MQTT_JOINING) {
            sub->endpoint_data = (void *) NGX_GRAVITEE_MQTT_ASKED;
        }
    }
}


/* topics from the request */

static ngx_int_t
ngx_gravitee_mqtt_bind(void *conf, ngx_http_request_t *r, ngx_uint_t what,
    void **binding, ngx_str_t *error)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    u_char                    *p;
    ngx_int_t                  rc;
    ngx_str_t                  filter, publish;
    ngx_gravitee_mqtt_bind_t  *b;

    ngx_str_null(&filter);
    ngx_str_null(&publish);

    if ((what & NGX_GRAVITEE_BIND_SUBSCRIBE) && mcf->topic_cv->lengths) {
        rc = ngx_gravitee_mqtt_resolve(r, mcf->topic_cv, mcf->topic_marks,
                                       &filter, error);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if ((what & NGX_GRAVITEE_BIND_PUBLISH) && mcf->publish_cv->lengths) {
        rc = ngx_gravitee_mqtt_resolve(r, mcf->publish_cv, mcf->publish_marks,
                                       &publish, error);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (filter.len == 0 && publish.len == 0) {
        /* static topics: nothing kept per client */
        return NGX_OK;
    }

    b = ngx_alloc(sizeof(ngx_gravitee_mqtt_bind_t) + filter.len + publish.len
                  + 1, r->connection->log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) &b[1];

    b->filter.data = p;
    b->filter.len = filter.len;
    p = ngx_cpymem(p, filter.data, filter.len);

    b->publish.data = p;
    b->publish.len = publish.len;
    p = ngx_cpymem(p, publish.data, publish.len);
    *p = '\0';

    *binding = b;

    return NGX_OK;
}


/*
 * A value from the request may not widen the topic: no level, wildcard,
 * NUL or "$" topic of its own (a "$share/" group), whatever it was decoded
 * from.
 */

static ngx_int_t
ngx_gravitee_mqtt_resolve(ngx_http_request_t *r, ngx_http_complex_value_t *cv,
    ngx_uint_t marks, ngx_str_t *value, ngx_str_t *error)
{
    ngx_str_t  bad;

    if (ngx_http_complex_value(r, cv, value) != NGX_OK) {
        return NGX_ERROR;
    }

    bad.len = 0;

    if (value->len == 0) {
        ngx_str_set(&bad, "is empty");

    } else if (ngx_gravitee_mqtt_marks(value) != marks) {
        ngx_str_set(&bad, "adds a level or a wildcard");

    } else if (ngx_strlchr(value->data, value->data + value->len, '\0')) {
        ngx_str_set(&bad, "holds a NUL");

    } else if (value->data[0] == '$') {
        /* a configured topic cannot start with one: "$" starts a variable */
        ngx_str_set(&bad, "starts with \"$\"");

    } else if (value->len > 65535) {
        ngx_str_set(&bad, "is too long");
    }

    if (bad.len == 0) {
        return NGX_OK;
    }

    error->data = ngx_pnalloc(r->pool, 64 + ngx_min(value->len, 256));
    if (error->data == NULL) {
        return NGX_ERROR;
    }

    error->len = ngx_snprintf(error->data, 64 + ngx_min(value->len, 256),
                              "The MQTT topic \"%*s\" %V",
                              ngx_min(value->len, 200), value->data, &bad)
                 - error->data;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "mqtt: %V", error);

    return NGX_DECLINED;
}


static void
ngx_gravitee_mqtt_unbind(void *conf, void *binding)
{
    ngx_free(binding);
}


/*
 * Publishing: with the configured QoS and retain flag, the message's
 * headers as user properties; NGX_AGAIN until the broker has it (PUBACK,
 * PUBCOMP; for QoS 0, once written), or publish_timeout.
 */

static ngx_int_t
ngx_gravitee_mqtt_publish(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_mqtt_conf_t *mcf = conf;

    ngx_gravitee_mqtt_bind_t  *b;
    ngx_gravitee_mqtt_conn_t  *mc;
    ngx_gravitee_mqtt_pub_t   *mp;

    b = pub->binding;

    if (mcf->publish_wild && (b == NULL || b->publish.len == 0)) {
        pub->status = NGX_HTTP_NOT_ALLOWED;
        ngx_str_set(&pub->error, "The MQTT endpoint's topic has wildcards: "
                                 "publish_topic= says where to publish");
        return NGX_ERROR;
    }

    mc = ngx_gravitee_mqtt_conn(mcf);
    if (mc == NULL) {
        pub->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_str_set(&pub->error, "The MQTT client could not be made");
        return NGX_ERROR;
    }

    if (mc->state != NGX_GRAVITEE_MQTT_UP
        && mc->state != NGX_GRAVITEE_MQTT_CONNECTING)
    {
        pub->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_str_set(&pub->error, "The MQTT broker cannot be reached");
        return NGX_ERROR;
    }

    mp = ngx_calloc(sizeof(ngx_gravitee_mqtt_pub_t), pub->log);
    if (mp == NULL) {
        pub->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_str_set(&pub->error, "Out of memory");
        return NGX_ERROR;
    }

    mp->pub = pub;
    mp->conn = mc;
    mp->conf = mcf;
    mp->timer.handler = ngx_gravitee_mqtt_pub_timeout;
    mp->timer.data = mp;
    mp->timer.log = pub->log;

    ngx_queue_insert_tail(&mc->pubs, &mp->queue);
    pub->endpoint_data = mp;

    /* the client waits for its answer: a reload lets the timer run */
    ngx_add_timer(&mp->timer, mcf->publish_timeout);

    if (mc->state == NGX_GRAVITEE_MQTT_CONNECTING) {
        /* sent once connected (or answered 503 if it fails) */
        return NGX_AGAIN;
    }

    if (ngx_gravitee_mqtt_send(mp) != NGX_OK) {
        pub->endpoint_data = NULL;
        ngx_gravitee_mqtt_pub_free(mp);
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


static ngx_int_t
ngx_gravitee_mqtt_send(ngx_gravitee_mqtt_pub_t *mp)
{
    int                         rc;
    char                       *topic;
    u_char                      buf[256];
    ngx_str_t                   t;
    ngx_uint_t                  i;
    MQTTProperty                prop;
    ngx_gravitee_pub_t         *pub;
    ngx_gravitee_message_t     *msg;
    ngx_gravitee_mqtt_bind_t   *b;
    ngx_gravitee_mqtt_conf_t   *mcf;
    MQTTAsync_message           m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions   opts = MQTTAsync_responseOptions_initializer;

    pub = mp->pub;
    msg = pub->msg;
    mcf = mp->conf;             /* the location's, not the connection's */
    b = pub->binding;

    t = (b && b->publish.len) ? b->publish
                              : (mcf->publish_topic.len ? mcf->publish_topic
                                                        : mcf->topic);

    topic = (char *) buf;

    if (t.len >= sizeof(buf)) {
        topic = ngx_alloc(t.len + 1, pub->log);
        if (topic == NULL) {
            return NGX_ERROR;
        }
    }

    (void) ngx_cpystrn((u_char *) topic, t.data, t.len + 1);

    m.payload = msg->content.data;
    m.payloadlen = (int) msg->content.len;
    m.qos = (int) mcf->qos;
    m.retained = (int) mcf->retain;

    if (mcf->version == NGX_GRAVITEE_MQTT_V5) {
        for (i = 0; i < msg->nheaders; i++) {
            prop.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
            prop.value.data.data = (char *) msg->headers[i].name.data;
            prop.value.data.len = (int) msg->headers[i].name.len;
            prop.value.value.data = (char *) msg->headers[i].value.data;
            prop.value.value.len = (int) msg->headers[i].value.len;
            (void) MQTTProperties_add(&m.properties, &prop);
        }

        if (mcf->message_expiry) {
            prop.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
            prop.value.integer4 = mcf->message_expiry / 1000;
            (void) MQTTProperties_add(&m.properties, &prop);
        }

        if (mcf->response_topic.len) {
            prop.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
            prop.value.data.data = (char *) mcf->response_topic.data;
            prop.value.data.len = (int) mcf->response_topic.len;
            (void) MQTTProperties_add(&m.properties, &prop);
        }

        opts.onSuccess5 = ngx_gravitee_mqtt_on_sent5;
        opts.onFailure5 = ngx_gravitee_mqtt_on_send_failure5;

    } else {
        opts.onSuccess = ngx_gravitee_mqtt_on_sent;
        opts.onFailure = ngx_gravitee_mqtt_on_send_failure;
    }

    opts.context = mp->conn;

    /* paho copies the topic, payload and properties */
    rc = MQTTAsync_sendMessage(mp->conn->client, topic, &m, &opts);

    MQTTProperties_free(&m.properties);

    if (topic != (char *) buf) {
        ngx_free(topic);
    }

    if (rc != MQTTASYNC_SUCCESS) {
        ngx_log_error(NGX_LOG_ERR, pub->log, 0,
                      "mqtt: publish to \"%V\" failed: %s", &t,
                      MQTTAsync_strerror(rc));
        pub->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_str_set(&pub->error, "The MQTT broker cannot be reached");
        return NGX_ERROR;
    }

    mp->token = opts.token;
    mp->sent = 1;

    return NGX_OK;
}


/* the outcome, told to the client (status NGX_HTTP_OK: published) */

static void
ngx_gravitee_mqtt_answer(ngx_gravitee_mqtt_pub_t *mp, ngx_uint_t status,
    const char *text)
{
    ngx_gravitee_pub_t  *pub;

    pub = mp->pub;

    if (status == NGX_HTTP_OK) {
        pub->rc = NGX_OK;

    } else {
        pub->rc = NGX_ERROR;
        pub->status = status;
        pub->error.data = ngx_cpymem(mp->error, text,
                                     ngx_min(ngx_strlen(text),
                                             sizeof(mp->error)));
        pub->error.len = pub->error.data - mp->error;
        pub->error.data = mp->error;

        ngx_log_error(NGX_LOG_ERR, pub->log, 0, "mqtt publication failed: %V",
                      &pub->error);
    }

    /* the error text lives in mp until done() returns */
    pub->endpoint_data = NULL;
    pub->done(pub);

    ngx_gravitee_mqtt_pub_free(mp);
}


static void
ngx_gravitee_mqtt_pub_timeout(ngx_event_t *ev)
{
    ngx_gravitee_mqtt_pub_t *mp = ev->data;

    ngx_gravitee_mqtt_answer(mp, NGX_HTTP_GATEWAY_TIME_OUT,
                             "The MQTT broker did not acknowledge the "
                             "message within publish_timeout");
}


static void
ngx_gravitee_mqtt_pub_free(ngx_gravitee_mqtt_pub_t *mp)
{
    if (mp->timer.timer_set) {
        ngx_del_timer(&mp->timer);
    }

    ngx_queue_remove(&mp->queue);
    ngx_free(mp);
}


/* the client left: its answer, when it comes, finds nobody */

static void
ngx_gravitee_mqtt_cancel(void *conf, ngx_gravitee_pub_t *pub)
{
    ngx_gravitee_mqtt_pub_t  *mp;

    mp = pub->endpoint_data;

    if (mp == NULL) {
        return;
    }

    pub->endpoint_data = NULL;
    ngx_gravitee_mqtt_pub_free(mp);
}


/*
 * The worker exits, nothing serves clients: paho's clients are destroyed
 * (it joins its threads after the last one), then what we kept.  Events
 * still queued for the loop free only what they carry.
 */

static void
ngx_gravitee_mqtt_exit_process(ngx_cycle_t *cycle, void *conf)
{
    ngx_queue_t               *q;
    ngx_gravitee_mqtt_pub_t   *mp;
    ngx_gravitee_mqtt_conn_t  *mc;

    if (ngx_gravitee_mqtt_exiting) {
        return;
    }

    ngx_gravitee_mqtt_exiting = 1;

    while (!ngx_queue_empty(&ngx_gravitee_mqtt_conns)) {
        q = ngx_queue_head(&ngx_gravitee_mqtt_conns);
        mc = ngx_queue_data(q, ngx_gravitee_mqtt_conn_t, queue);
        ngx_queue_remove(q);

        if (mc->retry.timer_set) {
            ngx_del_timer(&mc->retry);
        }

        /*
         * No DISCONNECT first: paho 1.3.12 loses the client's outbound
         * queue when it is destroyed while a DISCONNECT is in flight (a
         * leak valgrind saw in t/710 at 4 worker exits of 9, none of 7
         * without it), and the worker cannot wait for one.  The broker sees
         * the connection close; no will is set, so only its log differs.
         */

        MQTTAsync_destroy(&mc->client);

        while (!ngx_queue_empty(&mc->pubs)) {
            mp = ngx_queue_data(ngx_queue_head(&mc->pubs),
                                ngx_gravitee_mqtt_pub_t, queue);
            if (mp->pub) {
                mp->pub->endpoint_data = NULL;
            }

            ngx_gravitee_mqtt_pub_free(mp);
        }

        (void) pthread_mutex_destroy(&mc->lock);
        ngx_free(mc);
    }
}


/* paho's threads: copy, post, return */

static void
ngx_gravitee_mqtt_on_connect(void *context, MQTTAsync_successData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_CONNECTED, 0,
                           MQTTASYNC_SUCCESS, 0, NULL);
}


static void
ngx_gravitee_mqtt_on_connect5(void *context,
    MQTTAsync_successData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_CONNECTED, 0,
                           MQTTASYNC_SUCCESS, 0, NULL);
}


static void
ngx_gravitee_mqtt_on_connect_failure(void *context,
    MQTTAsync_failureData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_FAILED, 0,
                           response ? response->code : MQTTASYNC_FAILURE, 0,
                           response ? response->message : NULL);
}


static void
ngx_gravitee_mqtt_on_connect_failure5(void *context,
    MQTTAsync_failureData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_FAILED, 0,
                           response ? response->code : MQTTASYNC_FAILURE,
                           response ? (int) response->reasonCode : 0,
                           response ? response->message : NULL);
}


static void
ngx_gravitee_mqtt_on_lost(void *context, char *cause)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_LOST, 0,
                           MQTTASYNC_DISCONNECTED, 0, cause);
}


/* 1: the message and topic are ours now, freed from the event loop */

static int
ngx_gravitee_mqtt_on_message(void *context, char *topic, int topic_len,
    MQTTAsync_message *msg)
{
    ngx_gravitee_mqtt_event_t  *ev;

    ev = calloc(1, sizeof(ngx_gravitee_mqtt_event_t));
    if (ev == NULL) {
        /* 0: paho offers it again */
        return 0;
    }

    if (topic_len && (size_t) topic_len != strlen(topic)) {
        /* a topic with a NUL in it: not for any client of ours */
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
        free(ev);
        return 1;
    }

    ev->conn = context;
    ev->kind = NGX_GRAVITEE_MQTT_EV_MESSAGE;
    ev->topic = topic;
    ev->msg = msg;
    ev->task.handler = ngx_gravitee_mqtt_run;
    ev->task.data = ev;

    if (ngx_gravitee_thread_post(&ev->task) != NGX_OK) {
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
        free(ev);
    }

    return 1;
}


static void
ngx_gravitee_mqtt_on_suback(void *context, MQTTAsync_successData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_SUBACK,
                           response->token, MQTTASYNC_SUCCESS,
                           response->alt.qos == 0x80 ? 0x80 : 0, NULL);
}


static void
ngx_gravitee_mqtt_on_suback5(void *context, MQTTAsync_successData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_SUBACK,
                           response->token, MQTTASYNC_SUCCESS,
                           (int) response->reasonCode, NULL);
}


static void
ngx_gravitee_mqtt_on_sub_failure(void *context,
    MQTTAsync_failureData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_SUBACK,
                           response->token, response->code, 0,
                           response->message);
}


static void
ngx_gravitee_mqtt_on_sub_failure5(void *context,
    MQTTAsync_failureData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_SUBACK,
                           response->token,
                           response->code ? response->code
                                          : MQTTASYNC_FAILURE,
                           (int) response->reasonCode, response->message);
}


static void
ngx_gravitee_mqtt_on_sent(void *context, MQTTAsync_successData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_PUBLISHED,
                           response->token, MQTTASYNC_SUCCESS, 0, NULL);
}


static void
ngx_gravitee_mqtt_on_sent5(void *context, MQTTAsync_successData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_PUBLISHED,
                           response->token, MQTTASYNC_SUCCESS,
                           (int) response->reasonCode, NULL);
}


static void
ngx_gravitee_mqtt_on_send_failure(void *context,
    MQTTAsync_failureData *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_PUBLISHED,
                           response->token, response->code, 0,
                           response->message);
}


static void
ngx_gravitee_mqtt_on_send_failure5(void *context,
    MQTTAsync_failureData5 *response)
{
    ngx_gravitee_mqtt_post(context, NGX_GRAVITEE_MQTT_EV_PUBLISHED,
                           response->token,
                           response->code ? response->code
                                          : MQTTASYNC_FAILURE,
                           (int) response->reasonCode, response->message);
}


/* OpenSSL's words for a failed handshake, kept for the failure's event */

static int
ngx_gravitee_mqtt_on_tls_error(const char *str, size_t len, void *u)
{
    ngx_gravitee_mqtt_conn_t *mc = u;

    size_t  n;

    (void) pthread_mutex_lock(&mc->lock);

    if (mc->tls_error[0] == '\0') {
        n = ngx_min(len, sizeof(mc->tls_error) - 1);
        memcpy(mc->tls_error, str, n);

        while (n && (mc->tls_error[n - 1] == '\n'
                     || mc->tls_error[n - 1] == '\r'))
        {
            n--;
        }

        mc->tls_error[n] = '\0';
    }

    (void) pthread_mutex_unlock(&mc->lock);

    return 0;
}


static void
ngx_gravitee_mqtt_post(ngx_gravitee_mqtt_conn_t *mc, ngx_uint_t kind,
    MQTTAsync_token token, int code, int reason, const char *text)
{
    ngx_gravitee_mqtt_event_t  *ev;

    ev = calloc(1, sizeof(ngx_gravitee_mqtt_event_t));
    if (ev == NULL) {
        return;
    }

    ev->conn = mc;
    ev->kind = kind;
    ev->token = token;
    ev->code = code;
    ev->reason = reason;

    if (text) {
        (void) ngx_cpystrn((u_char *) ev->text, (u_char *) text,
                           sizeof(ev->text));
    }

    ev->task.handler = ngx_gravitee_mqtt_run;
    ev->task.data = ev;

    if (ngx_gravitee_thread_post(&ev->task) != NGX_OK) {
        free(ev);
    }
}
