/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/metrics: the rendered Prometheus text has one HELP and
 * one TYPE per family with all of a family's samples together after them,
 * counters and gauges show what was counted (from several threads too), and
 * histogram buckets are cumulative with +Inf equal to _count.
 */
#include "metrics/metrics.h"
#include "util/util.h"

#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_FAMILIES 64

/* The families of a rendered text, in order of their TYPE lines. */
struct family {
    char name[96];
    char type[16];
    int help_lines, type_lines;
};

static int
find_family(struct family *fams, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(fams[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* The family a sample belongs to: its name, less a histogram suffix. */
static int
sample_family(struct family *fams, int n, const char *metric)
{
    int f = find_family(fams, n, metric);
    if (f >= 0) {
        return f;
    }
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < TC_ARRAY_SIZE(suffixes); i++) {
        size_t ml = strlen(metric), sl = strlen(suffixes[i]);
        if (ml > sl && strcmp(metric + ml - sl, suffixes[i]) == 0) {
            char base[96];
            snprintf(base, sizeof(base), "%.*s", (int)(ml - sl), metric);
            f = find_family(fams, n, base);
            if (f >= 0 && strcmp(fams[f].type, "histogram") == 0) {
                return f;
            }
        }
    }
    return -1;
}

/* Checks the structure of the whole text. @returns the family count. */
static int
check_structure(char *text, struct family *fams)
{
    regex_t sample_re;
    assert_int_equal(
        regcomp(&sample_re,
                "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
                "-?[0-9]+(\\.[0-9]+)?$",
                REG_EXTENDED | REG_NOSUB),
        0);
    int n = 0, current = -1;
    bool done[MAX_FAMILIES] = {false};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[96], rest[128];
        if (sscanf(line, "# HELP %95s %127[^\n]", name, rest) == 2) {
            int f = find_family(fams, n, name);
            if (f < 0) {
                assert_true(n < MAX_FAMILIES);
                f = n++;
                snprintf(fams[f].name, sizeof(fams[f].name), "%s", name);
            }
            fams[f].help_lines++;
            continue;
        }
        if (sscanf(line, "# TYPE %95s %127s", name, rest) == 2) {
            int f = find_family(fams, n, name);
            if (f < 0) {
                assert_true(n < MAX_FAMILIES);
                f = n++;
                snprintf(fams[f].name, sizeof(fams[f].name), "%s", name);
            }
            snprintf(fams[f].type, sizeof(fams[f].type), "%.15s", rest);
            fams[f].type_lines++;
            if (current >= 0 && current != f) {
                done[current] = true;
            }
            current = f;
            continue;
        }
        if (regexec(&sample_re, line, 0, NULL, 0) != 0) {
            fail_msg("not a sample line: %s", line);
        }
        char metric[96];
        assert_int_equal(sscanf(line, "%95[^{ ]", metric), 1);
        int f = sample_family(fams, n, metric);
        if (f < 0) {
            fail_msg("sample before its TYPE line: %s", line);
        }
        /* All samples of a family form one group after its TYPE line. */
        if (done[f] || f != current) {
            fail_msg("family %s is split: %s", fams[f].name, line);
        }
    }
    regfree(&sample_re);
    for (int f = 0; f < n; f++) {
        if (fams[f].help_lines != 1 || fams[f].type_lines != 1) {
            fail_msg("%s: %d HELP and %d TYPE lines", fams[f].name, fams[f].help_lines,
                     fams[f].type_lines);
        }
    }
    return n;
}

/* @returns the value of the sample line that starts with prefix + ' '. */
static double
value_of(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, pl) == 0 && p[pl] == ' ') {
            return strtod(p + pl + 1, NULL);
        }
    }
    fail_msg("no sample %s", prefix);
    return -1;
}

static char *
render(void)
{
    size_t len = 0;
    char *text = tc_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_true(len > 0 && text[len - 1] == '\n');
    return text;
}

static void
test_families(void **state)
{
    (void)state;
    char *text = render();
    struct family fams[MAX_FAMILIES];
    memset(fams, 0, sizeof(fams));
    int n = check_structure(text, fams);
    /* Families with several labelled rows count once. */
    int f = find_family(fams, n, "tocsin_sessions_opened_total");
    assert_true(f >= 0);
    assert_string_equal(fams[f].type, "counter");
    f = find_family(fams, n, "tocsin_sessions");
    assert_true(f >= 0);
    assert_string_equal(fams[f].type, "gauge");
    f = find_family(fams, n, "tocsin_store_seconds");
    assert_true(f >= 0);
    assert_string_equal(fams[f].type, "histogram");
    free(text);
}

static void
test_counters_and_gauges(void **state)
{
    (void)state;
    tc_metrics_inc(TC_M_EVENTS_ACCEPTED);
    tc_metrics_inc(TC_M_EVENTS_ACCEPTED);
    tc_metrics_add(TC_M_EVENTS_DUPLICATE, 5);
    tc_metrics_inc(TC_M_SSE_SESSIONS_OPENED);
    tc_metrics_gauge_set(TC_G_WS_SESSIONS, 5);
    tc_metrics_gauge_add(TC_G_WS_SESSIONS, -7);
    tc_metrics_gauge_set(TC_G_HUB_SEQ, 1234567890123);
    assert_int_equal(tc_metrics_get(TC_M_EVENTS_ACCEPTED), 2);
    assert_int_equal(tc_metrics_gauge_get(TC_G_WS_SESSIONS), -2);
    char *text = render();
    assert_true(value_of(text, "tocsin_events_total{result=\"accepted\"}") == 2);
    assert_true(value_of(text, "tocsin_events_total{result=\"duplicate\"}") == 5);
    assert_true(value_of(text, "tocsin_events_total{result=\"stale\"}") == 0);
    assert_true(value_of(text, "tocsin_sessions_opened_total{channel=\"sse\"}") == 1);
    assert_true(value_of(text, "tocsin_sessions_opened_total{channel=\"ws\"}") == 0);
    assert_true(value_of(text, "tocsin_sessions{channel=\"ws\"}") == -2);
    assert_non_null(strstr(text, "\ntocsin_hub_seq 1234567890123\n"));
    free(text);
}

#define THREADS    4
#define PER_THREAD 100000

static void *
count_a_lot(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        tc_metrics_inc(TC_M_HTTP_REQUESTS);
        tc_metrics_gauge_add(TC_G_SEND_QUEUE_FRAMES, i % 2 ? -1 : 1);
    }
    return NULL;
}

/* Updates from many threads are neither lost nor torn. */
static void
test_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    uint64_t before = tc_metrics_get(TC_M_HTTP_REQUESTS);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, count_a_lot, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    assert_int_equal(tc_metrics_get(TC_M_HTTP_REQUESTS) - before, THREADS * PER_THREAD);
    assert_int_equal(tc_metrics_gauge_get(TC_G_SEND_QUEUE_FRAMES), 0);
}

static void
test_histogram(void **state)
{
    (void)state;
    /* 0.0005 is exactly a bound: "le" means less than or equal. */
    static const double obs[] = {0.0001, 0.0005, 0.003, 7, 100, -1};
    for (size_t i = 0; i < TC_ARRAY_SIZE(obs); i++) {
        tc_metrics_observe(TC_H_FANOUT_SECONDS, obs[i]);
    }
    char *text = render();
    const char *h = "tocsin_fanout_seconds_bucket{le=";
    char key[96];
#define BUCKET(le) (snprintf(key, sizeof(key), "%s\"%s\"}", h, le), value_of(text, key))
    assert_true(BUCKET("0.0005") == 3); /* -1, 0.0001, 0.0005 */
    assert_true(BUCKET("0.001") == 3);
    assert_true(BUCKET("0.0025") == 3);
    assert_true(BUCKET("0.005") == 4);
    assert_true(BUCKET("5") == 4);
    assert_true(BUCKET("10") == 5);
    assert_true(BUCKET("+Inf") == 6);
#undef BUCKET
    assert_true(value_of(text, "tocsin_fanout_seconds_count") == 6);
    double sum = value_of(text, "tocsin_fanout_seconds_sum");
    assert_true(sum > 107.0035 && sum < 107.0037); /* a negative time counts as 0 */

    /* Every histogram: buckets never decrease, and +Inf is _count. */
    static const char *const names[] = {"tocsin_store_seconds", "tocsin_ingest_seconds",
                                        "tocsin_fanout_seconds"};
    for (size_t i = 0; i < TC_ARRAY_SIZE(names); i++) {
        tc_metrics_observe(TC_H_STORE_SECONDS, 0.02 * (double)i);
        free(text);
        text = render();
        snprintf(key, sizeof(key), "%s_bucket{", names[i]);
        double last = 0;
        int buckets = 0;
        for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
            double v = strtod(strchr(p, ' ') + 1, NULL);
            assert_true(v >= last);
            last = v;
            buckets++;
        }
        assert_int_equal(buckets, 15);
        snprintf(key, sizeof(key), "%s_bucket{le=\"+Inf\"}", names[i]);
        double inf = value_of(text, key);
        snprintf(key, sizeof(key), "%s_count", names[i]);
        assert_true(inf == value_of(text, key));
        assert_true(inf == last);
    }
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
