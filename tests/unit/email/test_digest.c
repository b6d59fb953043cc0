/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/digest: three quick updates of one incident
 * coalesce into its latest state with two transitions; two incidents keep
 * the order of their first update; updates out of seq or version order and
 * repeated versions; labels; the subject (one, several, cut at 150 bytes on
 * a UTF-8 boundary, control characters); input errors naming the entry. The
 * last test takes a digest through the built-in templates into a MIME
 * message, the path the gateway will run.
 */
#include "email/digest.h"
#include "email/mime.h"
#include "email/template.h"
#include "util/util.h"

#include <jansson.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* One update: {"seq":seq,"incident":{...}} with the usual fields. */
static json_t *
update(int seq, const char *id, int version, const char *status, const char *impact,
       const char *title, const char *message, const char *at)
{
    return json_pack("{si s{ss si ss ss ss ss ss s[s] s[] ss ss ss}}", "seq", seq, "incident",
                     "incident_id", id, "version", version, "kind", "incident", "status", status,
                     "impact", impact, "title", title, "message", message, "components", "playback",
                     "regions", "occurred_at", at, "updated_at", at, "started_at",
                     "2026-11-25T12:00:00Z");
}

static json_t *
build_ok(json_t *updates)
{
    struct tc_error err = {{0}};
    json_t *ctx = NULL;

    if (tc_email_digest_build(updates, "https://status.example.test",
                              "https://status.example.test/v1/unsubscribe?t=x", &ctx,
                              &err) != TC_OK) {
        fail_msg("digest: %s", err.text);
    }
    json_decref(updates);
    return ctx;
}

static const char *
sget(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        fail_msg("no string %s", key);
    }
    return json_string_value(v);
}

static void
check_transition(const json_t *t, const char *from, const char *to, const char *at_label)
{
    if (from == NULL) {
        assert_true(json_is_null(json_object_get(t, "from")));
        assert_true(json_is_null(json_object_get(t, "from_label")));
    } else {
        assert_string_equal(sget(t, "from"), from);
    }
    assert_string_equal(sget(t, "to"), to);
    assert_string_equal(sget(t, "at_label"), at_label);
}

static void
test_three_quick_updates(void **state)
{
    (void)state;
    json_t *ctx =
        build_ok(json_pack("[ooo]",
                           update(10, "inc-1", 1, "investigating", "major", "Playback outage",
                                  "Looking.", "2026-11-25T12:00:00Z"),
                           update(11, "inc-1", 2, "investigating", "major", "Playback outage",
                                  "Still looking.", "2026-11-25T12:01:30.250Z"),
                           update(12, "inc-1", 3, "identified", "critical", "Playback outage",
                                  "Found it.", "2026-11-25T12:03:00Z")));

    assert_int_equal(json_integer_value(json_object_get(ctx, "count_incidents")), 1);
    assert_int_equal(json_integer_value(json_object_get(ctx, "count_updates")), 3);
    assert_int_equal(json_integer_value(json_object_get(ctx, "last_seq")), 12);
    assert_string_equal(sget(ctx, "subject"), "[Identified] Playback outage");
    assert_string_equal(sget(ctx, "public_url"), "https://status.example.test");
    assert_string_equal(sget(ctx, "unsubscribe_url"),
                        "https://status.example.test/v1/unsubscribe?t=x");

    const json_t *inc = json_array_get(json_object_get(ctx, "incidents"), 0);
    assert_int_equal(json_integer_value(json_object_get(inc, "version")), 3);
    assert_string_equal(sget(inc, "status"), "identified");
    assert_string_equal(sget(inc, "message"), "Found it.");
    assert_string_equal(sget(inc, "status_label"), "Identified");
    assert_string_equal(sget(inc, "impact_label"), "Critical");
    assert_string_equal(sget(inc, "status_color"), "#b42318");
    assert_true(json_is_false(json_object_get(inc, "resolved")));
    assert_string_equal(sget(inc, "components_label"), "playback");
    assert_string_equal(sget(inc, "regions_label"), "all regions");
    assert_string_equal(sget(inc, "updated_label"), "2026-11-25 12:03 UTC");
    assert_string_equal(sget(inc, "started_at"), "2026-11-25T12:00:00Z"); /* passed through */

    const json_t *tr = json_object_get(inc, "transitions");
    assert_int_equal(json_array_size(tr), 2);
    check_transition(json_array_get(tr, 0), NULL, "investigating", "12:00 UTC");
    check_transition(json_array_get(tr, 1), "investigating", "identified", "12:03 UTC");
    assert_string_equal(sget(json_array_get(tr, 1), "from_label"), "Investigating");
    assert_string_equal(sget(json_array_get(tr, 1), "to_label"), "Identified");
    assert_string_equal(sget(json_array_get(tr, 1), "at"), "2026-11-25T12:03:00Z");
    json_decref(ctx);
}

static void
test_two_incidents(void **state)
{
    (void)state;
    json_t *ctx = build_ok(json_pack("[oooo]",
                                     update(20, "inc-b", 4, "monitoring", "minor",
                                            "Search degraded", "", "2026-11-25T12:00:00Z"),
                                     update(21, "inc-a", 1, "investigating", "major",
                                            "Playback outage", "", "2026-11-25T12:01:00Z"),
                                     update(22, "inc-b", 5, "resolved", "minor", "Search degraded",
                                            "Fixed.", "2026-11-25T12:02:00+01:00"),
                                     update(23, "inc-a", 2, "identified", "major",
                                            "Playback outage", "", "2026-11-25T12:03:00Z")));
    const json_t *incs = json_object_get(ctx, "incidents");

    assert_int_equal(json_integer_value(json_object_get(ctx, "count_incidents")), 2);
    assert_int_equal(json_integer_value(json_object_get(ctx, "count_updates")), 4);
    assert_string_equal(sget(ctx, "subject"),
                        "2 incident updates: Search degraded, Playback outage");
    /* Order of first appearance: b (seq 20), then a (seq 21). */
    const json_t *b = json_array_get(incs, 0), *a = json_array_get(incs, 1);
    assert_string_equal(sget(b, "incident_id"), "inc-b");
    assert_string_equal(sget(b, "status_label"), "Resolved");
    assert_true(json_is_true(json_object_get(b, "resolved")));
    assert_string_equal(sget(b, "status_color"), "#1a7f37");
    /* The offset is converted to UTC. */
    assert_string_equal(sget(b, "updated_label"), "2026-11-25 11:02 UTC");
    const json_t *tb = json_object_get(b, "transitions");
    assert_int_equal(json_array_size(tb), 2);
    check_transition(json_array_get(tb, 0), NULL, "monitoring", "12:00 UTC");
    check_transition(json_array_get(tb, 1), "monitoring", "resolved", "11:02 UTC");
    assert_string_equal(sget(a, "incident_id"), "inc-a");
    assert_string_equal(sget(a, "status"), "identified");
    json_decref(ctx);
}

static void
test_out_of_order_and_repeats(void **state)
{
    (void)state;
    /* The array is not in seq order, seq order is not version order (v3
     * has seq 31, v2 seq 32), and v2 comes twice. The highest version wins,
     * transitions follow versions, the repeat is ignored. */
    json_t *ctx = build_ok(json_pack("[ooooo]",
                                     update(33, "inc-1", 2, "identified", "major",
                                            "Playback outage", "v2 again", "2026-11-25T12:02:00Z"),
                                     update(31, "inc-1", 3, "resolved", "major", "Playback outage",
                                            "v3", "2026-11-25T12:05:00Z"),
                                     update(30, "inc-1", 1, "investigating", "major",
                                            "Playback outage", "v1", "2026-11-25T12:00:00Z"),
                                     update(32, "inc-1", 2, "identified", "major",
                                            "Playback outage", "v2", "2026-11-25T12:02:00Z"),
                                     update(29, "inc-0", 7, "in_progress", "none",
                                            "Database maintenance", "", "2026-11-25T11:00:00Z")));
    const json_t *incs = json_object_get(ctx, "incidents");

    assert_int_equal(json_integer_value(json_object_get(ctx, "count_updates")), 4);
    assert_int_equal(json_integer_value(json_object_get(ctx, "last_seq")), 33);
    /* inc-0 has seq 29, the lowest: it comes first although listed last. */
    const json_t *m = json_array_get(incs, 0), *i = json_array_get(incs, 1);
    assert_string_equal(sget(m, "incident_id"), "inc-0");
    assert_string_equal(sget(m, "status_label"), "In progress");
    assert_string_equal(sget(m, "status_color"), "#0969da");
    assert_string_equal(sget(m, "impact_label"), "None");
    assert_int_equal(json_integer_value(json_object_get(i, "version")), 3);
    assert_string_equal(sget(i, "message"), "v3");
    const json_t *tr = json_object_get(i, "transitions");
    assert_int_equal(json_array_size(tr), 3);
    check_transition(json_array_get(tr, 0), NULL, "investigating", "12:00 UTC");
    check_transition(json_array_get(tr, 1), "investigating", "identified", "12:02 UTC");
    check_transition(json_array_get(tr, 2), "identified", "resolved", "12:05 UTC");
    json_decref(ctx);

    /* Only a repeat: one update, one transition. */
    ctx = build_ok(
        json_pack("[oo]", update(1, "x", 5, "monitoring", "minor", "T", "", "2026-11-25T12:00:00Z"),
                  update(2, "x", 5, "monitoring", "minor", "T", "", "2026-11-25T12:00:00Z")));
    assert_int_equal(json_integer_value(json_object_get(ctx, "count_updates")), 1);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(ctx, "incidents"), 0), "transitions")),
                     1);
    json_decref(ctx);
}

static void
test_labels(void **state)
{
    char *s;
    (void)state;

    s = tc_email_digest_status_label("in_progress");
    assert_string_equal(s, "In progress");
    free(s);
    s = tc_email_digest_status_label("some_new_state");
    assert_string_equal(s, "Some new state");
    free(s);
    s = tc_email_digest_status_label(NULL);
    assert_string_equal(s, "");
    free(s);

    /* Regions and components are joined; an unparsable time is shown as is;
     * a missing one is null. */
    json_t *u = update(1, "x", 1, "investigating", "minor", "T", "", "yesterday");
    json_t *inc = json_object_get(u, "incident");
    json_object_set_new(inc, "regions", json_pack("[ss]", "eu-west", "us-east"));
    json_object_set_new(inc, "components", json_pack("[ss]", "playback", "search"));
    json_t *ctx = build_ok(json_pack("[o]", u));
    inc = json_array_get(json_object_get(ctx, "incidents"), 0);
    assert_string_equal(sget(inc, "regions_label"), "eu-west, us-east");
    assert_string_equal(sget(inc, "components_label"), "playback, search");
    assert_string_equal(sget(inc, "updated_label"), "yesterday");
    json_decref(ctx);

    u = update(1, "x", 1, "investigating", "minor", "T", "", "2026-11-25T12:00:00Z");
    json_object_del(json_object_get(u, "incident"), "updated_at");
    json_object_del(json_object_get(u, "incident"), "occurred_at");
    ctx = build_ok(json_pack("[o]", u));
    inc = json_array_get(json_object_get(ctx, "incidents"), 0);
    assert_true(json_is_null(json_object_get(inc, "updated_label")));
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(inc, "transitions"), 0), "at_label")));
    json_decref(ctx);

    /* No URLs given: the keys are absent, so template sections skip. */
    json_t *out = NULL;
    json_t *ups = json_pack(
        "[o]", update(1, "x", 1, "investigating", "minor", "T", "", "2026-11-25T12:00:00Z"));
    assert_int_equal(tc_email_digest_build(ups, NULL, NULL, &out, NULL), TC_OK);
    assert_null(json_object_get(out, "public_url"));
    assert_null(json_object_get(out, "unsubscribe_url"));
    json_decref(out);
    json_decref(ups);
}

static bool
utf8_whole(const char *s)
{
    /* The cut never leaves a partial sequence: jansson accepts it back. */
    json_t *j = json_string(s);
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static void
test_subject(void **state)
{
    char title[256];
    (void)state;

    /* Many incidents: cut at 150 bytes, ending in "…". */
    json_t *ups = json_array();
    for (int i = 0; i < 12; i++) {
        char id[16];
        snprintf(id, sizeof(id), "inc-%d", i);
        snprintf(title, sizeof(title), "Störung Nummer %d in der Wiedergabe", i);
        json_array_append_new(
            ups, update(i + 1, id, 1, "investigating", "major", title, "", "2026-11-25T12:00:00Z"));
    }
    json_t *ctx = build_ok(ups);
    const char *s = sget(ctx, "subject");
    assert_true(strlen(s) <= TC_EMAIL_DIGEST_SUBJECT_MAX);
    assert_int_equal(strncmp(s, "12 incident updates: Störung Nummer 0 in der Wiedergabe, ",
                             strlen("12 incident updates: Störung Nummer 0 in der Wiedergabe, ")),
                     0);
    assert_string_equal(s + strlen(s) - 3, "…");
    assert_true(utf8_whole(s));
    json_decref(ctx);

    /* One incident with a 200-character title of 2-byte characters. */
    size_t o = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(title + o, "ö", 2);
        o += 2;
    }
    title[o] = '\0';
    ctx = build_ok(json_pack(
        "[o]", update(1, "x", 1, "resolved", "minor", title, "", "2026-11-25T12:00:00Z")));
    s = sget(ctx, "subject");
    assert_true(strlen(s) <= TC_EMAIL_DIGEST_SUBJECT_MAX);
    assert_int_equal(strncmp(s, "[Resolved] öö", strlen("[Resolved] öö")), 0);
    assert_string_equal(s + strlen(s) - 3, "…");
    assert_true(utf8_whole(s));
    json_decref(ctx);

    /* Control characters in a title become spaces. */
    ctx = build_ok(json_pack("[o]", update(1, "x", 1, "identified", "minor", "Bad\r\nBcc: x\x7f",
                                           "", "2026-11-25T12:00:00Z")));
    assert_string_equal(sget(ctx, "subject"), "[Identified] Bad  Bcc: x ");
    json_decref(ctx);
}

struct bad_case {
    const char *rule;
    const char *json;
    int rc;
    const char *err;
};

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"not an array", "{}", TC_EINVAL, "updates: not a non-empty array"},
    {"empty", "[]", TC_EINVAL, "updates: not a non-empty array"},
    {"entry not object", "[1]", TC_EINVAL, "updates[0]: not an object"},
    {"no seq", "[{\"incident\":{}}]", TC_EINVAL, "updates[0].seq"},
    {"negative seq", "[{\"seq\":-1,\"incident\":{}}]", TC_EINVAL, "updates[0].seq"},
    {"no incident", "[{\"seq\":1}]", TC_EINVAL, "updates[0].incident: not an object"},
    {"no id", "[{\"seq\":1,\"incident\":{\"version\":1,\"status\":\"x\",\"title\":\"t\"}}]", TC_EINVAL, "incident_id"},
    {"version 0", "[{\"seq\":1,\"incident\":{\"incident_id\":\"a\",\"version\":0,\"status\":\"x\",\"title\":\"t\"}}]", TC_EINVAL, "updates[0].incident.version"},
    {"version string", "[{\"seq\":1,\"incident\":{\"incident_id\":\"a\",\"version\":\"1\",\"status\":\"x\",\"title\":\"t\"}}]", TC_EINVAL, "version"},
    {"no status", "[{\"seq\":1,\"incident\":{\"incident_id\":\"a\",\"version\":1,\"title\":\"t\"}}]", TC_EINVAL, "status"},
    {"no title, second entry", "[{\"seq\":1,\"incident\":{\"incident_id\":\"a\",\"version\":1,\"status\":\"x\",\"title\":\"t\"}},"
                               "{\"seq\":2,\"incident\":{\"incident_id\":\"a\",\"version\":2,\"status\":\"x\"}}]", TC_EINVAL, "updates[1].incident.title"},
};
/* clang-format on */

static void
test_bad_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        json_t *j = json_loads(c->json, 0, NULL);
        json_t *ctx = (json_t *)1;
        struct tc_error err = {{0}};
        int rc;

        assert_non_null(j);
        rc = tc_email_digest_build(j, NULL, NULL, &ctx, &err);
        if (rc != c->rc || strstr(err.text, c->err) == NULL) {
            fail_msg("%s: rc %d '%s', want '%s'", c->rule, rc, err.text, c->err);
        }
        assert_null(ctx);
        json_decref(j);
    }
    json_t *ctx = NULL;
    assert_int_equal(tc_email_digest_build(NULL, NULL, NULL, &ctx, NULL), TC_EINVAL);

    /* The bound: 1000 updates are fine, 1001 are TC_ETOOBIG. */
    json_t *ups = json_array();
    for (int i = 0; i < TC_EMAIL_DIGEST_UPDATES_MAX; i++) {
        json_array_append_new(ups, update(i, "x", i + 1, i % 2 ? "identified" : "monitoring",
                                          "minor", "T", "", "2026-11-25T12:00:00Z"));
    }
    assert_int_equal(tc_email_digest_build(ups, NULL, NULL, &ctx, NULL), TC_OK);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(ctx, "incidents"), 0), "transitions")),
                     TC_EMAIL_DIGEST_UPDATES_MAX);
    json_decref(ctx);
    json_array_append_new(
        ups, update(5000, "x", 5000, "monitoring", "minor", "T", "", "2026-11-25T12:00:00Z"));
    assert_int_equal(tc_email_digest_build(ups, NULL, NULL, &ctx, NULL), TC_ETOOBIG);
    assert_null(ctx);
    json_decref(ups);
}

/* digest -> built-in templates -> MIME: the gateway's path, minus SMTP. */
static void
test_digest_to_message(void **state)
{
    struct tc_email_templates set;
    struct tc_error err = {{0}};
    char *subject = NULL, *text = NULL, *html = NULL, *msg = NULL;
    size_t len = 0;
    (void)state;

    json_t *ctx =
        build_ok(json_pack("[oo]",
                           update(1, "inc-1", 1, "investigating", "major", "Störung <Wiedergabe> 🚨",
                                  "Line one.\nLine two & more.", "2026-11-25T12:00:00Z"),
                           update(2, "inc-1", 2, "identified", "major", "Störung <Wiedergabe> 🚨",
                                  "Found.", "2026-11-25T12:03:00Z")));
    assert_int_equal(tc_email_templates_load(&set, NULL, &err), TC_OK);
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_SUBJECT, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &subject, NULL, &err),
                     TC_OK);
    assert_string_equal(subject, "[Identified] Störung <Wiedergabe> 🚨");
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_TXT, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &text, NULL, &err),
                     TC_OK);
    assert_non_null(strstr(text, "Investigating → Identified at 12:03 UTC"));
    assert_int_equal(tc_email_templates_render(&set, TC_EMAIL_TPL_DIGEST_HTML, ctx,
                                               TC_EMAIL_TEMPLATE_OUT_MAX, &html, NULL, &err),
                     TC_OK);
    assert_non_null(strstr(html, "Störung &lt;Wiedergabe&gt; 🚨"));

    struct tc_email_message m = {
        .from = "status@localhost",
        .to = "x@localhost",
        .subject = subject,
        .text = text,
        .html = html,
        .unsubscribe_url = json_string_value(json_object_get(ctx, "unsubscribe_url")),
        .msgid_domain = "localhost",
        .date = 1795621829,
    };
    if (tc_email_mime_build(&m, &msg, &len, &err) != TC_OK) {
        fail_msg("mime: %s", err.text);
    }
    assert_non_null(strstr(msg, "\r\nList-Unsubscribe: <https://status.example.test/v1/"
                                "unsubscribe?t=x>\r\n"));
    free(msg);
    free(subject);
    free(text);
    free(html);
    tc_email_templates_fini(&set);
    json_decref(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_quick_updates),
        cmocka_unit_test(test_two_incidents),
        cmocka_unit_test(test_out_of_order_and_repeats),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_digest_to_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
