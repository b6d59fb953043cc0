/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/http/static.c without a server: which names the route
 * takes (a table, each row naming its rule), content types, the ETag and
 * If-None-Match matching, loading from the built-in copies (byte for byte
 * the files of clients/) and from http.static_dir (override, fallback, the
 * 1 MiB bound exactly and one past it, a directory in place of a file), and
 * the config check of http.static_dir.
 */
#include "config/config.h"
#include "http/http_internal.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void
test_names(void **state)
{
    static const struct {
        const char *name;
        bool ok;
        const char *rule;
    } rows[] = {
        {"status.js", true, "letters, a dot"},
        {"a-b_c.9.css", true, "digits, - and _"},
        {"", false, "empty"},
        {".", false, "leading dot"},
        {"..", false, "parent"},
        {".hidden.js", false, "leading dot: hidden files"},
        {"a..b.js", false, "no .. anywhere"},
        {"a/b.js", false, "one segment: no slash"},
        {"..%2fx", false, "no %: lws decodes before us, so one here is literal"},
        {"a b.js", false, "no space"},
        {"a\\b.js", false, "no backslash"},
        {"ä.js", false, "ASCII only"},
        {"x.js\n", false, "no control characters"},
    };
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(rows); i++) {
        if (tc_http__static_name_ok(rows[i].name) != rows[i].ok) {
            fail_msg("row %zu (%s): \"%s\" should be %s", i, rows[i].rule, rows[i].name,
                     rows[i].ok ? "served" : "refused");
        }
    }
    char name[200];
    memset(name, 'a', sizeof(name));
    strcpy(name + 125, ".js"); /* 128 bytes: the bound */
    assert_true(tc_http__static_name_ok(name));
    strcpy(name + 126, ".js"); /* 129 */
    assert_false(tc_http__static_name_ok(name));
}

static void
test_types(void **state)
{
    (void)state;
    assert_string_equal(tc_http__static_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(tc_http__static_type("tocsin.js"), "text/javascript; charset=utf-8");
    assert_string_equal(tc_http__static_type("status.css"), "text/css; charset=utf-8");
    assert_string_equal(tc_http__static_type("favicon.svg"), "image/svg+xml");
    assert_string_equal(tc_http__static_type("logo.png"), "image/png");
    assert_string_equal(tc_http__static_type("a.json"), "application/json");
    assert_null(tc_http__static_type("notes.txt"));
    assert_null(tc_http__static_type("README"));
    assert_null(tc_http__static_type("x.js.map"));
    assert_null(tc_http__static_type("x.HTML")); /* exact, as the files are named */
}

static void
test_etag(void **state)
{
    char a[32], b[32];
    (void)state;
    /* FNV-1a 64 of "" is its offset basis. */
    tc_http__static_etag((const unsigned char *)"", 0, a, sizeof(a));
    assert_string_equal(a, "\"cbf29ce484222325\"");
    tc_http__static_etag((const unsigned char *)"a", 1, a, sizeof(a));
    assert_string_equal(a, "\"af63dc4c8601ec8c\"");
    tc_http__static_etag((const unsigned char *)"b", 1, b, sizeof(b));
    assert_string_not_equal(a, b);

    const char *e = "\"af63dc4c8601ec8c\"";
    assert_true(tc_http__static_etag_match(e, e));
    assert_true(tc_http__static_etag_match("W/\"af63dc4c8601ec8c\"", e));
    assert_true(tc_http__static_etag_match("\"x\", \"af63dc4c8601ec8c\"", e));
    assert_true(tc_http__static_etag_match("\"x\" ,W/\"af63dc4c8601ec8c\" ", e));
    assert_true(tc_http__static_etag_match("*", e));
    assert_false(tc_http__static_etag_match("", e));
    assert_false(tc_http__static_etag_match("\"x\"", e));
    assert_false(tc_http__static_etag_match("af63dc4c8601ec8c", e)); /* unquoted */
    assert_false(tc_http__static_etag_match("\"af63dc4c8601ec8c\"x", e));
    assert_false(tc_http__static_etag_match(",,, ", e));
}

static char *
slurp(const char *rel, size_t *len)
{
    const char *src = getenv("TOCSIN_SOURCE_DIR");
    char *path = tc_xasprintf("%s/%s", src ? src : TOCSIN_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    char *buf = tc_xmalloc(4 * 1024 * 1024);
    *len = fread(buf, 1, 4 * 1024 * 1024, f);
    fclose(f);
    free(path);
    return buf;
}

static void
expect_file(const char *dir, const char *name, const void *want, size_t want_len)
{
    unsigned char *body = NULL;
    size_t len = 0;
    struct tc_error err;
    int rc = tc_http__static_load(dir, name, &body, &len, &err);
    if (rc != TC_OK) {
        fail_msg("%s: %s", name, err.text);
    }
    assert_int_equal(len, want_len);
    assert_memory_equal(body + LWS_PRE, want, want_len);
    free(body);
}

static void
test_builtins_are_the_source_files(void **state)
{
    static const char *const files[] = {
        "clients/status/index.html",  "clients/status/status.js", "clients/status/status.css",
        "clients/status/favicon.svg", "clients/js/tocsin.js",     "clients/js/banner.js",
    };
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(files); i++) {
        size_t len;
        char *text = slurp(files[i], &len);
        expect_file(NULL, strrchr(files[i], '/') + 1, text, len);
        expect_file("", strrchr(files[i], '/') + 1, text, len);
        free(text);
    }
    unsigned char junk[1];
    unsigned char *body = junk; /* the callee clears what it does not fill */
    size_t len = 7;
    struct tc_error err;
    assert_int_equal(tc_http__static_load(NULL, "nope.js", &body, &len, &err), TC_ENOENT);
    assert_null(body);
    assert_int_equal(len, 0);
    assert_int_equal(tc_http__static_load(NULL, "../CMakeLists.txt", &body, &len, &err), TC_ENOENT);
}

static void
write_file(const char *dir, const char *name, const char *fill, size_t len)
{
    char *path = tc_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++) {
        fputc(fill[i % strlen(fill)], f);
    }
    fclose(f);
    free(path);
}

static void
test_static_dir(void **state)
{
    char dir[] = "/tmp/tocsin-test-static-XXXXXX";
    unsigned char *body = NULL;
    size_t len = 0;
    struct tc_error err;
    (void)state;
    assert_non_null(mkdtemp(dir));
    write_file(dir, "index.html", "<p>ours</p>", 11);
    write_file(dir, "exact.js", "/", TC_HTTP_STATIC_MAX);
    write_file(dir, "big.js", "/", TC_HTTP_STATIC_MAX + 1);
    write_file(dir, "empty.css", "", 0);
    char *sub = tc_xasprintf("%s/dir.css", dir);
    assert_int_equal(mkdir(sub, 0700), 0);

    /* The directory's file replaces the built-in; the rest fall back. */
    expect_file(dir, "index.html", "<p>ours</p>", 11);
    size_t tlen;
    char *tocsin = slurp("clients/js/tocsin.js", &tlen);
    expect_file(dir, "tocsin.js", tocsin, tlen);
    free(tocsin);
    expect_file(dir, "empty.css", "", 0);

    /* The bound: exactly 1 MiB is served, one byte more is not. */
    assert_int_equal(tc_http__static_load(dir, "exact.js", &body, &len, &err), TC_OK);
    assert_int_equal(len, TC_HTTP_STATIC_MAX);
    free(body);
    assert_int_equal(tc_http__static_load(dir, "big.js", &body, &len, &err), TC_ETOOBIG);
    assert_null(body);
    assert_non_null(strstr(err.text, "over the bound"));
    /* Not a regular file: an error, not a silent fallback. */
    assert_int_equal(tc_http__static_load(dir, "dir.css", &body, &len, &err), TC_EIO);
    assert_null(body);
    assert_int_equal(tc_http__static_load(dir, "absent.js", &body, &len, &err), TC_ENOENT);

    char *rm = tc_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(sub);
}

static int
load_with_dir(const char *value, struct tc_config *cfg, struct tc_error *err)
{
    char *var = tc_xasprintf("TOCSIN_HTTP_STATIC_DIR=%s", value);
    char *envp[] = {var, NULL};
    int rc = tc_config_load(cfg, NULL, envp, err);
    free(var);
    return rc;
}

static void
test_config_key(void **state)
{
    struct tc_config cfg;
    struct tc_error err;
    (void)state;
    assert_int_equal(tc_config_load(&cfg, NULL, NULL, &err), TC_OK);
    assert_string_equal(cfg.http_static_dir, ""); /* default: the built-ins */
    tc_config_fini(&cfg);

    assert_int_equal(load_with_dir("/tmp", &cfg, &err), TC_OK);
    assert_string_equal(cfg.http_static_dir, "/tmp");
    tc_config_fini(&cfg);

    assert_int_equal(load_with_dir("/nonexistent/tocsin-www", &cfg, &err), TC_EINVAL);
    assert_string_equal(err.text,
                        "http.static_dir: /nonexistent/tocsin-www: No such file or directory");
    assert_int_equal(load_with_dir("/etc/hostname", &cfg, &err), TC_EINVAL);
    assert_string_equal(err.text, "http.static_dir: /etc/hostname: not a directory");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),      cmocka_unit_test(test_types),
        cmocka_unit_test(test_etag),       cmocka_unit_test(test_builtins_are_the_source_files),
        cmocka_unit_test(test_static_dir), cmocka_unit_test(test_config_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
