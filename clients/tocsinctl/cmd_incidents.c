/* tocsin — SPDX-License-Identifier: MIT
 *
 * `tocsinctl incidents` (the active incidents, GET /v1/incidents with the
 * filter flags) and `tocsinctl show ID` (one incident's state and timeline,
 * GET /v1/incidents/{id}). Read-only public routes: no admin token; a
 * client token from $TOCSIN_CLIENT_TOKEN when tocsind requires one.
 */
#include "ctl.h"
#include "flags.h"
#include "http.h"
#include "print.h"

#include <stdlib.h>
#include <string.h>

/* Newest update first, then by id, so the table reads like a feed. */
static int
by_updated_desc(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    int c = strcmp(tc_ctl_print_str(y, "updated_at", ""), tc_ctl_print_str(x, "updated_at", ""));
    return c != 0 ? c
                  : strcmp(tc_ctl_print_str(x, "incident_id", ""),
                           tc_ctl_print_str(y, "incident_id", ""));
}

static void
print_table(const json_t *incidents)
{
    static const char *const headers[] = {"ID", "IMPACT", "STATUS", "TITLE", "UPDATED"};
    size_t n = json_array_size(incidents);
    if (n == 0) {
        printf("no active incidents\n");
        return;
    }
    const json_t **sorted = tc_xcalloc(n, sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        sorted[i] = json_array_get(incidents, i);
    }
    qsort(sorted, n, sizeof(*sorted), by_updated_desc);
    struct tc_ctl_table *t = tc_ctl_table_new(TC_ARRAY_SIZE(headers), headers);
    for (size_t i = 0; i < n; i++) {
        const char *row[] = {
            tc_ctl_print_str(sorted[i], "incident_id", NULL),
            tc_ctl_print_str(sorted[i], "impact", NULL),
            tc_ctl_print_str(sorted[i], "status", NULL),
            tc_ctl_print_str(sorted[i], "title", NULL),
            tc_ctl_print_str(sorted[i], "updated_at", NULL),
        };
        tc_ctl_table_add(t, row);
    }
    tc_ctl_table_print(t, stdout);
    tc_ctl_table_free(t);
    free(sorted);
}

int
tc_ctl_cmd_incidents(struct tc_ctl *ctl)
{
    struct tc_ctl_http_resp r = {0};
    char *qs = NULL, *path = NULL;
    int rc = tc_ctl_flags_filter_query(ctl, &qs);
    if (rc != TC_CTL_OK) {
        goto out;
    }
    path = tc_xasprintf("/v1/incidents%s%s", qs[0] ? "?" : "", qs);
    if ((rc = tc_ctl_http_call(ctl, "GET", path, NULL, &r)) != TC_CTL_OK) {
        goto out;
    }
    json_t *incidents = json_object_get(r.body, "incidents");
    if (!json_is_array(incidents)) {
        rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the answer has no \"incidents\" array");
    } else if (ctl->json) {
        tc_ctl_print_json(r.body);
    } else {
        print_table(incidents);
    }
out:
    tc_ctl_http_resp_fini(&r);
    free(path);
    free(qs);
    return rc;
}

/* "key: value" lines of an object of strings (links, component_status). */
static void
pairs(const char *label, const json_t *obj)
{
    const char *k;
    json_t *v;
    char line[2300];
    json_object_foreach((json_t *)(uintptr_t)obj, k, v)
    {
        char *s = tc_xasprintf("%s: %s", k, json_is_string(v) ? json_string_value(v) : "?");
        tc_ctl_print_field(label, tc_ctl_print_clean(s, line, sizeof(line), 2200));
        free(s);
        label = "";
    }
}

static int
by_seq(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(const json_t *const *)a, "seq"));
    json_int_t y = json_integer_value(json_object_get(*(const json_t *const *)b, "seq"));
    return (x > y) - (x < y);
}

static void
print_incident(const json_t *doc)
{
    const json_t *inc = json_object_get(doc, "incident");
    const json_t *ups = json_object_get(doc, "updates");
    char buf[4200];
    char *head = tc_xasprintf("%s (%s)", tc_ctl_print_str(inc, "incident_id", "?"),
                              tc_ctl_print_str(inc, "kind", "incident"));
    char *updated = tc_xasprintf("%s (version %lld)", tc_ctl_print_str(inc, "updated_at", "?"),
                                 (long long)json_integer_value(json_object_get(inc, "version")));
    tc_ctl_print_field("incident", head);
    tc_ctl_print_field("title", tc_ctl_print_str(inc, "title", NULL));
    tc_ctl_print_field("status", tc_ctl_print_str(inc, "status", NULL));
    tc_ctl_print_field("impact", tc_ctl_print_str(inc, "impact", NULL));
    tc_ctl_print_field(
        "components", tc_ctl_print_join(json_object_get(inc, "components"), "-", buf, sizeof(buf)));
    tc_ctl_print_field(
        "regions", tc_ctl_print_join(json_object_get(inc, "regions"), "global", buf, sizeof(buf)));
    tc_ctl_print_field("started", tc_ctl_print_str(inc, "started_at", NULL));
    tc_ctl_print_field("updated", updated);
    if (json_is_integer(json_object_get(inc, "affected_users"))) {
        snprintf(buf, sizeof(buf), "%lld",
                 (long long)json_integer_value(json_object_get(inc, "affected_users")));
        tc_ctl_print_field("users", buf);
    }
    pairs("state", json_object_get(inc, "component_status"));
    pairs("links", json_object_get(inc, "links"));
    tc_ctl_print_field("message", tc_ctl_print_str(inc, "message", NULL));
    free(head);
    free(updated);

    size_t n = json_array_size(ups);
    const json_t **sorted = tc_xcalloc(n, sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        sorted[i] = json_array_get(ups, i);
    }
    qsort(sorted, n, sizeof(*sorted), by_seq);
    printf("\ntimeline (oldest first, %zu update%s kept)\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        fputs("  ", stdout);
        tc_ctl_print_incident_line(stdout, json_object_get(sorted[i], "incident"), false);
    }
    free(sorted);
    fflush(stdout);
}

int
tc_ctl_cmd_show(struct tc_ctl *ctl)
{
    struct tc_ctl_http_resp r = {0};
    const char *id = ctl->o->args[0];
    int rc = tc_ctl_flags_incident_id(ctl, "ID", id);
    if (rc != TC_CTL_OK) {
        return rc;
    }
    const char *token = getenv("TOCSIN_CLIENT_TOKEN");
    char *e = token != NULL && token[0] != '\0' ? tc_ctl_http_escape(token) : NULL;
    /* The checked id needs no escaping. */
    char *path = tc_xasprintf("/v1/incidents/%s%s%s", id, e ? "?token=" : "", e ? e : "");
    free(e);
    if ((rc = tc_ctl_http_call(ctl, "GET", path, NULL, &r)) == TC_CTL_OK) {
        if (!json_is_object(json_object_get(r.body, "incident"))) {
            rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the answer has no \"incident\" object");
        } else if (ctl->json) {
            tc_ctl_print_json(r.body);
        } else {
            print_incident(r.body);
        }
    }
    tc_ctl_http_resp_fini(&r);
    free(path);
    return rc;
}
