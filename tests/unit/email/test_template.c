/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/template (and the texts of templates.c): a table
 * of template + context + expected output (variables, HTML escaping, raw
 * tags, dotted names, sections over arrays/objects/scalars, nesting with
 * lookup into outer contexts, inverted sections, comments, standalone lines,
 * number formatting), compile errors with their line numbers, the output
 * bound, and the template set: built-ins, file overrides, errors naming the
 * file, subject squeezing.
 */
#include "email/template.h"
#include "util/util.h"

#include <jansson.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct render_case {
    const char *rule;
    const char *tpl;
    const char *ctx; /* JSON */
    bool html;
    const char *want;
};

/* clang-format off */
static const struct render_case render_cases[] = {
    {"plain text", "hello", "{}", false, "hello"},
    {"empty template", "", "{}", false, ""},
    {"variable", "hi {{name}}!", "{\"name\":\"Ann\"}", false, "hi Ann!"},
    {"blanks inside tags", "{{ name }}", "{\"name\":\"Ann\"}", false, "Ann"},
    {"missing is empty", "[{{nope}}]", "{}", false, "[]"},
    {"null is empty", "[{{n}}]", "{\"n\":null}", false, "[]"},
    {"text mode does not escape", "{{v}}", "{\"v\":\"<a href='x'>&\\\"</a>\"}", false, "<a href='x'>&\"</a>"},
    {"html mode escapes", "{{v}}", "{\"v\":\"<a href='x'>&\\\"</a>\"}", true, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"},
    {"triple is raw", "{{{v}}}", "{\"v\":\"<b>\"}", true, "<b>"},
    {"ampersand is raw", "{{&v}}", "{\"v\":\"<b>\"}", true, "<b>"},
    {"dotted name", "{{a.b.c}}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", false, "deep"},
    {"dotted miss", "[{{a.x.c}}]", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", false, "[]"},
    {"dotted through a scalar", "[{{a.b}}]", "{\"a\":\"str\"}", false, "[]"},
    {"integer", "{{n}}", "{\"n\":42}", false, "42"},
    {"negative integer", "{{n}}", "{\"n\":-7}", false, "-7"},
    {"integral real", "{{n}}", "{\"n\":3.0}", false, "3"},
    {"big integral real", "{{n}}", "{\"n\":1e14}", false, "100000000000000"},
    {"fractional real", "{{n}}", "{\"n\":2.5}", false, "2.5"},
    {"negative zero", "{{n}}", "{\"n\":-0.0}", false, "0"},
    {"booleans", "{{t}}/{{f}}", "{\"t\":true,\"f\":false}", false, "true/false"},
    {"object renders empty", "[{{o}}]", "{\"o\":{\"a\":1}}", false, "[]"},
    {"array section", "{{#xs}}<{{n}}>{{/xs}}", "{\"xs\":[{\"n\":1},{\"n\":2},{\"n\":3}]}", false, "<1><2><3>"},
    {"array of strings with dot", "{{#xs}}{{.}},{{/xs}}", "{\"xs\":[\"a\",\"b\"]}", false, "a,b,"},
    {"dot escapes in html", "{{#xs}}{{.}}{{/xs}}", "{\"xs\":[\"<\"]}", true, "&lt;"},
    {"empty array skipped", "[{{#xs}}x{{/xs}}]", "{\"xs\":[]}", false, "[]"},
    {"object section pushes", "{{#o}}{{a}}-{{b}}{{/o}}", "{\"o\":{\"a\":1},\"b\":2}", false, "1-2"},
    {"true section once", "{{#t}}yes{{/t}}", "{\"t\":true}", false, "yes"},
    {"false section skipped", "[{{#f}}yes{{/f}}]", "{\"f\":false}", false, "[]"},
    {"missing section skipped", "[{{#m}}yes{{/m}}]", "{}", false, "[]"},
    {"non-empty string section", "{{#s}}[{{s}}|{{.}}]{{/s}}", "{\"s\":\"x\"}", false, "[x|x]"},
    {"empty string section skipped", "[{{#s}}y{{/s}}]", "{\"s\":\"\"}", false, "[]"},
    {"nonzero number section", "{{#n}}y{{/n}}{{#z}}z{{/z}}{{#r}}r{{/r}}", "{\"n\":2,\"z\":0,\"r\":0.5}", false, "yr"},
    {"inverted on missing", "{{^m}}none{{/m}}", "{}", false, "none"},
    {"inverted on empty array", "{{^xs}}none{{/xs}}", "{\"xs\":[]}", false, "none"},
    {"inverted on zero and empty string", "{{^z}}a{{/z}}{{^s}}b{{/s}}", "{\"z\":0,\"s\":\"\"}", false, "ab"},
    {"inverted skipped when truthy", "[{{^xs}}none{{/xs}}]", "{\"xs\":[1]}", false, "[]"},
    {"nested with outer lookup", "{{#incidents}}{{title}}:{{#transitions}}{{to}}@{{title}};{{/transitions}}|{{/incidents}}",
     "{\"incidents\":[{\"title\":\"A\",\"transitions\":[{\"to\":\"x\"},{\"to\":\"y\"}]},{\"title\":\"B\",\"transitions\":[]}]}",
     false, "A:x@A;y@A;|B:|"},
    {"inner shadows outer", "{{#o}}{{n}}{{/o}}{{n}}", "{\"n\":\"outer\",\"o\":{\"n\":\"inner\"}}", false, "innerouter"},
    {"comment", "a{{! anything } here }}b", "{}", false, "ab"},
    {"multi-line comment", "a{{! one\ntwo }}b", "{}", false, "ab"},
    {"standalone section lines vanish", "start\n{{#xs}}\n- {{.}}\n{{/xs}}\nend\n", "{\"xs\":[\"a\",\"b\"]}", false, "start\n- a\n- b\nend\n"},
    {"indented standalone with CRLF", "a\r\n  {{#t}}  \r\nb\r\n  {{/t}}\r\nc", "{\"t\":true}", false, "a\r\nb\r\nc"},
    {"standalone comment line", "a\n{{! note }}\nb", "{}", false, "a\nb"},
    {"standalone at the end", "a\n{{#t}}b{{/t}}\n{{! end }}", "{\"t\":true}", false, "a\nb\n"},
    {"inline section keeps its line", "x {{#t}}y{{/t}} z\n", "{\"t\":true}", false, "x y z\n"},
    {"variable line is not standalone", "a\n{{v}}\nb", "{\"v\":\"\"}", false, "a\n\nb"},
    {"lone braces are text", "{ } }} {x}", "{}", false, "{ } }} {x}"},
    {"context not an object", "[{{a}}{{.}}]", "\"str\"", false, "[str]"},
    {"utf-8 passes", "{{v}} → ok", "{\"v\":\"Störung 🚨\"}", true, "Störung 🚨 → ok"},
};
/* clang-format on */

static char *
render(const char *tpl, const char *ctx_json, bool html, size_t max, int *rc, struct tc_error *err)
{
    struct tc_email_template *t = NULL;
    json_error_t jerr;
    json_t *ctx = json_loads(ctx_json, JSON_DECODE_ANY, &jerr);
    char *out = NULL;
    size_t len = 0;

    if (ctx == NULL) {
        fail_msg("bad test JSON %s: %s", ctx_json, jerr.text);
    }
    *rc = tc_email_template_compile("t", tpl, strlen(tpl), &t, err);
    if (*rc == TC_OK) {
        *rc = tc_email_template_render(t, ctx, html, max, &out, &len, err);
        if (*rc == TC_OK) {
            assert_int_equal(strlen(out), len);
        }
    }
    tc_email_template_free(t);
    json_decref(ctx);
    return out;
}

static void
test_render_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(render_cases); i++) {
        const struct render_case *c = &render_cases[i];
        struct tc_error err = {{0}};
        int rc;
        char *out = render(c->tpl, c->ctx, c->html, 1 << 20, &rc, &err);

        if (rc != TC_OK) {
            fail_msg("%s: rc %d (%s)", c->rule, rc, err.text);
        }
        if (strcmp(out, c->want) != 0) {
            fail_msg("%s: got \"%s\", want \"%s\"", c->rule, out, c->want);
        }
        free(out);
    }
}

struct error_case {
    const char *rule;
    const char *tpl;
    int rc;
    const char *err; /* substring, with the line number */
};

/* clang-format off */
static const struct error_case error_cases[] = {
    {"unclosed tag", "a\nb {{name\n", TC_EINVAL, "t:2: tag is not closed"},
    {"unclosed triple", "{{{name}}", TC_EINVAL, "t:1: tag is not closed with }}}"},
    {"section never closed", "x\n\n{{#items}}\n{{.}}\n", TC_EINVAL, "t:3: {{#items}} is never closed"},
    {"inverted never closed", "{{^items}}", TC_EINVAL, "t:1: {{^items}} is never closed"},
    {"mismatched close", "{{#a}}\n{{#b}}\n{{/a}}\n{{/b}}", TC_EINVAL, "t:3: {{/a}} closes {{#b}} (line 2)"},
    {"close without open", "a\n\n\n{{/x}}", TC_EINVAL, "t:4: {{/x}} closes no section"},
    {"empty name", "{{}}", TC_EINVAL, "t:1: bad tag name"},
    {"blank name", "{{#  }}{{/ }}", TC_EINVAL, "t:1: bad tag name"},
    {"name with space", "{{a b}}", TC_EINVAL, "bad tag name 'a b'"},
    {"name with double dot", "{{a..b}}", TC_EINVAL, "bad tag name"},
    {"name with leading dot", "{{.a}}", TC_EINVAL, "bad tag name"},
    {"partial", "{{> footer}}", TC_EINVAL, "partials are not supported"},
    {"delimiter change", "{{=<% %>=}}", TC_EINVAL, "delimiter changes are not supported"},
    {"line count after comment", "{{! a\nb\nc }}\n{{#x}}", TC_EINVAL, "t:4: {{#x}} is never closed"},
    {"invalid utf-8", "caf\xc3", TC_EINVAL, "not valid UTF-8"},
};
/* clang-format on */

static void
test_compile_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        struct tc_email_template *t = (struct tc_email_template *)1;
        struct tc_error err = {{0}};
        int rc = tc_email_template_compile("t", c->tpl, strlen(c->tpl), &t, &err);

        if (rc != c->rc || strstr(err.text, c->err) == NULL) {
            fail_msg("%s: rc %d, error '%s', want '%s'", c->rule, rc, err.text, c->err);
        }
        assert_null(t);
    }

    /* Nesting: 16 levels compile, 17 do not. */
    char deep[1024];
    size_t o = 0;
    for (int i = 0; i < 17; i++) {
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{{#s%d}}", i);
    }
    for (int i = 16; i >= 0; i--) {
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{{/s%d}}", i);
    }
    struct tc_email_template *t = NULL;
    struct tc_error err;
    assert_int_equal(tc_email_template_compile("t", deep, o, &t, &err), TC_ETOOBIG);
    assert_non_null(strstr(err.text, "deeper than 16"));
    const char *inner = strstr(deep, "{{#s1}}");
    size_t n16 = (size_t)(strstr(deep, "{{/s0}}") - inner);
    assert_int_equal(tc_email_template_compile("t", inner, n16, &t, &err), TC_OK);
    /* Render it 16 deep: every level is a true object. */
    json_t *ctx = json_object(), *cur = ctx;
    for (int i = 1; i < 17; i++) {
        char key[8];
        json_t *next = json_object();
        snprintf(key, sizeof(key), "s%d", i);
        json_object_set_new(cur, key, next);
        cur = next;
    }
    json_object_set_new(cur, "leaf", json_string("x"));
    char *out = NULL;
    assert_int_equal(tc_email_template_render(t, ctx, false, 100, &out, NULL, &err), TC_OK);
    assert_string_equal(out, "");
    free(out);
    json_decref(ctx);
    tc_email_template_free(t);

    /* The source bound. */
    char *big = malloc(TC_EMAIL_TEMPLATE_SRC_MAX + 1);
    memset(big, 'a', TC_EMAIL_TEMPLATE_SRC_MAX + 1);
    assert_int_equal(tc_email_template_compile("t", big, TC_EMAIL_TEMPLATE_SRC_MAX + 1, &t, &err),
                     TC_ETOOBIG);
    assert_int_equal(tc_email_template_compile("t", big, TC_EMAIL_TEMPLATE_SRC_MAX, &t, &err),
                     TC_OK);
    tc_email_template_free(t);
    free(big);
    assert_int_equal(tc_email_template_compile("t", NULL, 0, &t, &err), TC_EINVAL);
}

static void
test_output_bound(void **state)
{
    struct tc_error err;
    int rc;
    char *out;
    (void)state;

    /* "<1><2><3>" is 9 bytes: max 9 fits, 8 does not. */
    const char *tpl = "{{#xs}}<{{.}}>{{/xs}}";
    const char *ctx = "{\"xs\":[1,2,3]}";
    out = render(tpl, ctx, false, 9, &rc, &err);
    assert_int_equal(rc, TC_OK);
    assert_string_equal(out, "<1><2><3>");
    free(out);
    out = render(tpl, ctx, false, 8, &rc, &err);
    assert_int_equal(rc, TC_ETOOBIG);
    assert_null(out);
    assert_non_null(strstr(err.text, "larger than 8"));

    /* Escaping counts: "&" becomes 5 bytes. */
    out = render("{{v}}", "{\"v\":\"&\"}", true, 4, &rc, &err);
    assert_int_equal(rc, TC_ETOOBIG);
    free(out);

    /* A large array stops at the bound instead of building it all. */
    json_t *xs = json_array();
    for (int i = 0; i < 100000; i++) {
        json_array_append_new(xs, json_string("0123456789"));
    }
    json_t *c = json_pack("{so}", "xs", xs);
    struct tc_email_template *t = NULL;
    assert_int_equal(tc_email_template_compile("t", tpl, strlen(tpl), &t, &err), TC_OK);
    assert_int_equal(tc_email_template_render(t, c, false, 1000, &out, NULL, &err), TC_ETOOBIG);
    assert_null(out);
    tc_email_template_free(t);
    json_decref(c);
}

/* Regression (issue 7, a fuzz finding): sections nested over one list
 * render items^depth times; with a body that writes nothing the output
 * bound never stops it. The step bound does, with its own message. */
static void
test_nested_sections_work_bound(void **state)
{
    struct tc_error err;
    struct tc_email_template *t = NULL;
    char *out = NULL;
    (void)state;

    /* 16 levels over 10 items: 10^16 visits of {{missing}} if unbounded. */
    char tpl[16 * 16 + 16 + 16 * 16];
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        n += (size_t)snprintf(tpl + n, sizeof(tpl) - n, "{{#xs}}");
    }
    n += (size_t)snprintf(tpl + n, sizeof(tpl) - n, "{{missing}}");
    for (int i = 0; i < 16; i++) {
        n += (size_t)snprintf(tpl + n, sizeof(tpl) - n, "{{/xs}}");
    }
    json_t *c = json_loads("{\"xs\":[0,1,2,3,4,5,6,7,8,9]}", 0, NULL);
    assert_int_equal(tc_email_template_compile("t", tpl, n, &t, &err), TC_OK);
    uint64_t t0 = tc_now_ms();
    assert_int_equal(
        tc_email_template_render(t, c, true, TC_EMAIL_TEMPLATE_OUT_MAX, &out, NULL, &err),
        TC_ETOOBIG);
    /* Generous: the bound is ~4M steps, tens of ms here and a few seconds
     * under valgrind; unbounded, it would never end. */
    assert_true(tc_now_ms() - t0 < 60000);
    assert_null(out);
    assert_non_null(strstr(err.text, "steps"));
    tc_email_template_free(t);

    /* The same shape at 3 levels (1000 visits) renders: only the work is
     * bounded, not the nesting. */
    const char *three = "{{#xs}}{{#xs}}{{#xs}}{{missing}}.{{/xs}}{{/xs}}{{/xs}}";
    assert_int_equal(tc_email_template_compile("t", three, strlen(three), &t, &err), TC_OK);
    size_t len = 0;
    assert_int_equal(
        tc_email_template_render(t, c, false, TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err), TC_OK);
    assert_int_equal(len, 1000);
    free(out);
    tc_email_template_free(t);
    json_decref(c);
}

static const char *DIGEST_CTX =
    "{\"subject\":\"[Identified] Playback <outage>\",\"count_incidents\":1,\"count_updates\":2,"
    "\"incidents\":[{\"title\":\"Playback <outage>\",\"status_label\":\"Identified\","
    "\"impact_label\":\"Major\",\"status_color\":\"#d9480f\",\"resolved\":false,"
    "\"components_label\":\"playback\",\"regions_label\":\"eu-west\","
    "\"updated_label\":\"2026-11-25 12:03 UTC\",\"message\":\"We found it & fix it.\","
    "\"transitions\":[{\"from\":null,\"to\":\"investigating\",\"from_label\":null,"
    "\"to_label\":\"Investigating\",\"at_label\":\"12:00 UTC\"},{\"from\":\"investigating\","
    "\"to\":\"identified\",\"from_label\":\"Investigating\",\"to_label\":\"Identified\","
    "\"at_label\":\"12:03 UTC\"}]}],"
    "\"public_url\":\"https://status.example.test\","
    "\"unsubscribe_url\":\"https://status.example.test/v1/unsubscribe?t=a.b&x=1\"}";

static void
test_builtins(void **state)
{
    struct tc_email_templates set;
    struct tc_error err = {{0}};
    json_t *ctx = json_loads(DIGEST_CTX, 0, NULL);
    char *out = NULL;
    size_t len;
    (void)state;

    assert_non_null(ctx);
    if (tc_email_templates_load(&set, NULL, &err) != TC_OK) {
        fail_msg("built-ins: %s", err.text);
    }
    for (int id = 0; id < TC_EMAIL_TPL_COUNT; id++) {
        assert_non_null(set.tpl[id]);
        assert_non_null(tc_email_templates_name((enum tc_email_template_id)id));
        assert_non_null(tc_email_templates_builtin((enum tc_email_template_id)id));
    }
    assert_null(tc_email_templates_name(TC_EMAIL_TPL_COUNT));
    assert_string_equal(tc_email_templates_name(TC_EMAIL_TPL_DIGEST_HTML), "digest.html");

    /* Text: raw values, transitions with arrows, links. */
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_TXT, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_non_null(strstr(out, "Playback <outage>\n"));
    assert_non_null(strstr(out, "Status:     Identified\n"));
    assert_non_null(strstr(out, "We found it & fix it."));
    assert_non_null(strstr(out, "  - Investigating at 12:00 UTC\n"));
    assert_non_null(strstr(out, "  - Investigating → Identified at 12:03 UTC\n"));
    assert_non_null(strstr(out, "https://status.example.test/v1/unsubscribe?t=a.b&x=1"));
    assert_null(strstr(out, "{{"));
    free(out);

    /* HTML: escaped, inline styles, no external resources, unsubscribe at the end. */
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_HTML, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_non_null(strstr(out, "Playback &lt;outage&gt;</h2>"));
    assert_null(strstr(out, "<outage>"));
    assert_non_null(strstr(out, "We found it &amp; fix it."));
    assert_non_null(strstr(out, "Investigating &rarr; <strong"));
    assert_non_null(strstr(out, "background-color:#d9480f"));
    assert_non_null(strstr(out, "href=\"https://status.example.test\""));
    assert_non_null(strstr(out, "unsubscribe?t=a.b&amp;x=1"));
    assert_true(strstr(out, "Unsubscribe</a>") > strstr(out, "View the status page"));
    assert_null(strstr(out, "<img"));
    assert_null(strstr(out, "<link"));
    assert_null(strstr(out, "<script"));
    assert_null(strstr(out, "src="));
    free(out);

    /* Subject: one line even though the template file ends in a newline. */
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_SUBJECT, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_string_equal(out, "[Identified] Playback <outage>");
    assert_int_equal(len, strlen(out));
    free(out);

    /* Confirm mail. */
    json_t *cctx = json_pack("{ssssss}", "address", "user@example.test", "confirm_url",
                             "https://status.example.test/v1/confirm?t=x.y", "public_url",
                             "https://status.example.test");
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_CONFIRM_TXT, cctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_non_null(strstr(out, "user@example.test"));
    assert_non_null(strstr(out, "\nhttps://status.example.test/v1/confirm?t=x.y\n"));
    free(out);
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_CONFIRM_HTML, cctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_non_null(strstr(out, "href=\"https://status.example.test/v1/confirm?t=x.y\""));
    free(out);
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_CONFIRM_SUBJECT, cctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &out, &len, &err),
                     TC_OK);
    assert_string_equal(out, "Confirm your subscription to status updates");
    free(out);
    assert_int_equal(
        tc_email_templates_render(&set, TC_EMAIL_TPL_COUNT, cctx, 100, &out, &len, &err),
        TC_EINVAL);
    json_decref(cctx);
    json_decref(ctx);
    tc_email_templates_fini(&set);
    tc_email_templates_fini(&set); /* idempotent */
}

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_overrides(void **state)
{
    char dir[] = "/tmp/tocsin-tpl-XXXXXX";
    char path[600];
    struct tc_email_templates set;
    struct tc_error err = {{0}};
    json_t *ctx = json_pack("{ss}", "subject", "Hi\n  there\t\x01!");
    char *out = NULL;
    (void)state;

    assert_non_null(mkdtemp(dir));
    /* An empty directory (and "") means built-ins. */
    assert_int_equal(tc_email_templates_load(&set, dir, &err), TC_OK);
    tc_email_templates_fini(&set);
    assert_int_equal(tc_email_templates_load(&set, "", &err), TC_OK);
    tc_email_templates_fini(&set);

    /* A file replaces its built-in only; the subject is squeezed to a line. */
    write_file(dir, "digest.subject", "\n  Status: {{subject}}  \n\n");
    assert_int_equal(tc_email_templates_load(&set, dir, &err), TC_OK);
    assert_int_equal(
        tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_SUBJECT, ctx, 1000, &out, NULL, &err),
        TC_OK);
    assert_string_equal(out, "Status: Hi there !");
    free(out);
    assert_int_equal(
        tc_email_templates_render(&set, TC_EMAIL_TPL_CONFIRM_SUBJECT, ctx, 1000, &out, NULL, &err),
        TC_OK);
    assert_string_equal(out, "Confirm your subscription to status updates");
    free(out);
    tc_email_templates_fini(&set);

    /* A compile error names the file and the line. */
    write_file(dir, "digest.html", "<p>\n{{#incidents}}\n{{title}}\n");
    assert_int_equal(tc_email_templates_load(&set, dir, &err), TC_EINVAL);
    snprintf(path, sizeof(path), "%s/digest.html:2: {{#incidents}} is never closed", dir);
    assert_string_equal(err.text, path);
    for (int id = 0; id < TC_EMAIL_TPL_COUNT; id++) {
        assert_null(set.tpl[id]);
    }

    /* A file that exists but cannot be read (a directory) is TC_EIO. */
    snprintf(path, sizeof(path), "%s/digest.html", dir);
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(tc_email_templates_load(&set, dir, &err), TC_EIO);
    assert_non_null(strstr(err.text, "digest.html"));
    rmdir(path);

    snprintf(path, sizeof(path), "%s/digest.subject", dir);
    unlink(path);
    rmdir(dir);
    json_decref(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_table), cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_output_bound), cmocka_unit_test(test_nested_sections_work_bound),
        cmocka_unit_test(test_builtins),     cmocka_unit_test(test_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
