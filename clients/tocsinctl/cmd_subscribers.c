/* tocsin — SPDX-License-Identifier: MIT
 *
 * `tocsinctl subscribers list|add|show|rm`: email subscribers through the
 * admin API (DESIGN §6), with the admin token. A subscriber added here is
 * confirmed at once (an admin vouches for the address); the address rules
 * are the server's, so a refused address is exit 1 with its message.
 */
#include "ctl.h"
#include "flags.h"
#include "http.h"
#include "print.h"

#include <stdlib.h>
#include <string.h>

static void
print_list(const json_t *subs)
{
    static const char *const headers[] = {"ID", "ADDRESS", "CONFIRMED", "FILTER", "CREATED"};
    char filter[512], created[40];
    if (json_array_size(subs) == 0) {
        printf("no email subscribers\n");
        return;
    }
    struct tc_ctl_table *t = tc_ctl_table_new(TC_ARRAY_SIZE(headers), headers);
    for (size_t i = 0; i < json_array_size(subs); i++) {
        const json_t *s = json_array_get(subs, i);
        const char *row[] = {
            tc_ctl_print_str(s, "id", NULL),
            tc_ctl_print_str(s, "address", NULL),
            json_is_true(json_object_get(s, "confirmed")) ? "yes" : "no",
            tc_ctl_print_filter(json_object_get(s, "filter"), filter, sizeof(filter)),
            tc_ctl_print_time(json_object_get(s, "created_at"), created, sizeof(created)),
        };
        tc_ctl_table_add(t, row);
    }
    tc_ctl_table_print(t, stdout);
    tc_ctl_table_free(t);
}

static void
print_subscriber(const json_t *s)
{
    char buf[512];
    tc_ctl_print_field("id", tc_ctl_print_str(s, "id", NULL));
    tc_ctl_print_field("address", tc_ctl_print_str(s, "address", NULL));
    tc_ctl_print_field("confirmed", json_is_true(json_object_get(s, "confirmed")) ? "yes" : "no");
    tc_ctl_print_field("filter",
                       tc_ctl_print_filter(json_object_get(s, "filter"), buf, sizeof(buf)));
    tc_ctl_print_field("source", tc_ctl_print_str(s, "source", NULL));
    tc_ctl_print_field("created",
                       tc_ctl_print_time(json_object_get(s, "created_at"), buf, sizeof(buf)));
}

static void
print_text(const struct tc_ctl *ctl, const json_t *doc)
{
    if (strcmp(ctl->sub, "list") == 0) {
        print_list(json_object_get(doc, "subscribers"));
    } else if (strcmp(ctl->sub, "add") == 0) {
        print_subscriber(doc);
    } else if (strcmp(ctl->sub, "show") == 0) {
        print_subscriber(json_object_get(doc, "subscriber"));
        static const char *const counts[] = {"pending", "delivered", "failed"};
        for (size_t i = 0; i < TC_ARRAY_SIZE(counts); i++) {
            const json_t *v = json_object_get(doc, counts[i]);
            if (json_is_integer(v)) {
                printf("%-12s %lld\n", counts[i], (long long)json_integer_value(v));
            }
        }
        tc_ctl_print_attempts(json_object_get(doc, "attempts"));
    } else {
        printf("deleted %s\n", ctl->o->args[0]);
    }
    fflush(stdout);
}

int
tc_ctl_cmd_subscribers(struct tc_ctl *ctl)
{
    struct tc_ctl_http_resp r = {0};
    json_t *body = NULL, *filter = NULL;
    char *path = NULL;
    const char *method = "GET";
    int rc = TC_CTL_OK;
    if (strcmp(ctl->sub, "list") == 0 || strcmp(ctl->sub, "add") == 0) {
        path = tc_xstrdup("/v1/email-subscribers");
    } else {
        char *id = tc_ctl_http_escape(ctl->o->args[0]);
        path = tc_xasprintf("/v1/email-subscribers/%s", id);
        free(id);
    }
    if (strcmp(ctl->sub, "add") == 0) {
        method = "POST";
        if ((rc = tc_ctl_flags_filter(ctl, &filter)) != TC_CTL_OK) {
            goto out;
        }
        body = json_pack("{s:s,s:O}", "address", ctl->o->args[0], "filter", filter);
    } else if (strcmp(ctl->sub, "rm") == 0) {
        method = "DELETE";
    }
    if ((rc = tc_ctl_http_call(ctl, method, path, body, &r)) != TC_CTL_OK) {
        goto out;
    }
    if (!json_is_object(r.body)) {
        rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "the answer is not a JSON object");
    } else if (ctl->json) {
        tc_ctl_print_json(r.body);
    } else {
        print_text(ctl, r.body);
    }
out:
    tc_ctl_http_resp_fini(&r);
    json_decref(filter);
    json_decref(body);
    free(path);
    return rc;
}
