/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: subscription filters (model/filter.h) from both sides a client
 * reaches them: the input is tried as a JSON filter and as a raw query string.
 * An accepted filter holds only valid ids within the bounds; to_json →
 * from_json and the query-string form → from_query give the same filter; it
 * matches the incident it describes and refuses one just below. tc_query_get
 * agrees with itself across output buffer sizes.
 */
#include "fuzz.h"
#include "model/filter.h"

#include <stdbool.h>

static bool
same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool
same_filter(const struct tc_filter *a, const struct tc_filter *b)
{
    return same_list(a->components, a->ncomponents, b->components, b->ncomponents) &&
           same_list(a->regions, a->nregions, b->regions, b->nregions) &&
           a->min_impact == b->min_impact;
}

static void
check_list(char *const *items, size_t n)
{
    FUZZ_CHECK(n <= TC_FILTER_MAX_ITEMS);
    FUZZ_CHECK(n == 0 || items != NULL);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECKF(tc_is_component_id(items[i]), "item \"%s\"", items[i]);
    }
}

static void
append_list(char *buf, size_t len, const char *key, char *const *items, size_t n)
{
    size_t used = strlen(buf);
    used += (size_t)snprintf(buf + used, len - used, "%s%s=", used > 0 ? "&" : "", key);
    for (size_t i = 0; i < n; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i > 0 ? "," : "", items[i]);
    }
}

/* Everything an accepted filter must satisfy, whichever parser made it. */
static void
check_filter(const struct tc_filter *f)
{
    struct tc_filter again;
    struct tc_error err = {{0}};

    check_list(f->components, f->ncomponents);
    check_list(f->regions, f->nregions);
    FUZZ_CHECK(f->min_impact >= TC_IMPACT_NONE && f->min_impact <= TC_IMPACT_CRITICAL);

    /* JSON form. */
    json_t *j = tc_filter_to_json(f);
    FUZZ_CHECKF(tc_filter_from_json(j, &again, &err) == TC_OK, "to_json refused: %s", err.text);
    FUZZ_CHECK(same_filter(f, &again));
    json_t *j2 = tc_filter_to_json(&again);
    FUZZ_CHECK(json_equal(j, j2));
    json_decref(j2);
    json_decref(j);
    tc_filter_fini(&again);

    /* Query-string form: ids need no escaping. 64 ids of 64 bytes per list. */
    char qs[2 * (16 + TC_FILTER_MAX_ITEMS * 65) + 64] = "";
    append_list(qs, sizeof(qs), "components", f->components, f->ncomponents);
    append_list(qs, sizeof(qs), "regions", f->regions, f->nregions);
    snprintf(qs + strlen(qs), sizeof(qs) - strlen(qs), "&min_impact=%s",
             tc_impact_name(f->min_impact));
    FUZZ_CHECKF(tc_filter_from_query(qs, &again, &err) == TC_OK, "\"%s\" refused: %s", qs,
                err.text);
    FUZZ_CHECKF(same_filter(f, &again), "\"%s\" differs", qs);
    tc_filter_fini(&again);

    /* The incident the filter describes matches... */
    struct tc_match_view v = {
        .components = (const char *const *)f->components,
        .ncomponents = f->ncomponents,
        .regions = (const char *const *)f->regions,
        .nregions = f->nregions,
        .global = false,
        .impact = f->min_impact,
    };
    FUZZ_CHECK(tc_filter_match(f, &v));
    /* ...a lower impact does not... */
    if (f->min_impact > TC_IMPACT_NONE) {
        struct tc_match_view low = v;
        low.impact = f->min_impact - 1;
        FUZZ_CHECK(!tc_filter_match(f, &low));
    }
    /* ...nor other components ("" is never a valid id, so never listed)... */
    static const char *const none[] = {""};
    if (f->ncomponents > 0) {
        struct tc_match_view other = v;
        other.components = none;
        other.ncomponents = 1;
        FUZZ_CHECK(!tc_filter_match(f, &other));
    }
    /* ...nor other regions, unless the incident is global. */
    if (f->nregions > 0) {
        struct tc_match_view other = v;
        other.regions = none;
        other.nregions = 1;
        FUZZ_CHECK(!tc_filter_match(f, &other));
        other.global = true;
        FUZZ_CHECK(tc_filter_match(f, &other));
    }
}

/* The same key read into a small and a large buffer: the small one either
 * holds the same text or says TC_ETOOBIG. */
static void
check_query_get(const char *qs, const char *key)
{
    char small[8], large[4096];
    int rs = tc_query_get(qs, key, small, sizeof(small));
    int rl = tc_query_get(qs, key, large, sizeof(large));

    FUZZ_CHECK(rs >= 0 || rs == TC_ENOENT || rs == TC_ETOOBIG || rs == TC_EINVAL);
    if (rl >= 0) {
        FUZZ_CHECK((size_t)rl == strlen(large) && (size_t)rl < sizeof(large));
        FUZZ_CHECKF(rs == rl || (rs == TC_ETOOBIG && (size_t)rl >= sizeof(small) - 1),
                    "small %d large %d", rs, rl);
        if (rs >= 0) {
            FUZZ_CHECK(strcmp(small, large) == 0);
        }
    } else if (rl != TC_ETOOBIG) {
        FUZZ_CHECK(large[0] == '\0');
        /* A bad escape may lie past the small bound, so ETOOBIG wins there. */
        FUZZ_CHECKF(rs == rl || rs == TC_ETOOBIG, "small %d large %d", rs, rl);
    }
    if (rs < 0) {
        FUZZ_CHECK(small[0] == '\0');
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_filter f;
    struct tc_error err = {{0}};

    /* As JSON: any JSON value, as a subscribe message may carry. */
    json_t *j =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL) {
        if (tc_filter_from_json(j, &f, &err) == TC_OK) {
            FUZZ_CHECK(json_is_object(j));
            check_filter(&f);
            tc_filter_fini(&f);
        } else {
            FUZZ_CHECK(err.text[0] != '\0');
            FUZZ_CHECK(f.components == NULL && f.regions == NULL);
        }
        json_decref(j);
    }

    /* As a query string. */
    char *qs = fuzz_cstr(data, size);
    if (tc_filter_from_query(qs, &f, &err) == TC_OK) {
        check_filter(&f);
        tc_filter_fini(&f);
    } else {
        FUZZ_CHECK(err.text[0] != '\0');
        FUZZ_CHECK(f.components == NULL && f.regions == NULL);
    }
    check_query_get(qs, "components");
    check_query_get(qs, "min_impact");
    /* And a key the input chose: its first parameter's name. */
    char key[32];
    size_t klen = strcspn(qs[0] == '?' ? qs + 1 : qs, "=&");
    snprintf(key, sizeof(key), "%.*s", (int)(klen < sizeof(key) ? klen : sizeof(key) - 1),
             qs[0] == '?' ? qs + 1 : qs);
    check_query_get(qs, key);
    free(qs);
    return 0;
}
