/*
 * http.h - the HTTP server: h2o event loops (one per thread) serving /fhir, /healthz.
 */
#ifndef CONCERTO_HTTP_HTTP_H
#define CONCERTO_HTTP_HTTP_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

typedef struct {
    const char *host;     /* address to listen on, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;             /* 0: any free port (the chosen one is logged and written to port_file) */
    int threads;          /* event loops; 0: one per core */
    size_t max_body;      /* largest request body accepted, in bytes */
    const char *base_url; /* public base of the FHIR API; NULL: from the Host header */
    const char *port_file; /* when set, the listening port is written there once serving */
    bool multiple_delete;  /* a conditional delete matching several resources deletes them all
                              (else 412) */
} http_config_t;

void http_config_init(http_config_t *config);

/*
 * Serves until SIGINT or SIGTERM, then stops accepting, lets requests in flight finish, and
 * returns. Errors: ERR_INVALID when the address cannot be bound.
 */
status_t http_serve(store_t *store, const http_config_t *config, err_t *err);

#endif
