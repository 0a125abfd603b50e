
/*
 * kafka-mock-broker: a Kafka-protocol cluster for ngx_gravitee_module's
 * tests, made of librdkafka's mock cluster (Apache Kafka is not packaged
 * on Debian).  Everything listens on 127.0.0.1 and nothing is written to
 * disk: the records live in this process' memory.
 *
 *   kafka-mock-broker [-b BROKERS] [-c CONTROL_PORT] [-d DEBUG] [-s]
 *
 * On stdout, once: "bootstrap HOST:PORT,...", "control PORT", "ready".
 * Then one command per line on the control port, one reply line each,
 * "ok[ ...]" or "error WHY" (see kmb_commands below, or send "help").
 * SIGTERM, SIGINT, "quit" and, with -s, the end of stdin stop it.
 */


#define _GNU_SOURCE                     /* accept4() */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define KMB_MAX_BROKERS     64
#define KMB_MAX_PARTITIONS  1000
#define KMB_MAX_CLIENTS     8
#define KMB_MAX_ARGS        16
#define KMB_LINE            1024
#define KMB_REPLY           2048
#define KMB_TIMEOUT         5000

/*
 * The 2.0.2 mock keeps at most 5 MiB of record batches per partition and
 * drops the oldest batches past that (rd_kafka_mock_partition_init(), not
 * configurable): a bigger batch makes a partition drop all it held.
 */
#define KMB_FILLER          (5 * 1024 * 1024 + 64 * 1024)

#define KMB_TOPIC_CHARS                                                       \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


typedef struct kmb_topic_s  kmb_topic_t;

struct kmb_topic_s {
    kmb_topic_t              *next;
    int32_t                   partitions;
    int32_t                  *leaders;
    char                     *name;
};


typedef struct {
    int                       fd;
    size_t                    len;
    char                      line[KMB_LINE];
} kmb_client_t;


typedef struct {
    rd_kafka_t               *rk;
    rd_kafka_mock_cluster_t  *cluster;
    const char               *bootstraps;
    kmb_topic_t              *topics;
    int                       nbrokers;
    char                      addr[KMB_MAX_BROKERS + 1][32];
    unsigned char             down[KMB_MAX_BROKERS + 1];
    int                       listen_fd;
    int                       signal_fd;
    int                       watch_stdin;
    int                       quit;
    kmb_client_t              clients[KMB_MAX_CLIENTS];
} kmb_t;


typedef void (*kmb_handler_pt)(kmb_t *kmb, int argc, char **argv,
    char *reply);

typedef struct {
    const char               *name;
    int                       min_args;
    int                       max_args;
    kmb_handler_pt            handler;
    const char               *usage;
} kmb_command_t;


typedef struct {
    const char               *name;
    int16_t                   key;
} kmb_api_t;


static void kmb_usage(void);
static int kmb_parse_args(kmb_t *kmb, int argc, char **argv, int *port,
    const char **debug);
static int kmb_number(const char *s, long min, long max, long *n);
static int kmb_signals(kmb_t *kmb);
static int kmb_listen(kmb_t *kmb, int port);
static int kmb_start_cluster(kmb_t *kmb, const char *debug);
static int kmb_split_bootstraps(kmb_t *kmb);
static void kmb_stop(kmb_t *kmb);
static void kmb_loop(kmb_t *kmb);
static void kmb_read_stdin(kmb_t *kmb);
static void kmb_accept(kmb_t *kmb);
static void kmb_read(kmb_t *kmb, kmb_client_t *c);
static void kmb_close(kmb_client_t *c);
static void kmb_execute(kmb_t *kmb, char *line, char *reply);
static void kmb_settle(void);
static int kmb_broker_arg(kmb_t *kmb, const char *arg, char *reply);
static kmb_topic_t *kmb_partition_arg(kmb_t *kmb, const char *topic,
    const char *arg, int32_t *partition, char *reply);
static void kmb_topic(kmb_t *kmb, int argc, char **argv, char *reply);
static kmb_topic_t *kmb_topic_add(kmb_t *kmb, const char *name,
    int32_t partitions);
static void kmb_leader(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_coordinator(kmb_t *kmb, int argc, char **argv,
    char *reply);
static void kmb_down(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_up(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_rtt(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_errors(kmb_t *kmb, int argc, char **argv, char *reply);
static int kmb_api_key(const char *name);
static int kmb_error_code(const char *name, rd_kafka_resp_err_t *err);
static void kmb_forget(kmb_t *kmb, int argc, char **argv, char *reply);
static rd_kafka_t *kmb_producer(kmb_t *kmb, char *reply);
static int kmb_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
    size_t size, char *reply);
static void kmb_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque);
static void kmb_bootstrap(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_brokers(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_broker(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_help(kmb_t *kmb, int argc, char **argv, char *reply);
static void kmb_quit(kmb_t *kmb, int argc, char **argv, char *reply);


static kmb_command_t  kmb_commands[] = {
    { "topic", 2, 2, kmb_topic, "topic NAME PARTITIONS" },
    { "leader", 3, 3, kmb_leader, "leader TOPIC PARTITION BROKER|-1" },
    { "coordinator", 2, 2, kmb_coordinator, "coordinator GROUP BROKER" },
    { "down", 1, 1, kmb_down, "down BROKER" },
    { "up", 1, 1, kmb_up, "up BROKER" },
    { "rtt", 2, 2, kmb_rtt, "rtt BROKER MS" },
    { "errors", 1, KMB_MAX_ARGS - 1, kmb_errors, "errors API [ERROR ...]" },
    { "forget", 2, 2, kmb_forget, "forget TOPIC PARTITION" },
    { "bootstrap", 0, 0, kmb_bootstrap, "bootstrap" },
    { "brokers", 0, 0, kmb_brokers, "brokers" },
    { "broker", 1, 1, kmb_broker, "broker BROKER" },
    { "help", 0, 0, kmb_help, "help" },
    { "quit", 0, 0, kmb_quit, "quit" },
    { NULL, 0, 0, NULL, NULL }
};


/* the requests that the 2.0.2 mock answers, by their Kafka names */
static kmb_api_t  kmb_apis[] = {
    { "Produce", 0 },
    { "Fetch", 1 },
    { "ListOffsets", 2 },
    { "Metadata", 3 },
    { "OffsetCommit", 8 },
    { "OffsetFetch", 9 },
    { "FindCoordinator", 10 },
    { "JoinGroup", 11 },
    { "Heartbeat", 12 },
    { "LeaveGroup", 13 },
    { "SyncGroup", 14 },
    { "ApiVersion", 18 },
    { "InitProducerId", 22 },
    { "AddPartitionsToTxn", 24 },
    { "AddOffsetsToTxn", 25 },
    { "EndTxn", 26 },
    { "TxnOffsetCommit", 28 },
    { NULL, 0 }
};


int
main(int argc, char **argv)
{
    int          i, port;
    kmb_t       *kmb;
    const char  *debug;

    kmb = calloc(1, sizeof(kmb_t));
    if (kmb == NULL) {
        fprintf(stderr, "kafka-mock-broker: out of memory\n");
        return 1;
    }

    kmb->listen_fd = -1;
    kmb->signal_fd = -1;

    for (i = 0; i < KMB_MAX_CLIENTS; i++) {
        kmb->clients[i].fd = -1;
    }

    if (kmb_parse_args(kmb, argc, argv, &port, &debug) != 0) {
        kmb_usage();
        return 2;
    }

    /* before librdkafka starts its threads, which inherit the mask */
    if (kmb_signals(kmb) != 0
        || (port = kmb_listen(kmb, port)) == -1
        || kmb_start_cluster(kmb, debug) != 0)
    {
        kmb_stop(kmb);
        return 1;
    }

    printf("bootstrap %s\ncontrol %d\nready\n", kmb->bootstraps, port);
    fflush(stdout);

    kmb_loop(kmb);
    kmb_stop(kmb);

    return 0;
}


static void
kmb_usage(void)
{
    fprintf(stderr,
            "usage: kafka-mock-broker [-b BROKERS] [-c CONTROL_PORT] "
            "[-d DEBUG] [-s]\n"
            "  -b  number of brokers, ids 1 to BROKERS (default 1)\n"
            "  -c  control port on 127.0.0.1 (default: a free one)\n"
            "  -d  librdkafka debug contexts, e.g. \"mock\", on stderr\n"
            "  -s  also stop at the end of stdin (dies with a parent that "
            "holds it)\n");
}


static int
kmb_parse_args(kmb_t *kmb, int argc, char **argv, int *port,
    const char **debug)
{
    int   ch;
    long  n;

    kmb->nbrokers = 1;
    *port = 0;
    *debug = NULL;

    while ((ch = getopt(argc, argv, "b:c:d:s")) != -1) {
        switch (ch) {

        case 'b':
            if (kmb_number(optarg, 1, KMB_MAX_BROKERS, &n) != 0) {
                return -1;
            }

            kmb->nbrokers = (int) n;
            break;

        case 'c':
            if (kmb_number(optarg, 0, 65535, &n) != 0) {
                return -1;
            }

            *port = (int) n;
            break;

        case 'd':
            *debug = optarg;
            break;

        case 's':
            kmb->watch_stdin = 1;
            break;

        default:
            return -1;
        }
    }

    return optind == argc ? 0 : -1;
}


static int
kmb_number(const char *s, long min, long max, long *n)
{
    char  *end;

    errno = 0;
    *n = strtol(s, &end, 10);

    if (errno || end == s || *end != '\0' || *n < min || *n > max) {
        return -1;
    }

    return 0;
}


/*
 * SIGTERM and SIGINT are blocked in every thread and read from a
 * signalfd by the loop, so that a signal never interrupts a command
 * halfway and the cluster is always destroyed by the main thread.
 */

static int
kmb_signals(kmb_t *kmb)
{
    sigset_t  set;

    /* a control client that went away must not kill us */
    signal(SIGPIPE, SIG_IGN);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);

    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
        perror("kafka-mock-broker: sigprocmask");
        return -1;
    }

    kmb->signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (kmb->signal_fd == -1) {
        perror("kafka-mock-broker: signalfd");
        return -1;
    }

    return 0;
}


static int
kmb_listen(kmb_t *kmb, int port)
{
    int                 fd, on;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        perror("kafka-mock-broker: socket");
        return -1;
    }

    on = 1;
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    len = sizeof(sin);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fd, 16) == -1
        || getsockname(fd, (struct sockaddr *) &sin, &len) == -1)
    {
        fprintf(stderr, "kafka-mock-broker: control port 127.0.0.1:%d: %s\n",
                port, strerror(errno));
        close(fd);
        return -1;
    }

    kmb->listen_fd = fd;

    return ntohs(sin.sin_port);
}


static int
kmb_start_cluster(kmb_t *kmb, const char *debug)
{
    char              errstr[256];
    rd_kafka_conf_t  *conf;

    /*
     * This handle only hosts the mock cluster's thread and logger (on
     * stderr); it has no bootstrap.servers and never connects anywhere,
     * so its notice that it has none is left out (warnings are kept,
     * and -d logs everything).
     */
    conf = rd_kafka_conf_new();

    (void) rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));

    if (debug
        && rd_kafka_conf_set(conf, "debug", debug, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "kafka-mock-broker: -d: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    kmb->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (kmb->rk == NULL) {
        fprintf(stderr, "kafka-mock-broker: rd_kafka_new: %s\n", errstr);
        return -1;
    }

    kmb->cluster = rd_kafka_mock_cluster_new(kmb->rk, kmb->nbrokers);
    if (kmb->cluster == NULL) {
        fprintf(stderr, "kafka-mock-broker: no mock cluster\n");
        return -1;
    }

    kmb->bootstraps = rd_kafka_mock_cluster_bootstraps(kmb->cluster);

    return kmb_split_bootstraps(kmb);
}


/*
 * The mock binds each broker to an ephemeral port of INADDR_LOOPBACK and
 * lists them in id order, 1 to N: check it rather than trust it, since
 * the tests must never listen on another address.
 */

static int
kmb_split_bootstraps(kmb_t *kmb)
{
    int          id;
    size_t       len;
    const char  *p, *end;

    p = kmb->bootstraps;

    for (id = 1; id <= kmb->nbrokers; id++) {
        end = strchr(p, ',');
        len = end ? (size_t) (end - p) : strlen(p);

        if (len >= sizeof(kmb->addr[0]) || strncmp(p, "127.0.0.1:", 10)) {
            fprintf(stderr, "kafka-mock-broker: unexpected bootstraps %s\n",
                    kmb->bootstraps);
            return -1;
        }

        memcpy(kmb->addr[id], p, len);
        kmb->addr[id][len] = '\0';
        p = end ? end + 1 : p + len;
    }

    return 0;
}


static void
kmb_stop(kmb_t *kmb)
{
    int           i;
    kmb_topic_t  *t;

    for (i = 0; i < KMB_MAX_CLIENTS; i++) {
        kmb_close(&kmb->clients[i]);
    }

    if (kmb->listen_fd != -1) {
        close(kmb->listen_fd);
    }

    if (kmb->signal_fd != -1) {
        close(kmb->signal_fd);
    }

    /* the cluster first: it runs on the handle's queues */
    if (kmb->cluster) {
        rd_kafka_mock_cluster_destroy(kmb->cluster);
    }

    if (kmb->rk) {
        rd_kafka_destroy(kmb->rk);
    }

    while (kmb->topics) {
        t = kmb->topics;
        kmb->topics = t->next;
        free(t->leaders);
        free(t->name);
        free(t);
    }

    free(kmb);
}


static void
kmb_loop(kmb_t *kmb)
{
    int            i, n;
    struct pollfd  pfd[3 + KMB_MAX_CLIENTS];

    while (!kmb->quit) {

        /* poll() skips negative descriptors: free slots, stdin unwatched */
        pfd[0].fd = kmb->signal_fd;
        pfd[1].fd = kmb->listen_fd;
        pfd[2].fd = kmb->watch_stdin ? STDIN_FILENO : -1;

        for (i = 0; i < KMB_MAX_CLIENTS; i++) {
            pfd[3 + i].fd = kmb->clients[i].fd;
        }

        for (i = 0; i < 3 + KMB_MAX_CLIENTS; i++) {
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }

        n = poll(pfd, 3 + KMB_MAX_CLIENTS, -1);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            perror("kafka-mock-broker: poll");
            return;
        }

        if (pfd[0].revents) {
            /* SIGTERM or SIGINT: no need to read which */
            return;
        }

        if (pfd[2].revents) {
            kmb_read_stdin(kmb);
        }

        for (i = 0; i < KMB_MAX_CLIENTS && !kmb->quit; i++) {
            if (pfd[3 + i].revents) {
                kmb_read(kmb, &kmb->clients[i]);
            }
        }

        if (pfd[1].revents && !kmb->quit) {
            kmb_accept(kmb);
        }
    }
}


static void
kmb_read_stdin(kmb_t *kmb)
{
    char     buf[512];
    ssize_t  n;

    /* what comes in is ignored: only its end matters */
    n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN)) {
        kmb->quit = 1;
    }
}


static void
kmb_accept(kmb_t *kmb)
{
    int                i, fd;
    static const char  full[] = "error too many control connections\n";

    fd = accept4(kmb->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        return;
    }

    for (i = 0; i < KMB_MAX_CLIENTS; i++) {
        if (kmb->clients[i].fd == -1) {
            kmb->clients[i].fd = fd;
            kmb->clients[i].len = 0;
            return;
        }
    }

    (void) send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL);
    close(fd);
}


static void
kmb_read(kmb_t *kmb, kmb_client_t *c)
{
    char     *nl, reply[KMB_REPLY];
    size_t    len, used;
    ssize_t   n;

    n = recv(c->fd, c->line + c->len, sizeof(c->line) - c->len, 0);

    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }

    if (n <= 0) {
        kmb_close(c);
        return;
    }

    c->len += (size_t) n;

    while (c->fd != -1 && !kmb->quit
           && (nl = memchr(c->line, '\n', c->len)) != NULL)
    {
        *nl = '\0';
        used = (size_t) (nl - c->line) + 1;

        kmb_execute(kmb, c->line, reply);

        if (reply[0] != '\0') {
            len = strlen(reply);
            reply[len++] = '\n';

            /* a short reply to a client that reads: it fits in the buffer */
            if (send(c->fd, reply, len, MSG_NOSIGNAL) != (ssize_t) len) {
                kmb_close(c);
                return;
            }
        }

        c->len -= used;
        memmove(c->line, c->line + used, c->len);
    }

    if (c->len == sizeof(c->line)) {
        len = (size_t) snprintf(reply, KMB_REPLY, "error line too long\n");
        (void) send(c->fd, reply, len, MSG_NOSIGNAL);
        kmb_close(c);
    }
}


static void
kmb_close(kmb_client_t *c)
{
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    c->len = 0;
}


static void
kmb_execute(kmb_t *kmb, char *line, char *reply)
{
    int             argc;
    char           *argv[KMB_MAX_ARGS + 1], *last, *p;
    kmb_command_t  *cmd;

    argc = 0;
    reply[0] = '\0';

    for (p = strtok_r(line, " \t\r", &last);
         p != NULL;
         p = strtok_r(NULL, " \t\r", &last))
    {
        if (argc == KMB_MAX_ARGS) {
            snprintf(reply, KMB_REPLY, "error too many arguments");
            return;
        }

        argv[argc++] = p;
    }

    if (argc == 0) {
        /* an empty line is no command and gets no reply */
        return;
    }

    argv[argc] = NULL;

    for (cmd = kmb_commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, argv[0]) != 0) {
            continue;
        }

        if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
            snprintf(reply, KMB_REPLY, "error usage: %s", cmd->usage);
            return;
        }

        cmd->handler(kmb, argc - 1, argv + 1, reply);
        kmb_settle();
        return;
    }

    snprintf(reply, KMB_REPLY, "error unknown command \"%.64s\"", argv[0]);
}


/*
 * Called after each call into the mock.  Such a call is an op for the
 * mock's thread, which is woken by a byte on a pipe, written only if no
 * wake-up is pending: the thread clears that flag when it serves its ops
 * and drains the pipe after that.  An op queued in between (the next call
 * right away) has its byte drained and waits for the thread's next timer,
 * up to a second.  Letting the thread finish its round first avoids it.
 */

static void
kmb_settle(void)
{
    usleep(2000);
}


static int
kmb_broker_arg(kmb_t *kmb, const char *arg, char *reply)
{
    long  n;

    if (kmb_number(arg, 1, kmb->nbrokers, &n) != 0) {
        snprintf(reply, KMB_REPLY, "error no broker \"%.32s\" (1 to %d)",
                 arg, kmb->nbrokers);
        return -1;
    }

    return (int) n;
}


/*
 * Only topics made with "topic": the mock's own calls would create any
 * other name they are given (4 partitions), and read past the partition
 * array for a negative partition.
 */

static kmb_topic_t *
kmb_partition_arg(kmb_t *kmb, const char *topic, const char *arg,
    int32_t *partition, char *reply)
{
    long          n;
    kmb_topic_t  *t;

    for (t = kmb->topics; t; t = t->next) {
        if (strcmp(t->name, topic) == 0) {
            break;
        }
    }

    if (t == NULL) {
        snprintf(reply, KMB_REPLY, "error no topic \"%.255s\" made with the "
                 "topic command", topic);
        return NULL;
    }

    if (kmb_number(arg, 0, t->partitions - 1, &n) != 0) {
        snprintf(reply, KMB_REPLY, "error no partition \"%.32s\" in %s "
                 "(0 to %d)", arg, t->name, (int) t->partitions - 1);
        return NULL;
    }

    *partition = (int32_t) n;

    return t;
}


static void
kmb_topic(kmb_t *kmb, int argc, char **argv, char *reply)
{
    long                 n;
    int32_t              p;
    size_t               len;
    kmb_topic_t         *t;
    rd_kafka_resp_err_t  err;

    len = strlen(argv[0]);

    if (len > 249 || strspn(argv[0], KMB_TOPIC_CHARS) != len) {
        snprintf(reply, KMB_REPLY, "error bad topic name");
        return;
    }

    if (kmb_number(argv[1], 1, KMB_MAX_PARTITIONS, &n) != 0) {
        snprintf(reply, KMB_REPLY, "error bad partition count \"%.32s\"",
                 argv[1]);
        return;
    }

    /* the mock ignores the replication factor: min(3, brokers) replicas */
    err = rd_kafka_mock_topic_create(kmb->cluster, argv[0], (int) n, 1);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    t = kmb_topic_add(kmb, argv[0], (int32_t) n);
    if (t == NULL) {
        snprintf(reply, KMB_REPLY, "error out of memory");
        return;
    }

    /*
     * The mock picks each leader at random; a test wants to know which
     * broker to take down, so partition P is led by broker P % N + 1.
     */
    for (p = 0; p < t->partitions; p++) {
        kmb_settle();

        err = rd_kafka_mock_partition_set_leader(kmb->cluster, t->name, p,
                                                 t->leaders[p]);
        if (err) {
            snprintf(reply, KMB_REPLY, "error leader of partition %d: %s",
                     (int) p, rd_kafka_err2name(err));
            return;
        }
    }

    snprintf(reply, KMB_REPLY, "ok");
}


static kmb_topic_t *
kmb_topic_add(kmb_t *kmb, const char *name, int32_t partitions)
{
    int32_t       p;
    kmb_topic_t  *t;

    t = calloc(1, sizeof(kmb_topic_t));
    if (t == NULL) {
        return NULL;
    }

    t->name = strdup(name);
    t->leaders = calloc((size_t) partitions, sizeof(int32_t));

    if (t->name == NULL || t->leaders == NULL) {
        free(t->name);
        free(t->leaders);
        free(t);
        return NULL;
    }

    t->partitions = partitions;

    for (p = 0; p < partitions; p++) {
        t->leaders[p] = p % kmb->nbrokers + 1;
    }

    t->next = kmb->topics;
    kmb->topics = t;

    return t;
}


static void
kmb_leader(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  id;
    int32_t              p;
    kmb_topic_t         *t;
    rd_kafka_resp_err_t  err;

    t = kmb_partition_arg(kmb, argv[0], argv[1], &p, reply);
    if (t == NULL) {
        return;
    }

    /* -1: no leader, the partition answers LEADER_NOT_AVAILABLE */
    if (strcmp(argv[2], "-1") == 0) {
        id = -1;

    } else {
        id = kmb_broker_arg(kmb, argv[2], reply);
        if (id == -1) {
            return;
        }
    }

    err = rd_kafka_mock_partition_set_leader(kmb->cluster, t->name, p, id);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    t->leaders[p] = id;
    snprintf(reply, KMB_REPLY, "ok");
}


static void
kmb_coordinator(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  id;
    rd_kafka_resp_err_t  err;

    id = kmb_broker_arg(kmb, argv[1], reply);
    if (id == -1) {
        return;
    }

    /* otherwise the mock hashes the group name over all brokers */
    err = rd_kafka_mock_coordinator_set(kmb->cluster, "group", argv[0], id);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    snprintf(reply, KMB_REPLY, "ok");
}


/*
 * A broker going down closes every connection to it (those not accepted
 * yet are reset) and stops listening but keeps its port bound (connecting
 * is refused, nobody else can take the port); its partitions keep it as
 * their leader and keep their records.
 */

static void
kmb_down(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  id;
    rd_kafka_resp_err_t  err;

    id = kmb_broker_arg(kmb, argv[0], reply);
    if (id == -1) {
        return;
    }

    err = rd_kafka_mock_broker_set_down(kmb->cluster, id);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    kmb->down[id] = 1;
    snprintf(reply, KMB_REPLY, "ok");
}


static void
kmb_up(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  id;
    rd_kafka_resp_err_t  err;

    id = kmb_broker_arg(kmb, argv[0], reply);
    if (id == -1) {
        return;
    }

    err = rd_kafka_mock_broker_set_up(kmb->cluster, id);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    kmb->down[id] = 0;
    snprintf(reply, KMB_REPLY, "ok");
}


static void
kmb_rtt(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  id;
    long                 ms;
    rd_kafka_resp_err_t  err;

    id = kmb_broker_arg(kmb, argv[0], reply);
    if (id == -1) {
        return;
    }

    if (kmb_number(argv[1], 0, 3600 * 1000, &ms) != 0) {
        snprintf(reply, KMB_REPLY, "error bad rtt \"%.32s\"", argv[1]);
        return;
    }

    /* every response of that broker is held back by that long */
    err = rd_kafka_mock_broker_set_rtt(kmb->cluster, id, (int) ms);
    if (err) {
        snprintf(reply, KMB_REPLY, "error %s", rd_kafka_err2name(err));
        return;
    }

    snprintf(reply, KMB_REPLY, "ok");
}


/*
 * "errors Produce NOT_LEADER_FOR_PARTITION _TRANSPORT": the next two
 * Produce requests, to any broker, fail with these errors in turn
 * (_TRANSPORT closes the connection instead); "errors Produce" forgets
 * the errors not used yet.
 */

static void
kmb_errors(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int                  api, i;
    rd_kafka_resp_err_t  errs[KMB_MAX_ARGS];

    api = kmb_api_key(argv[0]);
    if (api == -1) {
        snprintf(reply, KMB_REPLY, "error unknown API \"%.32s\"", argv[0]);
        return;
    }

    if (argc == 1) {
        rd_kafka_mock_clear_request_errors(kmb->cluster, (int16_t) api);
        snprintf(reply, KMB_REPLY, "ok");
        return;
    }

    for (i = 1; i < argc; i++) {
        if (kmb_error_code(argv[i], &errs[i - 1]) != 0) {
            snprintf(reply, KMB_REPLY, "error unknown error \"%.64s\"",
                     argv[i]);
            return;
        }
    }

    rd_kafka_mock_push_request_errors_array(kmb->cluster, (int16_t) api,
                                            (size_t) (argc - 1), errs);
    snprintf(reply, KMB_REPLY, "ok");
}


static int
kmb_api_key(const char *name)
{
    long        n;
    kmb_api_t  *api;

    for (api = kmb_apis; api->name; api++) {
        if (strcmp(api->name, name) == 0) {
            return api->key;
        }
    }

    return kmb_number(name, 0, 100, &n) == 0 ? (int) n : -1;
}


static int
kmb_error_code(const char *name, rd_kafka_resp_err_t *err)
{
    long                             n;
    size_t                           i, ndescs;
    const struct rd_kafka_err_desc  *descs;

    if (kmb_number(name, -200, 200, &n) == 0) {
        *err = (rd_kafka_resp_err_t) n;
        return 0;
    }

    /* the names that rd_kafka_err2name() gives, e.g. _TRANSPORT */
    rd_kafka_get_err_descs(&descs, &ndescs);

    for (i = 0; i < ndescs; i++) {
        if (descs[i].name && strcmp(descs[i].name, name) == 0) {
            *err = descs[i].code;
            return 0;
        }
    }

    return -1;
}


/*
 * "forget TOPIC PARTITION" replies "ok LOW HIGH": the partition has
 * dropped every record it held, LOW = HIGH = the old high watermark + 2,
 * and any older position is out of range.  The mock counts a new batch
 * before it drops old ones and, when it drops the last batch in the log,
 * moves the log start past the new one too.  So a filler batch over the
 * size limit pushes every older batch out and is itself invisible; a
 * 1-byte batch then pushes the filler out the same way (and is invisible
 * too, but small), so that the next record produced is kept.
 */

static void
kmb_forget(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int32_t       p;
    int64_t       low, high;
    rd_kafka_t   *rk;
    kmb_topic_t  *t;

    t = kmb_partition_arg(kmb, argv[0], argv[1], &p, reply);
    if (t == NULL) {
        return;
    }

    if (t->leaders[p] == -1 || kmb->down[t->leaders[p]]) {
        snprintf(reply, KMB_REPLY, "error the leader of %s [%d] is down",
                 t->name, (int) p);
        return;
    }

    rk = kmb_producer(kmb, reply);
    if (rk == NULL) {
        return;
    }

    if (kmb_produce(rk, t->name, p, KMB_FILLER, reply) == 0
        && kmb_produce(rk, t->name, p, 1, reply) == 0)
    {
        if (rd_kafka_query_watermark_offsets(rk, t->name, p, &low, &high,
                                             KMB_TIMEOUT)
            != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            snprintf(reply, KMB_REPLY, "error no watermarks");

        } else {
            snprintf(reply, KMB_REPLY, "ok %lld %lld", (long long) low,
                     (long long) high);
        }
    }

    rd_kafka_destroy(rk);
}


static rd_kafka_t *
kmb_producer(kmb_t *kmb, char *reply)
{
    size_t            i;
    char              errstr[256];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    /* its errors are in the reply: only critical ones are logged */
    static const char  *props[] = {
        "log_level", "2",
        "message.max.bytes", "16777216",
        "batch.size", "16777216",
        "linger.ms", "0",
        "acks", "all",
        "compression.codec", "none",
        "message.timeout.ms", "5000",
        NULL
    };

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", kmb->bootstraps,
                          errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    for (i = 0; props[i]; i += 2) {
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr,
                              sizeof(errstr))
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }

    rd_kafka_conf_set_dr_msg_cb(conf, kmb_delivered);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        snprintf(reply, KMB_REPLY, "error producer: %s", errstr);
        return NULL;
    }

    return rk;

failed:

    rd_kafka_conf_destroy(conf);
    snprintf(reply, KMB_REPLY, "error producer: %s", errstr);

    return NULL;
}


/* one record of "size" zero bytes, alone in its batch: flushed before
 * the next one is produced */

static int
kmb_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
    size_t size, char *reply)
{
    void                *value;
    rd_kafka_resp_err_t  err, delivered;

    value = calloc(1, size);
    if (value == NULL) {
        snprintf(reply, KMB_REPLY, "error out of memory");
        return -1;
    }

    delivered = RD_KAFKA_RESP_ERR__IN_PROGRESS;

    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_VALUE(value, size),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                            RD_KAFKA_V_OPAQUE(&delivered),
                            RD_KAFKA_V_END);
    if (err) {
        /* not queued: still ours */
        free(value);
        snprintf(reply, KMB_REPLY, "error produce: %s", rd_kafka_err2str(err));
        return -1;
    }

    (void) rd_kafka_flush(rk, KMB_TIMEOUT + 1000);

    if (delivered != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reply, KMB_REPLY, "error produce: %s",
                 rd_kafka_err2str(delivered));
        return -1;
    }

    return 0;
}


static void
kmb_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    *(rd_kafka_resp_err_t *) msg->_private = msg->err;
}


static void
kmb_bootstrap(kmb_t *kmb, int argc, char **argv, char *reply)
{
    snprintf(reply, KMB_REPLY, "ok %s", kmb->bootstraps);
}


static void
kmb_brokers(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int     id;
    size_t  len;

    len = (size_t) snprintf(reply, KMB_REPLY, "ok");

    for (id = 1; id <= kmb->nbrokers; id++) {
        len += (size_t) snprintf(reply + len, KMB_REPLY - len, " %d", id);
    }
}


static void
kmb_broker(kmb_t *kmb, int argc, char **argv, char *reply)
{
    int  id;

    id = kmb_broker_arg(kmb, argv[0], reply);
    if (id == -1) {
        return;
    }

    snprintf(reply, KMB_REPLY, "ok %d %s %s", id, kmb->addr[id],
             kmb->down[id] ? "down" : "up");
}


static void
kmb_help(kmb_t *kmb, int argc, char **argv, char *reply)
{
    size_t          len;
    kmb_command_t  *cmd;

    len = (size_t) snprintf(reply, KMB_REPLY, "ok");

    for (cmd = kmb_commands; cmd->name; cmd++) {
        len += (size_t) snprintf(reply + len, KMB_REPLY - len, "%s%s",
                                 cmd == kmb_commands ? " " : "; ",
                                 cmd->usage);
    }
}


static void
kmb_quit(kmb_t *kmb, int argc, char **argv, char *reply)
{
    kmb->quit = 1;
    snprintf(reply, KMB_REPLY, "ok");
}
