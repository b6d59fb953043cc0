/* tocsin — SPDX-License-Identifier: MIT
 *
 * The listener's TLS files, checked before anything starts (and by
 * --check-config): config.c only knows that both are set and readable;
 * here OpenSSL loads them as lws will, so a file that is not PEM, or a key
 * that is not the certificate's, is a configuration error (exit 2) with
 * OpenSSL's reason, not a vague failure to create the lws context.
 */
#include "http/server.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
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
    /* The key is read on its own first: using it checks it against the
     * certificate, and the two failures deserve two different words. */
    BIO *bio = BIO_new_file(cfg->http_tls_key, "r");
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->http_tls_cert) != 1) {
        rc = ssl_error(err, "http.tls_cert", cfg->http_tls_cert, "not a PEM certificate");
    } else if (pkey == NULL) {
        rc = ssl_error(err, "http.tls_key", cfg->http_tls_key, "not a PEM private key");
    } else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rc = ssl_error(err, "http.tls_key", cfg->http_tls_key,
                       "does not match the certificate of http.tls_cert");
    }
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    return rc;
}
