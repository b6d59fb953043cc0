/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the email template compiler and renderer (email/template.h)
 * on arbitrary template text, rendered with one fixed context shaped like a
 * digest. A compiled template renders in text and HTML mode within the output
 * bound, the same twice; a smaller bound gives the same text or TC_ETOOBIG.
 * In HTML mode, without raw tags ({{{ }}} or {{& }}), no value can bring a
 * markup character (< > " ') that the template text does not have: every
 * context string holds all four.
 */
#define _GNU_SOURCE /* memmem */
#include "email/template.h"
#include "fuzz.h"

#include <stdbool.h>

#define OUT_MAX   (64 << 10)
#define SMALL_MAX 64

/* Every string carries markup, so escaping is observable; arrays have two
 * items, so nested sections stay cheap (2^16 at the depth bound). */
static const char context_json[] =
    "{\"name\":\"<b>Ann's \\\"ops\\\" & co</b>\",\"n\":42,\"r\":2.5,\"big\":1e300,"
    "\"t\":true,\"f\":false,\"z\":0,\"e\":\"\",\"nul\":null,"
    "\"o\":{\"a\":\"<i>'inner'\\\"</i>\",\"n\":-7,\"o\":{\"deep\":\"<x y='1'>\\\"\"}},"
    "\"xs\":[\"<a>'\\\"\",\"<b>'\\\"\"],"
    "\"incidents\":[{\"title\":\"<t1>'\\\"\",\"impact\":\"major\",\"transitions\":"
    "[{\"to\":\"<resolved>'\\\"\",\"at\":\"<10:00>'\\\"\"}]},{\"title\":\"<t2>'\\\"\"}],"
    "\"public_url\":\"https://status.example.org/?a=1&b=<2>'\\\"\"}";

static json_t *context;

static void
check_markup(const char *src, size_t len, const char *out)
{
    /* Raw tags may carry markup; so may the text itself. */
    if (memmem(src, len, "{{{", 3) != NULL || memmem(src, len, "{{&", 3) != NULL) {
        return;
    }
    static const char marks[] = "<>\"'";
    for (const char *m = marks; *m != '\0'; m++) {
        if (memchr(src, *m, len) == NULL) {
            FUZZ_CHECKF(strchr(out, *m) == NULL, "unescaped %c in HTML output", *m);
        }
    }
}

static void
render_both_bounds(const struct tc_email_template *t, const char *src, size_t len, bool html)
{
    char *out = NULL, *again = NULL, *small = NULL;
    size_t n = 0, n2 = 0, ns = 0;
    struct tc_error err = {{0}};

    int rc = tc_email_template_render(t, context, html, OUT_MAX, &out, &n, &err);
    if (rc != TC_OK) {
        FUZZ_CHECK(rc == TC_ETOOBIG && out == NULL && err.text[0] != '\0');
        return;
    }
    FUZZ_CHECK(out != NULL && n <= OUT_MAX && strlen(out) == n);
    if (html) {
        check_markup(src, len, out);
    }
    FUZZ_CHECK(tc_email_template_render(t, context, html, OUT_MAX, &again, &n2, NULL) == TC_OK);
    FUZZ_CHECK(n2 == n && memcmp(out, again, n) == 0);
    rc = tc_email_template_render(t, context, html, SMALL_MAX, &small, &ns, NULL);
    if (n <= SMALL_MAX) {
        FUZZ_CHECK(rc == TC_OK && ns == n && memcmp(out, small, n) == 0);
    } else {
        FUZZ_CHECK(rc == TC_ETOOBIG && small == NULL);
    }
    free(small);
    free(again);
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_email_template *t = NULL;
    struct tc_error err = {{0}};

    if (context == NULL) {
        context = json_loads(context_json, 0, NULL);
        FUZZ_CHECK(context != NULL);
    }
    int rc = tc_email_template_compile("fuzz", (const char *)data, size, &t, &err);
    if (rc != TC_OK) {
        FUZZ_CHECK((rc == TC_EINVAL || rc == TC_ETOOBIG) && t == NULL);
        FUZZ_CHECKF(strncmp(err.text, "fuzz", 4) == 0, "error \"%s\"", err.text);
        return 0;
    }
    render_both_bounds(t, (const char *)data, size, false);
    render_both_bounds(t, (const char *)data, size, true);
    tc_email_template_free(t);
    return 0;
}
