/* tocsin — SPDX-License-Identifier: MIT
 *
 * model/frame.c: every encoder's output parsed back with jansson, string
 * escaping (quotes, control bytes, invalid UTF-8), the headroom and the NUL
 * after the payload, refcounting, and the SSE framing.
 */
#include "model/frame.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* Checks the frame's layout and parses its payload as strict JSON. */
static json_t *
parse_frame(struct tc_frame *f)
{
    assert_int_equal(f->refs, 1);
    assert_int_equal(tc_frame_payload(f), (char *)f->data + TC_FRAME_HEADROOM);
    assert_int_equal(tc_frame_payload(f)[f->len], '\0');
    assert_int_equal(strlen(tc_frame_payload(f)), f->len);
    /* One line, as SSE and the WebSocket text frame want it. */
    assert_null(memchr(tc_frame_payload(f), '\n', f->len));
    json_error_t jerr;
    json_t *v = json_loadb(tc_frame_payload(f), f->len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        print_error("not JSON (%s): %s\n", jerr.text, tc_frame_payload(f));
        fail();
    }
    return v;
}

static const char *
str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void
test_new_ref_unref(void **state)
{
    (void)state;
    struct tc_frame *f = tc_frame_new("hello", 5);
    assert_int_equal(f->refs, 1);
    assert_int_equal(f->len, 5);
    assert_memory_equal(tc_frame_payload(f), "hello", 6);
    /* The headroom is writable by ws/ (lws writes its header there). */
    memset(f->data, 0xAB, TC_FRAME_HEADROOM);
    assert_memory_equal(tc_frame_payload(f), "hello", 6);
    assert_ptr_equal(tc_frame_ref(f), f);
    assert_ptr_equal(tc_frame_ref(f), f);
    assert_int_equal(f->refs, 3);
    tc_frame_unref(f);
    tc_frame_unref(f);
    assert_int_equal(f->refs, 1);
    tc_frame_unref(f); /* freed here; ASan reports a leak or double free otherwise */
    tc_frame_unref(NULL);
    assert_null(tc_frame_ref(NULL));

    struct tc_frame *empty = tc_frame_new(NULL, 0);
    assert_int_equal(empty->len, 0);
    assert_int_equal(tc_frame_payload(empty)[0], '\0');
    tc_frame_unref(empty);
}

static void
test_update(void **state)
{
    (void)state;
    const char *incident = "{\"incident_id\":\"i-1\",\"version\":2,\"title\":\"Caf\xC3\xA9\"}";
    struct tc_frame *f = tc_frame_update("default", "ep-1", 42, incident, strlen(incident));
    json_t *v = parse_frame(f);
    assert_string_equal(str(v, "type"), "update");
    assert_string_equal(str(v, "sub"), "default");
    assert_string_equal(str(v, "epoch"), "ep-1");
    assert_int_equal(json_integer_value(json_object_get(v, "seq")), 42);
    /* The state is copied verbatim. */
    assert_non_null(strstr(tc_frame_payload(f), incident));
    assert_string_equal(str(json_object_get(v, "incident"), "title"), "Caf\xC3\xA9");
    assert_int_equal(json_object_size(v), 5);
    json_decref(v);
    tc_frame_unref(f);

    /* The largest seq prints in full. */
    f = tc_frame_update("s", "e", UINT64_MAX, "{}", 2);
    assert_non_null(strstr(tc_frame_payload(f), "\"seq\":18446744073709551615,"));
    tc_frame_unref(f);

    /* A big state grows the buffer past its first guess. */
    size_t n = 200000;
    char *big = malloc(n + 16);
    strcpy(big, "{\"m\":\"");
    memset(big + 6, 'x', n);
    strcpy(big + 6 + n, "\"}");
    f = tc_frame_update("s", "e", 1, big, strlen(big));
    v = parse_frame(f);
    assert_int_equal(strlen(str(json_object_get(v, "incident"), "m")), n);
    json_decref(v);
    tc_frame_unref(f);
    free(big);
}

static void
test_escaping(void **state)
{
    (void)state;
    /* Quotes, backslashes, control bytes, valid multibyte UTF-8 and bytes
     * that are not UTF-8 at all (a lone continuation byte, a truncated
     * sequence, an overlong form, a surrogate). */
    const char *sub = "a\"b\\c\n\r\t\x01\x1f\x7f/\xC3\xA9\xF0\x9F\x94\xA5|\x80|\xE2\x82|\xC0\xAF|"
                      "\xED\xA0\x80|\xF5";
    struct tc_frame *f = tc_frame_update(sub, "ep\"\n", 7, "{}", 2);
    json_t *v = parse_frame(f);
    assert_string_equal(str(v, "sub"), "a\"b\\c\n\r\t\x01\x1f\x7f/\xC3\xA9\xF0\x9F\x94\xA5|"
                                       "\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD|"
                                       "\xEF\xBF\xBD\xEF\xBF\xBD|"
                                       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD");
    assert_string_equal(str(v, "epoch"), "ep\"\n");
    json_decref(v);
    tc_frame_unref(f);
}

static void
test_snapshot(void **state)
{
    (void)state;
    const char *states[] = {"{\"incident_id\":\"a\"}", "{\"incident_id\":\"b\"}",
                            "{\"incident_id\":\"c\"}"};
    size_t lens[] = {strlen(states[0]), strlen(states[1]), strlen(states[2])};

    struct tc_frame *f = tc_frame_snapshot("s1", "ep", 9, 0, states, lens, 3);
    json_t *v = parse_frame(f);
    assert_string_equal(str(v, "type"), "snapshot");
    assert_string_equal(str(v, "sub"), "s1");
    assert_int_equal(json_integer_value(json_object_get(v, "seq")), 9);
    assert_null(json_object_get(v, "reset"));
    json_t *arr = json_object_get(v, "incidents");
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(str(json_array_get(arr, 2), "incident_id"), "c");
    json_decref(v);
    tc_frame_unref(f);

    f = tc_frame_snapshot("s1", "ep", 10, 1, NULL, NULL, 0);
    v = parse_frame(f);
    assert_true(json_is_true(json_object_get(v, "reset")));
    assert_int_equal(json_array_size(json_object_get(v, "incidents")), 0);
    json_decref(v);
    tc_frame_unref(f);
}

static void
test_welcome_heartbeat_error(void **state)
{
    (void)state;
    struct tc_frame *f = tc_frame_welcome("ep", 5, 25);
    json_t *v = parse_frame(f);
    assert_string_equal(str(v, "type"), "welcome");
    assert_string_equal(str(v, "epoch"), "ep");
    assert_int_equal(json_integer_value(json_object_get(v, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(v, "heartbeat_s")), 25);
    assert_null(json_object_get(v, "sub"));
    json_decref(v);
    tc_frame_unref(f);

    f = tc_frame_heartbeat("ep", 0);
    v = parse_frame(f);
    assert_string_equal(str(v, "type"), "heartbeat");
    assert_int_equal(json_integer_value(json_object_get(v, "seq")), 0);
    assert_int_equal(json_object_size(v), 3);
    json_decref(v);
    tc_frame_unref(f);

    f = tc_frame_error("ep", "bad_filter", "components[0]: must be \"1-64\"\n");
    v = parse_frame(f);
    assert_string_equal(str(v, "type"), "error");
    assert_string_equal(str(v, "code"), "bad_filter");
    assert_string_equal(str(v, "message"), "components[0]: must be \"1-64\"\n");
    assert_string_equal(str(v, "epoch"), "ep");
    json_decref(v);
    tc_frame_unref(f);

    f = tc_frame_error(NULL, "too_big", NULL);
    v = parse_frame(f);
    assert_null(json_object_get(v, "epoch"));
    assert_string_equal(str(v, "message"), "");
    json_decref(v);
    tc_frame_unref(f);
}

static void
test_sse(void **state)
{
    (void)state;
    struct tc_frame *json = tc_frame_update("default", "ep", 12, "{\"a\":1}", 7);
    struct tc_frame *f = tc_frame_sse("update", "ep", 12, json);
    char *want = NULL;
    size_t wlen = strlen("id: ep:12\nevent: update\ndata: ") + json->len + 2;
    want = malloc(wlen + 1);
    strcpy(want, "id: ep:12\nevent: update\ndata: ");
    strcat(want, tc_frame_payload(json));
    strcat(want, "\n\n");
    assert_int_equal(f->len, wlen);
    assert_string_equal(tc_frame_payload(f), want);
    assert_int_equal(f->refs, 1);
    assert_int_equal(json->refs, 1);
    free(want);
    tc_frame_unref(f);
    tc_frame_unref(json);

    /* Line breaks cannot forge fields: in id/event they are dropped, in the
     * data each line becomes its own data: field. */
    const char *multi = "{\"a\":\n1,\r\n\"b\":\r2}";
    json = tc_frame_new(multi, strlen(multi));
    f = tc_frame_sse("snap\nshot", "e\rp", 3, json);
    assert_string_equal(tc_frame_payload(f), "id: ep:3\nevent: snapshot\n"
                                             "data: {\"a\":\ndata: 1,\ndata: \"b\":\ndata: 2}\n\n");
    tc_frame_unref(f);
    tc_frame_unref(json);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_ref_unref),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_welcome_heartbeat_error),
        cmocka_unit_test(test_sse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
