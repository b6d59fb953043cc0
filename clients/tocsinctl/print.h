/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsinctl's output: JSON documents for --json, aligned tables and one-line
 * incident summaries for people. Text that came from the server is cleaned
 * before it reaches a terminal (control characters become '?'), so a title
 * cannot move the cursor or forge lines. No I/O but stdout/stderr.
 */
#ifndef TC_CTL_PRINT_H
#define TC_CTL_PRINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Prints doc compact on one line of stdout and flushes. @borrows doc. */
void tc_ctl_print_json(const json_t *doc);

/* Copies s into out (outlen bytes) with control characters replaced by '?'
 * and at most max_chars code points; a longer text ends in "...".
 * @returns out. */
char *tc_ctl_print_clean(const char *s, char *out, size_t outlen, size_t max_chars);

/* The string field key of obj, or def when absent or not a string. */
const char *tc_ctl_print_str(const json_t *obj, const char *key, const char *def);
/* Joins a JSON array of strings with ", " into out; def when empty or absent. */
char *tc_ctl_print_join(const json_t *arr, const char *def, char *out, size_t outlen);

/* One line for an incident state: "<updated_at>  <id>  v<version>  <impact>
 * <status>  <title>[: <message>]" (the id left out unless with_id). */
void tc_ctl_print_incident_line(FILE *out, const json_t *incident, bool with_id);

/* A filter object as "components=a,b regions=x min_impact=minor", or
 * "everything" when it selects everything. */
char *tc_ctl_print_filter(const json_t *filter, char *out, size_t outlen);

/* Unix seconds as RFC 3339 UTC ("-" when v is not a number). */
char *tc_ctl_print_time(const json_t *v, char *out, size_t outlen);

/* "label  value" on stdout, the value cleaned; nothing when value is NULL
 * or empty. */
void tc_ctl_print_field(const char *label, const char *value);

/* Delivery attempts (webhooks, email), one line each, under a heading. */
void tc_ctl_print_attempts(const json_t *attempts);

/* A table printed with aligned columns; cells are copied (and cleaned). */
struct tc_ctl_table;
/* @returns new; headers borrowed for the table's life. */
struct tc_ctl_table *tc_ctl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (NULL prints as "-"). @borrows cells. */
void tc_ctl_table_add(struct tc_ctl_table *t, const char *const *cells);
void tc_ctl_table_print(const struct tc_ctl_table *t, FILE *out);
void tc_ctl_table_free(struct tc_ctl_table *t);

#endif
