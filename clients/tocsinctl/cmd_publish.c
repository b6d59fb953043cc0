/* tocsin — SPDX-License-Identifier: MIT
 *
 * The writing commands: `publish` (open an incident through POST
 * /v1/incidents, or produce the whole event to Kafka with --kafka), `update
 * ID` (POST /v1/incidents/{id}/updates with the fields that change) and
 * `resolve ID` (status resolved, or completed for maintenance). Events are
 * checked with the server's own validator (model/incident.h) before they
 * leave, so a typo is exit 2 here, not a dead-lettered event later.
 */
#include "ctl.h"
#include "flags.h"
#include "http.h"
#include "kafka.h"
#include "model/incident.h"
#include "print.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TOPIC "tocsin.incidents"

/* prefix + 2n hex digits of randomness into out. @returns 0 or TC_EIO. */
static int
random_id(const char *prefix, size_t n, char *out, size_t outlen)
{
    unsigned char rnd[16];
    if (n > sizeof(rnd) || tc_random_bytes(rnd, n) != TC_OK) {
        return TC_EIO;
    }
    size_t len = (size_t)snprintf(out, outlen, "%s", prefix);
    for (size_t i = 0; i < n && len + 2 < outlen; i++) {
        len += (size_t)snprintf(out + len, outlen - len, "%02x", rnd[i]);
    }
    return TC_OK;
}

/* Adds the fields every writing command may set (title, message, impact,
 * components, regions, affected users, links, component states) to body. */
static int
add_fields(const struct tc_ctl *ctl, json_t *body)
{
    const struct tc_ctl_opts *o = ctl->o;
    json_t *v = NULL;
    long long n;
    int rc;
    if (o->title != NULL) {
        json_object_set_new(body, "title", json_string(o->title));
    }
    if (o->status != NULL) {
        json_object_set_new(body, "status", json_string(o->status));
    }
    if (o->impact != NULL) {
        if ((rc = tc_ctl_flags_impact(ctl, "impact", o->impact)) != TC_CTL_OK) {
            return rc;
        }
        json_object_set_new(body, "impact", json_string(o->impact));
    }
    if (o->message != NULL) {
        json_object_set_new(body, "message", json_string(o->message));
    }
    if (o->components != NULL) {
        if ((rc = tc_ctl_flags_ids(ctl, "components", o->components, &v)) != TC_CTL_OK) {
            return rc;
        }
        json_object_set_new(body, "components", v);
    }
    if (o->regions != NULL) {
        if ((rc = tc_ctl_flags_ids(ctl, "regions", o->regions, &v)) != TC_CTL_OK) {
            return rc;
        }
        json_object_set_new(body, "regions", v);
    }
    if (o->affected_users != NULL) {
        if ((rc = tc_ctl_flags_int(ctl, "affected-users", o->affected_users, 0, INT64_MAX, &n)) !=
            TC_CTL_OK) {
            return rc;
        }
        json_object_set_new(body, "affected_users", json_integer(n));
    }
    if ((rc = tc_ctl_flags_pairs(ctl, "link", &o->links, &v)) != TC_CTL_OK) {
        return rc;
    }
    if (v != NULL) {
        json_object_set_new(body, "links", v);
    }
    if ((rc = tc_ctl_flags_pairs(ctl, "component-status", &o->component_status, &v)) != TC_CTL_OK) {
        return rc;
    }
    if (v != NULL) {
        json_object_set_new(body, "component_status", v);
    }
    return TC_CTL_OK;
}

/* Checks a (possibly partial) event with the server's rules: fields the
 * server fills get placeholders first. A message starts with the field. */
static int
validate(const struct tc_ctl *ctl, const json_t *event)
{
    struct tc_error err;
    json_t *copy = json_deep_copy(event);
    char now[32];
    tc_rfc3339_now(now);
    if (json_object_get(copy, "event_id") == NULL) {
        json_object_set_new(copy, "event_id", json_string("placeholder"));
    }
    if (json_object_get(copy, "incident_id") == NULL) {
        json_object_set_new(copy, "incident_id", json_string("placeholder"));
    }
    if (json_object_get(copy, "version") == NULL) {
        json_object_set_new(copy, "version", json_integer(1));
    }
    if (json_object_get(copy, "occurred_at") == NULL) {
        json_object_set_new(copy, "occurred_at", json_string(now));
    }
    int rc = tc_event_validate(copy, &err);
    json_decref(copy);
    if (rc != TC_OK) {
        /* The validator's message starts with the field, which is the flag. */
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "%s", err.text);
    }
    return TC_CTL_OK;
}

/* publish --kafka: the whole event, produced and confirmed. */
static int
publish_kafka(const struct tc_ctl *ctl, json_t *ev)
{
    const struct tc_ctl_opts *o = ctl->o;
    const char *topic = o->topic != NULL ? o->topic : DEFAULT_TOPIC;
    char event_id[64], incident_id[64], now[32];
    struct tc_ctl_kafka_delivery d;
    struct tc_error err;
    long long version = 1;
    int rc;
    if (o->version != NULL &&
        (rc = tc_ctl_flags_int(ctl, "version", o->version, 1, INT64_MAX, &version)) != TC_CTL_OK) {
        return rc;
    }
    if (random_id("ctl-", 16, event_id, sizeof(event_id)) != TC_OK ||
        random_id("inc-", 6, incident_id, sizeof(incident_id)) != TC_OK) {
        return tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the kernel gave no random bytes");
    }
    tc_rfc3339_now(now);
    json_object_set_new(ev, "event_id", json_string(event_id));
    if (json_object_get(ev, "incident_id") == NULL) {
        json_object_set_new(ev, "incident_id", json_string(incident_id));
    }
    json_object_set_new(ev, "version", json_integer(version));
    json_object_set_new(ev, "occurred_at", json_string(now));
    if ((rc = validate(ctl, ev)) != TC_CTL_OK) {
        return rc;
    }
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len = strlen(text);
    const char *key = json_string_value(json_object_get(ev, "incident_id"));
    if (len > TC_EVENT_MAX_BYTES) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "the event is %zu bytes, over %d", len,
                         TC_EVENT_MAX_BYTES);
    } else if ((rc = tc_ctl_kafka_produce(o->kafka, topic, key, text, len, ctl->timeout_ms, &d,
                                          &err)) != TC_OK) {
        rc = tc_ctl_fail(ctl,
                         rc == TC_EINVAL ? TC_CTL_USAGE
                         : rc == TC_EIO  ? TC_CTL_REFUSED
                                         : TC_CTL_UNREACHABLE,
                         "--kafka %s: %s", o->kafka, err.text);
    } else if (ctl->json) {
        json_t *doc = json_pack("{s:O,s:s,s:i,s:I}", "event", ev, "topic", topic, "partition",
                                (int)d.partition, "offset", (json_int_t)d.offset);
        tc_ctl_print_json(doc);
        json_decref(doc);
        rc = TC_CTL_OK;
    } else {
        printf("published %s version %lld to Kafka (topic %s, partition %d, offset %lld)\n", key,
               version, topic, (int)d.partition, (long long)d.offset);
        rc = TC_CTL_OK;
    }
    free(text);
    return rc;
}

/* Prints the 202 answer {"event":{...}} of the publishing API. */
static int
print_event(const struct tc_ctl *ctl, const json_t *doc, const char *verb)
{
    const json_t *ev = json_object_get(doc, "event");
    if (ctl->json) {
        tc_ctl_print_json(doc);
        return TC_CTL_OK;
    }
    if (!json_is_object(ev)) {
        return tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the answer has no \"event\" object");
    }
    char id[160], seq[48] = "";
    const json_t *applied = json_object_get(doc, "applied"), *s = json_object_get(doc, "seq");
    /* "applied": false: Kafka has the event and tocsind will apply it, but
     * had not within its wait. */
    if (json_is_false(applied)) {
        snprintf(seq, sizeof(seq), " (in Kafka, not applied yet)");
    } else if (json_is_integer(s)) {
        snprintf(seq, sizeof(seq), " (seq %lld)", (long long)json_integer_value(s));
    }
    printf("%s %s: version %lld, %s, %s%s\n", verb,
           tc_ctl_print_clean(tc_ctl_print_str(ev, "incident_id", "?"), id, sizeof(id), 128),
           (long long)json_integer_value(json_object_get(ev, "version")),
           tc_ctl_print_str(ev, "status", "?"), tc_ctl_print_str(ev, "impact", "?"), seq);
    fflush(stdout);
    return TC_CTL_OK;
}

int
tc_ctl_cmd_publish(struct tc_ctl *ctl)
{
    const struct tc_ctl_opts *o = ctl->o;
    struct tc_ctl_http_resp r = {0};
    json_t *ev = json_object();
    int rc = TC_CTL_OK;
    const char *kind = o->kind != NULL ? o->kind : "incident";
    bool maintenance = strcmp(kind, "maintenance") == 0;

    if (o->title == NULL) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "--title: required");
    } else if (o->components == NULL) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "--components: required");
    } else if (!maintenance && strcmp(kind, "incident") != 0) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "--kind: must be incident or maintenance");
    } else if (o->kafka == NULL && o->topic != NULL) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "--topic: only with --kafka");
    } else if (o->kafka == NULL && o->version != NULL) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE,
                         "--version: only with --kafka (the API opens incidents at version 1)");
    } else if (o->id != NULL) {
        rc = tc_ctl_flags_incident_id(ctl, "--id", o->id);
    }
    if (rc != TC_CTL_OK) {
        goto out;
    }
    if (o->id != NULL) {
        json_object_set_new(ev, "incident_id", json_string(o->id));
    }
    json_object_set_new(ev, "kind", json_string(kind));
    /* Defaults for what the event requires: a new incident is being looked
     * at; a maintenance is announced before it starts. */
    json_object_set_new(ev, "status", json_string(maintenance ? "scheduled" : "investigating"));
    json_object_set_new(ev, "impact", json_string(maintenance ? "none" : "minor"));
    if ((rc = add_fields(ctl, ev)) != TC_CTL_OK) {
        goto out;
    }
    if (o->kafka != NULL) {
        rc = publish_kafka(ctl, ev);
        goto out;
    }
    if ((rc = validate(ctl, ev)) != TC_CTL_OK) {
        goto out;
    }
    if ((rc = tc_ctl_http_call(ctl, "POST", "/v1/incidents", ev, &r)) == TC_CTL_OK) {
        rc = print_event(ctl, r.body, "opened");
    }
out:
    tc_ctl_http_resp_fini(&r);
    json_decref(ev);
    return rc;
}

/* POST /v1/incidents/{id}/updates with body. */
static int
post_update(const struct tc_ctl *ctl, const char *id, json_t *body, const char *verb)
{
    struct tc_ctl_http_resp r = {0};
    long long version;
    int rc = TC_CTL_OK;
    if (ctl->o->version != NULL) {
        if ((rc = tc_ctl_flags_int(ctl, "version", ctl->o->version, 1, INT64_MAX, &version)) !=
            TC_CTL_OK) {
            return rc;
        }
        json_object_set_new(body, "version", json_integer(version));
    }
    char *path = tc_xasprintf("/v1/incidents/%s/updates", id);
    if ((rc = tc_ctl_http_call(ctl, "POST", path, body, &r)) == TC_CTL_OK) {
        rc = print_event(ctl, r.body, verb);
    }
    tc_ctl_http_resp_fini(&r);
    free(path);
    return rc;
}

int
tc_ctl_cmd_update(struct tc_ctl *ctl)
{
    const char *id = ctl->o->args[0];
    json_t *body = json_object();
    int rc = tc_ctl_flags_incident_id(ctl, "ID", id);
    if (rc == TC_CTL_OK) {
        rc = add_fields(ctl, body);
    }
    if (rc == TC_CTL_OK && json_object_size(body) == 0) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE,
                         "nothing to change: give --status, --impact, --message, --title, "
                         "--components, --regions, --link, ...");
    }
    if (rc == TC_CTL_OK) {
        rc = post_update(ctl, id, body, "updated");
    }
    json_decref(body);
    return rc;
}

int
tc_ctl_cmd_resolve(struct tc_ctl *ctl)
{
    const char *id = ctl->o->args[0];
    struct tc_ctl_http_resp r = {0};
    json_t *body = NULL;
    char *path = NULL;
    int rc = tc_ctl_flags_incident_id(ctl, "ID", id);
    if (rc != TC_CTL_OK) {
        goto out;
    }
    /* The ending status depends on the kind, which only the server knows. */
    path = tc_xasprintf("/v1/incidents/%s", id);
    if ((rc = tc_ctl_http_call(ctl, "GET", path, NULL, &r)) != TC_CTL_OK) {
        goto out;
    }
    const json_t *inc = json_object_get(r.body, "incident");
    const char *status = tc_ctl_print_str(inc, "status", "");
    if (strcmp(status, "resolved") == 0 || strcmp(status, "completed") == 0) {
        /* Resolving twice is success: scripts may retry. */
        if (ctl->json) {
            json_t *doc = json_pack("{s:O,s:b}", "incident", inc, "unchanged", 1);
            tc_ctl_print_json(doc);
            json_decref(doc);
        } else {
            printf("%s is already %s\n", id, status);
        }
        goto out;
    }
    bool maintenance = strcmp(tc_ctl_print_str(inc, "kind", "incident"), "maintenance") == 0;
    body = json_pack("{s:s}", "status", maintenance ? "completed" : "resolved");
    if (ctl->o->message != NULL) {
        json_object_set_new(body, "message", json_string(ctl->o->message));
    }
    rc = post_update(ctl, id, body, "resolved");
out:
    tc_ctl_http_resp_fini(&r);
    json_decref(body);
    free(path);
    return rc;
}
