/* tocsin — SPDX-License-Identifier: MIT
 *
 * Builds the RFC 5322 / MIME message (see mime.h): input checks, the
 * quoted-printable and RFC 2047 encoders, the Date format. It only produces
 * bytes: sending them (libcurl SMTP) and choosing what to say (templates,
 * digest) live elsewhere.
 */
#include "email/mime.h"

#include "email/address.h"
#include "email/email_internal.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define CRLF            "\r\n"
#define QP_LINE         76 /* RFC 2045: encoded lines <= 76 characters */
#define WORD_MAX        75 /* RFC 2047 §2: an encoded word <= 75 characters */
#define WORD_LINE       76 /* RFC 2047 §2: a line holding encoded words <= 76 */
#define WORD_OVERHEAD   12 /* "=?UTF-8?B?" + "?=" */
#define SUBJECT_PREFIX  "Subject: "
#define SUBJECT_RAW_MAX 78 /* RFC 5322 §2.1.1: SHOULD be <= 78 */
#define HEADER_LINE_MAX 998

static const char hexdig[] = "0123456789ABCDEF";

/* Appends one QP token for byte c: literal or "=XX". */
static void
qp_token(char tok[4], size_t *tlen, unsigned char c, bool literal)
{
    if (literal) {
        tok[0] = (char)c;
        *tlen = 1;
    } else {
        tok[0] = '=';
        tok[1] = hexdig[c >> 4];
        tok[2] = hexdig[c & 15];
        *tlen = 3;
    }
}

/* Whether byte i of line l (n bytes) may stay literal at output column col. */
static bool
qp_literal(const unsigned char *l, size_t n, size_t i, size_t col)
{
    unsigned char c = l[i];

    if (c == ' ' || c == '\t') {
        return i + 1 < n; /* whitespace before a line end would be stripped */
    }
    if (c < 33 || c > 126 || c == '=') {
        return false;
    }
    if (col == 0 && c == '.') {
        return false; /* a leading dot is SMTP syntax ("." ends the data) */
    }
    if (col == 0 && c == 'F' && n - i >= 5 && memcmp(l + i, "From ", 5) == 0) {
        return false; /* mbox writers would add '>' */
    }
    return true;
}

static void
qp_line(struct tc_email__buf *b, const unsigned char *l, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        char tok[4];
        size_t tlen;

        qp_token(tok, &tlen, l[i], qp_literal(l, n, i, col));
        /* Room for the token plus the "=" of a soft break, unless this
         * token ends the line (then the line may use all 76). */
        if (col + tlen > QP_LINE - 1 && !(i + 1 == n && col + tlen <= QP_LINE)) {
            tc_email__buf_add(b, "=" CRLF, 3);
            col = 0;
            qp_token(tok, &tlen, l[i], qp_literal(l, n, i, col));
        }
        tc_email__buf_add(b, tok, tlen);
        col += tlen;
    }
}

char *
tc_email_mime_qp_encode(const char *in, size_t len, size_t *outlen)
{
    struct tc_email__buf b;
    size_t start = 0;

    tc_email__buf_init(&b, SIZE_MAX);
    for (;;) {
        const char *nl = memchr(in + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - in) : len;
        size_t n = end - start;

        /* "\r\n" is one line end; a lone '\r' elsewhere is encoded as =0D. */
        if (nl != NULL && n > 0 && in[end - 1] == '\r') {
            n--;
        }
        qp_line(&b, (const unsigned char *)in + start, n);
        if (nl == NULL) {
            break;
        }
        tc_email__buf_add(&b, CRLF, 2);
        start = end + 1;
    }
    return tc_email__buf_take(&b, outlen);
}

/* Base64 of in[0..n) appended to b; n is at most one word's worth. */
static void
b64_append(struct tc_email__buf *b, const unsigned char *in, size_t n)
{
    unsigned char enc[WORD_MAX + 1];

    /* EVP_EncodeBlock writes 4 characters per 3 bytes and a NUL. */
    int len = EVP_EncodeBlock(enc, in, (int)n);
    tc_email__buf_add(b, enc, (size_t)len);
}

/* Input bytes that fit in one encoded word on a line with `avail` columns. */
static size_t
word_bytes(size_t avail)
{
    if (avail > WORD_MAX) {
        avail = WORD_MAX;
    }
    if (avail < WORD_OVERHEAD + 8) {
        return 0;
    }
    return (avail - WORD_OVERHEAD) / 4 * 3;
}

int
tc_email_mime_header_encode(const char *utf8, size_t len, size_t used, char **out)
{
    const unsigned char *s = (const unsigned char *)utf8;
    struct tc_email__buf b;
    size_t i = 0;
    /* The first word shares its line with the field name; if not even a
     * 4-byte character fits there, the text starts on a folded line. */
    size_t budget = used < WORD_LINE ? word_bytes(WORD_LINE - used) : 0;
    bool first = true;

    *out = NULL;
    if (!tc_email__utf8_valid(utf8, len)) {
        return TC_EINVAL;
    }
    tc_email__buf_init(&b, SIZE_MAX);
    while (i < len) {
        size_t take = 0;

        if (!first || budget == 0) {
            if (!first || used > 0) {
                tc_email__buf_add(&b, CRLF " ", 3);
            }
            budget = word_bytes(WORD_LINE - 1);
        }
        first = false;
        while (i + take < len) {
            size_t cl = tc_email__utf8_seq(s + i + take, len - i - take);
            if (take + cl > budget) {
                break;
            }
            take += cl;
        }
        tc_email__buf_adds(&b, "=?UTF-8?B?");
        b64_append(&b, s + i, take);
        tc_email__buf_adds(&b, "?=");
        i += take;
    }
    *out = tc_email__buf_take(&b, NULL);
    return TC_OK;
}

int
tc_email_mime_date(time_t t, char buf[TC_EMAIL_DATE_MAX])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    buf[0] = '\0';
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999) {
        return TC_EINVAL;
    }
    snprintf(buf, TC_EMAIL_DATE_MAX, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return TC_OK;
}

/* Subject text: valid UTF-8 with no C0 or C1 control character and no DEL,
 * so nothing in it can end or fold a header line. */
static int
subject_check(const char *s, struct tc_error *err)
{
    size_t n;

    if (s == NULL) {
        return tc_error_set(err, TC_EINVAL, "subject is missing");
    }
    n = strnlen(s, TC_EMAIL_SUBJECT_MAX + 1);
    if (n > TC_EMAIL_SUBJECT_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "subject is longer than %d bytes",
                            TC_EMAIL_SUBJECT_MAX);
    }
    if (!tc_email__utf8_valid(s, n)) {
        return tc_error_set(err, TC_EINVAL, "subject is not valid UTF-8");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F ||
            (c == 0xC2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9F)) {
            return tc_error_set(err, TC_EINVAL, "subject has a control character");
        }
    }
    return TC_OK;
}

static int
url_check(const char *u, struct tc_error *err)
{
    size_t n = strnlen(u, TC_EMAIL_URL_MAX + 1);

    if (n > TC_EMAIL_URL_MAX) {
        return tc_error_set(err, TC_EINVAL, "unsubscribe URL is longer than %d bytes",
                            TC_EMAIL_URL_MAX);
    }
    if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) {
        return tc_error_set(err, TC_EINVAL, "unsubscribe URL is not http(s)");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>' || c == '"') {
            return tc_error_set(err, TC_EINVAL,
                                "unsubscribe URL has a control, space, quote or angle bracket");
        }
    }
    return TC_OK;
}

static int
extra_check(const struct tc_email_header *h, struct tc_error *err)
{
    /* The fields this file writes: an extra one would duplicate or contradict them. */
    static const char *const own[] = {
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
        "MIME-Version",
        "Auto-Submitted",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Cc",
        "Bcc",
    };
    size_t nn, nv;

    if (h->name == NULL || h->value == NULL) {
        return tc_error_set(err, TC_EINVAL, "extra header has no name or value");
    }
    nn = strnlen(h->name, 77);
    if (nn == 0 || nn > 76) {
        return tc_error_set(err, TC_EINVAL, "extra header name must be 1-76 bytes");
    }
    for (size_t i = 0; i < nn; i++) {
        unsigned char c = (unsigned char)h->name[i];
        if (c < 33 || c > 126 || c == ':') {
            return tc_error_set(err, TC_EINVAL, "extra header name has a forbidden character");
        }
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(own); i++) {
        if (strcasecmp(h->name, own[i]) == 0) {
            return tc_error_set(err, TC_EINVAL, "extra header %s is written by the builder",
                                own[i]);
        }
    }
    nv = strnlen(h->value, HEADER_LINE_MAX);
    if (nn + 2 + nv > HEADER_LINE_MAX) {
        return tc_error_set(err, TC_EINVAL, "extra header %s is longer than a line", h->name);
    }
    for (size_t i = 0; i < nv; i++) {
        unsigned char c = (unsigned char)h->value[i];
        if (c < 0x20 || c > 0x7E) {
            return tc_error_set(err, TC_EINVAL, "extra header %s has a control or non-ASCII byte",
                                h->name);
        }
    }
    return TC_OK;
}

static int
body_check(const char *what, const char *s, size_t *len, struct tc_error *err)
{
    if (s == NULL) {
        return tc_error_set(err, TC_EINVAL, "%s body is missing", what);
    }
    *len = strnlen(s, TC_EMAIL_BODY_MAX + 1);
    if (*len > TC_EMAIL_BODY_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "%s body is longer than %d bytes", what,
                            TC_EMAIL_BODY_MAX);
    }
    if (!tc_email__utf8_valid(s, *len)) {
        return tc_error_set(err, TC_EINVAL, "%s body is not valid UTF-8", what);
    }
    return TC_OK;
}

static int
check_all(const struct tc_email_message *m, size_t *text_len, size_t *html_len,
          struct tc_error *err)
{
    struct tc_error sub;
    int rc;

    if (tc_email_address_check(m->from, &sub) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "from: %s", sub.text);
    }
    if (tc_email_address_check(m->to, &sub) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "to: %s", sub.text);
    }
    if (tc_email_domain_check(m->msgid_domain, &sub) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "message-id domain: %s", sub.text);
    }
    if ((rc = subject_check(m->subject, err)) != TC_OK ||
        (m->unsubscribe_url != NULL && (rc = url_check(m->unsubscribe_url, err)) != TC_OK) ||
        (rc = body_check("text", m->text, text_len, err)) != TC_OK ||
        (rc = body_check("html", m->html, html_len, err)) != TC_OK) {
        return rc;
    }
    if (m->n_extra > TC_EMAIL_EXTRA_MAX || (m->n_extra > 0 && m->extra == NULL)) {
        return tc_error_set(err, TC_EINVAL, "at most %d extra headers", TC_EMAIL_EXTRA_MAX);
    }
    for (size_t i = 0; i < m->n_extra; i++) {
        if ((rc = extra_check(&m->extra[i], err)) != TC_OK) {
            return rc;
        }
    }
    return TC_OK;
}

static void
hex_append(struct tc_email__buf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char h[2] = {hexdig[p[i] >> 4], hexdig[p[i] & 15]};
        tc_email__buf_add(b, h, 2);
    }
}

/* Subject: as is when it is short printable ASCII that no reader could take
 * for an encoded word; otherwise RFC 2047 words. */
static int
subject_append(struct tc_email__buf *b, const char *s)
{
    size_t n = strlen(s);
    bool raw = sizeof(SUBJECT_PREFIX) - 1 + n <= SUBJECT_RAW_MAX && strstr(s, "=?") == NULL;
    char *enc = NULL;

    for (size_t i = 0; raw && i < n; i++) {
        raw = s[i] >= 0x20 && s[i] <= 0x7E;
    }
    tc_email__buf_adds(b, SUBJECT_PREFIX);
    if (raw) {
        tc_email__buf_add(b, s, n);
    } else {
        if (tc_email_mime_header_encode(s, n, sizeof(SUBJECT_PREFIX) - 1, &enc) != TC_OK) {
            return TC_EINVAL; /* unreachable: subject_check validated the UTF-8 */
        }
        tc_email__buf_adds(b, enc);
        free(enc);
    }
    tc_email__buf_adds(b, CRLF);
    return TC_OK;
}

static void
part_append(struct tc_email__buf *b, const char *boundary, const char *type, const char *body,
            size_t len)
{
    size_t qlen;
    char *qp = tc_email_mime_qp_encode(body, len, &qlen);

    tc_email__buf_addf(b,
                       "--%s" CRLF "Content-Type: %s; charset=utf-8" CRLF
                       "Content-Transfer-Encoding: quoted-printable" CRLF CRLF,
                       boundary, type);
    tc_email__buf_add(b, qp, qlen);
    /* The CRLF before the next delimiter belongs to the delimiter. */
    tc_email__buf_adds(b, CRLF);
    free(qp);
}

int
tc_email_mime_build(const struct tc_email_message *m, char **out, size_t *outlen,
                    struct tc_error *err)
{
    struct tc_email__buf b;
    unsigned char rnd[16 + 12];
    char date[TC_EMAIL_DATE_MAX];
    char boundary[5 + 24 + 1];
    size_t text_len = 0, html_len = 0;
    int rc;

    tc_email__buf_init(&b, TC_EMAIL_MESSAGE_MAX);
    *out = NULL;
    if (outlen != NULL) {
        *outlen = 0;
    }
    if (m == NULL) {
        rc = tc_error_set(err, TC_EINVAL, "no message");
        goto out;
    }
    if ((rc = check_all(m, &text_len, &html_len, err)) != TC_OK) {
        goto out;
    }
    if (tc_email_mime_date(m->date, date) != TC_OK) {
        rc = tc_error_set(err, TC_EINVAL, "date is out of range");
        goto out;
    }
    if (tc_random_bytes(rnd, sizeof(rnd)) != TC_OK) {
        rc = tc_error_set(err, TC_EIO, "no randomness for the Message-ID");
        goto out;
    }
    /* "=_" cannot occur in quoted-printable output ('=' is always followed
     * by two hex digits or a line end), so the delimiter never collides
     * with a body line, whatever the body says. */
    memcpy(boundary, "=_tc_", 5);
    for (size_t i = 0; i < 12; i++) {
        boundary[5 + 2 * i] = hexdig[rnd[16 + i] >> 4];
        boundary[5 + 2 * i + 1] = hexdig[rnd[16 + i] & 15];
    }
    boundary[sizeof(boundary) - 1] = '\0';

    tc_email__buf_addf(&b, "Date: %s" CRLF "From: %s" CRLF "To: %s" CRLF, date, m->from, m->to);
    if ((rc = subject_append(&b, m->subject)) != TC_OK) {
        tc_error_set(err, rc, "subject could not be encoded");
        goto out;
    }
    tc_email__buf_adds(&b, "Message-ID: <");
    hex_append(&b, rnd, 16);
    tc_email__buf_addf(&b,
                       "@%s>" CRLF "MIME-Version: 1.0" CRLF "Auto-Submitted: auto-generated" CRLF,
                       m->msgid_domain);
    if (m->unsubscribe_url != NULL) {
        tc_email__buf_addf(&b,
                           "List-Unsubscribe: <%s>" CRLF
                           "List-Unsubscribe-Post: List-Unsubscribe=One-Click" CRLF,
                           m->unsubscribe_url);
    }
    for (size_t i = 0; i < m->n_extra; i++) {
        tc_email__buf_addf(&b, "%s: %s" CRLF, m->extra[i].name, m->extra[i].value);
    }
    tc_email__buf_addf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"" CRLF CRLF,
                       boundary);
    part_append(&b, boundary, "text/plain", m->text, text_len);
    part_append(&b, boundary, "text/html", m->html, html_len);
    tc_email__buf_addf(&b, "--%s--" CRLF, boundary);
    if (b.over) {
        rc = tc_error_set(err, TC_ETOOBIG, "message is larger than %d bytes", TC_EMAIL_MESSAGE_MAX);
        goto out;
    }
    *out = tc_email__buf_take(&b, outlen);
out:
    tc_email__buf_fini(&b);
    return rc;
}
