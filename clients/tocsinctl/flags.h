/* tocsin — SPDX-License-Identifier: MIT
 *
 * Flag values turned into what the API takes: comma lists into JSON arrays,
 * NAME=VALUE pairs into objects, filter flags into a filter object or a
 * query string. Each check names the flag it refuses ("--components: ...")
 * and the functions return exit code 2 after printing it, so commands stop
 * before anything is sent.
 */
#ifndef TC_CTL_FLAGS_H
#define TC_CTL_FLAGS_H

#include "ctl.h"

#include <jansson.h>

/* Splits "a, b,c" into ["a","b","c"]; every item must be a component or
 * region id. @returns TC_CTL_OK with *out new, or TC_CTL_USAGE (printed). */
int tc_ctl_flags_ids(const struct tc_ctl *ctl, const char *flag, const char *csv, json_t **out);

/* Turns NAME=VALUE items into an object. @returns TC_CTL_OK with *out new
 * (NULL when l is empty) or TC_CTL_USAGE (printed). */
int tc_ctl_flags_pairs(const struct tc_ctl *ctl, const char *flag, const struct tc_ctl_list *l,
                       json_t **out);

/* Parses a decimal integer in [min, max]. @returns TC_CTL_OK or
 * TC_CTL_USAGE (printed). */
int tc_ctl_flags_int(const struct tc_ctl *ctl, const char *flag, const char *s, long long min,
                     long long max, long long *out);

/* Checks an incident id: 1-128 characters of [A-Za-z0-9._:-]. what names
 * it in the message ("ID", "--id"). @returns TC_CTL_OK or TC_CTL_USAGE
 * (printed). */
int tc_ctl_flags_incident_id(const struct tc_ctl *ctl, const char *what, const char *id);

/* Checks an impact name. @returns TC_CTL_OK or TC_CTL_USAGE (printed). */
int tc_ctl_flags_impact(const struct tc_ctl *ctl, const char *flag, const char *s);

/* The filter of --components, --regions and --min-impact as a DESIGN §3
 * object ({} when none is given), checked with the server's own parser.
 * @returns TC_CTL_OK with *out new, or TC_CTL_USAGE (printed). */
int tc_ctl_flags_filter(const struct tc_ctl *ctl, json_t **out);

/* The same filter as a query string "components=a,b&min_impact=minor"
 * ("" when none is given), and token=$TOCSIN_CLIENT_TOKEN when that is set. @returns TC_CTL_OK with
 * *out new (free it), or TC_CTL_USAGE (printed). */
int tc_ctl_flags_filter_query(const struct tc_ctl *ctl, char **out);

#endif
