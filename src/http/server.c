/*
 * server.c - h2o event loops, one per thread, each with its own listening socket
 * (SO_REUSEPORT: the kernel spreads connections) and its own store connections for reads: one
 * to the primary, and one for searches that reads from the read replica when there is one.
 *
 * Shutdown: the main thread waits for SIGINT/SIGTERM and sets `stopping`; each loop then closes
 * its listener, keeps running until the writes it started have been answered, runs a little
 * longer so responses drain, and exits. The store is closed by the caller afterwards.
 *
 * With TLS (config.tls) every accepted socket first goes through h2o's handshake on the one
 * shared SSL_CTX; a filter (headers.c) adds the security headers to every response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "http/http_int.h"
#include "http/web.h"

void http_config_init(http_config_t *config)
{
    config->host = "127.0.0.1";
    config->port = 8080;
    config->threads = 0;
    config->max_body = (size_t)16 * 1024 * 1024;
    config->base_url = NULL;
    config->port_file = NULL;
    config->multiple_delete = false;
    config->tls = NULL;
    config->secrets = NULL;
    config->token_ttl_us = (int64_t)3600 * 1000000;
    config->session_idle_us = (int64_t)900 * 1000000;
    config->signing_key = NULL;
    config->test_clock = false;
}

static void on_accept(h2o_socket_t *listener, const char *error)
{
    if (error)
        return;
    http_thread_t *thread = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock)
        h2o_accept(&thread->accept_ctx, sock);
}

static status_t open_listener(const char *host, int port, int *out_fd, int *out_port, err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0)
        return err_set(err, ERR_INVALID, NULL, "cannot resolve listen address \"%s\": %s", host,
                       gai_strerror(gai));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return err_set(err, ERR_INVALID, NULL, "could not listen on %s:%d: %s", host, port,
                       strerror(saved));
    }
    freeaddrinfo(res);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *out_port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
    *out_fd = fd;
    return ERR_OK;
}

/*
 * Everything h2o of a thread is created, run and left on that thread: h2o keeps per-thread
 * allocators, so a loop set up on one thread and run on another would share them unlocked.
 * At shutdown the loop and context are not disposed: connections may still be open (idle
 * keep-alive clients), and h2o 2.2 cannot dispose a context that has any; the process is
 * about to exit and the objects stay reachable from the server.
 */
static void *thread_main(void *arg)
{
    http_thread_t *thread = arg;
    http_server_t *server = thread->server;
    thread->loop = h2o_evloop_create();
    h2o_context_init(&thread->ctx, thread->loop, &server->globalconf);
    thread->accept_ctx.ctx = &thread->ctx;
    thread->accept_ctx.hosts = server->globalconf.hosts;
    /* with TLS, h2o runs the handshake and picks HTTP/2 or HTTP/1.1 by ALPN */
    thread->accept_ctx.ssl_ctx = server->config.tls ? server->config.tls->ssl_ctx : NULL;
    h2o_multithread_register_receiver(thread->ctx.queue, &thread->done_receiver,
                                      http__on_writes_done);
    h2o_multithread_register_receiver(thread->ctx.queue, &thread->job_receiver, http__on_jobs_done);
    thread->listener =
        h2o_evloop_socket_create(thread->loop, thread->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    thread->listener->data = thread;
    h2o_socket_read_start(thread->listener, on_accept);

    while (!atomic_load(&server->stopping))
        h2o_evloop_run(thread->loop, 100);

    /* stop accepting; finish what was started */
    h2o_socket_read_stop(thread->listener);
    h2o_socket_close(thread->listener);
    thread->listener = NULL;
    while (thread->pending > 0)
        h2o_evloop_run(thread->loop, 50);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(thread->loop, 20);
    return NULL;
}

static status_t start_thread(http_server_t *server, http_thread_t *thread, int listen_fd,
                             err_t *err)
{
    thread->server = server;
    /* each loop watches its own descriptor of the one listening socket */
    thread->listen_fd = dup(listen_fd);
    if (thread->listen_fd < 0)
        return err_set(err, ERR_INTERNAL, NULL, "could not share the listening socket: %s",
                       strerror(errno));
    status_t rc = store_connect(server->store, &thread->conn, err);
    if (!rc && (rc = store_connect_replica(thread->conn, &thread->search_conn, err))) {
        store_disconnect(thread->conn);
        thread->conn = NULL;
    }
    if (rc) {
        close(thread->listen_fd);
        return rc;
    }
    if (pthread_create(&thread->tid, NULL, thread_main, thread) != 0)
        die("could not start an HTTP thread");
    return ERR_OK;
}

/* Keeps the last server reachable after http_serve returns (see thread_main). */
static http_server_t *last_server;

status_t http_serve(store_t *store, const http_config_t *config, err_t *err)
{
    http_server_t *server = xcalloc(1, sizeof(*server));
    server->config = *config;
    server->store = store;
    atomic_init(&server->stopping, false);
    if (password_dict_load(PASSWORD_DICT_PATH, &server->dict, err)) {
        free(server);
        return err->code;
    }
    auth_accounts_init(&server->accounts, store);
    server->accounts.policy.dict = server->dict;
    server->accounts.secrets = config->secrets;
    auth_tokens_init(&server->tokens, store);
    server->tokens.access_ttl_us = config->token_ttl_us;
    if (auth_audit_open(store, NULL, &server->audit, err)) {
        auth_tokens_release(&server->tokens);
        auth_accounts_release(&server->accounts);
        password_dict_free(server->dict);
        free(server);
        return err->code;
    }
    if (http__pool_start(server, HTTP_POOL_WORKERS, err)) {
        auth_audit_close(server->audit);
        auth_tokens_release(&server->tokens);
        auth_accounts_release(&server->accounts);
        password_dict_free(server->dict);
        free(server);
        return err->code;
    }
    int nthreads = config->threads > 0 ? config->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;

    /* Signals are taken by this thread only (sigwait); the loops never see them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&server->globalconf);
    /* Bodies up to twice the limit reach the handler, which answers with an OperationOutcome;
     * h2o refuses anything larger itself (413, plain text) before reading it. */
    server->globalconf.max_request_entity_size =
        config->max_body * 2 > config->max_body + 1024 * 1024 ? config->max_body * 2
                                                              : config->max_body + 1024 * 1024;
    h2o_hostconf_t *hostconf =
        h2o_config_register_host(&server->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = http__handle;
    http__register_security_headers(server, pathconf);
    /* errors h2o answers itself before a path is chosen (a 413 for a body far over the limit,
     * say) go through the host's fallback path */
    http__register_security_headers(server, &hostconf->fallback_path);
    http__build_capability(server);

    status_t rc = ERR_OK;
    server->threads = xcalloc((size_t)nthreads, sizeof(http_thread_t));
    int port = config->port, listen_fd = -1;
    int started = 0;
    rc = open_listener(config->host, port, &listen_fd, &port, err);
    if (!rc)
        http__web_client(server, port);
    for (int i = 0; !rc && i < nthreads; i++) {
        server->threads[i].index = i;
        rc = start_thread(server, &server->threads[i], listen_fd, err);
        if (!rc)
            started++;
    }
    if (listen_fd >= 0)
        close(listen_fd);
    server->port = port;
    server->nthreads = started;
    if (!rc) {
        log_info("serving FHIR R4 at %s://%s:%d/fhir with %d threads (store: %s)",
                 config->tls ? "https" : "http", config->host, port, started,
                 store_driver_name(store));
        if (config->port_file) {
            FILE *f = fopen(config->port_file, "w");
            if (f) {
                fprintf(f, "%d\n", port);
                fclose(f);
            }
        }
        int sig = 0;
        sigwait(&stop_signals, &sig);
        log_info("received %s: finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    atomic_store(&server->stopping, true);
    for (int i = 0; i < started; i++) {
        http_thread_t *thread = &server->threads[i];
        pthread_join(thread->tid, NULL);
        store_disconnect(thread->search_conn);
        thread->search_conn = NULL;
        store_disconnect(thread->conn);
        thread->conn = NULL;
    }
    /* the loops waited for their jobs: the workers have nothing left */
    http__pool_stop(server);
    /* every record queued by the requests is stored and sealed before the store closes */
    auth_audit_close(server->audit);
    server->audit = NULL;
    auth_tokens_release(&server->tokens);
    auth_accounts_release(&server->accounts);
    password_dict_free(server->dict);
    server->dict = NULL;
    last_server = server;
    return rc;
}
