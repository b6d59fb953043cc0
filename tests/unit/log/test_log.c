/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/log: stderr is captured into a temp file, and each line
 * is read back with a small strict logfmt parser, so escaping is checked by
 * round trip (what went in comes out, and nothing else: no forged keys, no
 * second line). Also level filtering and cutting of long lines.
 */
#include "log/log.h"
#include "util/util.h"

#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char tmpdir[64];
static char *capture_path;
static int saved_stderr = -1;

static int
group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tocsin-test-log-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    capture_path = tc_xasprintf("%s/stderr", tmpdir);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    unlink(capture_path);
    free(capture_path);
    return rmdir(tmpdir);
}

/* Points fd 2 at an empty capture file. */
static void
capture_start(void)
{
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

/* Restores fd 2. @returns new, what was written meanwhile. */
static char *
capture_end(size_t *len)
{
    assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "rb");
    assert_non_null(f);
    char *buf = tc_xmalloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A strict logfmt reader: key=value pairs separated by one space; a value is
 * bare (no space, quote, '=' or backslash) or quoted with \" \\ \n \xHH. */
struct pair {
    char key[64];
    char value[8192];
};

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses one line (without its '\n'). @returns the pair count, or -1. */
static int
parse_line(const char *s, struct pair *pairs, int max)
{
    int n = 0;
    while (*s) {
        if (n == max) {
            return -1;
        }
        struct pair *p = &pairs[n++];
        size_t k = 0;
        while (*s && *s != '=' && *s != ' ' && *s != '"' && k + 1 < sizeof(p->key)) {
            p->key[k++] = *s++;
        }
        p->key[k] = '\0';
        if (k == 0 || *s++ != '=') {
            return -1;
        }
        size_t v = 0;
        if (*s == '"') {
            for (s++; *s != '"'; s++) {
                if (*s == '\0' || *s == '\n' || v + 1 >= sizeof(p->value)) {
                    return -1;
                }
                char c = *s;
                if (c == '\\') {
                    s++;
                    if (*s == '"' || *s == '\\') {
                        c = *s;
                    } else if (*s == 'n') {
                        c = '\n';
                    } else if (*s == 'x' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                        c = (char)(hexval(s[1]) * 16 + hexval(s[2]));
                        s += 2;
                    } else {
                        return -1;
                    }
                }
                p->value[v++] = c;
            }
            s++;
        } else {
            while (*s && *s != ' ') {
                if (*s == '"' || *s == '=' || *s == '\\' || v + 1 >= sizeof(p->value)) {
                    return -1;
                }
                p->value[v++] = *s++;
            }
        }
        p->value[v] = '\0';
        if (*s == ' ') {
            s++;
            if (*s == '\0') {
                return -1;
            }
        } else if (*s != '\0') {
            return -1;
        }
    }
    return n;
}

/* Logs one info line with key "v" = value; checks it parses back to it. */
static void
check_round_trip(const char *value)
{
    size_t len;
    capture_start();
    tc_info("test", "round trip", TC_S("v", value), TC_I("after", 7));
    char *out = capture_end(&len);
    /* Exactly one line: a value can never end it. */
    assert_true(len > 0);
    assert_int_equal(out[len - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    out[len - 1] = '\0';
    static struct pair pairs[8];
    int n = parse_line(out, pairs, 8);
    if (n != 6) {
        fail_msg("line does not parse into 6 pairs (%d): %s", n, out);
    }
    assert_string_equal(pairs[0].key, "ts");
    assert_string_equal(pairs[1].key, "level");
    assert_string_equal(pairs[1].value, "info");
    assert_string_equal(pairs[2].key, "sub");
    assert_string_equal(pairs[2].value, "test");
    assert_string_equal(pairs[3].key, "msg");
    assert_string_equal(pairs[3].value, "round trip");
    assert_string_equal(pairs[4].key, "v");
    assert_string_equal(pairs[4].value, value);
    assert_string_equal(pairs[5].key, "after");
    assert_string_equal(pairs[5].value, "7");
    free(out);
}

static void
test_escaping(void **state)
{
    (void)state;
    static const char *const values[] = {
        "plain",
        "",
        "two words",
        "say \"hi\"",
        "back\\slash",
        "a=b",
        "x level=error msg=forged",
        "line\nts=2026-01-01T00:00:00.000Z level=error msg=forged",
        "cr\rtab\tesc\x1b del\x7f bell\x07",
        "\"",
        "\\",
        "\\\"",
        "trailing\\",
        "caf\xc3\xa9 \xe2\x9c\x93",
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(values); i++) {
        check_round_trip(values[i]);
    }
}

/* The exact text of a few escapes, as the format promises them. */
static void
test_escape_text(void **state)
{
    (void)state;
    size_t len;
    capture_start();
    tc_warn("t", "m", TC_S("q", "a\"b\\c\nd\x01"), TC_S("eq", "k=v"), TC_S("e", ""),
            TC_S("n", NULL), TC_U("u", 18446744073709551615ull), TC_I("i", -3), TC_B("b", 1),
            TC_D("d", 0.25));
    char *out = capture_end(&len);
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                "level=warn sub=t msg=m ",
                REG_EXTENDED | REG_NOSUB),
        0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    const char *tail = strstr(out, " msg=m ") + 7;
    assert_string_equal(tail, "q=\"a\\\"b\\\\c\\nd\\x01\" eq=\"k=v\" e=\"\" n=null "
                              "u=18446744073709551615 i=-3 b=true d=0.25\n");
    free(out);
}

static int evaluated;

static const char *
costly(void)
{
    evaluated++;
    return "built";
}

static void
test_level_filter(void **state)
{
    (void)state;
    size_t len;
    enum tc_log_level level;
    assert_int_equal(tc_log_parse_level("warn", &level), TC_OK);
    assert_int_equal(level, TC_LOG_WARN);
    assert_int_equal(tc_log_parse_level("debug", &level), TC_OK);
    assert_int_equal(level, TC_LOG_DEBUG);
    assert_int_equal(tc_log_parse_level("WARN", &level), TC_EINVAL);
    assert_int_equal(tc_log_parse_level("", &level), TC_EINVAL);
    assert_int_equal(tc_log_parse_level("warning", &level), TC_EINVAL);

    tc_log_set_level(TC_LOG_WARN);
    evaluated = 0;
    capture_start();
    tc_debug("t", "hidden debug", TC_S("x", costly()));
    tc_info("t", "hidden info", TC_S("x", costly()));
    tc_warn("t", "shown warn", TC_S("x", costly()));
    tc_err("t", "shown error");
    char *out = capture_end(&len);
    /* Arguments of filtered lines are never built. */
    assert_int_equal(evaluated, 1);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "level=warn sub=t msg=\"shown warn\" x=built\n"));
    assert_non_null(strstr(out, "level=error sub=t msg=\"shown error\"\n"));
    free(out);

    tc_log_set_level(TC_LOG_DEBUG);
    capture_start();
    tc_debug("t", "now shown");
    out = capture_end(&len);
    assert_non_null(strstr(out, "level=debug"));
    free(out);
    tc_log_set_level(TC_LOG_INFO);
}

/* Logs value (of n bytes) and checks the line is cut, bounded and well formed.
 * @returns new, the parsed value of "v". */
static char *
log_long(const char *value)
{
    size_t len;
    capture_start();
    tc_info("t", "long", TC_S("v", value), TC_S("never", "reached"));
    char *out = capture_end(&len);
    assert_true(len <= 4096);
    assert_int_equal(out[len - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    assert_null(strstr(out, "never"));
    out[len - 1] = '\0';
    static struct pair pairs[8];
    int n = parse_line(out, pairs, 8);
    if (n != 5) {
        fail_msg("cut line does not parse (%d): ...%s", n, out + len - 40);
    }
    assert_string_equal(pairs[4].key, "v");
    char *v = tc_xstrdup(pairs[4].value);
    free(out);
    return v;
}

static void
test_long_values_cut(void **state)
{
    (void)state;
    char *big = tc_xmalloc(10001);
    /* A bare value: cut and marked. */
    memset(big, 'a', 10000);
    big[10000] = '\0';
    char *v = log_long(big);
    size_t vlen = strlen(v);
    assert_true(vlen > 3900);
    assert_string_equal(v + vlen - 3, "...");
    assert_int_equal(strspn(v, "a"), vlen - 3);
    free(v);
    /* Escapes are never split, whatever the offset where the bound falls. */
    static const char *const fills[] = {"\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe2\x9c\x93"};
    for (size_t f = 0; f < TC_ARRAY_SIZE(fills); f++) {
        for (size_t shift = 0; shift < 4; shift++) {
            size_t flen = strlen(fills[f]), pos = 0;
            memset(big, 'b', shift);
            for (pos = shift; pos + flen < 10000; pos += flen) {
                memcpy(big + pos, fills[f], flen);
            }
            big[pos] = '\0';
            v = log_long(big);
            vlen = strlen(v);
            assert_string_equal(v + vlen - 3, "...");
            /* What survived is a prefix of the input. */
            assert_memory_equal(v, big, vlen - 3);
            assert_int_equal((vlen - 3 - shift) % flen, 0);
            free(v);
        }
    }
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_escape_text),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_long_values_cut),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
