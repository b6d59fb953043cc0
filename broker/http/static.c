/* tocsin — SPDX-License-Identifier: MIT
 *
 * The status page's files: GET / (index.html) and GET /static/<name>, read
 * from http.static_dir when it has the file, else from the copies built into
 * the binary (tocsin_embed in CMakeLists.txt, from clients/status and
 * clients/js). A name is one path segment of [A-Za-z0-9._-], so nothing
 * outside that directory can be named; only known types are served, each
 * with an ETag (a hash of the content) and 304 on a match. No listings, no
 * ranges. @loop main: a file of the directory is read per request, small and
 * from the page cache, as nginx does without aio.
 */
#include "http/http_internal.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 128

bool
tc_http__static_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= NAME_MAX_LEN && name[0] != '.' && strstr(name, "..") == NULL &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._-") == n;
}

const char *
tc_http__static_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < TC_ARRAY_SIZE(types); i++) {
        if (strcmp(dot, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return NULL;
}

/* FNV-1a, 64 bits: an ETag only has to change with the content, and this
 * costs a few µs for a page's files (no key, nothing to keep secret). */
void
tc_http__static_etag(const unsigned char *data, size_t len, char *buf, size_t size)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ data[i]) * 1099511628211ULL;
    }
    snprintf(buf, size, "\"%016llx\"", (unsigned long long)h);
}

bool
tc_http__static_etag_match(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p != '\0') {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
            n--;
        }
        /* If-None-Match compares weakly (RFC 9110 §13.1.2): W/ is ignored. */
        if (n >= 2 && strncmp(p, "W/", 2) == 0) {
            p += 2;
            n -= 2;
        }
        if ((n == 1 && p[0] == '*') || (n == elen && n > 0 && memcmp(p, etag, n) == 0)) {
            return true;
        }
        p += strcspn(p, ",");
    }
    return false;
}

/* Reads a regular file of at most TC_HTTP_STATIC_MAX bytes into a new body.
 * TC_ENOENT when there is no such file (the built-in copy applies). */
static int
read_file(const char *path, unsigned char **body, size_t *len, struct tc_error *err)
{
    struct stat st;
    size_t got = 0;
    int rc = TC_OK;
    /* O_NONBLOCK: a FIFO in the directory must not stall the loop in open(). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    *body = NULL;
    if (fd < 0) {
        rc = errno == ENOENT ? TC_ENOENT : tc_error_set(err, TC_EIO, "%s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tc_error_set(err, TC_EIO, "not a readable regular file");
        goto out;
    }
    if (st.st_size > TC_HTTP_STATIC_MAX) {
        rc = tc_error_set(err, TC_ETOOBIG, "%lld bytes, over the bound of %d",
                          (long long)st.st_size, TC_HTTP_STATIC_MAX);
        goto out;
    }
    /* The size is checked above, before anything is allocated; a file that
     * grows meanwhile is served as it was at fstat. */
    *body = tc_http__body_alloc((size_t)st.st_size);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *body + LWS_PRE + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = tc_error_set(err, TC_EIO, "read: %s", strerror(errno));
            goto out;
        }
        if (n == 0) {
            break; /* it shrank meanwhile: serve what is there */
        }
        got += (size_t)n;
    }
    *len = got;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != TC_OK) {
        free(*body);
        *body = NULL;
    }
    return rc;
}

int
tc_http__static_load(const char *dir, const char *name, unsigned char **body, size_t *len,
                     struct tc_error *err)
{
    int rc = TC_ENOENT;
    bool ok = tc_http__static_name_ok(name); /* checked here too: dir/name stays in dir */

    *body = NULL;
    *len = 0;
    if (ok && dir != NULL && dir[0] != '\0') {
        char *path = tc_xasprintf("%s/%s", dir, name);
        rc = read_file(path, body, len, err);
        free(path);
    }
    for (size_t i = 0; ok && rc == TC_ENOENT && i < tc_http__static_builtin_count; i++) {
        const struct tc_http__static_file *f = &tc_http__static_builtin[i];
        if (strcmp(f->name, name) == 0) {
            *body = tc_http__body_from((const char *)f->data, f->len);
            *len = f->len;
            rc = TC_OK;
        }
    }
    if (rc == TC_ENOENT) {
        tc_error_set(err, TC_ENOENT, ok ? "no such file" : "not a name the route serves");
    }
    return rc;
}

void
tc_http__static_route(struct tc_http__conn *c, const char *path)
{
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + strlen("/static/");
    const char *type = tc_http__static_type(name);
    unsigned char *body = NULL;
    size_t len = 0;
    char inm[256];
    struct tc_error err;
    int rc = TC_ENOENT;

    if (tc_http__static_name_ok(name) && type != NULL) {
        rc = tc_http__static_load(c->srv->cfg->http_static_dir, name, &body, &len, &err);
    }
    if (rc == TC_OK) {
        tc_http__static_etag(body + LWS_PRE, len, c->etag, sizeof(c->etag));
        if (lws_hdr_copy(c->wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
            tc_http__static_etag_match(inm, c->etag)) {
            free(body);
            tc_http__respond(c, 304, type, NULL, 0);
        } else {
            tc_http__respond(c, 200, type, body, len);
        }
    } else if (rc == TC_ENOENT) {
        tc_http__respond_error(c, 404, "not_found", "no such file");
    } else {
        /* The operator's directory holds something we will not serve: say
         * which file and why in the log, not to the client. */
        tc_warn("http", "static file not served", TC_S("file", name), TC_S("reason", err.text));
        tc_http__respond_error(c, rc == TC_ETOOBIG ? 404 : 500,
                               rc == TC_ETOOBIG ? "not_found" : "unreadable",
                               rc == TC_ETOOBIG ? "no such file" : "the file cannot be read");
    }
}
