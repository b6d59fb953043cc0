/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-devkafka: the embedded Kafka (librdkafka's mock cluster) as its own
 * process, so tests and the quick start keep a Kafka that outlives tocsind.
 * Prints one line `bootstrap=127.0.0.1:PORT` on stdout, logs on stderr, runs
 * until SIGTERM or SIGINT, then exits 0. Data lives in memory only. Lines on
 * stdin are fault-injection commands (tc_kafka_embedded_control), each
 * answered by one line `ok` or `error: ...` on stdout; stdin's end is not a
 * stop.
 */
#include "ingest/ingest.h"
#include "log/log.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define DEFAULT_TOPIC     "tocsin.incidents"
#define DEFAULT_DLQ_TOPIC "tocsin.incidents.dlq"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: tocsin-devkafka [--partitions N] [--brokers N] [--topic T] [--dlq-topic T]\n"
            "                       [--help]\n"
            "\n"
            "Runs an in-memory Kafka (librdkafka mock cluster) with the topic (N\n"
            "partitions, default 4) and the dead-letter topic (1 partition).\n"
            "Prints `bootstrap=127.0.0.1:PORT` on stdout; runs until SIGTERM/SIGINT.\n"
            "For development and tests only: data lives in memory, and each partition\n"
            "keeps only its last ~5 MB (the mock cluster drops older messages).\n"
            "\n"
            "  --partitions N   partitions of the topic, 1-256 (default 4)\n"
            "  --brokers N      brokers (ids 1..N) sharing the partitions, 1-9 (default 1)\n"
            "  --topic T        topic name (default " DEFAULT_TOPIC ")\n"
            "  --dlq-topic T    dead-letter topic name (default " DEFAULT_DLQ_TOPIC ")\n"
            "\n"
            "Fault injection: each line on stdin is one command, answered by one line\n"
            "`ok` or `error: ...` on stdout (the end of stdin is ignored):\n"
            "  broker-down ID           disconnect broker ID and refuse its connections\n"
            "  broker-up ID             accept connections again\n"
            "  rtt ID MS                delay every answer of broker ID by MS ms\n"
            "  errors API COUNT ERROR   the next COUNT requests of API (Produce, Fetch,\n"
            "                           ListOffsets, Metadata, OffsetCommit, OffsetFetch,\n"
            "                           FindCoordinator, JoinGroup, Heartbeat, LeaveGroup,\n"
            "                           SyncGroup, ApiVersions) answer ERROR, a broker\n"
            "                           error name (NOT_LEADER_FOR_PARTITION,\n"
            "                           REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE, ...)\n"
            "  clear API                drop the errors still pushed for API\n"
            "  leader PARTITION ID      move the topic's PARTITION to broker ID\n"
            "  coordinator GROUP ID     make broker ID the coordinator of GROUP\n"
            "  ping                     answers ok (a round trip to sync with)\n");
}

static int
parse_count(const char *s, long max, int *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0') {
        return TC_EINVAL;
    }
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > max) {
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

/* Answers each complete line of what stdin holds; keeps a partial line for
 * the next read. @returns false at the end of stdin (or a read error). */
static bool
serve_stdin(struct tc_kafka_embedded *k, char *buf, size_t *len, size_t cap)
{
    struct tc_error err = {{0}};
    ssize_t n;
    char *nl;

    n = read(STDIN_FILENO, buf + *len, cap - *len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (n <= 0) {
        return false;
    }
    *len += (size_t)n;
    while ((nl = memchr(buf, '\n', *len)) != NULL) {
        *nl = '\0';
        err.text[0] = '\0';
        if (tc_kafka_embedded_control(k, buf, &err) == 0) {
            printf("ok\n");
        } else {
            printf("error: %s\n", err.text);
        }
        fflush(stdout);
        *len -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, *len);
    }
    if (*len == cap) {
        /* A line past the bound: refused whole, not executed in pieces. */
        printf("error: command longer than %d bytes\n", TC_KAFKA_CONTROL_MAX);
        fflush(stdout);
        *len = 0;
    }
    return true;
}

/* Serves stdin commands until SIGTERM or SIGINT. @returns the signal. */
static int
run(struct tc_kafka_embedded *k, const sigset_t *set)
{
    char buf[TC_KAFKA_CONTROL_MAX + 2];
    size_t len = 0;
    struct pollfd fds[2];
    struct signalfd_siginfo si;
    int sfd = signalfd(-1, set, SFD_CLOEXEC);
    int sig = 0;

    if (sfd < 0) {
        /* Without a signalfd there is no control channel, only the wait. */
        return sigwait(set, &sig) == 0 ? sig : 0;
    }
    fds[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    while (sig == 0) {
        if (poll(fds, fds[1].fd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
            !serve_stdin(k, buf, &len, sizeof(buf))) {
            fds[1].fd = -1; /* poll ignores it from now on */
        }
        if ((fds[0].revents & POLLIN) != 0 && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            sig = (int)si.ssi_signo;
        }
    }
    close(sfd);
    return sig;
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
    int brokers = 1;
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
            if (parse_count(v, 256, &partitions) < 0) {
                fprintf(stderr, "tocsin-devkafka: --partitions needs an integer 1-256\n");
                goto out;
            }
            i++;
        } else if (strcmp(a, "--brokers") == 0) {
            if (parse_count(v, 9, &brokers) < 0) {
                fprintf(stderr, "tocsin-devkafka: --brokers needs an integer 1-9\n");
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
     * inherit the mask and the signalfd below is the only receiver. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    k = tc_kafka_embedded_new_brokers(topic, dlq_topic, partitions, brokers, &err);
    if (k == NULL) {
        fprintf(stderr, "tocsin-devkafka: %s\n", err.text);
        rc = 1;
        goto out;
    }
    printf("bootstrap=%s\n", tc_kafka_embedded_bootstrap(k));
    fflush(stdout);
    sig = run(k, &set);
    tc_info("devkafka", "stopping", TC_I("signal", sig));
    rc = 0;
out:
    tc_kafka_embedded_free(k);
    return rc;
}
