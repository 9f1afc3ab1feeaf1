/*
 * serve.c - `concerto serve`: runs the HTTP server on a database until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/calendar.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "auth/idtoken.h"
#include "auth/purge.h"
#include "auth/secrets.h"
#include "http/http.h"
#include "care/engine.h"
#include "hl7/ingest.h"
#include "hl7/listener.h"
#include "repo/worker.h"

static const char help[] =
    "usage: concerto serve [--db FILE] [--listen HOST:PORT] [--threads N] [options]\n"
    "\n"
    "Serves the FHIR R4 API at http://HOST:PORT/fhir (https:// with --tls-cert) and\n"
    "/healthz until SIGINT or SIGTERM, then finishes the requests in flight and closes the\n"
    "database cleanly. The database is created and migrated when needed. The SearchParameter\n"
    "resources stored in it (status active or draft) are search parameters of the server;\n"
    "when one is written, the types it applies to are reindexed in the background (progress\n"
    "in the log).\n"
    "\n"
    "A worker thread handles the database's work queues: the change event of every write\n"
    "and the jobs writes schedule (such as those reindexes), and once at start and then\n"
    "hourly removes expired tokens, sessions and sign-in requests. Several servers may run on one\n"
    "PostgreSQL database (docs/deploy.md): each event and job is then handled by one of\n"
    "them, and what a server that stops or dies held is taken over by another once its\n"
    "lease has run out.\n"
    "\n"
    "Options (each also from the environment as CONCERTO_<NAME>, e.g. CONCERTO_LISTEN, or from\n"
    "the config file as \"name = value\"; a flag wins over the environment, which wins over\n"
    "the file):\n"
    "  --db FILE            SQLite database file (default: concerto.db), or a PostgreSQL\n"
    "                       URI postgresql://USER@HOST:PORT/DATABASE\n"
    "  --db-replica URI     a streaming read replica (hot standby) of the PostgreSQL --db:\n"
    "                       searches, history and $everything read from it and may lag\n"
    "                       the primary by its replication delay; reads by id and\n"
    "                       everything in a write stay on the primary. While it cannot be\n"
    "                       reached they read from the primary (default: none)\n"
    "  --replica-max-lag SECONDS\n"
    "                       when the replica is further behind, searches read from the\n"
    "                       primary until it catches up (default: 10; 0: no limit)\n"
    "  --listen HOST:PORT   address to listen on (default: 127.0.0.1:8080; port 0 picks one)\n"
    "  --threads N          event loops (default: one per core)\n"
    "  --max-body BYTES     largest request body accepted (default: 16777216); larger: 413\n"
    "  --base-url URL       public base of the API when behind a proxy (the web app at /\n"
    "                       signs in back to its origin)\n"
    "                       (default: from the Host header, http://HOST/fhir)\n"
    "  --tls-cert FILE      serve HTTPS (HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3) with this PEM\n"
    "                       certificate, followed by its intermediates (default: plain\n"
    "                       HTTP, for a TLS-terminating proxy in front: docs/deploy.md)\n"
    "  --tls-key FILE       the certificate's private key (unencrypted PEM; keep it\n"
    "                       readable by this server's user only). Both or neither; with\n"
    "                       them every response carries Strict-Transport-Security\n"
    "  --secrets-key FILE   the key that seals secrets in the database (second factors;\n"
    "                       with PostgreSQL the signing key too): 64 hex digits, mode\n"
    "                       0600 (default: the SQLite file's name with\n"
    "                       .key added, created on first start; required with PostgreSQL\n"
    "                       for staff to enrol in a second factor and, without\n"
    "                       --signing-key, for id_tokens; the same on every server of\n"
    "                       the database). Keep it out of backups of the database: losing\n"
    "                       it means every second factor is reset, and a signing key in\n"
    "                       the database no longer opens (then give --signing-key FILE)\n"
    "  --signing-key FILE   the server's own RSA private key (PEM, mode 0600) that signs\n"
    "                       OpenID Connect id_tokens; its public key is served at\n"
    "                       /oauth2/jwks (default: the SQLite file's name with\n"
    "                       .signing.pem added, created on first start; with PostgreSQL\n"
    "                       a key kept in the database, sealed with --secrets-key, made\n"
    "                       by the first server that starts and shared by all of them;\n"
    "                       with neither option openid is not granted)\n"
    "  --token-ttl SECONDS  how long an access token lives (default: 3600); apps get one\n"
    "                       at POST /oauth2/token (docs/api.md) and send it on every\n"
    "                       /fhir request as Authorization: Bearer TOKEN\n"
    "  --session-idle SECONDS\n"
    "                       a browser sign-in session unused this long ends (default: 900)\n"
    "  --synchronous MODE   full (default: every acknowledged write survives power loss),\n"
    "                       normal (survives a crash of Concerto, not of the machine), off\n"
    "  --conditional-delete single|multiple\n"
    "                       a conditional delete whose criteria match several resources:\n"
    "                       single (default) refuses it with 412, multiple deletes them all\n"
    "  --work-lease SECONDS how long a worker's claim on an event or a job holds before\n"
    "                       another worker may take it over (default: 60)\n"
    "  --work-poll MS       how often an idle worker looks for new work (default: 200)\n"
    "  --calendar-timezone ZONE\n"
    "                       the organisation's time zone, a tz database name such as\n"
    "                       America/Chicago (default: America/New_York): deadlines in\n"
    "                       calendar and business days are counted in its local time\n"
    "  --calendar-working-days DAYS\n"
    "                       the working days of the week: Mon-Fri (default), Sun-Thu,\n"
    "                       Mon,Wed,Fri, ...\n"
    "  --calendar-holidays us-federal|none|FILE\n"
    "                       the days that are not business days: the built-in US federal\n"
    "                       holidays (observed dates, 2020-2040; the default), none, or a\n"
    "                       file of lines YYYY-MM-DD<TAB>name (docs/configuration.md)\n"
    "  --test-clock         FOR TESTS ONLY: serve /admin/clock, which moves the server's\n"
    "                       clock forward (docs/testing.md). Refused with --tls-cert\n"
    "  --log-level LEVEL    error, warning, info (default) or debug (which also logs each\n"
    "                       change event as it is handled)\n"
    "  --port-file FILE     write the port to FILE once listening (for scripts and tests)\n"
    "  --mllp HOST:PORT     listen for HL7 v2 ADT messages over MLLP there (default: off;\n"
    "                       the usual port is 2575; port 0 picks one): each is stored,\n"
    "                       applied to the record and acknowledged (docs/hl7.md)\n"
    "  --mllp-idle SECONDS  close an MLLP connection silent this long (default: 300;\n"
    "                       0: never)\n"
    "  --mllp-max-message BYTES\n"
    "                       largest message accepted (default: 1048576); a larger one is\n"
    "                       refused with an AR and kept in part\n"
    "  --mllp-connections N at most N MLLP connections at once (default: 512)\n"
    "  --mllp-workers N     threads that store, apply and acknowledge messages, each with a\n"
    "                       connection of its own (default: 32 with SQLite, where more\n"
    "                       messages in flight share each commit; 4 with PostgreSQL)\n"
    "  --mllp-port-file FILE\n"
    "                       write the MLLP port to FILE once listening\n"
    "  --config FILE        read settings from FILE (env CONCERTO_CONFIG)\n";

/* HOST:PORT of option --name. */
static status_t parse_listen(const char *name, const char *listen, char **out_host, int *out_port,
                             err_t *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return err_set(err, ERR_INVALID, NULL, "--%s must be HOST:PORT, not \"%s\"", name, listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return err_set(err, ERR_INVALID, NULL, "--%s: \"%s\" is not a valid port", name, colon + 1);
    const char *host = listen;
    size_t len = (size_t)(colon - listen);
    if (host[0] == '[' && len >= 2 && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    char *copy = malloc(len + 1);
    memcpy(copy, host, len);
    copy[len] = '\0';
    *out_host = copy;
    *out_port = (int)port;
    return ERR_OK;
}

static status_t parse_size(const char *name, const char *value, long min, long max, long *out,
                           err_t *err)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (!*value || *end || n < min || n > max)
        return err_set(err, ERR_INVALID, NULL, "--%s must be a number from %ld to %ld, not \"%s\"",
                       name, min, max, value);
    *out = n;
    return ERR_OK;
}

int cli_serve(int argc, char **argv)
{
    static const char *const known[] = {"db",
                                        "listen",
                                        "threads",
                                        "max-body",
                                        "base-url",
                                        "synchronous",
                                        "log-level",
                                        "port-file",
                                        "conditional-delete",
                                        "work-lease",
                                        "work-poll",
                                        "db-replica",
                                        "replica-max-lag",
                                        "tls-cert",
                                        "tls-key",
                                        "secrets-key",
                                        "token-ttl",
                                        "session-idle",
                                        "signing-key",
                                        "calendar-timezone",
                                        "calendar-working-days",
                                        "calendar-holidays",
                                        "mllp",
                                        "mllp-idle",
                                        "mllp-max-message",
                                        "mllp-connections",
                                        "mllp-workers",
                                        "mllp-port-file",
                                        NULL};
    static const char *const switches[] = {"test-clock", NULL};
    settings_t s;
    int status = cli_settings("serve", help, argc, argv, known, switches, &s);
    if (status >= 0)
        goto out_settings;
    status = 1;
    err_t err = ERR_INIT;
    char *host = NULL;
    store_t *store = NULL;
    http_tls_t *tls = NULL;
    auth_secrets_t *secrets = NULL;
    char *key_path = NULL;
    jose_key_t *signing_key = NULL;
    char *signing_path = NULL;
    http_config_t config;
    http_config_init(&config);
    long threads = 0, max_body = (long)config.max_body, lease_s = 60, poll_ms = 200, max_lag_s = 10;
    long token_ttl_s = 3600, session_idle_s = 900;
    long mllp_idle_s = 300, mllp_max = 1048576, mllp_connections = 512, mllp_workers = 4;
    char *mllp_host = NULL;
    int mllp_port = 0;
    const char *mllp = settings_get(&s, "mllp", NULL);
    hl7_ingest_t *ingest = NULL;
    hl7_listener_t *listener = NULL;
    store_options_t options;
    const char *level = settings_get(&s, "log-level", "info");
    if (log_level_parse(level) < 0) {
        err_set(&err, ERR_INVALID, NULL, "--log-level must be error, warning, info or debug");
        status = 2;
        goto out;
    }
    log_set_level((log_level_t)log_level_parse(level));
    if (s.nargs) {
        err_set(&err, ERR_INVALID, NULL, "unexpected argument \"%s\" (see --help)", s.args[0]);
        status = 2;
        goto out;
    }
    if (parse_listen("listen", settings_get(&s, "listen", "127.0.0.1:8080"), &host, &config.port,
                     &err) ||
        parse_size("threads", settings_get(&s, "threads", "0"), 0, 256, &threads, &err) ||
        parse_size("max-body", settings_get(&s, "max-body", "16777216"), 1024, 1L << 30, &max_body,
                   &err) ||
        parse_size("work-lease", settings_get(&s, "work-lease", "60"), 1, 86400, &lease_s, &err) ||
        parse_size("work-poll", settings_get(&s, "work-poll", "200"), 10, 60000, &poll_ms, &err) ||
        parse_size("replica-max-lag", settings_get(&s, "replica-max-lag", "10"), 0, 86400,
                   &max_lag_s, &err) ||
        parse_size("token-ttl", settings_get(&s, "token-ttl", "3600"), 1, 86400, &token_ttl_s,
                   &err) ||
        parse_size("session-idle", settings_get(&s, "session-idle", "900"), 1, 86400,
                   &session_idle_s, &err) ||
        parse_size("mllp-idle", settings_get(&s, "mllp-idle", "300"), 0, 86400, &mllp_idle_s,
                   &err) ||
        parse_size("mllp-max-message", settings_get(&s, "mllp-max-message", "1048576"), 1024,
                   1L << 30, &mllp_max, &err) ||
        parse_size("mllp-connections", settings_get(&s, "mllp-connections", "512"), 1, 100000,
                   &mllp_connections, &err) ||
        parse_size("mllp-workers",
                   settings_get(&s, "mllp-workers",
                                store_location_is_postgres(settings_get(&s, "db", CLI_DEFAULT_DB))
                                    ? "4"
                                    : "32"),
                   1, 64, &mllp_workers, &err) ||
        (mllp && *mllp && parse_listen("mllp", mllp, &mllp_host, &mllp_port, &err)) ||
        cli_store_options(&s, &options, &err)) {
        status = 2;
        goto out;
    }
    const char *replica = settings_get(&s, "db-replica", NULL);
    if (replica && *replica) {
        if (!store_location_is_postgres(settings_get(&s, "db", CLI_DEFAULT_DB))) {
            err_set(&err, ERR_INVALID, NULL,
                    "--db-replica needs a PostgreSQL --db (postgresql://...): an SQLite "
                    "database has no read replicas");
            status = 2;
            goto out;
        }
        if (!store_location_is_postgres(replica)) {
            err_set(&err, ERR_INVALID, NULL,
                    "--db-replica must be a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE");
            status = 2;
            goto out;
        }
        options.replica = replica;
        options.replica_max_lag_us = (int64_t)max_lag_s * 1000000;
    }
    config.host = host;
    config.threads = (int)threads;
    config.max_body = (size_t)max_body;
    config.base_url = settings_get(&s, "base-url", NULL);
    config.port_file = settings_get(&s, "port-file", NULL);
    const char *conditional_delete = settings_get(&s, "conditional-delete", "single");
    if (strcmp(conditional_delete, "multiple") == 0) {
        config.multiple_delete = true;
    } else if (strcmp(conditional_delete, "single") != 0) {
        err_set(&err, ERR_INVALID, NULL,
                "--conditional-delete must be single or multiple, not \"%s\"", conditional_delete);
        status = 2;
        goto out;
    }
    const char *test_clock = settings_get(&s, "test-clock", "false");
    if (strcmp(test_clock, "true") != 0 && strcmp(test_clock, "false") != 0) {
        err_set(&err, ERR_INVALID, NULL, "--test-clock is a switch (true or false), not \"%s\"",
                test_clock);
        status = 2;
        goto out;
    }
    config.test_clock = strcmp(test_clock, "true") == 0;
    if (config.test_clock && settings_get(&s, "tls-cert", NULL)) {
        err_set(&err, ERR_INVALID, NULL,
                "--test-clock is for test servers and cannot go with --tls-cert (a server "
                "with TLS is taken to be in production)");
        status = 2;
        goto out;
    }
    const char *tls_cert = settings_get(&s, "tls-cert", NULL);
    const char *tls_key = settings_get(&s, "tls-key", NULL);
    if (tls_cert || tls_key) {
        if (!tls_cert || !tls_key) {
            err_set(&err, ERR_INVALID, NULL,
                    "--tls-cert and --tls-key go together: %s is missing (or neither, for "
                    "plain HTTP)",
                    tls_cert ? "--tls-key" : "--tls-cert");
            status = 2;
            goto out;
        }
        if (http_tls_new(tls_cert, tls_key, &tls, &err)) {
            status = 2;
            goto out;
        }
        config.tls = tls;
    }
    calendar_t *calendar = NULL;
    if (calendar_new(settings_get(&s, "calendar-timezone", CALENDAR_DEFAULT_ZONE),
                     settings_get(&s, "calendar-working-days", CALENDAR_DEFAULT_WORKING_DAYS),
                     settings_get(&s, "calendar-holidays", CALENDAR_DEFAULT_HOLIDAYS), &calendar,
                     &err)) {
        status = 2;
        goto out;
    }
    calendar_set_default(calendar);
    config.token_ttl_us = (int64_t)token_ttl_s * 1000000;
    config.session_idle_us = (int64_t)session_idle_s * 1000000;
    if (cli_open_store(&s, &options, &store, &err))
        goto out;
    const char *db = settings_get(&s, "db", CLI_DEFAULT_DB);
    const char *key_file = settings_get(&s, "secrets-key", NULL);
    if (!key_file && !store_location_is_postgres(db)) {
        key_path = xasprintf("%s.key", db);
        bool created = false;
        if (auth_secrets_create(key_path, &created, &err)) {
            status = 2;
            cli_close_store(store, false);
            goto out;
        }
        if (created)
            log_info("created the secrets key file %s (keep it; back it up apart from the "
                     "database)",
                     key_path);
        key_file = key_path;
    }
    if (key_file) {
        if (auth_secrets_load(key_file, &secrets, &err)) {
            status = 2;
            cli_close_store(store, false);
            goto out;
        }
        config.secrets = secrets;
    } else {
        log_warning("no --secrets-key: staff cannot enrol in a second factor, so they cannot "
                    "sign in");
    }
    const char *signing_file = settings_get(&s, "signing-key", NULL);
    if (!signing_file && !store_location_is_postgres(db)) {
        signing_path = xasprintf("%s.signing.pem", db);
        bool created = false;
        if (auth_signing_key_create(signing_path, &created, &err)) {
            status = 2;
            cli_close_store(store, false);
            goto out;
        }
        if (created)
            log_info("created the signing key file %s (it signs id_tokens; keep it readable by "
                     "this server only)",
                     signing_path);
        signing_file = signing_path;
    }
    if (signing_file) {
        if (auth_signing_key_load(signing_file, &signing_key, &err)) {
            status = 2;
            cli_close_store(store, false);
            goto out;
        }
        config.signing_key = signing_key;
    } else if (secrets) {
        /* PostgreSQL: one key for every server of the database, kept in it, sealed */
        bool created = false;
        if (auth_signing_key_from_store(store, secrets, clock_now_us(), &signing_key, &created,
                                        &err)) {
            status = 2;
            cli_close_store(store, false);
            goto out;
        }
        log_info("%s the signing key %s in the database (it signs id_tokens; sealed with the "
                 "--secrets-key)",
                 created ? "created" : "using", jose_key_kid(signing_key));
        config.signing_key = signing_key;
    } else {
        log_warning("no --signing-key and no --secrets-key: the server issues no id_tokens "
                    "(openid is not granted); give every server of the database the same "
                    "--secrets-key FILE to keep the signing key in the database, or "
                    "--signing-key FILE");
    }
    log_info("business calendar: %s", calendar_describe(calendar_default()));
    if (config.test_clock)
        log_warning("TEST CLOCK ON: POST /admin/clock moves this server's clock forward; never "
                    "run a production server with --test-clock");
    care_engine_register();
    repo_worker_config_t work;
    repo_worker_config_init(&work);
    work.lease_us = (int64_t)lease_s * 1000000;
    work.poll_us = (int64_t)poll_ms * 1000;
    /* expired tokens, assertion ids, sessions and authorization requests: now, then hourly */
    if (auth_purge_start(store, clock_now_us(), &err)) {
        status = 2;
        cli_close_store(store, false);
        goto out;
    }
    if (repo_worker_start(store, &work, &err) == ERR_OK) {
        if (mllp_host) {
            ingest = hl7_ingest_new(store, calendar_zone(calendar_default()));
            hl7_listener_config_t lc;
            hl7_listener_config_init(&lc);
            lc.host = mllp_host;
            lc.port = mllp_port;
            lc.idle_timeout_ms = (int)mllp_idle_s * 1000;
            lc.max_message = (size_t)mllp_max;
            lc.max_connections = (int)mllp_connections;
            lc.workers = (int)mllp_workers;
            if (hl7_listener_start(store, &lc, hl7_ingest_handle, ingest, &listener, &err) ==
                ERR_OK) {
                log_info("listening for HL7 v2 over MLLP at %s:%d", mllp_host,
                         hl7_listener_port(listener));
                const char *port_file = settings_get(&s, "mllp-port-file", NULL);
                FILE *f = port_file ? fopen(port_file, "w") : NULL;
                if (f) {
                    fprintf(f, "%d\n", hl7_listener_port(listener));
                    fclose(f);
                }
                config.hl7 = ingest;
                config.mllp = listener;
            }
        }
        if (err.code == ERR_OK && http_serve(store, &config, &err) == ERR_OK)
            status = 0;
        /* messages in flight are stored and answered before the database closes */
        if (listener)
            hl7_listener_stop(listener);
        repo_worker_stop();
    }
    cli_close_store(store, false);
    if (status == 0)
        log_info("stopped; the database is closed");
out:
    if (err.nissues)
        cli_report("serve", &err);
    err_release(&err);
    http_tls_free(tls);
    auth_secrets_free(secrets);
    free(key_path);
    jose_key_free(signing_key);
    free(signing_path);
    hl7_ingest_free(ingest);
    free(mllp_host);
    free(host);
out_settings:
    settings_release(&s);
    return status;
}
