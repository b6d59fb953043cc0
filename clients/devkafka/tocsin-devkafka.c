/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-devkafka: the embedded Kafka (librdkafka's mock cluster) as its own
 * process, so tests and the quick start keep a Kafka that outlives tocsind.
 * Prints one line `bootstrap=127.0.0.1:PORT` on stdout, logs on stderr, runs
 * until SIGTERM or SIGINT, then exits 0. Data lives in memory only.
 */
#include "ingest/ingest.h"
#include "log/log.h"
#include "util/util.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TOPIC     "tocsin.incidents"
#define DEFAULT_DLQ_TOPIC "tocsin.incidents.dlq"

static void
usage(FILE *out)
{
    fprintf(out, "usage: tocsin-devkafka [--partitions N] [--topic T] [--dlq-topic T] [--help]\n"
                 "\n"
                 "Runs an in-memory single-broker Kafka (librdkafka mock cluster) with the\n"
                 "topic (N partitions, default 4) and the dead-letter topic (1 partition).\n"
                 "Prints `bootstrap=127.0.0.1:PORT` on stdout; runs until SIGTERM/SIGINT.\n"
                 "For development and tests only: data lives in memory, and each partition\n"
                 "keeps only its last ~5 MB (the mock cluster drops older messages).\n"
                 "\n"
                 "  --partitions N   partitions of the topic, 1-256 (default 4)\n"
                 "  --topic T        topic name (default " DEFAULT_TOPIC ")\n"
                 "  --dlq-topic T    dead-letter topic name (default " DEFAULT_DLQ_TOPIC ")\n");
}

static int
parse_partitions(const char *s, int *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0') {
        return TC_EINVAL;
    }
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > 256) {
        return TC_EINVAL;
    }
    *out = (int)v;
    return 0;
}

/* Kafka's topic rule, as kafka.topic in the configuration. */
static bool
valid_topic(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n < 1 || n > 249) {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
    const char *topic = DEFAULT_TOPIC;
    const char *dlq_topic = DEFAULT_DLQ_TOPIC;
    struct tc_kafka_embedded *k = NULL;
    struct tc_error err = {{0}};
    int partitions = 4;
    int rc = 2;
    sigset_t set;
    int sig = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--partitions") == 0) {
            if (parse_partitions(v, &partitions) < 0) {
                fprintf(stderr, "tocsin-devkafka: --partitions needs an integer 1-256\n");
                goto out;
            }
            i++;
        } else if (strcmp(a, "--topic") == 0 || strcmp(a, "--dlq-topic") == 0) {
            if (!valid_topic(v)) {
                fprintf(stderr,
                        "tocsin-devkafka: %s needs a topic name (1-249 of [A-Za-z0-9._-])\n", a);
                goto out;
            }
            if (strcmp(a, "--topic") == 0) {
                topic = v;
            } else {
                dlq_topic = v;
            }
            i++;
        } else {
            fprintf(stderr, "tocsin-devkafka: unknown argument '%s' (see --help)\n", a);
            goto out;
        }
    }
    if (strcmp(topic, dlq_topic) == 0) {
        fprintf(stderr, "tocsin-devkafka: --topic and --dlq-topic must differ\n");
        goto out;
    }

    /* Block the signals before librdkafka starts its threads, so they all
     * inherit the mask and sigwait below is the only receiver. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    k = tc_kafka_embedded_new(topic, dlq_topic, partitions, &err);
    if (k == NULL) {
        fprintf(stderr, "tocsin-devkafka: %s\n", err.text);
        rc = 1;
        goto out;
    }
    printf("bootstrap=%s\n", tc_kafka_embedded_bootstrap(k));
    fflush(stdout);
    if (sigwait(&set, &sig) != 0) {
        sig = 0;
    }
    tc_info("devkafka", "stopping", TC_I("signal", sig));
    rc = 0;
out:
    tc_kafka_embedded_free(k);
    return rc;
}
