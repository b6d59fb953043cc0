/* tocsin — SPDX-License-Identifier: MIT
 *
 * The match view of an incident, as the store writes it next to the state:
 * {"components":[...],"regions":[...],"global":bool,"impact":"major"}.
 * Parsed once per history entry into a heap object whose view borrows from
 * its own parsed JSON. Pure: no I/O; matching itself is in filter.c.
 */
#include "model/filter.h"

#include <stdlib.h>
#include <string.h>

/* Largest match view text accepted. The store bounds it long before this
 * (ids are at most 64 bytes); above it the view is treated as malformed, so
 * the incident matches no filter and a warning is the caller's to log. */
#define MATCH_MAX_BYTES (1024 * 1024)

struct tc_match {
    json_t *json;            /* owns every string the view points at */
    const char **components; /* owned arrays the view points at */
    const char **regions;
    struct tc_match_view view;
};

/* Points a view list at the strings of a JSON array. @returns new array, or
 * NULL with *ok false when an item is not a string. */
static const char **
list_view(const json_t *arr, size_t *n, bool *ok)
{
    const char **items = NULL;
    *n = json_array_size(arr);
    if (*n == 0) {
        return NULL;
    }
    items = tc_xcalloc(*n, sizeof(char *));
    for (size_t i = 0; i < *n; i++) {
        const json_t *item = json_array_get(arr, i);
        if (!json_is_string(item)) {
            *ok = false;
            free(items);
            *n = 0;
            return NULL;
        }
        items[i] = json_string_value(item);
    }
    return items;
}

struct tc_match *
tc_match_parse(const char *text, size_t len)
{
    struct tc_match *m = NULL;
    json_t *root = NULL;
    const char **components = NULL, **regions = NULL;
    bool ok = true;

    if (text == NULL || len > MATCH_MAX_BYTES) {
        goto out;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        goto out;
    }
    const json_t *comps = json_object_get(root, "components");
    const json_t *regs = json_object_get(root, "regions");
    const json_t *global = json_object_get(root, "global");
    const json_t *impact = json_object_get(root, "impact");
    /* components and impact are always written; regions and global may be
     * left out by an older store, meaning "no regions" and "global". */
    if (!json_is_array(comps) || (regs != NULL && !json_is_array(regs)) ||
        (global != NULL && !json_is_boolean(global))) {
        goto out;
    }
    m = tc_xcalloc(1, sizeof(*m));
    if (tc_impact_parse(json_string_value(impact), &m->view.impact) != 0) {
        goto out;
    }
    components = list_view(comps, &m->view.ncomponents, &ok);
    regions = list_view(regs, &m->view.nregions, &ok);
    if (!ok) {
        goto out;
    }
    m->components = components;
    m->regions = regions;
    m->view.components = components;
    m->view.regions = regions;
    m->view.global = global != NULL ? json_is_true(global) : m->view.nregions == 0;
    m->json = root;
    root = NULL;
    components = NULL;
    regions = NULL;
out:
    if (root != NULL) {
        free(m);
        m = NULL;
    }
    free(components);
    free(regions);
    json_decref(root);
    return m;
}

const struct tc_match_view *
tc_match_view(const struct tc_match *m)
{
    return &m->view;
}

void
tc_match_free(struct tc_match *m)
{
    if (m == NULL) {
        return;
    }
    free(m->components);
    free(m->regions);
    json_decref(m->json);
    free(m);
}
