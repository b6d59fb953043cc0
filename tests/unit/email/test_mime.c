/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/mime. The built message is parsed back by an
 * independent reader, Python's stdlib `email` package (policy.default), run
 * through popen: the subject (emoji, "Störung", long text) decodes to the
 * UTF-8 input, both parts decode to the input texts, the headers are there.
 * The bytes themselves are checked for CRLF only and no line over 998.
 * Also: the quoted-printable and RFC 2047 encoders on their own, the Date
 * format, and refusal of CR/LF/control characters in every header input.
 */
#include "email/mime.h"
#include "util/util.h"

#include <jansson.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define DATE_2026 1795621829 /* Wed, 25 Nov 2026 15:50:29 +0000 */

/* Reads the message at argv[1] and prints what a mail reader sees, as JSON. */
static const char py_reader[] =
    "import sys, json, email\n"
    "from email import policy\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "m = email.message_from_bytes(raw, policy=policy.default)\n"
    "def norm(s): return s.replace('\\r\\n', '\\n')\n"
    "plain = m.get_body(preferencelist=('plain',))\n"
    "html = m.get_body(preferencelist=('html',))\n"
    "print(json.dumps({\n"
    "  'subject': str(m['subject']),\n"
    "  'from': str(m['from']), 'to': str(m['to']), 'date': str(m['date']),\n"
    "  'message_id': str(m['message-id']), 'mime': str(m['mime-version']),\n"
    "  'auto': str(m['auto-submitted']),\n"
    "  'lu': m['list-unsubscribe'] and str(m['list-unsubscribe']),\n"
    "  'lup': m['list-unsubscribe-post'] and str(m['list-unsubscribe-post']),\n"
    "  'extra': m['x-tocsin-test'] and str(m['x-tocsin-test']),\n"
    "  'type': m.get_content_type(),\n"
    "  'parts': [p.get_content_type() for p in m.iter_parts()],\n"
    "  'cte': [str(p['content-transfer-encoding']) for p in m.iter_parts()],\n"
    "  'charsets': [p.get_content_charset() for p in m.iter_parts()],\n"
    "  'text': plain and norm(plain.get_content()),\n"
    "  'html': html and norm(html.get_content()),\n"
    "  'defects': len(m.defects) + sum(len(p.defects) for p in m.iter_parts()),\n"
    "}))\n";

/* Runs the reader on msg; returns its JSON answer (caller decrefs). */
static json_t *
python_read(const char *msg, size_t len)
{
    char path[] = "/tmp/tocsin-mime-XXXXXX";
    char cmd[512], out[1 << 17];
    size_t n;
    int fd = mkstemp(path);
    FILE *f;
    json_error_t jerr;
    json_t *j;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, msg, len), (ssize_t)len);
    close(fd);
    char script[] = "/tmp/tocsin-mime-py-XXXXXX";
    fd = mkstemp(script);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, py_reader, strlen(py_reader)), (ssize_t)strlen(py_reader));
    close(fd);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", script, path);
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    assert_int_equal(pclose(f), 0);
    unlink(path);
    unlink(script);
    j = json_loads(out, 0, &jerr);
    if (j == NULL) {
        fail_msg("python said: %s", out);
    }
    return j;
}

/* CRLF only (no bare CR or LF) and no line longer than 998 + CRLF. */
static void
check_lines(const char *msg, size_t len)
{
    size_t line = 0;

    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\r') {
            assert_true(i + 1 < len && msg[i + 1] == '\n');
            assert_true(line <= 998);
            line = 0;
            i++;
        } else {
            assert_true(msg[i] != '\n');
            line++;
        }
    }
    assert_int_equal(line, 0); /* ends with CRLF */
}

static const char *
jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    if (s == NULL) {
        fail_msg("python answer lacks %s", key);
    }
    return s;
}

static void
roundtrip(const char *subject, const char *text, const char *html, const char *url)
{
    const struct tc_email_header extra[] = {{"X-Tocsin-Test", "es_42"}};
    struct tc_email_message m = {
        .from = "status@example.test",
        .to = "user@example.test",
        .subject = subject,
        .text = text,
        .html = html,
        .unsubscribe_url = url,
        .msgid_domain = "example.test",
        .date = DATE_2026,
        .extra = extra,
        .n_extra = 1,
    };
    struct tc_error err = {{0}};
    char *msg = NULL;
    size_t len = 0;

    if (tc_email_mime_build(&m, &msg, &len, &err) != TC_OK) {
        fail_msg("build: %s", err.text);
    }
    assert_int_equal(strlen(msg), len);
    check_lines(msg, len);
    /* Headers are ASCII only: everything else was encoded. */
    const char *body = strstr(msg, "\r\n\r\n");
    assert_non_null(body);
    for (const char *p = msg; p < body; p++) {
        assert_true((unsigned char)*p < 0x80);
    }

    json_t *j = python_read(msg, len);
    assert_string_equal(jstr(j, "subject"), subject);
    assert_string_equal(jstr(j, "text"), text);
    assert_string_equal(jstr(j, "html"), html);
    assert_string_equal(jstr(j, "from"), "status@example.test");
    assert_string_equal(jstr(j, "to"), "user@example.test");
    assert_string_equal(jstr(j, "date"), "Wed, 25 Nov 2026 15:50:29 +0000");
    assert_string_equal(jstr(j, "mime"), "1.0");
    assert_string_equal(jstr(j, "auto"), "auto-generated");
    assert_string_equal(jstr(j, "extra"), "es_42");
    assert_string_equal(jstr(j, "type"), "multipart/alternative");
    assert_int_equal(json_integer_value(json_object_get(j, "defects")), 0);
    const char *mid = jstr(j, "message_id");
    assert_int_equal(strlen(mid), 1 + 32 + 1 + strlen("example.test") + 1);
    assert_int_equal(strspn(mid + 1, "0123456789ABCDEF"), 32);
    assert_string_equal(mid + 33, "@example.test>");
    json_t *parts = json_object_get(j, "parts");
    assert_int_equal(json_array_size(parts), 2);
    assert_string_equal(json_string_value(json_array_get(parts, 0)), "text/plain");
    assert_string_equal(json_string_value(json_array_get(parts, 1)), "text/html");
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(json_string_value(json_array_get(json_object_get(j, "cte"), i)),
                            "quoted-printable");
        assert_string_equal(json_string_value(json_array_get(json_object_get(j, "charsets"), i)),
                            "utf-8");
    }
    if (url != NULL) {
        char want[1024];
        snprintf(want, sizeof(want), "<%s>", url);
        assert_string_equal(jstr(j, "lu"), want);
        assert_string_equal(jstr(j, "lup"), "List-Unsubscribe=One-Click");
    } else {
        assert_true(json_is_null(json_object_get(j, "lu")));
        assert_true(json_is_null(json_object_get(j, "lup")));
        assert_null(strstr(msg, "List-Unsubscribe"));
    }
    json_decref(j);
    free(msg);
}

static void
test_roundtrip_python(void **state)
{
    (void)state;
    /* ASCII subject that fits stays as is. */
    roundtrip("[Resolved] Playback outage", "Hello.\nAll good now.\n", "<p>Hello &amp; bye</p>\n",
              "https://status.example.test/u?t=abc.def");

    /* UTF-8 subject with an emoji and umlaut; text with long lines, trailing
     * blanks, '=' signs, leading dots and "From ", CRLF and lone CR. */
    char text[4096];
    snprintf(text, sizeof(text),
             "Störung in eu-west 🚨\n"
             "%s\n"
             "trailing space \n"
             "trailing tab\t\n"
             ".leading dot\n"
             "From here on\n"
             "a=b and ==== and =3D\n"
             "crlf line\r\n"
             "lone\rcr\n"
             "%s",
             "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
             "234567890",
             "ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé ünïcödé — end");
    /* The reader gives CRLF back as '\n' (a lone CR stays, from =0D). */
    char want_text[4096];
    size_t o = 0;
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (text[i] != '\r' || text[i + 1] != '\n') {
            want_text[o++] = text[i];
        }
    }
    want_text[o] = '\0';
    const char *html = "<html><body><p style=\"color:#b42318\">Störung — 🚨 "
                       "a very long line of HTML that goes on and on well past seventy-six "
                       "characters so that soft line breaks are needed</p></body></html>";
    /* The struct carries text; the reader normalises line ends. */
    const struct tc_email_header extra[] = {{"X-Tocsin-Test", "es_42"}};
    struct tc_email_message m = {
        .from = "status@example.test",
        .to = "user@example.test",
        .subject = "Störung: Wiedergabe 🚨 gestört",
        .text = text,
        .html = html,
        .msgid_domain = "example.test",
        .date = DATE_2026,
        .extra = extra,
        .n_extra = 1,
    };
    char *msg = NULL;
    size_t len = 0;
    assert_int_equal(tc_email_mime_build(&m, &msg, &len, NULL), TC_OK);
    check_lines(msg, len);
    json_t *j = python_read(msg, len);
    assert_string_equal(jstr(j, "subject"), m.subject);
    assert_string_equal(jstr(j, "text"), want_text);
    assert_string_equal(jstr(j, "html"), html);
    assert_true(json_is_null(json_object_get(j, "lu")));
    json_decref(j);
    free(msg);

    /* A long UTF-8 subject folds into several encoded words. */
    roundtrip("Störung 🚨 Wiedergabe und Suche in eu-west und us-east beeinträchtigt — "
              "Zahlungen verzögert 🔥🔥🔥 weitere Informationen folgen in Kürze",
              "x\n", "<p>x</p>", NULL);
    /* A long ASCII subject, and one that looks like an encoded word. */
    roundtrip("3 incident updates: Playback outage, Search degraded, Payments delayed in "
              "eu-west and us-east",
              "", "", NULL);
    roundtrip("=?UTF-8?B?SGk=?= is not an encoded word here", "body", "<b>body</b>", NULL);
}

static void
test_qp_encode(void **state)
{
    size_t n;
    char *q;
    (void)state;

    q = tc_email_mime_qp_encode("a=b\n", 4, &n);
    assert_string_equal(q, "a=3Db\r\n");
    assert_int_equal(n, 7);
    free(q);
    q = tc_email_mime_qp_encode("end \nx\t", 7, &n);
    assert_string_equal(q, "end=20\r\nx=09");
    free(q);
    q = tc_email_mime_qp_encode(".\nFrom me\nFrom", 14, &n);
    assert_string_equal(q, "=2E\r\n=46rom me\r\nFrom");
    free(q);
    q = tc_email_mime_qp_encode("\xc3\xb6\r\n", 4, &n);
    assert_string_equal(q, "=C3=B6\r\n");
    free(q);
    q = tc_email_mime_qp_encode("", 0, &n);
    assert_string_equal(q, "");
    assert_int_equal(n, 0);
    free(q);

    /* 76 characters fit on a line; 77 need a soft break, and a triplet is
     * never split across it. */
    char in[200], want[200];
    memset(in, 'x', 76);
    q = tc_email_mime_qp_encode(in, 76, &n);
    assert_int_equal(n, 76);
    free(q);
    memset(in, 'x', 77);
    q = tc_email_mime_qp_encode(in, 77, &n);
    memset(want, 'x', 75);
    memcpy(want + 75, "=\r\nxx", 6);
    assert_string_equal(q, want);
    free(q);
    memset(in, 'x', 74);
    in[74] = '=';
    in[75] = 'y';
    q = tc_email_mime_qp_encode(in, 76, &n);
    memset(want, 'x', 74);
    memcpy(want + 74, "=\r\n=3Dy", 8);
    assert_string_equal(q, want);
    free(q);
    /* A dot after a soft break starts a line too. */
    memset(in, 'x', 75);
    memcpy(in + 75, ".....", 5);
    q = tc_email_mime_qp_encode(in, 80, &n);
    assert_non_null(strstr(q, "=\r\n=2E...."));
    free(q);

    /* Every output line of random bytes stays <= 76 and never holds "=_". */
    unsigned char rnd[4000];
    tc_random_bytes(rnd, sizeof(rnd));
    q = tc_email_mime_qp_encode((const char *)rnd, sizeof(rnd), &n);
    assert_null(strstr(q, "=_"));
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        if (q[i] == '\r') {
            assert_true(line <= 76);
            line = 0;
            i++;
        } else {
            line++;
        }
    }
    assert_true(line <= 76);
    free(q);
}

static void
test_header_encode(void **state)
{
    char *out = NULL;
    (void)state;

    assert_int_equal(tc_email_mime_header_encode("Störung", strlen("Störung"), 9, &out), TC_OK);
    assert_string_equal(out, "=?UTF-8?B?U3TDtnJ1bmc=?=");
    free(out);
    assert_int_equal(tc_email_mime_header_encode("", 0, 9, &out), TC_OK);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(tc_email_mime_header_encode("\xc3\x28", 2, 9, &out), TC_EINVAL);
    assert_null(out);

    /* 60 four-byte emoji: words <= 75, lines <= 76, each word whole UTF-8. */
    char in[241];
    for (int i = 0; i < 60; i++) {
        memcpy(in + 4 * i, "\xf0\x9f\x9a\xa8", 4);
    }
    in[240] = '\0';
    assert_int_equal(tc_email_mime_header_encode(in, 240, 9, &out), TC_OK);
    size_t used = 9, words = 0;
    for (char *line = out; line != NULL;) {
        char *next = strstr(line, "\r\n");
        size_t len = next != NULL ? (size_t)(next - line) : strlen(line);
        assert_true(used + len <= 76);
        /* One word per line, " =?UTF-8?B?...?=" after the first. */
        const char *w = line[0] == ' ' ? line + 1 : line;
        size_t wlen = len - (size_t)(w - line);
        assert_true(wlen <= 75);
        assert_memory_equal(w, "=?UTF-8?B?", 10);
        assert_memory_equal(w + wlen - 2, "?=", 2);
        /* Base64 of whole 4-byte characters: a multiple of 4 bytes, so
         * (without padding) b64 length is a multiple of 16 / 3... just check
         * the decoded length is a multiple of 4. */
        size_t b64 = wlen - 12, pad = 0;
        while (pad < 2 && w[10 + b64 - 1 - pad] == '=') {
            pad++;
        }
        assert_int_equal((b64 / 4 * 3 - pad) % 4, 0);
        words++;
        used = 0;
        line = next != NULL ? next + 2 : NULL;
    }
    assert_true(words >= 4);
    free(out);
}

static void
test_date(void **state)
{
    char buf[TC_EMAIL_DATE_MAX];
    (void)state;

    assert_int_equal(tc_email_mime_date(DATE_2026, buf), TC_OK);
    assert_string_equal(buf, "Wed, 25 Nov 2026 15:50:29 +0000");
    assert_int_equal(tc_email_mime_date(0, buf), TC_OK);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
}

struct bad_case {
    const char *rule;
    const char *from, *to, *subject, *url, *domain;
    const char *xname, *xvalue;
    int rc;
};

#define OK_FROM "status@example.test"
#define OK_TO   "user@example.test"
#define OK_SUBJ "Subject"
#define OK_URL  "https://status.example.test/u?t=1"
#define OK_DOM  "example.test"

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"from with CRLF", "status@example.test\r\nBcc: x@evil.test", OK_TO, OK_SUBJ, OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"to with LF", OK_FROM, "user@example.test\n", OK_SUBJ, OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"to with display name", OK_FROM, "User <user@example.test>", OK_SUBJ, OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"to missing", OK_FROM, NULL, OK_SUBJ, OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject with CRLF", OK_FROM, OK_TO, "Hi\r\nBcc: x@evil.test", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject with LF", OK_FROM, OK_TO, "Hi\nthere", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject with TAB", OK_FROM, OK_TO, "Hi\tthere", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject with DEL", OK_FROM, OK_TO, "Hi\x7f", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject with C1 NEL", OK_FROM, OK_TO, "Hi\xc2\x85there", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject invalid UTF-8", OK_FROM, OK_TO, "Hi \xff", OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"subject missing", OK_FROM, OK_TO, NULL, OK_URL, OK_DOM, NULL, NULL, TC_EINVAL},
    {"url with CRLF", OK_FROM, OK_TO, OK_SUBJ, "https://x.test/\r\nBcc: a@b.test", OK_DOM, NULL, NULL, TC_EINVAL},
    {"url with space", OK_FROM, OK_TO, OK_SUBJ, "https://x.test/a b", OK_DOM, NULL, NULL, TC_EINVAL},
    {"url with >", OK_FROM, OK_TO, OK_SUBJ, "https://x.test/a>", OK_DOM, NULL, NULL, TC_EINVAL},
    {"url not http", OK_FROM, OK_TO, OK_SUBJ, "javascript:alert(1)", OK_DOM, NULL, NULL, TC_EINVAL},
    {"url non-ASCII", OK_FROM, OK_TO, OK_SUBJ, "https://x.test/\xc3\xb6", OK_DOM, NULL, NULL, TC_EINVAL},
    {"msgid domain with CRLF", OK_FROM, OK_TO, OK_SUBJ, OK_URL, "example.test\r\nX: y", NULL, NULL, TC_EINVAL},
    {"msgid domain with >", OK_FROM, OK_TO, OK_SUBJ, OK_URL, "example.test>", NULL, NULL, TC_EINVAL},
    {"extra value with CRLF", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "X-A", "v\r\nBcc: a@b.test", TC_EINVAL},
    {"extra name with colon", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "X-A:", "v", TC_EINVAL},
    {"extra name with space", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "X A", "v", TC_EINVAL},
    {"extra Bcc", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "bcc", "a@b.test", TC_EINVAL},
    {"extra duplicates Subject", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "SUBJECT", "x", TC_EINVAL},
    {"extra value non-ASCII", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "X-A", "\xc3\xb6", TC_EINVAL},
    {"all good", OK_FROM, OK_TO, OK_SUBJ, OK_URL, OK_DOM, "X-A", "v", TC_OK},
    {"no url", OK_FROM, OK_TO, OK_SUBJ, NULL, OK_DOM, NULL, NULL, TC_OK},
};
/* clang-format on */

static void
test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        const struct tc_email_header x = {c->xname, c->xvalue};
        struct tc_email_message m = {
            .from = c->from,
            .to = c->to,
            .subject = c->subject,
            .text = "t",
            .html = "h",
            .unsubscribe_url = c->url,
            .msgid_domain = c->domain,
            .date = DATE_2026,
            .extra = c->xname != NULL ? &x : NULL,
            .n_extra = c->xname != NULL,
        };
        struct tc_error err = {{0}};
        char *msg = (char *)1;
        size_t len = 99;
        int rc = tc_email_mime_build(&m, &msg, &len, &err);
        if (rc != c->rc) {
            fail_msg("%s: rc %d want %d (%s)", c->rule, rc, c->rc, err.text);
        }
        if (rc != TC_OK) {
            assert_null(msg);
            assert_int_equal(len, 0);
            assert_true(err.text[0] != '\0');
        }
        free(msg);
    }

    /* Bodies: invalid UTF-8, missing, over the bound. */
    struct tc_email_message m = {.from = OK_FROM,
                                 .to = OK_TO,
                                 .subject = OK_SUBJ,
                                 .text = "bad \xff",
                                 .html = "h",
                                 .msgid_domain = OK_DOM};
    char *msg = NULL;
    assert_int_equal(tc_email_mime_build(&m, &msg, NULL, NULL), TC_EINVAL);
    m.text = NULL;
    assert_int_equal(tc_email_mime_build(&m, &msg, NULL, NULL), TC_EINVAL);
    char *big = malloc(TC_EMAIL_BODY_MAX + 2);
    memset(big, 'a', TC_EMAIL_BODY_MAX + 1);
    big[TC_EMAIL_BODY_MAX + 1] = '\0';
    m.text = big;
    assert_int_equal(tc_email_mime_build(&m, &msg, NULL, NULL), TC_ETOOBIG);
    big[TC_EMAIL_BODY_MAX] = '\0';
    assert_int_equal(tc_email_mime_build(&m, &msg, NULL, NULL), TC_OK);
    free(msg);
    free(big);
    /* Too many extras. */
    struct tc_email_header many[TC_EMAIL_EXTRA_MAX + 1];
    for (size_t i = 0; i < TC_ARRAY_SIZE(many); i++) {
        many[i] = (struct tc_email_header){"X-A", "v"};
    }
    m.text = "t";
    m.extra = many;
    m.n_extra = TC_ARRAY_SIZE(many);
    assert_int_equal(tc_email_mime_build(&m, &msg, NULL, NULL), TC_EINVAL);
    assert_int_equal(tc_email_mime_build(NULL, &msg, NULL, NULL), TC_EINVAL);
}

static void
test_structure(void **state)
{
    struct tc_email_message m = {.from = OK_FROM,
                                 .to = OK_TO,
                                 .subject = OK_SUBJ,
                                 .text = "--=_tc_ not a boundary\n",
                                 .html = "<p>h</p>",
                                 .unsubscribe_url = OK_URL,
                                 .msgid_domain = OK_DOM,
                                 .date = DATE_2026};
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    (void)state;

    assert_int_equal(tc_email_mime_build(&m, &a, &alen, NULL), TC_OK);
    assert_int_equal(tc_email_mime_build(&m, &b, &blen, NULL), TC_OK);
    /* Fresh Message-ID and boundary per message. */
    assert_string_not_equal(a, b);
    /* The header order and exact lines the contract names. */
    assert_int_equal(strncmp(a,
                             "Date: Wed, 25 Nov 2026 15:50:29 +0000\r\n"
                             "From: status@example.test\r\n"
                             "To: user@example.test\r\n"
                             "Subject: Subject\r\n"
                             "Message-ID: <",
                             strlen("Date: Wed, 25 Nov 2026 15:50:29 +0000\r\n"
                                    "From: status@example.test\r\n"
                                    "To: user@example.test\r\n"
                                    "Subject: Subject\r\n"
                                    "Message-ID: <")),
                     0);
    assert_non_null(strstr(a, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(a, "\r\nAuto-Submitted: auto-generated\r\n"));
    assert_non_null(strstr(a, "\r\nList-Unsubscribe: <" OK_URL ">\r\n"
                              "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    assert_non_null(strstr(a, "\r\nContent-Type: multipart/alternative; boundary=\"=_tc_"));
    assert_non_null(strstr(a, "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
    assert_non_null(strstr(a, "\r\nContent-Type: text/html; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
    /* A body line that mimics the boundary is encoded away. */
    assert_non_null(strstr(a, "\r\n--=3D_tc_ not a boundary\r\n"));
    check_lines(a, alen);
    free(a);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qp_encode), cmocka_unit_test(test_header_encode),
        cmocka_unit_test(test_date),      cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_structure), cmocka_unit_test(test_roundtrip_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
