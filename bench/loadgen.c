/*
 * Load generator for scripts/bench, on librdkafka (the C client every librdkafka-based
 * Kafka client wraps). Each mode prints one line of key=value results.
 *
 *   loadgen produce  BOOTSTRAP TOPIC COUNT SIZE ACKS   (LOADGEN_KEYS=N: keyed records;
 *                    LOADGEN_IDEMPOTENT=1: an idempotent producer; LOADGEN_TXN=N: a
 *                    transactional producer committing every N messages)
 *   loadgen consume  BOOTSTRAP TOPIC COUNT
 *   loadgen latency  BOOTSTRAP TOPIC RATE SECONDS SIZE [ACKS]   (ACKS default 1)
 *   loadgen failover BOOTSTRAP TOPIC RATE SECONDS   (idempotent acks=all at RATE msg/s;
 *                    reports the longest pause between acknowledgements, in wall-clock ms,
 *                    so the caller can relate it to the moment it killed a leader)
 *   loadgen tcpbw    SECONDS            (loopback TCP bandwidth, no broker)
 *
 * LOADGEN_CONFIG="key=value;key=value" adds client settings (security.protocol, ssl.*).
 */
#include <librdkafka/rdkafka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "config %s=%s: %s\n", key, value, err);
        exit(2);
    }
}

/* Extra client settings from LOADGEN_CONFIG ("key=value;key=value"), e.g. TLS. */
static void set_extra(rd_kafka_conf_t *conf) {
    const char *extra = getenv("LOADGEN_CONFIG");
    if (!extra || !*extra)
        return;
    char *copy = strdup(extra), *saveptr = NULL;
    for (char *item = strtok_r(copy, ";", &saveptr); item; item = strtok_r(NULL, ";", &saveptr)) {
        char *eq = strchr(item, '=');
        if (!eq)
            continue;
        *eq = '\0';
        set(conf, item, eq + 1);
    }
    free(copy);
}

static long delivered = 0, failed = 0;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    (void)opaque;
    if (msg->err)
        failed++;
    else
        delivered++;
}

static void check_txn(rd_kafka_error_t *error, const char *what) {
    if (error) {
        fprintf(stderr, "transaction %s: %s\n", what, rd_kafka_error_string(error));
        exit(3);
    }
}

static rd_kafka_t *new_producer(const char *bootstrap, const char *acks, const char *linger) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set_extra(conf);
    set(conf, "acks", acks);
    set(conf, "linger.ms", linger);
    set(conf, "batch.size", "1000000");
    set(conf, "queue.buffering.max.messages", "1000000");
    set(conf, "queue.buffering.max.kbytes", "1048576");
    if (getenv("LOADGEN_IDEMPOTENT"))
        set(conf, "enable.idempotence", "true");
    if (getenv("LOADGEN_TXN"))
        set(conf, "transactional.id", "loadgen-tx");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "producer: %s\n", err);
        exit(2);
    }
    return rk;
}

static rd_kafka_t *new_consumer(const char *bootstrap, const char *topic, int64_t offset) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set_extra(conf);
    set(conf, "group.id", "loadgen-assign-only");
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.max.bytes", "52428800");
    set(conf, "max.partition.fetch.bytes", "8388608");
    set(conf, "fetch.wait.max.ms", "100");
    /* LOADGEN_ISOLATION=read_committed|read_uncommitted (default read_uncommitted). */
    const char *isolation = getenv("LOADGEN_ISOLATION");
    set(conf, "isolation.level", isolation ? isolation : "read_uncommitted");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", err);
        exit(2);
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = offset;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static int produce(const char *bootstrap, const char *topic, long count, int size, const char *acks) {
    rd_kafka_t *rk = new_producer(bootstrap, acks, "5");
    char *payload = malloc(size);
    for (int i = 0; i < size; i++)
        payload[i] = 'a' + (i * 7) % 26;
    /* LOADGEN_KEYS=N: keyed records, "key-<i mod N>" (a compacted topic's updates). */
    const char *keys_env = getenv("LOADGEN_KEYS");
    long n_keys = keys_env ? atol(keys_env) : 0;
    char key[32];
    const char *txn_env = getenv("LOADGEN_TXN");
    long txn_size = txn_env ? atol(txn_env) : 0;
    double start = now_s();
    if (txn_size > 0) {
        check_txn(rd_kafka_init_transactions(rk, 60000), "init");
        check_txn(rd_kafka_begin_transaction(rk), "begin");
    }
    for (long i = 0; i < count; i++) {
        if (txn_size > 0 && i > 0 && i % txn_size == 0) {
            check_txn(rd_kafka_commit_transaction(rk, 120000), "commit");
            check_txn(rd_kafka_begin_transaction(rk), "begin");
        }
        size_t key_len = n_keys > 0 ? (size_t)snprintf(key, sizeof(key), "key-%08ld", i % n_keys) : 0;
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_KEY(n_keys > 0 ? key : NULL, key_len),
                                 RD_KAFKA_V_VALUE(payload, size), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 1);
        if (i % 10000 == 0)
            rd_kafka_poll(rk, 0);
    }
    if (txn_size > 0)
        check_txn(rd_kafka_commit_transaction(rk, 120000), "commit");
    rd_kafka_flush(rk, 120000);
    double seconds = now_s() - start;
    printf("seconds=%.3f messages=%ld bytes=%ld failed=%ld\n", seconds, delivered, delivered * (long)size, failed);
    rd_kafka_destroy(rk);
    free(payload);
    return failed == 0 && delivered == count ? 0 : 1;
}

static int consume(const char *bootstrap, const char *topic, long count) {
    rd_kafka_t *rk = new_consumer(bootstrap, topic, RD_KAFKA_OFFSET_BEGINNING);
    long got = 0, bytes = 0;
    double start = 0, deadline = now_s() + 300;
    while (got < count && now_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            if (got == 0)
                start = now_s();
            got++;
            bytes += msg->len;
        }
        rd_kafka_message_destroy(msg);
    }
    double seconds = now_s() - start;
    printf("seconds=%.3f messages=%ld bytes=%ld\n", seconds, got, bytes);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got == count ? 0 : 1;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct latency_run {
    const char *bootstrap, *topic;
    long expected;
    int64_t *samples;
    long n_samples;
    volatile int ready;
};

static void *latency_consumer(void *arg) {
    struct latency_run *run = arg;
    rd_kafka_t *rk = new_consumer(run->bootstrap, run->topic, RD_KAFKA_OFFSET_END);
    double deadline = now_s() + 120;
    /* Wait for the assignment to be in place before the producer starts. */
    for (int i = 0; i < 20; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
    run->ready = 1;
    while (run->n_samples < run->expected && now_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err && msg->len >= sizeof(int64_t)) {
            int64_t sent;
            memcpy(&sent, msg->payload, sizeof(sent));
            run->samples[run->n_samples++] = now_ns() - sent;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

static int latency(const char *bootstrap, const char *topic, int rate, int seconds, int size, const char *acks) {
    struct latency_run run = {bootstrap, topic, (long)rate * seconds, NULL, 0, 0};
    run.samples = calloc(run.expected, sizeof(int64_t));
    rd_kafka_t *rk = new_producer(bootstrap, acks, "0");
    char *payload = calloc(1, size < 8 ? 8 : size);
    /* One message first, so the topic exists before the consumer looks for its end. */
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(payload, 1),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(rk, 30000);
    pthread_t consumer;
    pthread_create(&consumer, NULL, latency_consumer, &run);
    while (!run.ready)
        usleep(10000);
    double start = now_s();
    for (long i = 0; i < run.expected; i++) {
        double due = start + (double)i / rate;
        /* Sleep (not spin) until the send is due: a spinning client would steal a core
         * from the broker on a small machine and distort the latency it measures. */
        for (double wait = due - now_s(); wait > 0; wait = due - now_s()) {
            struct timespec pause = {0, (long)(wait * 1e9)};
            nanosleep(&pause, NULL);
        }
        int64_t t = now_ns();
        memcpy(payload, &t, sizeof(t));
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(payload, size),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    pthread_join(consumer, NULL);
    qsort(run.samples, run.n_samples, sizeof(int64_t), cmp_i64);
    long n = run.n_samples;
    if (n == 0) {
        printf("messages=0\n");
        return 1;
    }
    printf("messages=%ld p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n", n, run.samples[n / 2] / 1e6,
           run.samples[(long)(n * 0.99)] / 1e6, run.samples[(long)(n * 0.999)] / 1e6, run.samples[n - 1] / 1e6);
    rd_kafka_destroy(rk);
    return n == run.expected ? 0 : 1;
}

static int64_t last_ack_ms = 0, gap_start_ms = 0, gap_end_ms = 0;

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_failover_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    (void)opaque;
    if (msg->err) {
        failed++;
        return;
    }
    delivered++;
    int64_t now = wall_ms();
    if (last_ack_ms && now - last_ack_ms > gap_end_ms - gap_start_ms) {
        gap_start_ms = last_ack_ms;
        gap_end_ms = now;
    }
    last_ack_ms = now;
}

static int failover(const char *bootstrap, const char *topic, int rate, int seconds) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "acks", "all");
    set(conf, "enable.idempotence", "true");
    set(conf, "linger.ms", "0");
    set(conf, "message.timeout.ms", "120000");
    rd_kafka_conf_set_dr_msg_cb(conf, on_failover_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "producer: %s\n", err);
        return 2;
    }
    char payload[100] = {0};
    long total = (long)rate * seconds;
    double start = now_s();
    for (long i = 0; i < total; i++) {
        double due = start + (double)i / rate;
        for (double wait = due - now_s(); wait > 0; wait = due - now_s()) {
            struct timespec pause = {0, (long)(wait * 1e9)};
            nanosleep(&pause, NULL);
        }
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE(payload, sizeof(payload)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    printf("messages=%ld failed=%ld gap_start_ms=%lld gap_end_ms=%lld\n", delivered, failed,
           (long long)gap_start_ms, (long long)gap_end_ms);
    rd_kafka_destroy(rk);
    return failed == 0 && delivered == total ? 0 : 1;
}

static int listener_fd;

static void *tcp_sink(void *arg) {
    (void)arg;
    int fd = accept(listener_fd, NULL, NULL);
    char *buf = malloc(1 << 20);
    while (read(fd, buf, 1 << 20) > 0) {
    }
    close(fd);
    free(buf);
    return NULL;
}

static int tcpbw(int seconds) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    listener_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener_fd, 1) ||
        getsockname(listener_fd, (struct sockaddr *)&addr, &len)) {
        perror("listen");
        return 2;
    }
    pthread_t sink;
    pthread_create(&sink, NULL, tcp_sink, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
        perror("connect");
        return 2;
    }
    char *buf = calloc(1, 1 << 20);
    long sent = 0;
    double start = now_s();
    while (now_s() - start < seconds) {
        ssize_t n = write(fd, buf, 1 << 20);
        if (n <= 0)
            break;
        sent += n;
    }
    double elapsed = now_s() - start;
    close(fd);
    pthread_join(sink, NULL);
    printf("seconds=%.3f bytes=%ld\n", elapsed, sent);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 7 && !strcmp(argv[1], "produce"))
        return produce(argv[2], argv[3], atol(argv[4]), atoi(argv[5]), argv[6]);
    if (argc >= 5 && !strcmp(argv[1], "consume"))
        return consume(argv[2], argv[3], atol(argv[4]));
    if (argc >= 7 && !strcmp(argv[1], "latency"))
        return latency(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argc >= 8 ? argv[7] : "1");
    if (argc >= 6 && !strcmp(argv[1], "failover"))
        return failover(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc >= 3 && !strcmp(argv[1], "tcpbw"))
        return tcpbw(atoi(argv[2]));
    fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
    return 2;
}
