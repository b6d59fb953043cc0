/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: WebSocket client messages (tc_ws_msg_parse in ws/message.c),
 * the first thing a hostile client's frame reaches. An accepted message has a
 * valid subscription id, a bounded epoch and a valid filter; written back as
 * JSON it parses to the same message. A refused one says why and leaks
 * nothing (ASan's leak check runs at exit).
 */
#include "fuzz.h"
#include "ws/ws.h"

#include <stdbool.h>

static void
check_same(const struct tc_ws_msg *a, const struct tc_ws_msg *b)
{
    FUZZ_CHECK(a->type == b->type);
    FUZZ_CHECK(strcmp(a->id, b->id) == 0);
    FUZZ_CHECK(a->has_since == b->has_since && a->since == b->since);
    FUZZ_CHECK(strcmp(a->epoch, b->epoch) == 0);
    json_t *fa = tc_filter_to_json(&a->filter), *fb = tc_filter_to_json(&b->filter);
    FUZZ_CHECK(json_equal(fa, fb));
    json_decref(fb);
    json_decref(fa);
}

/* The message as a client would write it. @returns new text. */
static char *
write_back(const struct tc_ws_msg *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "type",
                        json_string(m->type == TC_WS_MSG_SUBSCRIBE ? "subscribe" : "unsubscribe"));
    json_object_set_new(o, "id", json_string(m->id));
    if (m->type == TC_WS_MSG_SUBSCRIBE) {
        json_object_set_new(o, "filter", tc_filter_to_json(&m->filter));
        if (m->has_since) {
            json_object_set_new(o, "since", json_integer((json_int_t)m->since));
        }
        if (m->epoch[0] != '\0') {
            json_object_set_new(o, "epoch", json_string(m->epoch));
        }
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    FUZZ_CHECK(text != NULL);
    return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_ws_msg m, again;
    struct tc_error err = {{0}};

    if (tc_ws_msg_parse((const char *)data, size, &m, &err) != TC_OK) {
        FUZZ_CHECK(err.text[0] != '\0');
        FUZZ_CHECK(m.filter.components == NULL && m.filter.regions == NULL);
        return 0;
    }
    FUZZ_CHECK(m.type == TC_WS_MSG_SUBSCRIBE || m.type == TC_WS_MSG_UNSUBSCRIBE);
    FUZZ_CHECKF(fuzz_is_id(m.id, 1, 64), "id \"%s\"", m.id);
    FUZZ_CHECK(strlen(m.epoch) < sizeof(m.epoch));
    FUZZ_CHECK(m.since <= (uint64_t)INT64_MAX);
    FUZZ_CHECK(m.has_since || m.since == 0);
    if (m.type == TC_WS_MSG_UNSUBSCRIBE) {
        FUZZ_CHECK(m.filter.ncomponents == 0 && m.filter.nregions == 0 && !m.has_since);
    }
    FUZZ_CHECK(m.filter.ncomponents <= TC_FILTER_MAX_ITEMS);
    FUZZ_CHECK(m.filter.nregions <= TC_FILTER_MAX_ITEMS);
    for (size_t i = 0; i < m.filter.ncomponents; i++) {
        FUZZ_CHECK(tc_is_component_id(m.filter.components[i]));
    }
    for (size_t i = 0; i < m.filter.nregions; i++) {
        FUZZ_CHECK(tc_is_component_id(m.filter.regions[i]));
    }

    char *text = write_back(&m);
    FUZZ_CHECKF(tc_ws_msg_parse(text, strlen(text), &again, &err) == TC_OK, "%s refused: %s", text,
                err.text);
    check_same(&m, &again);
    tc_ws_msg_fini(&again);
    free(text);
    tc_ws_msg_fini(&m);
    return 0;
}
