/*
 * http.h - the HTTP server: h2o event loops (one per thread) serving /fhir, /oauth2 and
 * /healthz, over plain HTTP or over TLS (HTTP/1.1 and HTTP/2).
 */
#ifndef CONCERTO_HTTP_HTTP_H
#define CONCERTO_HTTP_HTTP_H

#include <stddef.h>

#include "auth/jose.h"
#include "auth/secrets.h"
#include "base/err.h"
#include "store/store.h"

/* A TLS server context: the certificate, its key and the protocols offered. Opaque. */
typedef struct http_tls http_tls_t;

/*
 * Loads a PEM certificate (chain) and its private key (unencrypted PEM) into a new TLS
 * context: TLS 1.2 and 1.3 only, ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2 (OpenSSL's
 * default suites for 1.3), the server's cipher order, no compression, no renegotiation, and
 * ALPN offering h2 and http/1.1. Logs a warning when the key file is readable by everyone or
 * the certificate has expired. *out is new: free it with http_tls_free. Errors: ERR_INVALID
 * when a file is missing or unreadable, holds no certificate or key, or when the key does
 * not belong to the certificate.
 */
status_t http_tls_new(const char *cert_file, const char *key_file, http_tls_t **out, err_t *err);
void http_tls_free(http_tls_t *tls);

typedef struct {
    const char *host;     /* address to listen on, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;             /* 0: any free port (the chosen one is logged and written to port_file) */
    int threads;          /* event loops; 0: one per core */
    size_t max_body;      /* largest request body accepted, in bytes */
    const char *base_url; /* public base of the FHIR API; NULL: from the Host header */
    const char *port_file; /* when set, the listening port is written there once serving */
    bool multiple_delete;  /* a conditional delete matching several resources deletes them all
                              (else 412) */
    const http_tls_t *tls; /* borrowed; NULL: plain HTTP. With it, every connection speaks TLS
                              and responses carry Strict-Transport-Security */
    const auth_secrets_t *secrets; /* borrowed: the key that seals TOTP secrets (secrets.h);
                                      NULL: enrolment in a second factor is refused */
    int64_t token_ttl_us;          /* access tokens live this long (default: one hour) */
    int64_t session_idle_us;       /* a browser session idle this long ends (default: 15 min) */
    const jose_key_t *signing_key; /* borrowed: signs id_tokens, published at /oauth2/jwks
                                      (auth/idtoken.h); NULL: no id_tokens, and the authorize
                                      endpoint must not grant openid */
    struct hl7_ingest *hl7;        /* borrowed: the HL7 feed, for /admin/hl7 (reprocess); NULL:
                                      none */
    struct hl7_listener *mllp;     /* borrowed: its MLLP listener, for the counters; NULL when
                                      not listening */
    bool test_clock;               /* serve /admin/clock, which moves the wall clock forward
                                      (clock.c; for tests only, never in production) */
} http_config_t;

void http_config_init(http_config_t *config);

/*
 * Serves until SIGINT or SIGTERM, then stops accepting, lets requests in flight finish, and
 * returns. Errors: ERR_INVALID when the address cannot be bound.
 */
status_t http_serve(store_t *store, const http_config_t *config, err_t *err);

#endif
