/*
 * tls.c - the TLS server context: certificate and key from PEM files, and the protocol
 * choices every connection gets (TLS 1.2 at least, forward-secret AEAD suites only, ALPN for
 * HTTP/2). One context serves every event loop; h2o runs the handshake on each accepted
 * socket (h2o_accept with accept_ctx.ssl_ctx).
 *
 * Loading fails with a message that names the file and says what is wrong with it, so that a
 * misconfigured server refuses to start instead of serving without TLS.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/mem.h"
#include "http/http_int.h"

/* TLS 1.2: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305, strongest first (as in
 * Mozilla's "intermediate" profile without finite-field DHE). TLS 1.3 keeps OpenSSL's own
 * suites, which are all AEAD. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                    "ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                    "ECDHE-RSA-CHACHA20-POLY1305:"
                                    "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                    "ECDHE-RSA-AES128-GCM-SHA256";

/* OpenSSL's reason for the last failure, and the error queue emptied. */
static const char *openssl_reason(char *buf, size_t size)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    snprintf(buf, size, "%s", reason ? reason : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* Never asks for a passphrase (a server starts unattended): an encrypted key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* Opens a file for reading; ERR_INVALID naming what it is (`what`) when it cannot. */
static status_t open_pem(const char *path, const char *what, FILE **out, err_t *err)
{
    if (!*path)
        return err_set(err, ERR_INVALID, NULL, "the TLS %s file name is empty", what);
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, ERR_INVALID, NULL, "cannot read the TLS %s \"%s\": %s", what, path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(err, ERR_INVALID, NULL, "cannot read the TLS %s \"%s\": not a file", what,
                       path);
    }
    *out = f;
    return ERR_OK;
}

static status_t load_certificate(SSL_CTX *ctx, const char *path, err_t *err)
{
    FILE *f;
    status_t rc = open_pem(path, "certificate", &f, err);
    if (rc)
        return rc;
    fclose(f);
    char reason[256];
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
        return err_set(err, ERR_INVALID, NULL,
                       "cannot load the TLS certificate \"%s\": %s (expected PEM, the server's "
                       "certificate first, then its intermediates)",
                       path, openssl_reason(reason, sizeof(reason)));
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (cert && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        log_warning("the TLS certificate \"%s\" has expired: clients will refuse it", path);
    return ERR_OK;
}

static status_t load_key(SSL_CTX *ctx, const char *path, const char *cert_path, err_t *err)
{
    FILE *f;
    status_t rc = open_pem(path, "key", &f, err);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        log_warning("the TLS key \"%s\" is readable by every user: chmod o-r it", path);
    char reason[256];
    ERR_clear_error();
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!key)
        return err_set(err, ERR_INVALID, NULL,
                       "cannot load the TLS key \"%s\": %s (expected an unencrypted PEM "
                       "private key)",
                       path, openssl_reason(reason, sizeof(reason)));
    /* SSL_CTX_use_PrivateKey checks the key against the certificate already loaded */
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        ERR_clear_error();
        return err_set(err, ERR_INVALID, NULL,
                       "the TLS key \"%s\" does not belong to the certificate \"%s\"", path,
                       cert_path);
    }
    return ERR_OK;
}

status_t http_tls_new(const char *cert_file, const char *key_file, http_tls_t **out, err_t *err)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        die("could not create a TLS context");
    status_t rc = ERR_OK;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        char reason[256];
        rc = err_set(err, ERR_INTERNAL, NULL, "could not set the TLS protocols: %s",
                     openssl_reason(reason, sizeof(reason)));
        goto out;
    }
    /* SSL_OP_NO_RENEGOTIATION refuses renegotiation in both directions (TLS 1.2; 1.3 has
     * none) */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if ((rc = load_certificate(ctx, cert_file, err)) ||
        (rc = load_key(ctx, key_file, cert_file, err)))
        goto out;
    /* h2 first, then http/1.1: a client that offers both speaks HTTP/2 */
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols);
    http_tls_t *tls = xcalloc(1, sizeof(*tls));
    tls->ssl_ctx = ctx;
    *out = tls;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    return rc;
}

void http_tls_free(http_tls_t *tls)
{
    if (!tls)
        return;
    /* connections still open hold their own references to the context */
    SSL_CTX_free(tls->ssl_ctx);
    free(tls);
}
