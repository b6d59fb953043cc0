/* tocsin — SPDX-License-Identifier: MIT
 *
 * Shared fixture of the email tests that talk SMTP: a real SMTP server
 * (tests/tools/smtp_server.py on Debian's aiosmtpd) started on a free
 * loopback port with the test's flags and stopped after, the mails it stored
 * read back, and a self-signed certificate for STARTTLS made with
 * `openssl req`. Functions are static inline and prefixed smtp_ so that a
 * test may include store_fixture.h too.
 */
#ifndef TC_TEST_SMTP_FIXTURE_H
#define TC_TEST_SMTP_FIXTURE_H

#include "util/util.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMTP_SERVER_SCRIPT TOCSIN_SOURCE_DIR "/tests/tools/smtp_server.py"
#define SMTP_ARGS_MAX      16

struct smtp_server {
    pid_t pid;
    int port;
    char dir[256]; /* where it stores n.eml / n.json */
};

/* One directory per test binary under /tmp, removed by smtp_tmp_remove. */
static char smtp_tmpdir[64];
static int smtp_server_seq;

static inline bool
smtp_tmp_make(void)
{
    snprintf(smtp_tmpdir, sizeof(smtp_tmpdir), "/tmp/tocsin-test-smtp-XXXXXX");
    return mkdtemp(smtp_tmpdir) != NULL;
}

static inline int
smtp_tmp_remove(void)
{
    char cmd[128];

    if (smtp_tmpdir[0] == '\0') {
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", smtp_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Reads a whole file. @returns new, NUL-terminated, or NULL if absent. */
static inline char *
smtp_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = tc_xmalloc((size_t)n + 1);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len != NULL) {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Starts the server with args (NULL-terminated, may be NULL) and waits until
 * it listens. Returns false when it did not come up within 10 s. */
static inline bool
smtp_server_start(struct smtp_server *srv, const char *const *args)
{
    char ready[300];
    const char *argv[SMTP_ARGS_MAX + 8];
    int n = 0;

    memset(srv, 0, sizeof(*srv));
    snprintf(srv->dir, sizeof(srv->dir), "%s/server%d", smtp_tmpdir, ++smtp_server_seq);
    snprintf(ready, sizeof(ready), "%s.ready", srv->dir);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = SMTP_SERVER_SCRIPT;
    argv[n++] = "--dir";
    argv[n++] = srv->dir;
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    for (int i = 0; args != NULL && args[i] != NULL && i < SMTP_ARGS_MAX; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    srv->pid = fork();
    if (srv->pid == 0) {
        char *av[SMTP_ARGS_MAX + 8];
        /* A test that fails midway skips its smtp_server_stop: the server
         * goes when the test binary does. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        for (int i = 0; i <= n; i++) {
            av[i] = argv[i] != NULL ? tc_xstrdup(argv[i]) : NULL; /* execv wants char * */
        }
        execv(av[0], av);
        _exit(127);
    }
    if (srv->pid < 0) {
        return false;
    }
    for (int i = 0; i < 200; i++) {
        char *text = smtp_read_file(ready, NULL);
        if (text != NULL) {
            srv->port = atoi(text);
            free(text);
            return srv->port > 0;
        }
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0; /* it died: bad arguments, or aiosmtpd is missing */
            return false;
        }
        usleep(50 * 1000);
    }
    return false;
}

static inline void
smtp_server_stop(struct smtp_server *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
}

/* Mails the server stored so far (n.eml files appear whole, by rename). */
static inline int
smtp_server_count(const struct smtp_server *srv)
{
    char path[300];
    struct stat st;
    int n = 0;

    for (;;) {
        snprintf(path, sizeof(path), "%s/%d.eml", srv->dir, n + 1);
        if (stat(path, &st) != 0) {
            return n;
        }
        n++;
    }
}

/* The n-th stored mail (from 1): its bytes, and its envelope JSON text when
 * meta is not NULL. @returns new, or NULL when absent. */
static inline char *
smtp_server_mail(const struct smtp_server *srv, int n, size_t *len, char **meta)
{
    char path[300];

    if (meta != NULL) {
        snprintf(path, sizeof(path), "%s/%d.json", srv->dir, n);
        *meta = smtp_read_file(path, NULL);
    }
    snprintf(path, sizeof(path), "%s/%d.eml", srv->dir, n);
    return smtp_read_file(path, len);
}

/* Makes a self-signed certificate for 127.0.0.1 and localhost (it is its
 * own CA, so the client trusts it as smtp.ca_file). */
static inline bool
smtp_make_cert(char cert[300], char key[300])
{
    char cmd[1024];

    snprintf(cert, 300, "%s/cert.pem", smtp_tmpdir);
    snprintf(key, 300, "%s/key.pem", smtp_tmpdir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
             key, cert);
    return system(cmd) == 0;
}

#endif
