/* tocsin — SPDX-License-Identifier: MIT
 *
 * `tocsinctl webhooks list|add|show|rm|replay|rotate-secret|enable|test`:
 * the webhook admin API (DESIGN §5) with the admin token. A secret is
 * printed only where the server shows it (add, rotate-secret): it cannot be
 * read back later. `test` exits 1 when the endpoint did not take the test
 * message, so scripts can check a receiver.
 */
#include "ctl.h"
#include "flags.h"
#include "http.h"
#include "print.h"

#include <stdlib.h>
#include <string.h>

static void
print_list(const json_t *hooks)
{
    static const char *const headers[] = {"ID", "URL", "FILTER", "STATE", "DESCRIPTION"};
    char filter[512];
    if (json_array_size(hooks) == 0) {
        printf("no webhook endpoints\n");
        return;
    }
    struct tc_ctl_table *t = tc_ctl_table_new(TC_ARRAY_SIZE(headers), headers);
    for (size_t i = 0; i < json_array_size(hooks); i++) {
        const json_t *e = json_array_get(hooks, i);
        const char *row[] = {
            tc_ctl_print_str(e, "id", NULL),
            tc_ctl_print_str(e, "url", NULL),
            tc_ctl_print_filter(json_object_get(e, "filter"), filter, sizeof(filter)),
            json_is_true(json_object_get(e, "disabled")) ? "disabled" : "enabled",
            tc_ctl_print_str(e, "description", NULL),
        };
        tc_ctl_table_add(t, row);
    }
    tc_ctl_table_print(t, stdout);
    tc_ctl_table_free(t);
}

static void
print_endpoint(const json_t *e)
{
    char buf[512];
    tc_ctl_print_field("id", tc_ctl_print_str(e, "id", NULL));
    tc_ctl_print_field("url", tc_ctl_print_str(e, "url", NULL));
    tc_ctl_print_field("filter",
                       tc_ctl_print_filter(json_object_get(e, "filter"), buf, sizeof(buf)));
    tc_ctl_print_field("description", tc_ctl_print_str(e, "description", NULL));
    tc_ctl_print_field("created",
                       tc_ctl_print_time(json_object_get(e, "created_at"), buf, sizeof(buf)));
    tc_ctl_print_field("state",
                       json_is_true(json_object_get(e, "disabled")) ? "disabled" : "enabled");
    tc_ctl_print_field("why", tc_ctl_print_str(e, "disabled_reason", NULL));
    tc_ctl_print_field("secret", tc_ctl_print_str(e, "secret", NULL));
}

static void
print_show(const json_t *doc)
{
    print_endpoint(json_object_get(doc, "endpoint"));
    printf("%-12s %lld\n%-12s %lld\n", "pending",
           (long long)json_integer_value(json_object_get(doc, "pending")), "dead",
           (long long)json_integer_value(json_object_get(doc, "dead")));
    tc_ctl_print_attempts(json_object_get(doc, "attempts"));
}

/* Prints the answer of one subcommand in text. @returns the exit code. */
static int
print_text(const struct tc_ctl *ctl, const json_t *doc)
{
    const char *sub = ctl->sub, *id = ctl->o->args[0];
    if (strcmp(sub, "list") == 0) {
        print_list(json_object_get(doc, "webhooks"));
    } else if (strcmp(sub, "show") == 0) {
        print_show(doc);
    } else if (strcmp(sub, "add") == 0) {
        print_endpoint(doc);
        printf("\nstore the secret now: it is not shown again (rotate-secret makes a new one)\n");
    } else if (strcmp(sub, "rotate-secret") == 0) {
        char until[40];
        printf("new secret for %s: %s\nthe old secret stays valid until %s\n", id,
               tc_ctl_print_str(doc, "secret", "?"),
               tc_ctl_print_time(json_object_get(doc, "old_secret_until"), until, sizeof(until)));
    } else if (strcmp(sub, "rm") == 0) {
        printf("deleted %s\n", id);
    } else if (strcmp(sub, "enable") == 0) {
        printf("enabled %s\n", id);
    } else if (strcmp(sub, "replay") == 0) {
        printf("replayed %lld dead deliveries of %s (%lld superseded by newer updates)\n",
               (long long)json_integer_value(json_object_get(doc, "replayed")), id,
               (long long)json_integer_value(json_object_get(doc, "superseded")));
    } else if (strcmp(sub, "test") == 0) {
        long long status = json_integer_value(json_object_get(doc, "status"));
        long long ms = json_integer_value(json_object_get(doc, "duration_ms"));
        if (!json_is_true(json_object_get(doc, "delivered"))) {
            char err[300];
            return tc_ctl_fail(
                ctl, TC_CTL_REFUSED, "%s did not take the test message: status %lld, %s", id,
                status,
                tc_ctl_print_clean(tc_ctl_print_str(doc, "error", "-"), err, sizeof(err), 200));
        }
        printf("test message %s delivered to %s: status %lld in %lld ms\n",
               tc_ctl_print_str(doc, "webhook_id", "?"), id, status, ms);
    }
    fflush(stdout);
    return TC_CTL_OK;
}

/* The body of `add`. @returns exit code, *out new on success. */
static int
add_body(const struct tc_ctl *ctl, json_t **out)
{
    json_t *filter = NULL;
    int rc = tc_ctl_flags_filter(ctl, &filter);
    if (rc != TC_CTL_OK) {
        return rc;
    }
    json_t *body = json_pack("{s:s}", "url", ctl->o->args[0]);
    if (json_object_size(filter) > 0) {
        json_object_set(body, "filter", filter);
    }
    if (ctl->o->description != NULL) {
        json_object_set_new(body, "description", json_string(ctl->o->description));
    }
    json_decref(filter);
    *out = body;
    return TC_CTL_OK;
}

int
tc_ctl_cmd_webhooks(struct tc_ctl *ctl)
{
    static const struct {
        const char *sub;
        const char *method;
        const char *action; /* after /v1/webhooks/{id}, or NULL */
    } routes[] = {
        {"list", "GET", NULL},         {"add", "POST", NULL},
        {"show", "GET", ""},           {"rm", "DELETE", ""},
        {"replay", "POST", "/replay"}, {"rotate-secret", "POST", "/rotate-secret"},
        {"enable", "POST", "/enable"}, {"test", "POST", "/test"},
    };
    struct tc_ctl_http_resp r = {0};
    json_t *body = NULL;
    char *path = NULL;
    int rc = TC_CTL_OK;
    size_t i = 0;
    while (i < TC_ARRAY_SIZE(routes) && strcmp(routes[i].sub, ctl->sub) != 0) {
        i++;
    }
    if (i == TC_ARRAY_SIZE(routes)) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "no such subcommand");
    }
    if (routes[i].action != NULL) {
        char *id = tc_ctl_http_escape(ctl->o->args[0]);
        path = tc_xasprintf("/v1/webhooks/%s%s", id, routes[i].action);
        free(id);
    } else {
        path = tc_xstrdup("/v1/webhooks");
    }
    if (strcmp(ctl->sub, "add") == 0 && (rc = add_body(ctl, &body)) != TC_CTL_OK) {
        goto out;
    }
    if ((rc = tc_ctl_http_call(ctl, routes[i].method, path, body, &r)) != TC_CTL_OK) {
        goto out;
    }
    if (!json_is_object(r.body)) {
        rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the answer is not a JSON object");
    } else if (ctl->json) {
        tc_ctl_print_json(r.body);
        /* The same verdict as in text, so scripts using --json can trust it. */
        if (strcmp(ctl->sub, "test") == 0 && !json_is_true(json_object_get(r.body, "delivered"))) {
            rc = TC_CTL_REFUSED;
        }
    } else {
        rc = print_text(ctl, r.body);
    }
out:
    tc_ctl_http_resp_fini(&r);
    json_decref(body);
    free(path);
    return rc;
}
