/* tocsin — SPDX-License-Identifier: MIT
 *
 * Subscription filters (DESIGN §3): parse a filter from a JSON object or a
 * query string, print it back, and match it against an incident's match view.
 * Pure: no I/O, no loops. The match view itself is parsed in match.c and raw
 * query values are decoded in query.c.
 */
#include "model/filter.h"
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

/* The longest decoded components= or regions= value that can be valid:
 * TC_FILTER_MAX_ITEMS ids of 64 bytes and the commas between them. A longer
 * value is refused whole (TC_EINVAL, "too long") before anything is split. */
#define QUERY_LIST_MAX (TC_FILTER_MAX_ITEMS * 65 - 1)

void
tc_filter_fini(struct tc_filter *f)
{
    if (f == NULL) {
        return;
    }
    tc_free_strings(f->components, f->ncomponents);
    tc_free_strings(f->regions, f->nregions);
    memset(f, 0, sizeof(*f));
}

static int
list_from_json(const json_t *v, const char *key, char ***items, size_t *n, struct tc_error *err)
{
    if (!json_is_array(v)) {
        return tc_error_set(err, TC_EINVAL, "%s: must be an array of ids", key);
    }
    size_t count = json_array_size(v);
    if (count > TC_FILTER_MAX_ITEMS) {
        return tc_error_set(err, TC_EINVAL, "%s: at most %d ids", key, TC_FILTER_MAX_ITEMS);
    }
    if (count == 0) {
        return TC_OK;
    }
    *items = tc_xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item) ||
            !tc_is_component_id(json_string_value(item))) {
            return tc_error_set(err, TC_EINVAL, "%s[%zu]: must be 1-64 characters of [a-z0-9._-]",
                                key, i);
        }
        (*items)[i] = tc_xstrdup(json_string_value(item));
        (*n)++;
    }
    return TC_OK;
}

int
tc_filter_from_json(const json_t *obj, struct tc_filter *out, struct tc_error *err)
{
    const char *key;
    const json_t *val;
    int rc = TC_OK;

    memset(out, 0, sizeof(*out));
    if (obj == NULL) {
        return TC_OK;
    }
    if (!json_is_object(obj)) {
        return tc_error_set(err, TC_EINVAL, "filter: must be a JSON object");
    }
    tc_model__object_foreach(obj, key, val)
    {
        if (strcmp(key, "components") == 0) {
            rc = list_from_json(val, key, &out->components, &out->ncomponents, err);
        } else if (strcmp(key, "regions") == 0) {
            rc = list_from_json(val, key, &out->regions, &out->nregions, err);
        } else if (strcmp(key, "min_impact") == 0) {
            if (tc_impact_parse(json_string_value(val), &out->min_impact) != 0) {
                rc = tc_error_set(err, TC_EINVAL,
                                  "min_impact: must be none, minor, major or critical");
            }
        } else {
            rc = tc_error_set(err, TC_EINVAL, "%.64s: unknown filter key", key);
        }
        if (rc != 0) {
            goto out;
        }
    }
out:
    if (rc != 0) {
        tc_filter_fini(out);
    }
    return rc;
}

/* Splits a decoded comma list in place into owned ids. */
static int
list_from_query(char *value, const char *key, char ***items, size_t *n, struct tc_error *err)
{
    size_t count = 1;
    for (const char *c = value; *c != '\0'; c++) {
        count += *c == ',';
    }
    if (count > TC_FILTER_MAX_ITEMS) {
        return tc_error_set(err, TC_EINVAL, "%s: at most %d ids", key, TC_FILTER_MAX_ITEMS);
    }
    *items = tc_xcalloc(count, sizeof(char *));
    char *p = value;
    for (size_t i = 0; i < count; i++) {
        char *comma = strchr(p, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        if (!tc_is_component_id(p)) {
            return tc_error_set(err, TC_EINVAL, "%s[%zu]: must be 1-64 characters of [a-z0-9._-]",
                                key, i);
        }
        (*items)[i] = tc_xstrdup(p);
        (*n)++;
        p = comma != NULL ? comma + 1 : p + strlen(p);
    }
    return TC_OK;
}

/* Reads one key; *value is NULL when the key is absent or empty. */
static int
query_value(const char *qs, const char *key, char *buf, size_t buflen, char **value,
            struct tc_error *err)
{
    int rc = tc_query_get(qs, key, buf, buflen);
    *value = NULL;
    if (rc == TC_ENOENT || rc == 0) {
        return TC_OK;
    }
    if (rc == TC_ETOOBIG) {
        return tc_error_set(err, TC_EINVAL, "%s: too long", key);
    }
    if (rc < 0) {
        return tc_error_set(err, TC_EINVAL, "%s: bad URL encoding", key);
    }
    *value = buf;
    return TC_OK;
}

int
tc_filter_from_query(const char *qs, struct tc_filter *out, struct tc_error *err)
{
    char buf[QUERY_LIST_MAX + 1];
    char *value;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = query_value(qs, "components", buf, sizeof(buf), &value, err)) != 0) {
        goto out;
    }
    if (value != NULL && (rc = list_from_query(value, "components", &out->components,
                                               &out->ncomponents, err)) != 0) {
        goto out;
    }
    if ((rc = query_value(qs, "regions", buf, sizeof(buf), &value, err)) != 0) {
        goto out;
    }
    if (value != NULL &&
        (rc = list_from_query(value, "regions", &out->regions, &out->nregions, err)) != 0) {
        goto out;
    }
    if ((rc = query_value(qs, "min_impact", buf, sizeof(buf), &value, err)) != 0) {
        goto out;
    }
    if (value != NULL && tc_impact_parse(value, &out->min_impact) != 0) {
        rc = tc_error_set(err, TC_EINVAL, "min_impact: must be none, minor, major or critical");
        goto out;
    }
out:
    if (rc != 0) {
        tc_filter_fini(out);
    }
    return rc;
}

static json_t *
list_to_json(char *const *items, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(items[i]));
    }
    return arr;
}

json_t *
tc_filter_to_json(const struct tc_filter *f)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "components", list_to_json(f->components, f->ncomponents));
    json_object_set_new(obj, "regions", list_to_json(f->regions, f->nregions));
    json_object_set_new(obj, "min_impact", json_string(tc_impact_name(f->min_impact)));
    return obj;
}

/* A filter holds at most 64 ids and a view usually a handful, so a nested
 * scan is cheaper than building any index. */
static bool
intersects(char *const *a, size_t na, const char *const *b, size_t nb)
{
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < nb; j++) {
            if (strcmp(a[i], b[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

bool
tc_filter_match(const struct tc_filter *f, const struct tc_match_view *v)
{
    if (f == NULL) {
        return true;
    }
    if (v->impact < f->min_impact) {
        return false;
    }
    if (f->ncomponents > 0 &&
        !intersects(f->components, f->ncomponents, v->components, v->ncomponents)) {
        return false;
    }
    /* A global incident (or one with no regions at all) reaches every region. */
    if (f->nregions > 0 && !v->global && v->nregions > 0 &&
        !intersects(f->regions, f->nregions, v->regions, v->nregions)) {
        return false;
    }
    return true;
}
