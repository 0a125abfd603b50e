/*
 * kafka-producer: the reconnect storm's records (bench/kafka.sh).
 *
 *   kafka-producer BOOTSTRAP TOPIC PARTITIONS RATE
 *
 * RATE records per second in all, round-robin over the partitions, each
 * sent at once (linger.ms=0, acks=all). A record's value is
 * "t=<unix ns> p=<partition> s=<sequence>", the sequence counting from 0 in
 * each partition, so that a client can tell a missed or repeated record.
 * (kcat -P is no use here: it sends what it reads from a pipe only when the
 * pipe is closed.) Runs until SIGTERM or SIGINT, waits for the delivery
 * reports (5 s at most), then prints
 *   produced n=TOTAL failed=F last=S0,S1,...   (last sequence per partition)
 */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static volatile sig_atomic_t  stop;
static long                   failed;


static void
on_signal(int sig)
{
    (void) sig;
    stop = 1;
}


static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void) rk;
    (void) opaque;
    if (m->err) {
        if (failed++ == 0) {
            fprintf(stderr, "kafka-producer: %s\n", rd_kafka_err2str(m->err));
        }
    }
}


static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    char               errstr[512], val[128];
    int                parts, p, len;
    long               n = 0, *seq;
    double             rate, start, next, wait;
    struct timespec    ts;
    rd_kafka_t        *rk;
    rd_kafka_conf_t   *conf;
    rd_kafka_topic_t  *rkt;

    if (argc != 5 || (parts = atoi(argv[3])) < 1 || (rate = atof(argv[4])) <= 0)
    {
        fprintf(stderr, "usage: kafka-producer BOOTSTRAP TOPIC PARTITIONS "
                "RATE\n");
        return 2;
    }
    seq = calloc((size_t) parts, sizeof(long));

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "kafka-producer: %s\n", errstr);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-producer: %s\n", errstr);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, argv[2], NULL);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    start = now_s();
    while (!stop) {
        clock_gettime(CLOCK_REALTIME, &ts);
        p = (int) (n % parts);
        len = snprintf(val, sizeof(val), "t=%" PRId64 " p=%d s=%ld",
                       (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec, p,
                       seq[p]);
        if (rd_kafka_produce(rkt, p, RD_KAFKA_MSG_F_COPY, val, (size_t) len,
                             NULL, 0, NULL) == -1)
        {
            fprintf(stderr, "kafka-producer: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            failed++;
        } else {
            seq[p]++;
            n++;
        }
        next = start + n / rate;
        while (!stop && (wait = next - now_s()) > 0) {
            rd_kafka_poll(rk, wait > 0.05 ? 50 : (int) (wait * 1000) + 1);
        }
    }

    rd_kafka_flush(rk, 5000);
    printf("produced n=%ld failed=%ld last=", n, failed);
    for (p = 0; p < parts; p++) {
        printf("%s%ld", p ? "," : "", seq[p] - 1);
    }
    printf("\n");
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}
