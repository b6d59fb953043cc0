/* tocsin — SPDX-License-Identifier: MIT
 *
 * The listener's TLS files, checked before anything starts (and by
 * --check-config): config.c only knows that both are set and readable;
 * here OpenSSL loads them as lws will, so a file that is not PEM, or a key
 * that is not the certificate's, is a configuration error (exit 2) with
 * OpenSSL's reason, not a vague failure to create the lws context.
 */
#include "http/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Sets err from OpenSSL's last error about what. @returns TC_EINVAL. */
static int
ssl_error(struct tc_error *err, const char *key, const char *path, const char *what)
{
    char reason[160];
    unsigned long e = ERR_peek_last_error();
    ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    return tc_error_set(err, TC_EINVAL, "%s: %s: %s (%s)", key, path, what,
                        e != 0 ? reason : "no detail");
}

int
tc_server_tls_check(const struct tc_config *cfg, struct tc_error *err)
{
    int rc = TC_OK;
    if (cfg->http_tls_cert[0] == '\0') {
        return TC_OK;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        return tc_error_set(err, TC_EIO, "OpenSSL could not make a TLS context");
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->http_tls_cert) != 1) {
        rc = ssl_error(err, "http.tls_cert", cfg->http_tls_cert, "not a PEM certificate");
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->http_tls_key, SSL_FILETYPE_PEM) != 1) {
        rc = ssl_error(err, "http.tls_key", cfg->http_tls_key, "not a PEM private key");
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        rc = ssl_error(err, "http.tls_key", cfg->http_tls_key,
                       "does not match the certificate of http.tls_cert");
    }
    SSL_CTX_free(ctx);
    return rc;
}
