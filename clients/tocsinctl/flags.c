/* tocsin — SPDX-License-Identifier: MIT
 *
 * From flag values to JSON and query strings (see flags.h). The id and
 * impact rules are the model's (model/incident.h, model/filter.h), so a
 * value refused here would be refused by tocsind too.
 */
#include "flags.h"
#include "http.h"
#include "model/filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
tc_ctl_flags_ids(const struct tc_ctl *ctl, const char *flag, const char *csv, json_t **out)
{
    json_t *arr = json_array();
    char item[80];
    *out = NULL;
    for (const char *p = csv; *p != '\0';) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len == 0) {
            p += n;
            continue;
        }
        snprintf(item, sizeof(item), "%.*s", (int)(len > 70 ? 70 : len), p);
        if (len > 64 || !tc_is_component_id(item)) {
            json_decref(arr);
            return tc_ctl_fail(ctl, TC_CTL_USAGE,
                               "--%s: '%s' is not an id (1-64 characters of [a-z0-9._-])", flag,
                               item);
        }
        if (json_array_size(arr) == TC_FILTER_MAX_ITEMS) {
            json_decref(arr);
            return tc_ctl_fail(ctl, TC_CTL_USAGE, "--%s: at most %d ids", flag,
                               TC_FILTER_MAX_ITEMS);
        }
        json_array_append_new(arr, json_string(item));
        p += n;
    }
    *out = arr;
    return TC_CTL_OK;
}

int
tc_ctl_flags_pairs(const struct tc_ctl *ctl, const char *flag, const struct tc_ctl_list *l,
                   json_t **out)
{
    *out = NULL;
    if (l->n == 0) {
        return TC_CTL_OK;
    }
    json_t *obj = json_object();
    for (size_t i = 0; i < l->n; i++) {
        const char *eq = strchr(l->v[i], '=');
        if (eq == NULL || eq == l->v[i] || eq[1] == '\0') {
            json_decref(obj);
            return tc_ctl_fail(ctl, TC_CTL_USAGE, "--%s: '%.80s' is not NAME=VALUE", flag, l->v[i]);
        }
        char *name = tc_xstrndup(l->v[i], (size_t)(eq - l->v[i]));
        json_object_set_new(obj, name, json_string(eq + 1));
        free(name);
    }
    *out = obj;
    return TC_CTL_OK;
}

int
tc_ctl_flags_int(const struct tc_ctl *ctl, const char *flag, const char *s, long long min,
                 long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--%s: '%.40s' is not an integer in %lld-%lld", flag,
                           s, min, max);
    }
    *out = v;
    return TC_CTL_OK;
}

int
tc_ctl_flags_incident_id(const struct tc_ctl *ctl, const char *what, const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 ||
        strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != n) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE,
                           "%s: '%.80s' is not an incident id (1-128 "
                           "characters of [A-Za-z0-9._:-])",
                           what, id);
    }
    return TC_CTL_OK;
}

int
tc_ctl_flags_impact(const struct tc_ctl *ctl, const char *flag, const char *s)
{
    enum tc_impact imp;
    if (tc_impact_parse(s, &imp) != TC_OK) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--%s: must be none, minor, major or critical", flag);
    }
    return TC_CTL_OK;
}

int
tc_ctl_flags_filter(const struct tc_ctl *ctl, json_t **out)
{
    const struct tc_ctl_opts *o = ctl->o;
    json_t *f = json_object(), *arr = NULL;
    struct tc_filter check;
    struct tc_error err;
    int rc = TC_CTL_OK;
    *out = NULL;
    if (o->components != NULL) {
        if ((rc = tc_ctl_flags_ids(ctl, "components", o->components, &arr)) != TC_CTL_OK) {
            goto out;
        }
        json_object_set_new(f, "components", arr);
    }
    if (o->regions != NULL) {
        if ((rc = tc_ctl_flags_ids(ctl, "regions", o->regions, &arr)) != TC_CTL_OK) {
            goto out;
        }
        json_object_set_new(f, "regions", arr);
    }
    if (o->min_impact != NULL) {
        if ((rc = tc_ctl_flags_impact(ctl, "min-impact", o->min_impact)) != TC_CTL_OK) {
            goto out;
        }
        json_object_set_new(f, "min_impact", json_string(o->min_impact));
    }
    /* The server's parser has the last word, so the two cannot disagree. */
    if (tc_filter_from_json(f, &check, &err) != TC_OK) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "filter: %s", err.text);
        goto out;
    }
    tc_filter_fini(&check);
    *out = json_incref(f);
out:
    json_decref(f);
    return rc;
}

/* Appends key=<the array joined by commas, URL-encoded> to *qs. */
static void
add_query(char **qs, const char *key, const json_t *v)
{
    char joined[64 * 66] = "";
    size_t n = 0;
    if (json_is_string(v)) {
        snprintf(joined, sizeof(joined), "%s", json_string_value(v));
    }
    for (size_t i = 0; i < json_array_size(v) && n < sizeof(joined); i++) {
        n += (size_t)snprintf(joined + n, sizeof(joined) - n, "%s%s", i ? "," : "",
                              json_string_value(json_array_get(v, i)));
    }
    char *e = tc_ctl_http_escape(joined);
    char *next = tc_xasprintf("%s%s%s=%s", *qs, **qs ? "&" : "", key, e);
    free(e);
    free(*qs);
    *qs = next;
}

int
tc_ctl_flags_filter_query(const struct tc_ctl *ctl, char **out)
{
    json_t *f = NULL;
    *out = NULL;
    int rc = tc_ctl_flags_filter(ctl, &f);
    if (rc != TC_CTL_OK) {
        return rc;
    }
    char *qs = tc_xstrdup("");
    static const char *const keys[] = {"components", "regions", "min_impact"};
    for (size_t i = 0; i < TC_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(f, keys[i]);
        if (v != NULL) {
            add_query(&qs, keys[i], v);
        }
    }
    json_decref(f);
    /* A tocsind with auth.client_secret wants a client token on the
     * public routes (tocsinctl token makes one). */
    const char *token = getenv("TOCSIN_CLIENT_TOKEN");
    if (token != NULL && token[0] != '\0') {
        json_t *t = json_string(token);
        add_query(&qs, "token", t);
        json_decref(t);
    }
    *out = qs;
    return TC_CTL_OK;
}
