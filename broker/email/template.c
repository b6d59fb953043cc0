/* tocsin — SPDX-License-Identifier: MIT
 *
 * The template engine (see template.h): a one-pass parser into a flat op
 * list, where each section op knows the index of its closing op, and a
 * renderer that walks op ranges with a bounded context stack. Also loads the
 * named template set (built-ins, or files at start-up). Does not know what a
 * digest or an email is: contexts are plain jansson values.
 */
#define _GNU_SOURCE /* memmem */
#include "email/template.h"

#include "email/email_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op_kind {
    OP_TEXT,     /* literal text */
    OP_VAR,      /* {{name}}: escaped when rendering HTML */
    OP_RAW,      /* {{{name}}} or {{&name}} */
    OP_SECTION,  /* {{#name}}; end = index of its OP_END */
    OP_INVERTED, /* {{^name}}; end = index of its OP_END */
    OP_END,      /* {{/name}} */
};

struct op {
    enum op_kind kind;
    const char *s; /* text or name, inside the template's own copy of src */
    size_t len;
    size_t end;
};

struct tc_email_template {
    char *src;
    struct op *ops;
    size_t n;
};

/* Parser state: where we are, and the line number there. */
struct parser {
    const char *name;
    const char *src;
    size_t len;
    size_t pos;
    unsigned line;
    struct tc_email_template *t;
    size_t cap;
    size_t open[TC_EMAIL_TEMPLATE_DEPTH_MAX];
    unsigned open_line[TC_EMAIL_TEMPLATE_DEPTH_MAX];
    size_t depth;
};

static unsigned
count_lines(const char *s, size_t from, size_t to)
{
    unsigned n = 0;
    for (size_t i = from; i < to; i++) {
        n += s[i] == '\n';
    }
    return n;
}

static size_t
op_push(struct parser *p, enum op_kind kind, const char *s, size_t len)
{
    struct tc_email_template *t = p->t;

    if (t->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 32;
        t->ops = tc_xrealloc(t->ops, p->cap * sizeof(*t->ops));
    }
    t->ops[t->n] = (struct op){.kind = kind, .s = s, .len = len, .end = 0};
    return t->n++;
}

/* Tag names: "." alone, or dot-separated segments of [A-Za-z0-9_-]. */
static bool
name_ok(const char *s, size_t n)
{
    if (n == 1 && s[0] == '.') {
        return true;
    }
    if (n == 0 || n > TC_EMAIL_TEMPLATE_NAME_MAX || s[0] == '.' || s[n - 1] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && s[i + 1] != '.');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* If the tag at [open, after) stands alone on its line, widens it to the
 * whole line (leading blanks and the line end), as Mustache does, so that
 * section tags on their own lines leave no empty lines behind. */
static void
standalone(const struct parser *p, size_t text_start, size_t open, size_t *text_end, size_t *after)
{
    size_t ls = open, q = *after;

    while (ls > 0 && p->src[ls - 1] != '\n') {
        ls--;
    }
    if (ls < text_start) {
        return; /* an earlier tag shares the line */
    }
    for (size_t i = ls; i < open; i++) {
        if (!is_blank(p->src[i])) {
            return;
        }
    }
    while (q < p->len && is_blank(p->src[q])) {
        q++;
    }
    if (q == p->len) {
        *after = q;
    } else if (p->src[q] == '\n') {
        *after = q + 1;
    } else if (p->src[q] == '\r' && q + 1 < p->len && p->src[q + 1] == '\n') {
        *after = q + 2;
    } else {
        return;
    }
    *text_end = ls;
}

/* Parses one tag starting at open ("{{"); returns 0 and moves p->pos. */
static int
parse_tag(struct parser *p, size_t open, struct tc_error *err)
{
    const char *src = p->src;
    unsigned line = p->line + count_lines(src, p->pos, open);
    bool triple = open + 2 < p->len && src[open + 2] == '{';
    const char *closer = triple ? "}}}" : "}}";
    size_t cstart = open + (triple ? 3 : 2);
    char sigil = !triple && cstart < p->len ? src[cstart] : '\0';
    const char *close;
    size_t text_end = open, after, nstart, nend;
    enum op_kind kind = OP_VAR;

    if (sigil != '\0' && strchr("#^/!&>=", sigil) != NULL) {
        cstart++;
    } else {
        sigil = '\0';
    }
    close = memmem(src + cstart, p->len - cstart, closer, strlen(closer));
    if (close == NULL) {
        return tc_error_set(err, TC_EINVAL, "%s:%u: tag is not closed with %s", p->name, line,
                            closer);
    }
    after = (size_t)(close - src) + strlen(closer);
    if (sigil == '>' || sigil == '=') {
        return tc_error_set(err, TC_EINVAL, "%s:%u: %s are not supported", p->name, line,
                            sigil == '>' ? "partials" : "delimiter changes");
    }
    nstart = cstart;
    nend = (size_t)(close - src);
    while (nstart < nend && is_blank(src[nstart])) {
        nstart++;
    }
    while (nend > nstart && is_blank(src[nend - 1])) {
        nend--;
    }
    if (sigil != '!' && !name_ok(src + nstart, nend - nstart)) {
        return tc_error_set(err, TC_EINVAL, "%s:%u: bad tag name '%.*s'", p->name, line,
                            (int)(nend - nstart > 40 ? 40 : nend - nstart), src + nstart);
    }
    if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '!') {
        standalone(p, p->pos, open, &text_end, &after);
    }
    if (text_end > p->pos) {
        op_push(p, OP_TEXT, src + p->pos, text_end - p->pos);
    }
    switch (sigil) {
    case '#':
    case '^':
        if (p->depth == TC_EMAIL_TEMPLATE_DEPTH_MAX) {
            return tc_error_set(err, TC_ETOOBIG, "%s:%u: sections nest deeper than %d", p->name,
                                line, TC_EMAIL_TEMPLATE_DEPTH_MAX);
        }
        p->open_line[p->depth] = line;
        p->open[p->depth++] =
            op_push(p, sigil == '#' ? OP_SECTION : OP_INVERTED, src + nstart, nend - nstart);
        break;
    case '/': {
        if (p->depth == 0) {
            return tc_error_set(err, TC_EINVAL, "%s:%u: {{/%.*s}} closes no section", p->name, line,
                                (int)(nend - nstart), src + nstart);
        }
        const struct op *o = &p->t->ops[p->open[p->depth - 1]];
        if (o->len != nend - nstart || memcmp(o->s, src + nstart, o->len) != 0) {
            return tc_error_set(err, TC_EINVAL, "%s:%u: {{/%.*s}} closes {{%c%.*s}} (line %u)",
                                p->name, line, (int)(nend - nstart), src + nstart,
                                o->kind == OP_SECTION ? '#' : '^', (int)o->len, o->s,
                                p->open_line[p->depth - 1]);
        }
        size_t end = op_push(p, OP_END, src + nstart, nend - nstart);
        p->t->ops[p->open[--p->depth]].end = end;
        break;
    }
    case '!':
        break;
    default:
        kind = triple || sigil == '&' ? OP_RAW : OP_VAR;
        op_push(p, kind, src + nstart, nend - nstart);
        break;
    }
    p->line += count_lines(src, p->pos, after);
    p->pos = after;
    return TC_OK;
}

int
tc_email_template_compile(const char *name, const char *src, size_t len,
                          struct tc_email_template **out, struct tc_error *err)
{
    struct tc_email_template *t = NULL;
    struct parser p;
    int rc = TC_OK;

    *out = NULL;
    name = name != NULL ? name : "template";
    if (src == NULL) {
        return tc_error_set(err, TC_EINVAL, "%s: no text", name);
    }
    if (len > TC_EMAIL_TEMPLATE_SRC_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "%s: longer than %d bytes", name,
                            TC_EMAIL_TEMPLATE_SRC_MAX);
    }
    if (!tc_email__utf8_valid(src, len) || memchr(src, '\0', len) != NULL) {
        return tc_error_set(err, TC_EINVAL, "%s: not valid UTF-8 text", name);
    }
    t = tc_xcalloc(1, sizeof(*t));
    t->src = tc_xstrndup(src, len);
    p = (struct parser){.name = name, .src = t->src, .len = len, .line = 1, .t = t};
    for (;;) {
        const char *open = memmem(t->src + p.pos, len - p.pos, "{{", 2);
        if (open == NULL) {
            if (p.pos < len) {
                op_push(&p, OP_TEXT, t->src + p.pos, len - p.pos);
            }
            break;
        }
        if ((rc = parse_tag(&p, (size_t)(open - t->src), err)) != TC_OK) {
            goto out;
        }
    }
    if (p.depth > 0) {
        const struct op *o = &t->ops[p.open[p.depth - 1]];
        rc = tc_error_set(err, TC_EINVAL, "%s:%u: {{%c%.*s}} is never closed", name,
                          p.open_line[p.depth - 1], o->kind == OP_SECTION ? '#' : '^', (int)o->len,
                          o->s);
        goto out;
    }
    *out = t;
    t = NULL;
out:
    tc_email_template_free(t);
    return rc;
}

void
tc_email_template_free(struct tc_email_template *t)
{
    if (t == NULL) {
        return;
    }
    free(t->ops);
    free(t->src);
    free(t);
}

/* Renderer state. The context stack is one deeper than the section nesting. */
struct render {
    const struct tc_email_template *t;
    struct tc_email__buf b;
    const json_t *stack[TC_EMAIL_TEMPLATE_DEPTH_MAX + 1];
    size_t depth;
    bool html;
    /* Ops visited so far. The output bound alone does not bound the work:
     * sections nested over lists render items^depth times, and a body that
     * writes nothing (a missing name, an inverted section) never reaches
     * it (a fuzz finding: 16 sections over 10 items, 10^16 steps). */
    size_t steps;
    bool too_long; /* steps passed TC_EMAIL_TEMPLATE_STEPS_MAX */
};

static bool
stopped(const struct render *r)
{
    return r->b.over || r->too_long;
}

/* Resolves a dotted name: the first segment through the stack (innermost
 * object holding it), the rest inside that value. NULL when missing. */
static const json_t *
lookup(const struct render *r, const char *s, size_t n)
{
    const char *dot = memchr(s, '.', n);
    size_t seg = dot != NULL ? (size_t)(dot - s) : n;
    const json_t *v = NULL;

    if (n == 1 && s[0] == '.') {
        return r->stack[r->depth - 1];
    }
    for (size_t k = r->depth; k-- > 0;) {
        if (json_is_object(r->stack[k]) && (v = json_object_getn(r->stack[k], s, seg)) != NULL) {
            break;
        }
    }
    while (v != NULL && seg < n) {
        s += seg + 1;
        n -= seg + 1;
        dot = memchr(s, '.', n);
        seg = dot != NULL ? (size_t)(dot - s) : n;
        v = json_is_object(v) ? json_object_getn(v, s, seg) : NULL;
    }
    return v;
}

static bool
truthy(const json_t *v)
{
    switch (v != NULL ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
    case JSON_TRUE:
        return true;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    default:
        return false;
    }
}

static void
append_escaped(struct tc_email__buf *b, const char *s, size_t n, bool html)
{
    size_t run = 0;

    if (!html) {
        tc_email__buf_add(b, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *ent = NULL;
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        tc_email__buf_add(b, s + run, i - run);
        tc_email__buf_adds(b, ent);
        run = i + 1;
    }
    tc_email__buf_add(b, s + run, n - run);
}

static void
append_value(struct tc_email__buf *b, const json_t *v, bool escape)
{
    char num[64];

    switch (v != NULL ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        append_escaped(b, json_string_value(v), json_string_length(v), escape);
        break;
    case JSON_INTEGER:
        tc_email__buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == 0.0) {
            tc_email__buf_adds(b, "0"); /* not "-0" */
        } else if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
            tc_email__buf_addf(b, "%.0f", d);
        } else {
            snprintf(num, sizeof(num), "%.15g", d);
            tc_email__buf_adds(b, num);
        }
        break;
    }
    case JSON_TRUE:
        tc_email__buf_adds(b, "true");
        break;
    case JSON_FALSE:
        tc_email__buf_adds(b, "false");
        break;
    default:
        break;
    }
}

static void render_range(struct render *r, size_t from, size_t to);

/* Renders the body of the section at i once with v as the current context. */
static void
render_with(struct render *r, size_t i, const json_t *v)
{
    r->stack[r->depth++] = v;
    render_range(r, i + 1, r->t->ops[i].end);
    r->depth--;
}

static void
render_range(struct render *r, size_t from, size_t to)
{
    for (size_t i = from; i < to && !stopped(r);) {
        const struct op *o = &r->t->ops[i];
        const json_t *v;

        if (++r->steps > TC_EMAIL_TEMPLATE_STEPS_MAX) {
            r->too_long = true;
            break;
        }
        switch (o->kind) {
        case OP_TEXT:
            tc_email__buf_add(&r->b, o->s, o->len);
            break;
        case OP_VAR:
        case OP_RAW:
            append_value(&r->b, lookup(r, o->s, o->len), o->kind == OP_VAR && r->html);
            break;
        case OP_SECTION:
            v = lookup(r, o->s, o->len);
            if (json_is_array(v)) {
                for (size_t k = 0; k < json_array_size(v) && !stopped(r); k++) {
                    render_with(r, i, json_array_get(v, k));
                }
            } else if (truthy(v)) {
                render_with(r, i, v);
            }
            i = o->end + 1;
            continue;
        case OP_INVERTED:
            if (!truthy(lookup(r, o->s, o->len))) {
                render_range(r, i + 1, o->end);
            }
            i = o->end + 1;
            continue;
        case OP_END:
            break;
        }
        i++;
    }
}

int
tc_email_template_render(const struct tc_email_template *t, const json_t *ctx, bool html,
                         size_t max, char **out, size_t *outlen, struct tc_error *err)
{
    struct render r = {.t = t, .html = html};
    int rc = TC_OK;

    *out = NULL;
    if (outlen != NULL) {
        *outlen = 0;
    }
    if (t == NULL) {
        return tc_error_set(err, TC_EINVAL, "no template");
    }
    tc_email__buf_init(&r.b, max);
    r.stack[r.depth++] = ctx;
    render_range(&r, 0, t->n);
    if (r.too_long) {
        rc = tc_error_set(err, TC_ETOOBIG,
                          "rendering takes over %d steps: sections nested over long lists",
                          TC_EMAIL_TEMPLATE_STEPS_MAX);
        goto out;
    }
    if (r.b.over) {
        rc = tc_error_set(err, TC_ETOOBIG, "rendered text is larger than %zu bytes", max);
        goto out;
    }
    *out = tc_email__buf_take(&r.b, outlen);
out:
    tc_email__buf_fini(&r.b);
    return rc;
}

/* Reads <dir>/<name> into a new buffer. TC_ENOENT when there is no such
 * file (the built-in applies), TC_EIO or TC_ETOOBIG otherwise. */
static int
read_override(const char *path, char **text, size_t *len, struct tc_error *err)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    int rc = TC_OK;

    *text = NULL;
    if (f == NULL) {
        if (errno == ENOENT) {
            return TC_ENOENT;
        }
        return tc_error_set(err, TC_EIO, "%s: %s", path, strerror(errno));
    }
    /* One byte past the bound tells "too big" from "exactly the bound". */
    *text = tc_xmalloc(TC_EMAIL_TEMPLATE_SRC_MAX + 1);
    n = fread(*text, 1, TC_EMAIL_TEMPLATE_SRC_MAX + 1, f);
    if (ferror(f)) {
        rc = tc_error_set(err, TC_EIO, "%s: read error", path);
    } else if (n > TC_EMAIL_TEMPLATE_SRC_MAX) {
        rc = tc_error_set(err, TC_ETOOBIG, "%s: longer than %d bytes", path,
                          TC_EMAIL_TEMPLATE_SRC_MAX);
    }
    fclose(f);
    if (rc != TC_OK) {
        free(*text);
        *text = NULL;
        return rc;
    }
    *len = n;
    return TC_OK;
}

int
tc_email_templates_load(struct tc_email_templates *t, const char *dir, struct tc_error *err)
{
    int rc = TC_OK;

    memset(t, 0, sizeof(*t));
    for (int id = 0; id < TC_EMAIL_TPL_COUNT && rc == TC_OK; id++) {
        const char *name = tc_email_templates_name((enum tc_email_template_id)id);
        const char *builtin = tc_email_templates_builtin((enum tc_email_template_id)id);
        char *path = NULL, *text = NULL;
        size_t len = 0;

        if (dir != NULL && dir[0] != '\0') {
            path = tc_xasprintf("%s/%s", dir, name);
            rc = read_override(path, &text, &len, err);
        } else {
            rc = TC_ENOENT;
        }
        if (rc == TC_OK) {
            rc = tc_email_template_compile(path, text, len, &t->tpl[id], err);
        } else if (rc == TC_ENOENT) {
            rc = tc_email_template_compile(name, builtin, strlen(builtin), &t->tpl[id], err);
        }
        free(text);
        free(path);
    }
    if (rc != TC_OK) {
        tc_email_templates_fini(t);
    }
    return rc;
}

void
tc_email_templates_fini(struct tc_email_templates *t)
{
    if (t == NULL) {
        return;
    }
    for (int id = 0; id < TC_EMAIL_TPL_COUNT; id++) {
        tc_email_template_free(t->tpl[id]);
        t->tpl[id] = NULL;
    }
}

/* Squeezes whitespace and control characters into single spaces, in place. */
static size_t
one_line(char *s, size_t n)
{
    size_t o = 0;
    bool space = false;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8. */
        bool c1 = c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                  (unsigned char)s[i + 1] <= 0x9F;
        if (c <= 0x20 || c == 0x7F || c1) {
            i += c1;
            space = o > 0;
            continue;
        }
        if (space) {
            s[o++] = ' ';
            space = false;
        }
        s[o++] = (char)c;
    }
    s[o] = '\0';
    return o;
}

int
tc_email_templates_render(const struct tc_email_templates *t, enum tc_email_template_id id,
                          const json_t *ctx, size_t max, char **out, size_t *outlen,
                          struct tc_error *err)
{
    bool html = id == TC_EMAIL_TPL_DIGEST_HTML || id == TC_EMAIL_TPL_CONFIRM_HTML;
    bool subject = id == TC_EMAIL_TPL_DIGEST_SUBJECT || id == TC_EMAIL_TPL_CONFIRM_SUBJECT;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (t == NULL || (int)id < 0 || id >= TC_EMAIL_TPL_COUNT || t->tpl[id] == NULL) {
        return tc_error_set(err, TC_EINVAL, "no template %d", (int)id);
    }
    rc = tc_email_template_render(t->tpl[id], ctx, html, max, out, &len, err);
    if (rc == TC_OK && subject) {
        len = one_line(*out, len);
    }
    if (outlen != NULL) {
        *outlen = len;
    }
    return rc;
}
