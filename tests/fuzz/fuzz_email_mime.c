/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the MIME encoders of email/mime.h on text the templates fill
 * from incident fields. The first input byte picks the header column, the
 * rest is the text.
 *  - quoted-printable: output is 7-bit, lines <= 76, no trailing blank, no
 *    leading '.' or "From ", and it decodes back to the input;
 *  - RFC 2047 header words: accepted exactly when the text is UTF-8 (as
 *    jansson judges it), lines <= 76, words <= 75, each word whole UTF-8, and
 *    the words decode back to the input;
 *  - a whole message with the text as Subject (its first line) and as the
 *    unsubscribe URL (the rest): either refused, or every header line is
 *    printable ASCII <= 998 bytes and the header names are exactly ours, so
 *    no input can add or split a header field.
 */
#include "email/mime.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>

#include <openssl/evp.h>

static int
hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void
check_qp(const char *in, size_t n)
{
    size_t qlen = 0;
    char *q = tc_email_mime_qp_encode(in, n, &qlen);
    char *dec = tc_xmalloc(qlen + 1), *want = tc_xmalloc(n + 1);
    size_t dn = 0, wn = 0, col = 0;

    FUZZ_CHECK(q != NULL && strlen(q) == qlen);
    for (size_t i = 0; i < qlen; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c == '\r') {
            FUZZ_CHECK(i + 1 < qlen && q[i + 1] == '\n');
            FUZZ_CHECK(i == 0 || (q[i - 1] != ' ' && q[i - 1] != '\t'));
            i++;
            col = 0;
            continue;
        }
        FUZZ_CHECKF((c >= 33 && c <= 126) || c == ' ' || c == '\t', "byte 0x%02x", c);
        FUZZ_CHECK(!(col == 0 && c == '.'));
        FUZZ_CHECK(!(col == 0 && strncmp(q + i, "From ", 5) == 0));
        col++;
        FUZZ_CHECKF(col <= 76, "line longer than 76 at %zu", i);
        if (c == '=') {
            if (q[i + 1] == '\r') { /* soft break */
                FUZZ_CHECK(q[i + 2] == '\n' && i + 3 < qlen);
                i += 2;
                col = 0;
                continue;
            }
            FUZZ_CHECK(hex(q[i + 1]) >= 0 && hex(q[i + 2]) >= 0);
            dec[dn++] = (char)(hex(q[i + 1]) * 16 + hex(q[i + 2]));
            i += 2;
            col += 2;
            FUZZ_CHECK(col <= 76);
            continue;
        }
        dec[dn++] = (char)c;
    }
    FUZZ_CHECK(qlen == 0 || (q[qlen - 1] != ' ' && q[qlen - 1] != '\t'));
    /* The input's "\r\n" and "\n" are both one hard line break. */
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
            continue;
        }
        want[wn++] = in[i];
    }
    /* dec skipped the CRLFs of hard breaks; count them back as '\n'. */
    size_t hard = 0;
    for (size_t i = 0; i + 1 < qlen; i++) {
        hard += q[i] == '\r' && (i == 0 || q[i - 1] != '=');
    }
    size_t lf = 0;
    for (size_t i = 0; i < wn; i++) {
        lf += want[i] == '\n';
    }
    FUZZ_CHECKF(hard == lf, "%zu hard breaks for %zu line ends", hard, lf);
    /* Compare with the line ends taken out of both. */
    size_t k = 0;
    for (size_t i = 0; i < wn; i++) {
        if (want[i] != '\n') {
            want[k++] = want[i];
        }
    }
    FUZZ_CHECKF(k == dn && memcmp(want, dec, dn) == 0, "QP decodes to %zu bytes, not %zu", dn, k);
    free(want);
    free(dec);
    free(q);
}

static void
check_header_words(const char *in, size_t n, size_t used)
{
    char *enc = NULL;
    int rc = tc_email_mime_header_encode(in, n, used, &enc);
    json_t *utf8 = json_stringn(in, n); /* NULL when not valid UTF-8 */

    FUZZ_CHECKF((rc == TC_OK) == (utf8 != NULL), "rc %d", rc);
    json_decref(utf8);
    if (rc != TC_OK) {
        FUZZ_CHECK(enc == NULL);
        return;
    }
    unsigned char *dec = tc_xmalloc(n + 4);
    size_t dn = 0, line = used;
    const char *p = enc;
    while (*p != '\0') {
        if (strncmp(p, "\r\n ", 3) == 0) {
            p += 2;
            line = 0;
        }
        if (*p == ' ') {
            p++;
            line++;
        }
        FUZZ_CHECKF(strncmp(p, "=?UTF-8?B?", 10) == 0, "at \"%.20s\"", p);
        const char *end = strstr(p + 10, "?=");
        FUZZ_CHECK(end != NULL);
        size_t wlen = (size_t)(end + 2 - p), blen = (size_t)(end - (p + 10));
        FUZZ_CHECKF(wlen <= 75, "word of %zu", wlen);
        line += wlen;
        FUZZ_CHECKF(line <= 76, "line of %zu (used %zu)", line, used);
        FUZZ_CHECK(blen > 0 && blen % 4 == 0);
        unsigned char word[64];
        int got = EVP_DecodeBlock(word, (const unsigned char *)p + 10, (int)blen);
        FUZZ_CHECK(got >= 0);
        got -= (p[10 + blen - 1] == '=') + (p[10 + blen - 2] == '=');
        FUZZ_CHECK(got > 0 && dn + (size_t)got <= n);
        /* Split between characters only: each word is UTF-8 on its own. */
        json_t *w = json_stringn((const char *)word, (size_t)got);
        FUZZ_CHECK(w != NULL);
        json_decref(w);
        memcpy(dec + dn, word, (size_t)got);
        dn += (size_t)got;
        p = end + 2;
        FUZZ_CHECK(*p == '\0' || strncmp(p, "\r\n ", 3) == 0);
    }
    FUZZ_CHECK(dn == n && memcmp(dec, in, n) == 0);
    free(dec);
    free(enc);
}

/* Header names of a built message, in order, must be exactly ours. */
static void
check_message(const char *msg, size_t len, bool with_url)
{
    static const char *const names[] = {"Date",
                                        "From",
                                        "To",
                                        "Subject",
                                        "Message-ID",
                                        "MIME-Version",
                                        "Auto-Submitted",
                                        "List-Unsubscribe",
                                        "List-Unsubscribe-Post",
                                        "Content-Type"};
    size_t next = 0;
    bool in_headers = true;

    FUZZ_CHECK(strlen(msg) == len);
    for (const char *line = msg; line < msg + len;) {
        const char *crlf = strstr(line, "\r\n");
        FUZZ_CHECK(crlf != NULL);
        size_t n = (size_t)(crlf - line);
        FUZZ_CHECK(n <= 998);
        FUZZ_CHECK(memchr(line, '\n', n) == NULL && memchr(line, '\r', n) == NULL);
        if (in_headers && n == 0) {
            in_headers = false;
        } else if (in_headers) {
            for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(line[i] >= 0x20 && line[i] <= 0x7E);
            }
            if (line[0] != ' ') {
                if (!with_url && next == 7) {
                    next = 9;
                }
                FUZZ_CHECK(next < TC_ARRAY_SIZE(names));
                size_t nl = strlen(names[next]);
                FUZZ_CHECKF(n > nl + 1 && strncmp(line, names[next], nl) == 0 &&
                                strncmp(line + nl, ": ", 2) == 0,
                            "header line \"%.*s\", want %s", (int)n, line, names[next]);
                next++;
            }
        }
        line = crlf + 2;
    }
    FUZZ_CHECK(next == TC_ARRAY_SIZE(names));
}

static void
check_build(const char *text, size_t n)
{
    char *copy = fuzz_cstr((const uint8_t *)text, n);
    char *nl = strchr(copy, '\n');
    const char *url = NULL;
    if (nl != NULL) {
        *nl = '\0';
        url = nl[1] != '\0' ? nl + 1 : NULL;
    }
    struct tc_email_message m = {
        .from = "status@example.org",
        .to = "user@example.org",
        .subject = copy,
        .text = "An update.\n",
        .html = "<p>An update.</p>\n",
        .unsubscribe_url = url,
        .msgid_domain = "example.org",
        .date = 1700000000,
    };
    char *out = NULL;
    size_t len = 0;
    struct tc_error err = {{0}};
    int rc = tc_email_mime_build(&m, &out, &len, &err);
    if (rc == TC_OK) {
        check_message(out, len, url != NULL);
    } else {
        FUZZ_CHECK(rc == TC_EINVAL || rc == TC_ETOOBIG);
        FUZZ_CHECK(out == NULL && err.text[0] != '\0');
    }
    free(out);
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t used = data[0] % 100;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;

    check_qp(text, n);
    check_header_words(text, n, used);
    check_build(text, n);
    return 0;
}
