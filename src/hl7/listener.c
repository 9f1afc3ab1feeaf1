/*
 * listener.c - the MLLP listener: one I/O thread on epoll (level-triggered) owns the listening
 * socket and every connection; worker threads run the handler. They meet in two lists under
 * one mutex: jobs to run (a condition variable wakes the workers) and jobs done (an eventfd
 * wakes the I/O thread). Only the I/O thread touches a connection. A connection whose socket
 * goes away while its job runs is kept, marked dead, until the job comes back, so a job never
 * points at freed memory and the handler always runs to the end.
 */
#include "hl7/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "hl7/mllp.h"

#define READ_CHUNK   65536   /* bytes read at a time; also what waits behind a message in flight */
#define STOP_WAIT_US 5000000 /* how long hl7_listener_stop waits for replies in flight */
#define MAX_EVENTS   64

typedef struct conn conn_t;
typedef struct job job_t;

/* One message handed to a worker, and its reply coming back. */
struct job {
    job_t *next;
    conn_t *conn;
    char *peer;
    char *text;
    size_t len;
    bool too_large;
    buf_t reply;
};

struct conn {
    conn_t *prev, *next;
    int fd;
    char peer[64];
    hl7_mllp_t decoder;
    buf_t in; /* read but not yet fed to the decoder (only while a message is in flight) */
    size_t in_off;
    buf_t out; /* framed replies not yet written */
    size_t out_off;
    uint32_t events;  /* the epoll interest registered now */
    int64_t last_us;  /* last traffic, monotonic */
    bool in_flight;   /* a job of this connection is queued or running */
    bool read_closed; /* the peer shut its side down */
    bool dead;        /* socket closed while in flight; freed when the job comes back */
    bool garbage_logged;
};

typedef struct {
    pthread_t tid;
    store_conn_t *conn;
    hl7_listener_t *listener;
} worker_t;

struct hl7_listener {
    hl7_listener_config_t config;
    char *host;
    hl7_handler_fn fn;
    void *arg;
    int listen_fd, epoll_fd, wake_fd;
    int port;
    pthread_t io_tid;
    worker_t *workers;
    int nworkers;
    conn_t *conns;      /* every connection, dead ones included; I/O thread only */
    int nopen;          /* connections not dead; I/O thread only */
    bool accept_paused; /* accept failed for want of resources; I/O thread only */
    atomic_bool stopping;

    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t cond;  /* a job was queued, or the workers must quit */
    job_t *queue_head, *queue_tail;
    job_t *done;
    bool workers_quit;

    _Atomic uint64_t open, accepted, refused, messages, too_large, garbage, dropped;
};

void hl7_listener_config_init(hl7_listener_config_t *c)
{
    c->host = "127.0.0.1";
    c->port = 2575;
    c->max_message = 1024 * 1024;
    c->idle_timeout_ms = 300000;
    c->max_connections = 512;
    c->workers = 4;
}

/* ---- connections (I/O thread) -------------------------------------------------------- */

static void format_peer(const struct sockaddr_storage *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, size, "%s:%d", host, port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
    } else {
        snprintf(out, size, "unknown");
    }
}

static void set_interest(hl7_listener_t *l, conn_t *c)
{
    uint32_t want = 0;
    if (!c->in_flight && !c->read_closed && !atomic_load(&l->stopping))
        want |= EPOLLIN;
    if (c->out_off < c->out.len)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("hl7: epoll_ctl: %s", strerror(errno));
    c->events = want;
}

static void free_conn(hl7_listener_t *l, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hl7_mllp_release(&c->decoder);
    buf_release(&c->in);
    buf_release(&c->out);
    free(c);
}

/* Logs and counts a frame the peer began and will never finish. */
static void drop_partial(hl7_listener_t *l, conn_t *c, const char *why)
{
    size_t bytes;
    if (!hl7_mllp_partial(&c->decoder, &bytes))
        return;
    atomic_fetch_add(&l->dropped, 1);
    log_info("hl7: %s: %s in the middle of a message; its %zu bytes received are dropped", c->peer,
             why, bytes);
}

/* Closes the socket; the connection goes now, or when its job comes back. */
static void close_conn(hl7_listener_t *l, conn_t *c)
{
    epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    l->nopen--;
    atomic_fetch_sub(&l->open, 1);
    if (c->in_flight)
        c->dead = true;
    else
        free_conn(l, c);
}

static void queue_job(hl7_listener_t *l, job_t *job)
{
    pthread_mutex_lock(&l->lock);
    if (l->queue_tail)
        l->queue_tail->next = job;
    else
        l->queue_head = job;
    l->queue_tail = job;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void dispatch(hl7_listener_t *l, conn_t *c, const char *msg, size_t len, bool too_large)
{
    job_t *job = xcalloc(1, sizeof(*job));
    job->conn = c;
    job->peer = xstrdup(c->peer);
    job->text = xmalloc(len + 1);
    memcpy(job->text, msg, len);
    job->len = len;
    job->too_large = too_large;
    buf_init(&job->reply, 0);
    c->in_flight = true;
    atomic_fetch_add(&l->messages, 1);
    if (too_large) {
        atomic_fetch_add(&l->too_large, 1);
        log_warning(
            "hl7: %s: a message of %zu bytes is over the limit of %zu; handled as too large",
            c->peer, c->decoder.frame_len, l->config.max_message);
    }
    queue_job(l, job);
}

/* Feeds what was read to the decoder until a message is in flight or nothing is left. */
static void process(hl7_listener_t *l, conn_t *c)
{
    const char *p = c->in.ptr + c->in_off, *end = c->in.ptr + c->in.len;
    while (!c->in_flight && p < end) {
        uint64_t garbage = c->decoder.garbage, restarts = c->decoder.restarts;
        const char *msg = NULL;
        size_t len = 0;
        hl7_mllp_rc_t rc = hl7_mllp_feed(&c->decoder, &p, end, &msg, &len);
        if (c->decoder.garbage > garbage) {
            atomic_fetch_add(&l->garbage, c->decoder.garbage - garbage);
            if (!c->garbage_logged) {
                log_warning("hl7: %s: %" PRIu64 " bytes outside an MLLP frame skipped "
                            "(logged once per connection)",
                            c->peer, c->decoder.garbage - garbage);
                c->garbage_logged = true;
            }
        }
        if (c->decoder.restarts > restarts) {
            atomic_fetch_add(&l->dropped, c->decoder.restarts - restarts);
            log_info("hl7: %s: a start block inside a message; the unfinished message is dropped",
                     c->peer);
        }
        if (rc != HL7_MLLP_MORE)
            dispatch(l, c, msg, len, rc == HL7_MLLP_TOO_LARGE);
    }
    c->in_off = (size_t)(p - c->in.ptr);
    if (c->in_off == c->in.len) {
        buf_reset(&c->in);
        c->in_off = 0;
    }
}

/* Writes what it can of the pending replies; false when the connection was closed. */
static bool write_conn(hl7_listener_t *l, conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.ptr + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->last_us = clock_mono_us();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        log_info("hl7: %s: could not write a reply: %s; the connection is closed", c->peer,
                 n < 0 ? strerror(errno) : "nothing written");
        close_conn(l, c);
        return false;
    }
    if (c->out_off == c->out.len) {
        buf_reset(&c->out);
        c->out_off = 0;
        if (c->read_closed && !c->in_flight) {
            log_info("hl7: %s: closed by the peer", c->peer);
            close_conn(l, c);
            return false;
        }
    }
    set_interest(l, c);
    return true;
}

static void read_conn(hl7_listener_t *l, conn_t *c)
{
    buf_grow(&c->in, READ_CHUNK);
    ssize_t n;
    do
        n = recv(c->fd, c->in.ptr + c->in.len, READ_CHUNK, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf_setlen(&c->in, c->in.len + (size_t)n);
        c->last_us = clock_mono_us();
        process(l, c);
        if (c->in_flight)
            set_interest(l, c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        log_info("hl7: %s: could not read: %s; the connection is closed", c->peer, strerror(errno));
        drop_partial(l, c, "the connection failed");
        close_conn(l, c);
        return;
    }
    drop_partial(l, c, "the peer closed the connection");
    c->read_closed = true;
    if (!c->in_flight && c->out_off == c->out.len) {
        log_info("hl7: %s: closed by the peer", c->peer);
        close_conn(l, c);
        return;
    }
    set_interest(l, c);
}

static void accept_conns(hl7_listener_t *l)
{
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        int fd =
            accept4(l->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            log_warning("hl7: could not accept a connection: %s; accepting again in a moment",
                        strerror(errno));
            /* out of descriptors or memory: the pending connection would wake the loop at
               once, forever; stop watching the socket until the next tick */
            struct epoll_event ev = {.events = 0, .data.ptr = &l->listen_fd};
            epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, l->listen_fd, &ev);
            l->accept_paused = true;
            return;
        }
        char peer[64];
        format_peer(&sa, peer, sizeof(peer));
        if (l->nopen >= l->config.max_connections) {
            atomic_fetch_add(&l->refused, 1);
            log_warning("hl7: %s: connection refused: the limit of %d connections is reached", peer,
                        l->config.max_connections);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = xcalloc(1, sizeof(*c));
        c->fd = fd;
        memcpy(c->peer, peer, sizeof(peer));
        hl7_mllp_init(&c->decoder, l->config.max_message);
        buf_init(&c->in, 0);
        buf_init(&c->out, 0);
        c->events = EPOLLIN;
        c->last_us = clock_mono_us();
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("hl7: epoll_ctl: %s", strerror(errno));
        c->next = l->conns;
        if (l->conns)
            l->conns->prev = c;
        l->conns = c;
        l->nopen++;
        atomic_fetch_add(&l->open, 1);
        atomic_fetch_add(&l->accepted, 1);
        log_info("hl7: %s: connected", peer);
    }
}

/* Takes the finished jobs: their replies are queued for writing, and each connection may hand
 * over its next message. */
static void take_done(hl7_listener_t *l)
{
    uint64_t count;
    while (read(l->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&l->lock);
    job_t *job = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->lock);
    bool stopping = atomic_load(&l->stopping);
    while (job) {
        job_t *next = job->next;
        conn_t *c = job->conn;
        c->in_flight = false;
        if (c->dead) {
            log_info("hl7: %s: the reply is dropped: the connection is gone", c->peer);
            free_conn(l, c);
        } else {
            if (job->reply.len)
                hl7_mllp_frame(job->reply.ptr, job->reply.len, &c->out);
            c->last_us = clock_mono_us();
            if (!stopping)
                process(l, c);
            write_conn(l, c);
        }
        buf_release(&job->reply);
        free(job->text);
        free(job->peer);
        free(job);
        job = next;
    }
}

static void handle_events(hl7_listener_t *l, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(l->epoll_fd, events, MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        die("hl7: epoll_wait: %s", strerror(errno));
    bool wake = false;
    for (int i = 0; i < n; i++) {
        void *ptr = events[i].data.ptr;
        uint32_t ev = events[i].events;
        if (ptr == &l->wake_fd) {
            wake = true;
            continue;
        }
        if (ptr == &l->listen_fd) {
            if (l->listen_fd >= 0)
                accept_conns(l);
            continue;
        }
        conn_t *c = ptr;
        if (c->fd < 0)
            continue;
        if (ev & (EPOLLERR | EPOLLHUP)) {
            drop_partial(l, c, "the connection failed");
            if (c->in_flight)
                log_info("hl7: %s: the connection is gone while its message is handled", c->peer);
            else
                log_info("hl7: %s: the connection is gone", c->peer);
            close_conn(l, c);
            continue;
        }
        if ((ev & EPOLLOUT) && !write_conn(l, c))
            continue;
        if ((ev & EPOLLIN) && (c->events & EPOLLIN))
            read_conn(l, c);
    }
    /* completions last: writing a reply may close and free a connection, which must not be
       in the events still to be looked at */
    if (wake)
        take_done(l);
}

/* Closes the connections silent for longer than the idle timeout. */
static void close_idle(hl7_listener_t *l, int64_t now)
{
    int64_t idle_us = (int64_t)l->config.idle_timeout_ms * 1000;
    conn_t *next;
    for (conn_t *c = l->conns; c; c = next) {
        next = c->next;
        if (c->dead || c->in_flight || now - c->last_us < idle_us)
            continue;
        drop_partial(l, c, "the idle timeout closed the connection");
        log_info("hl7: %s: closed after %d ms without traffic", c->peer, l->config.idle_timeout_ms);
        close_conn(l, c);
    }
}

static bool busy(const hl7_listener_t *l)
{
    for (const conn_t *c = l->conns; c; c = c->next)
        if (!c->dead && (c->in_flight || c->out_off < c->out.len))
            return true;
    return false;
}

static void *io_main(void *arg)
{
    hl7_listener_t *l = arg;
    int tick_ms = 1000;
    if (l->config.idle_timeout_ms > 0 && l->config.idle_timeout_ms / 4 < tick_ms)
        tick_ms = l->config.idle_timeout_ms / 4 > 10 ? l->config.idle_timeout_ms / 4 : 10;
    int64_t next_scan = clock_mono_us() + (int64_t)tick_ms * 1000;
    while (!atomic_load(&l->stopping)) {
        handle_events(l, tick_ms);
        int64_t now = clock_mono_us();
        if (now < next_scan)
            continue;
        next_scan = now + (int64_t)tick_ms * 1000;
        if (l->config.idle_timeout_ms > 0)
            close_idle(l, now);
        if (l->accept_paused) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
            epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, l->listen_fd, &ev);
            l->accept_paused = false;
        }
    }

    /* stopping: no new connections and no new messages; replies in flight still go out */
    epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, l->listen_fd, NULL);
    close(l->listen_fd);
    l->listen_fd = -1;
    conn_t *next;
    for (conn_t *c = l->conns; c; c = next) {
        next = c->next;
        if (c->dead)
            continue;
        if (!c->in_flight && c->out_off == c->out.len)
            close_conn(l, c);
        else
            set_interest(l, c);
    }
    int64_t deadline = clock_mono_us() + STOP_WAIT_US;
    while (busy(l) && clock_mono_us() < deadline)
        handle_events(l, 50);
    for (conn_t *c = l->conns; c; c = next) {
        next = c->next;
        if (!c->dead) {
            if (c->in_flight || c->out_off < c->out.len)
                log_warning("hl7: %s: closed at shutdown before its reply was sent", c->peer);
            close_conn(l, c);
        }
    }
    return NULL;
}

/* ---- workers ------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    hl7_listener_t *l = w->listener;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        while (!l->queue_head && !l->workers_quit)
            pthread_cond_wait(&l->cond, &l->lock);
        job_t *job = l->queue_head;
        if (!job) {
            pthread_mutex_unlock(&l->lock);
            return NULL;
        }
        l->queue_head = job->next;
        if (!l->queue_head)
            l->queue_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&l->lock);

        hl7_inbound_t in = {
            .peer = job->peer, .text = job->text, .len = job->len, .too_large = job->too_large};
        l->fn(l->arg, w->conn, &in, &job->reply);

        pthread_mutex_lock(&l->lock);
        job->next = l->done;
        l->done = job;
        pthread_mutex_unlock(&l->lock);
        uint64_t one = 1;
        while (write(l->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
}

/* ---- start and stop ------------------------------------------------------------------ */

static status_t listen_on(hl7_listener_t *l, err_t *err)
{
    const char *host = l->host && *l->host ? l->host : NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", l->config.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return err_set(err, ERR_INVALID, NULL, "cannot listen for MLLP on \"%s\": %s",
                       host ? host : "*", gai_strerror(gai));
    int saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            l->listen_fd = fd;
            break;
        }
        saved = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    if (l->listen_fd < 0)
        return err_set(err, ERR_UNAVAILABLE, NULL, "could not listen for MLLP on %s:%d: %s",
                       host ? host : "*", l->config.port, strerror(saved));
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    if (getsockname(l->listen_fd, (struct sockaddr *)&sa, &salen) == 0)
        l->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    return ERR_OK;
}

/* Frees what start set up before the threads ran. */
static void free_listener(hl7_listener_t *l)
{
    for (int i = 0; i < l->nworkers; i++)
        if (l->workers[i].conn)
            store_disconnect(l->workers[i].conn);
    free(l->workers);
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    if (l->epoll_fd >= 0)
        close(l->epoll_fd);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l->host);
    free(l);
}

status_t hl7_listener_start(store_t *store, const hl7_listener_config_t *config, hl7_handler_fn fn,
                            void *arg, hl7_listener_t **out, err_t *err)
{
    *out = NULL;
    if (config->max_message == 0 || config->workers < 1 || config->max_connections < 1 ||
        config->idle_timeout_ms < 0 || config->port < 0 || config->port > 65535)
        return err_set(err, ERR_INVALID, NULL,
                       "cannot start the MLLP listener: a limit in its configuration is not valid");
    hl7_listener_t *l = xcalloc(1, sizeof(*l));
    l->config = *config;
    l->host = config->host ? xstrdup(config->host) : NULL;
    l->config.host = l->host;
    l->fn = fn;
    l->arg = arg;
    l->listen_fd = l->epoll_fd = l->wake_fd = -1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->workers = xcalloc((size_t)config->workers, sizeof(*l->workers));
    l->nworkers = config->workers;

    status_t rc = listen_on(l, err);
    if (rc)
        goto out;
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epoll_fd < 0 || l->wake_fd < 0) {
        rc = err_set(err, ERR_INTERNAL, NULL, "could not start the MLLP listener: %s",
                     strerror(errno));
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
    struct epoll_event wake = {.events = EPOLLIN, .data.ptr = &l->wake_fd};
    if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->listen_fd, &ev) != 0 ||
        epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->wake_fd, &wake) != 0) {
        rc = err_set(err, ERR_INTERNAL, NULL, "could not start the MLLP listener: %s",
                     strerror(errno));
        goto out;
    }
    for (int i = 0; i < l->nworkers; i++) {
        l->workers[i].listener = l;
        if ((rc = store_connect(store, &l->workers[i].conn, err)))
            goto out;
    }
    for (int i = 0; i < l->nworkers; i++)
        if (pthread_create(&l->workers[i].tid, NULL, worker_main, &l->workers[i]) != 0)
            die("could not start an HL7 worker thread");
    if (pthread_create(&l->io_tid, NULL, io_main, l) != 0)
        die("could not start the MLLP listener thread");
    log_info("hl7: listening for MLLP on %s:%d (%d workers)", l->host && *l->host ? l->host : "*",
             l->port, l->nworkers);
    *out = l;
out:
    if (rc)
        free_listener(l);
    return rc;
}

int hl7_listener_port(const hl7_listener_t *l)
{
    return l->port;
}

void hl7_listener_stop(hl7_listener_t *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, true);
    uint64_t one = 1;
    while (write(l->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(l->io_tid, NULL);

    pthread_mutex_lock(&l->lock);
    l->workers_quit = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < l->nworkers; i++)
        pthread_join(l->workers[i].tid, NULL);

    /* the jobs that finished after the I/O thread left: their connections are all dead */
    take_done(l);
    while (l->conns)
        free_conn(l, l->conns);
    log_info("hl7: the MLLP listener on port %d stopped", l->port);
    free_listener(l);
}

void hl7_listener_stats(const hl7_listener_t *l, hl7_listener_stats_t *out)
{
    out->connections_open = atomic_load(&l->open);
    out->accepted = atomic_load(&l->accepted);
    out->refused = atomic_load(&l->refused);
    out->messages = atomic_load(&l->messages);
    out->too_large = atomic_load(&l->too_large);
    out->garbage_bytes = atomic_load(&l->garbage);
    out->dropped_partial = atomic_load(&l->dropped);
}
