/* tocsin — SPDX-License-Identifier: MIT
 *
 * Coalesces one subscriber's updates into a digest context (see digest.h):
 * validate the entries, group them by incident in seq order, keep one entry
 * per version, show the latest version, list the status transitions, and
 * write the display labels and the subject. Pure: no clock, no I/O.
 */
#include "email/digest.h"

#include "email/email_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One usable update. */
struct entry {
    int64_t seq;
    size_t index; /* position in the input, the tie-break that keeps sorts stable */
    int64_t version;
    const json_t *incident;
    const char *status;
    size_t group;
};

struct label {
    const char *name;
    const char *label;
};

static const struct label status_labels[] = {
    {"investigating", "Investigating"}, {"identified", "Identified"},
    {"monitoring", "Monitoring"},       {"resolved", "Resolved"},
    {"scheduled", "Scheduled"},         {"in_progress", "In progress"},
    {"verifying", "Verifying"},         {"completed", "Completed"},
};

static const struct label impact_labels[] = {
    {"none", "None"},
    {"minor", "Minor"},
    {"major", "Major"},
    {"critical", "Critical"},
};

/* Colours for HTML templates (accessible on white), so that the template
 * stays logic-less: green when over, blue for maintenance, else by impact. */
static const struct label impact_colors[] = {
    {"none", "#57606a"},
    {"minor", "#9a6700"},
    {"major", "#d9480f"},
    {"critical", "#b42318"},
};
#define COLOR_RESOLVED    "#1a7f37"
#define COLOR_MAINTENANCE "#0969da"

static const char *
label_find(const struct label *t, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(t[i].name, name) == 0) {
            return t[i].label;
        }
    }
    return NULL;
}

char *
tc_email_digest_status_label(const char *status)
{
    const char *known = label_find(status_labels, TC_ARRAY_SIZE(status_labels), status);
    char *s;

    if (known != NULL) {
        return tc_xstrdup(known);
    }
    s = tc_xstrdup(status != NULL ? status : "");
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '_') {
            *p = ' ';
        }
    }
    if (s[0] >= 'a' && s[0] <= 'z') {
        s[0] = (char)(s[0] - 'a' + 'A');
    }
    return s;
}

static bool
ends(const char *status)
{
    return strcmp(status, "resolved") == 0 || strcmp(status, "completed") == 0;
}

static bool
is_maintenance(const char *status)
{
    return strcmp(status, "scheduled") == 0 || strcmp(status, "in_progress") == 0 ||
           strcmp(status, "verifying") == 0;
}

static const char *
str_field(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" to unix time. */
static bool
parse_time(const char *s, time_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 0;

    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) {
        return false;
    }
    s += n;
    if (*s == '.') {
        while (*++s >= '0' && *s <= '9') {
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2) {
        sign = *s == '+' ? 1 : -1;
        s += 6;
    } else {
        return false;
    }
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm) - sign * (oh * 3600 + om * 60);
    return true;
}

/* A time label in UTC, "2026-11-25 12:03 UTC" or (without the date)
 * "12:03 UTC"; the input as is when it does not parse, null when absent.
 * @returns new json. */
static json_t *
time_label(const char *rfc3339, bool with_date)
{
    char buf[64];
    struct tm tm;
    time_t t;

    if (rfc3339 == NULL) {
        return json_null();
    }
    if (!parse_time(rfc3339, &t) || gmtime_r(&t, &tm) == NULL ||
        (with_date ? strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm)
                   : strftime(buf, sizeof(buf), "%H:%M UTC", &tm)) == 0) {
        return json_string(rfc3339);
    }
    return json_string(buf);
}

static const char *
entry_time(const json_t *incident)
{
    const char *at = str_field(incident, "updated_at");
    return at != NULL ? at : str_field(incident, "occurred_at");
}

/* "a, b, c" from an array of strings; empty_text when empty or absent. */
static json_t *
join_label(const json_t *arr, const char *empty_text)
{
    struct tc_email__buf b;
    json_t *out;

    tc_email__buf_init(&b, SIZE_MAX);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s != NULL) {
            if (b.len > 0) {
                tc_email__buf_adds(&b, ", ");
            }
            tc_email__buf_adds(&b, s);
        }
    }
    out = json_string(b.len > 0 ? b.data : empty_text);
    tc_email__buf_fini(&b);
    return out;
}

static int
entry_parse(const json_t *u, size_t i, struct entry *e, struct tc_error *err)
{
    const json_t *seq = json_object_get(u, "seq");
    const json_t *inc = json_object_get(u, "incident");
    const json_t *ver = json_object_get(inc, "version");
    const char *id = str_field(inc, "incident_id");

    if (!json_is_object(u)) {
        return tc_error_set(err, TC_EINVAL, "updates[%zu]: not an object", i);
    }
    if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].seq: not a non-negative integer", i);
    }
    if (!json_is_object(inc)) {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].incident: not an object", i);
    }
    if (id == NULL || id[0] == '\0') {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].incident.incident_id: not a string", i);
    }
    if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].incident.version: not a positive integer",
                            i);
    }
    e->status = str_field(inc, "status");
    if (e->status == NULL || e->status[0] == '\0') {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].incident.status: not a string", i);
    }
    if (str_field(inc, "title") == NULL) {
        return tc_error_set(err, TC_EINVAL, "updates[%zu].incident.title: not a string", i);
    }
    e->seq = json_integer_value(seq);
    e->index = i;
    e->version = json_integer_value(ver);
    e->incident = inc;
    return TC_OK;
}

static int
by_seq(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->seq != y->seq) {
        return x->seq < y->seq ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Incident groups in order of first seq, then versions ascending. */
static int
by_group_version(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->group != y->group) {
        return x->group < y->group ? -1 : 1;
    }
    if (x->version != y->version) {
        return x->version < y->version ? -1 : 1;
    }
    return by_seq(a, b);
}

static json_t *
transition(const char *from, const struct entry *e)
{
    json_t *t = json_object();
    char *to_label = tc_email_digest_status_label(e->status);

    json_object_set_new(t, "from", from != NULL ? json_string(from) : json_null());
    json_object_set_new(t, "to", json_string(e->status));
    if (from != NULL) {
        char *from_label = tc_email_digest_status_label(from);
        json_object_set_new(t, "from_label", json_string(from_label));
        free(from_label);
    } else {
        json_object_set_new(t, "from_label", json_null());
    }
    json_object_set_new(t, "to_label", json_string(to_label));
    json_object_set_new(t, "at",
                        entry_time(e->incident) != NULL ? json_string(entry_time(e->incident))
                                                        : json_null());
    json_object_set_new(t, "at_label", time_label(entry_time(e->incident), false));
    free(to_label);
    return t;
}

/* The shown incident: the latest state plus labels and transitions of the
 * group's entries e[0..n), which are sorted by version and distinct. */
static json_t *
incident_view(const struct entry *e, size_t n)
{
    const struct entry *last = &e[n - 1];
    json_t *inc = json_deep_copy(last->incident);
    json_t *trans = json_array();
    const char *impact = str_field(last->incident, "impact");
    const char *color = label_find(impact_colors, TC_ARRAY_SIZE(impact_colors), impact);
    const char *impact_label = label_find(impact_labels, TC_ARRAY_SIZE(impact_labels), impact);
    char *status_label = tc_email_digest_status_label(last->status);

    if (ends(last->status)) {
        color = COLOR_RESOLVED;
    } else if (is_maintenance(last->status)) {
        color = COLOR_MAINTENANCE;
    }
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(e[i].status, e[i - 1].status) != 0) {
            json_array_append_new(trans, transition(i == 0 ? NULL : e[i - 1].status, &e[i]));
        }
    }
    json_object_set_new(inc, "status_label", json_string(status_label));
    json_object_set_new(
        inc, "impact_label",
        json_string(impact_label != NULL ? impact_label : (impact != NULL ? impact : "")));
    json_object_set_new(inc, "status_color", json_string(color != NULL ? color : "#57606a"));
    json_object_set_new(inc, "resolved", json_boolean(ends(last->status)));
    json_object_set_new(inc, "components_label",
                        join_label(json_object_get(last->incident, "components"), ""));
    json_object_set_new(inc, "regions_label",
                        join_label(json_object_get(last->incident, "regions"), "all regions"));
    json_object_set_new(inc, "updated_label", time_label(entry_time(last->incident), true));
    json_object_set_new(inc, "transitions", trans);
    free(status_label);
    return inc;
}

/* Appends s with every control character as a space. */
static void
append_clean(struct tc_email__buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool c1 = c == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F;
        if (c < 0x20 || c == 0x7F || c1) {
            tc_email__buf_addc(b, ' ');
            s += c1;
        } else {
            tc_email__buf_addc(b, (char)c);
        }
    }
}

static json_t *
subject(const json_t *incidents)
{
    struct tc_email__buf b;
    size_t k = json_array_size(incidents);
    json_t *out;

    tc_email__buf_init(&b, SIZE_MAX);
    if (k == 1) {
        const json_t *inc = json_array_get(incidents, 0);
        tc_email__buf_addf(&b, "[%s] ", str_field(inc, "status_label"));
        append_clean(&b, str_field(inc, "title"));
    } else {
        tc_email__buf_addf(&b, "%zu incident updates: ", k);
        for (size_t i = 0; i < k && b.len <= TC_EMAIL_DIGEST_SUBJECT_MAX; i++) {
            if (i > 0) {
                tc_email__buf_adds(&b, ", ");
            }
            append_clean(&b, str_field(json_array_get(incidents, i), "title"));
        }
    }
    if (b.len > TC_EMAIL_DIGEST_SUBJECT_MAX) {
        /* "…" is 3 bytes of UTF-8; cut before it on a character boundary. */
        size_t cut = tc_email__utf8_cut(b.data, b.len, TC_EMAIL_DIGEST_SUBJECT_MAX - 3);
        while (cut > 0 && (b.data[cut - 1] == ' ' || b.data[cut - 1] == ',')) {
            cut--;
        }
        b.len = cut;
        tc_email__buf_adds(&b, "\xE2\x80\xA6");
    }
    out = json_string(b.data);
    tc_email__buf_fini(&b);
    return out;
}

int
tc_email_digest_build(const json_t *updates, const char *public_url, const char *unsubscribe_url,
                      json_t **ctx, struct tc_error *err)
{
    struct entry *e = NULL;
    json_t *groups = NULL, *incidents = NULL, *out = NULL;
    size_t n = json_array_size(updates), kept = 0;
    int64_t last_seq = 0;
    int rc = TC_OK;

    *ctx = NULL;
    if (!json_is_array(updates) || n == 0) {
        return tc_error_set(err, TC_EINVAL, "updates: not a non-empty array");
    }
    if (n > TC_EMAIL_DIGEST_UPDATES_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "updates: more than %d", TC_EMAIL_DIGEST_UPDATES_MAX);
    }
    e = tc_xcalloc(n, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        if ((rc = entry_parse(json_array_get(updates, i), i, &e[i], err)) != TC_OK) {
            goto out;
        }
    }
    /* Groups are numbered in seq order, so incidents keep the order of
     * their first update even when the array came out of order. */
    qsort(e, n, sizeof(*e), by_seq);
    groups = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *id = str_field(e[i].incident, "incident_id");
        json_t *g = json_object_get(groups, id);
        if (g == NULL) {
            g = json_integer((json_int_t)json_object_size(groups));
            json_object_set_new(groups, id, g);
        }
        e[i].group = (size_t)json_integer_value(g);
    }
    for (size_t i = 0; i < n; i++) {
        last_seq = e[i].seq > last_seq ? e[i].seq : last_seq;
    }
    /* Then per group by version; a repeated version keeps its first copy. */
    qsort(e, n, sizeof(*e), by_group_version);
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 && e[kept - 1].group == e[i].group && e[kept - 1].version == e[i].version) {
            continue;
        }
        e[kept++] = e[i];
    }
    incidents = json_array();
    for (size_t i = 0, j; i < kept; i = j) {
        for (j = i + 1; j < kept && e[j].group == e[i].group; j++) {
        }
        json_array_append_new(incidents, incident_view(e + i, j - i));
    }
    out = json_object();
    json_object_set_new(out, "subject", subject(incidents));
    json_object_set_new(out, "count_incidents",
                        json_integer((json_int_t)json_array_size(incidents)));
    json_object_set_new(out, "count_updates", json_integer((json_int_t)kept));
    json_object_set_new(out, "last_seq", json_integer((json_int_t)last_seq));
    json_object_set_new(out, "incidents", incidents);
    incidents = NULL;
    if (public_url != NULL) {
        json_object_set_new(out, "public_url", json_string(public_url));
    }
    if (unsubscribe_url != NULL) {
        json_object_set_new(out, "unsubscribe_url", json_string(unsubscribe_url));
    }
    *ctx = out;
    out = NULL;
out:
    json_decref(out);
    json_decref(incidents);
    json_decref(groups);
    free(e);
    return rc;
}
