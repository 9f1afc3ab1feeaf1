/*
 * web.h - inside src/http: the coordinators' web app (web.c) served at / and the OAuth client
 * it signs in as.
 */
#ifndef CONCERTO_HTTP_WEB_H
#define CONCERTO_HTTP_WEB_H

#include "http/http_int.h"

/* The built-in public client of the web app, and the scopes it may be granted: reading and
 * searching what the person may see, and updating Tasks (claim, complete, hold, reassign). */
#define HTTP_WEB_CLIENT_ID "concerto-web"
#define HTTP_WEB_SCOPES    "openid fhirUser offline_access user/*.rs user/Task.u"

/*
 * Answers a GET or HEAD of the app: a bundled asset under /assets/ (404 when there is no such
 * asset), or index.html for the app's own routes (/, /worklist, /patients, /transitions,
 * /patients/ID, /tasks/ID). False, answering nothing, for anything else.
 */
bool http__web_route(h2o_req_t *req);

/*
 * Makes sure the client HTTP_WEB_CLIENT_ID exists with HTTP_WEB_SCOPES and the redirect URIs
 * of this server: the origin of --base-url followed by "/", else the listen address's (with
 * port, the one bound; a loopback or wildcard address gives both http://localhost:PORT/ and
 * http://127.0.0.1:PORT/). A client that differs is replaced (its tokens go with it); one an
 * administrator disabled is left alone. Failures are logged as warnings: the server runs
 * without the app's sign-in (an http address that is not loopback cannot be a redirect URI).
 */
void http__web_client(http_server_t *server, int port);

#endif
