/* tocsin — SPDX-License-Identifier: MIT
 *
 * Subscription filters (DESIGN §3): parse from JSON or a query string, and
 * match against an incident's match view. Pure: no I/O, no loops.
 */
#ifndef TC_MODEL_FILTER_H
#define TC_MODEL_FILTER_H

#include "model/incident.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Most entries in a filter's components or regions. */
#define TC_FILTER_MAX_ITEMS 64

struct tc_filter {
    char **components; /* owned; empty = any */
    size_t ncomponents;
    char **regions; /* owned; empty = any */
    size_t nregions;
    enum tc_impact min_impact; /* default none */
};

/* What a filter is matched against. For "an incident that matched once keeps
 * matching until it ends", the store keeps the union of every component and
 * region the incident ever had and its highest impact; global_ is true when
 * any of its versions was global (no regions). */
struct tc_match_view {
    const char *const *components;
    size_t ncomponents;
    const char *const *regions;
    size_t nregions;
    bool global;
    enum tc_impact impact;
};

/* obj may be NULL (match everything). Unknown keys are an error.
 * @borrows obj. @returns 0 or TC_EINVAL with the bad key in err. */
int tc_filter_from_json(const json_t *obj, struct tc_filter *out, struct tc_error *err);
/* Reads components=a,b&regions=x&min_impact=minor from a raw (URL-encoded)
 * query string; other keys are ignored. @returns 0 or TC_EINVAL. */
int tc_filter_from_query(const char *qs, struct tc_filter *out, struct tc_error *err);
/* @returns new JSON object of the filter. */
json_t *tc_filter_to_json(const struct tc_filter *f);
void tc_filter_fini(struct tc_filter *f);
bool tc_filter_match(const struct tc_filter *f, const struct tc_match_view *v);

/* Parses the match view the store writes ({"components":[...],"regions":[...],
 * "global":bool,"impact":"major"}) into a heap object owning its strings.
 * @returns new or NULL if text is malformed. */
struct tc_match *tc_match_parse(const char *text, size_t len);
const struct tc_match_view *tc_match_view(const struct tc_match *m);
void tc_match_free(struct tc_match *m);

/* Query strings: finds key in a raw query string and URL-decodes its value
 * into out (NUL-terminated). @returns the decoded length, TC_ENOENT when the
 * key is absent, TC_ETOOBIG when it does not fit, TC_EINVAL on bad escapes
 * or a decoded NUL. */
int tc_query_get(const char *qs, const char *key, char *out, size_t outlen);

#endif
