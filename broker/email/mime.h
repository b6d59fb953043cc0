/* tocsin — SPDX-License-Identifier: MIT
 *
 * The RFC 5322 / MIME message the email gateway hands to libcurl: headers,
 * a multipart/alternative body with a text/plain and a text/html part, both
 * UTF-8 in quoted-printable, CRLF line ends, no line over 998 bytes, and the
 * RFC 8058 one-click unsubscribe headers (DESIGN §6). Every header input is
 * checked here, so no header field is ever built from unchecked input.
 * Pure (no I/O but tc_random_bytes for the Message-ID and boundary), any thread.
 */
#ifndef TC_EMAIL_MIME_H
#define TC_EMAIL_MIME_H

#include "util/util.h"

#include <stddef.h>
#include <time.h>

/* Input bounds, checked before anything is built. */
#define TC_EMAIL_SUBJECT_MAX 998         /* bytes of UTF-8 */
#define TC_EMAIL_BODY_MAX    (512 << 10) /* bytes per part, before encoding */
#define TC_EMAIL_URL_MAX     900         /* keeps "List-Unsubscribe: <url>" < 998 */
#define TC_EMAIL_EXTRA_MAX   16          /* extra header fields */
/* Output bound: two parts of TC_EMAIL_BODY_MAX grow to at most ~3.2 times
 * their size in quoted-printable, plus the headers. */
#define TC_EMAIL_MESSAGE_MAX (4 << 20)
/* "Wed, 25 Nov 2026 15:50:29 +0000" and its NUL, with room to spare. */
#define TC_EMAIL_DATE_MAX 40

/* One extra header field, e.g. {"X-Tocsin-Subscriber", "es_42"}. The name is
 * 1..76 of printable ASCII but ':' and must not be a field this file writes
 * itself; the value is printable ASCII (0x20..0x7E) and the whole line fits in
 * 998 bytes. */
struct tc_email_header {
    const char *name;
    const char *value;
};

/* What one message says. Every pointer is borrowed for the call only. */
struct tc_email_message {
    const char *from;    /* a bare address passing tc_email_address_check */
    const char *to;      /* likewise */
    const char *subject; /* UTF-8, no control characters, <= TC_EMAIL_SUBJECT_MAX */
    const char *text;    /* UTF-8 plain text, '\n' or "\r\n" line ends */
    const char *html;    /* UTF-8 HTML document */
    /* Optional (NULL = none): an http or https URL of printable ASCII without
     * spaces, quotes or angle brackets; it becomes List-Unsubscribe, with
     * List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058). */
    const char *unsubscribe_url;
    const char *msgid_domain; /* right side of the Message-ID, a host name */
    time_t date;              /* the Date header, written in UTC */
    const struct tc_email_header *extra;
    size_t n_extra;
};

/* Builds the whole message into a new buffer: *out (NUL-terminated, for the
 * caller to free) and *outlen. Headers: Date, From, To, Subject, Message-ID
 * (<32 random hex digits@msgid_domain>), MIME-Version, Auto-Submitted:
 * auto-generated, the List-Unsubscribe pair when a URL is given, the extra
 * fields, and Content-Type multipart/alternative with a random boundary that
 * starts with "=_", which quoted-printable text can never contain.
 * Returns 0; TC_EINVAL when any input breaks its rule (err names the field;
 * CR, LF or any other control character in a header input is always refused);
 * TC_ETOOBIG over a bound; TC_EIO when the kernel gave no randomness.
 * On failure *out is NULL. */
int tc_email_mime_build(const struct tc_email_message *m, char **out, size_t *outlen,
                        struct tc_error *err);

/* Quoted-printable (RFC 2045 §6.7) of a UTF-8 text: '\n' and "\r\n" become
 * CRLF hard line breaks, lines stay <= 76 characters with "=" soft breaks
 * (never inside an =XX triplet), '=' and every byte outside 33..126 are
 * encoded, as are a space or tab before a line end, a '.' starting a line
 * (SMTP dot) and the 'F' of a line starting with "From " (mbox).
 * @returns new text (caller frees), NUL-terminated, length in *outlen. */
char *tc_email_mime_qp_encode(const char *in, size_t len, size_t *outlen);

/* RFC 2047 B encoding of a UTF-8 header text: encoded words
 * "=?UTF-8?B?...?=" of at most 75 characters, split only between UTF-8
 * characters, joined by CRLF SP (folding), so that no line is longer than 76
 * characters given that `used` characters ("Subject: " = 9) precede the first
 * word on its line. Empty input gives "". Returns 0 and a new *out (caller
 * frees), or TC_EINVAL for invalid UTF-8 (*out NULL). */
int tc_email_mime_header_encode(const char *utf8, size_t len, size_t used, char **out);

/* Formats t as an RFC 5322 date in UTC, "Wed, 25 Nov 2026 15:50:29 +0000",
 * with English names whatever the locale. Returns 0 or TC_EINVAL. */
int tc_email_mime_date(time_t t, char buf[TC_EMAIL_DATE_MAX]);

#endif
