/* tocsin — SPDX-License-Identifier: MIT
 *
 * Output for people and scripts (see print.h).
 */
#include "print.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Widest cell of a table column, in code points; longer cells are cut. */
#define CELL_MAX 60

void
tc_ctl_print_json(const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    fflush(stdout);
}

/* Length of the UTF-8 sequence starting with byte c (1 for a stray byte, so
 * broken input still advances). */
static size_t
seq_len(unsigned char c)
{
    return c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

char *
tc_ctl_print_clean(const char *s, char *out, size_t outlen, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t chars = 0, bytes = strlen((const char *)p), n = 0;
    for (size_t i = 0; i < bytes; i++) {
        chars += (p[i] & 0xc0) != 0x80;
    }
    /* Cut text keeps room for "..." in both bounds. */
    bool fits = chars <= max_chars && bytes < outlen;
    size_t limit_chars = fits ? chars : max_chars > 3 ? max_chars - 3 : 0;
    size_t limit_bytes = fits ? outlen - 1 : outlen >= 4 ? outlen - 4 : 0;
    for (chars = 0; *p != '\0' && chars < limit_chars; chars++) {
        size_t len = strnlen((const char *)p, seq_len(*p));
        if (n + len > limit_bytes) {
            break;
        }
        /* C0 controls, DEL, and C1 controls (U+0080-U+009F: CSI among them). */
        if (p[0] < 0x20 || p[0] == 0x7f || (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            out[n++] = '?';
        } else {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (!fits && outlen >= 4) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    if (outlen > 0) {
        out[n] = '\0';
    }
    return out;
}

const char *
tc_ctl_print_str(const json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : def;
}

char *
tc_ctl_print_join(const json_t *arr, const char *def, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(arr) && n < outlen; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", i > 0 ? ", " : "", s ? s : "?");
    }
    if (out[0] == '\0') {
        snprintf(out, outlen, "%s", def);
    }
    return out;
}

void
tc_ctl_print_incident_line(FILE *out, const json_t *inc, bool with_id)
{
    char id[160], title[400], msg[1000];
    json_int_t version = json_integer_value(json_object_get(inc, "version"));
    const char *m = tc_ctl_print_str(inc, "message", "");
    fprintf(out, "%s  ",
            tc_ctl_print_clean(tc_ctl_print_str(inc, "updated_at", "-"), id, sizeof(id), 40));
    if (with_id) {
        fprintf(out, "%s  ",
                tc_ctl_print_clean(tc_ctl_print_str(inc, "incident_id", "?"), id, sizeof(id), 128));
    }
    fprintf(out, "v%lld  %s  %s  %s", (long long)version, tc_ctl_print_str(inc, "impact", "?"),
            tc_ctl_print_str(inc, "status", "?"),
            tc_ctl_print_clean(tc_ctl_print_str(inc, "title", ""), title, sizeof(title), 200));
    if (m[0] != '\0') {
        fprintf(out, ": %s", tc_ctl_print_clean(m, msg, sizeof(msg), 240));
    }
    fputc('\n', out);
}

char *
tc_ctl_print_filter(const json_t *filter, char *out, size_t outlen)
{
    static const char *const keys[] = {"components", "regions", "min_impact"};
    char list[1024];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < TC_ARRAY_SIZE(keys) && n < outlen; i++) {
        const json_t *v = json_object_get(filter, keys[i]);
        const char *s = json_is_string(v)        ? json_string_value(v)
                        : json_array_size(v) > 0 ? tc_ctl_print_join(v, "", list, sizeof(list))
                                                 : NULL;
        if (s != NULL && strcmp(s, "none") != 0) {
            n += (size_t)snprintf(out + n, outlen - n, "%s%s=%s", n ? " " : "", keys[i], s);
        }
    }
    if (out[0] == '\0') {
        snprintf(out, outlen, "everything");
    }
    return out;
}

char *
tc_ctl_print_time(const json_t *v, char *out, size_t outlen)
{
    struct tm tm;
    time_t t = (time_t)json_integer_value(v);
    if (!json_is_integer(v) || gmtime_r(&t, &tm) == NULL ||
        strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, outlen, "-");
    }
    return out;
}

void
tc_ctl_print_field(const char *label, const char *value)
{
    char clean[4200];
    if (value != NULL && value[0] != '\0') {
        printf("%-12s %s\n", label, tc_ctl_print_clean(value, clean, sizeof(clean), 4096));
    }
}

void
tc_ctl_print_attempts(const json_t *attempts)
{
    size_t n = json_array_size(attempts);
    char err[300];
    printf("\nlast attempts (newest first): %s\n", n ? "" : "none");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(attempts, i);
        long long status = json_integer_value(json_object_get(a, "status"));
        printf("  %s  attempt %lld  status %lld  %lld ms%s%s\n", tc_ctl_print_str(a, "at", "-"),
               (long long)json_integer_value(json_object_get(a, "attempt")), status,
               (long long)json_integer_value(json_object_get(a, "duration_ms")),
               json_is_string(json_object_get(a, "error")) ? "  " : "",
               tc_ctl_print_clean(tc_ctl_print_str(a, "error", ""), err, sizeof(err), 200));
    }
}

struct tc_ctl_table {
    size_t ncols;
    const char *const *headers;
    char **cells; /* rows * ncols, owned */
    size_t rows;
};

struct tc_ctl_table *
tc_ctl_table_new(size_t ncols, const char *const *headers)
{
    struct tc_ctl_table *t = tc_xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->headers = headers;
    return t;
}

void
tc_ctl_table_add(struct tc_ctl_table *t, const char *const *cells)
{
    char buf[CELL_MAX * 4 + 4];
    t->cells = tc_xrealloc(t->cells, (t->rows + 1) * t->ncols * sizeof(*t->cells));
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] != NULL && cells[c][0] != '\0' ? cells[c] : "-";
        t->cells[t->rows * t->ncols + c] =
            tc_xstrdup(tc_ctl_print_clean(s, buf, sizeof(buf), CELL_MAX));
    }
    t->rows++;
}

/* Width in code points (what a terminal shows for most text). */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        w += (*p & 0xc0) != 0x80;
    }
    return w;
}

static void
print_row(const struct tc_ctl_table *t, FILE *out, const char *const *row, const size_t *w)
{
    for (size_t c = 0; c < t->ncols; c++) {
        bool last = c + 1 == t->ncols;
        fputs(row[c], out);
        for (size_t pad = width(row[c]); !last && pad < w[c] + 2; pad++) {
            fputc(' ', out);
        }
    }
    fputc('\n', out);
}

void
tc_ctl_table_print(const struct tc_ctl_table *t, FILE *out)
{
    size_t *w = tc_xcalloc(t->ncols, sizeof(*w));
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width(t->headers[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t cw = width(t->cells[r * t->ncols + c]);
            w[c] = cw > w[c] ? cw : w[c];
        }
    }
    print_row(t, out, t->headers, w);
    for (size_t r = 0; r < t->rows; r++) {
        print_row(t, out, (const char *const *)(t->cells + r * t->ncols), w);
    }
    free(w);
    fflush(out);
}

void
tc_ctl_table_free(struct tc_ctl_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->rows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
