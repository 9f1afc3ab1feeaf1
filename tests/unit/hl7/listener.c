/*
 * Tests for src/hl7/listener.c: a real listener on 127.0.0.1 (a free port) over a temporary
 * SQLite store, with a handler that answers "ACK|" and the message. Clients are plain blocking
 * sockets: many at once, frames cut into single bytes or sent together, garbage, peers that
 * close mid-frame or vanish while their message is handled, the idle timeout, the connection
 * limit, oversized frames, and a stop while a message is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "hl7/listener.h"
#include "hl7/mllp.h"
#include "store/store.h"

static char test_dir[64];
static store_t *test_store;

/* What the handler saw; reset by start_listener. */
static _Atomic int handler_started, handler_done, handler_store_errors, handler_delay_ms;

static void echo_handler(void *arg, store_conn_t *conn, const hl7_inbound_t *in, buf_t *reply)
{
    (void)arg;
    atomic_fetch_add(&handler_started, 1);
    /* the worker's own store connection works */
    int64_t count = -1;
    err_t err = ERR_INIT;
    if (!conn || store_count(conn, "Patient", &count, &err) != ERR_OK || count != 0)
        atomic_fetch_add(&handler_store_errors, 1);
    err_release(&err);
    int delay = atomic_load(&handler_delay_ms);
    if (delay)
        usleep((useconds_t)delay * 1000);
    if (in->too_large)
        buf_addf(reply, "TOO_LARGE|%zu|", in->len);
    else
        buf_addstr(reply, "ACK|");
    buf_add(reply, in->text, in->len);
    atomic_fetch_add(&handler_done, 1);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    snprintf(test_dir, sizeof(test_dir), "/tmp/concerto-hl7-XXXXXX");
    if (!mkdtemp(test_dir))
        return -1;
    char location[128];
    snprintf(location, sizeof(location), "%s/test.db", test_dir);
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    err_t err = ERR_INIT;
    status_t rc = store_open(location, &options, &test_store, &err);
    err_release(&err);
    return rc == ERR_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close(test_store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    return system(cmd);
}

static hl7_listener_t *start_listener(const hl7_listener_config_t *config)
{
    atomic_store(&handler_started, 0);
    atomic_store(&handler_done, 0);
    atomic_store(&handler_store_errors, 0);
    atomic_store(&handler_delay_ms, 0);
    hl7_listener_config_t defaults;
    if (!config) {
        hl7_listener_config_init(&defaults);
        defaults.port = 0;
        config = &defaults;
    }
    hl7_listener_t *l = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(hl7_listener_start(test_store, config, echo_handler, NULL, &l, &err), ERR_OK);
    err_release(&err);
    assert_true(hl7_listener_port(l) > 0);
    return l;
}

static hl7_listener_config_t test_config(void)
{
    hl7_listener_config_t c;
    hl7_listener_config_init(&c);
    c.port = 0;
    return c;
}

/* ---- a client ------------------------------------------------------------------------- */

typedef struct {
    int fd;
    hl7_mllp_t decoder;
    char in[4096];
    size_t in_len, in_off;
} client_t;

static void client_connect(client_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    hl7_mllp_init(&c->decoder, 0);
}

static void client_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    hl7_mllp_release(&c->decoder);
}

/* Sends bytes; false when the peer is gone. Callable from any thread (no cmocka asserts). */
static bool client_send(client_t *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool client_send_frame(client_t *c, const char *msg)
{
    buf_t b = BUF_INIT;
    hl7_mllp_frame(msg, strlen(msg), &b);
    bool ok = client_send(c, b.ptr, b.len);
    buf_release(&b);
    return ok;
}

/* Reads the next reply into out (NUL-terminated); false on EOF, error or timeout. */
static bool client_read(client_t *c, char *out, size_t size)
{
    for (;;) {
        if (c->in_off < c->in_len) {
            const char *p = c->in + c->in_off, *msg;
            size_t len;
            hl7_mllp_rc_t rc = hl7_mllp_feed(&c->decoder, &p, c->in + c->in_len, &msg, &len);
            c->in_off = (size_t)(p - c->in);
            if (rc == HL7_MLLP_FRAME) {
                snprintf(out, size, "%.*s", (int)len, msg);
                return true;
            }
            continue;
        }
        ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);
        if (n <= 0)
            return false;
        c->in_len = (size_t)n;
        c->in_off = 0;
    }
}

/* True when the server closes the connection (EOF or reset) within timeout_ms. */
static bool client_sees_close(client_t *c, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b[256];
    for (;;) {
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false; /* timeout */
    }
}

static void expect_reply(client_t *c, const char *want)
{
    char got[8192];
    assert_true(client_read(c, got, sizeof(got)));
    assert_string_equal(got, want);
}

static void exchange(int port)
{
    client_t c;
    client_connect(&c, port);
    assert_true(client_send_frame(&c, "MSH|check"));
    expect_reply(&c, "ACK|MSH|check");
    client_close(&c);
}

/* Waits up to 5 s for *counter to reach want. */
static bool wait_for(_Atomic int *counter, int want)
{
    for (int i = 0; i < 500; i++) {
        if (atomic_load(counter) >= want)
            return true;
        usleep(10000);
    }
    return false;
}

static bool wait_stat(hl7_listener_t *l, size_t offset, uint64_t want)
{
    for (int i = 0; i < 500; i++) {
        hl7_listener_stats_t s;
        hl7_listener_stats(l, &s);
        if (*(uint64_t *)((char *)&s + offset) == want)
            return true;
        usleep(10000);
    }
    return false;
}

#define WAIT_STAT(l, field, want) wait_stat(l, offsetof(hl7_listener_stats_t, field), want)

/* ---- tests ---------------------------------------------------------------------------- */

#define NCLIENTS 50

typedef struct {
    int port, id;
    int failures;
    char why[1024];
} client_job_t;

static void *client_main(void *arg)
{
    client_job_t *job = arg;
    client_t c;
    memset(&c, 0, sizeof(c));
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)job->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        job->failures++;
        snprintf(job->why, sizeof(job->why), "connect: %s", strerror(errno));
        close(c.fd);
        return NULL;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    hl7_mllp_init(&c.decoder, 0);
    char msg[128], want[160], got[256];
    /* three one at a time, then three sent together: replies come back in order */
    for (int i = 0; i < 3; i++) {
        snprintf(msg, sizeof(msg), "MSH|client-%d|message-%d", job->id, i);
        snprintf(want, sizeof(want), "ACK|%s", msg);
        if (!client_send_frame(&c, msg) || !client_read(&c, got, sizeof(got)) ||
            strcmp(got, want) != 0) {
            job->failures++;
            snprintf(job->why, sizeof(job->why), "client %d: want \"%s\", got \"%s\"", job->id,
                     want, got);
        }
    }
    buf_t b = BUF_INIT;
    for (int i = 3; i < 6; i++) {
        snprintf(msg, sizeof(msg), "MSH|client-%d|message-%d", job->id, i);
        hl7_mllp_frame(msg, strlen(msg), &b);
    }
    if (!client_send(&c, b.ptr, b.len))
        job->failures++;
    buf_release(&b);
    for (int i = 3; i < 6; i++) {
        snprintf(want, sizeof(want), "ACK|MSH|client-%d|message-%d", job->id, i);
        got[0] = '\0';
        if (!client_read(&c, got, sizeof(got)) || strcmp(got, want) != 0) {
            job->failures++;
            snprintf(job->why, sizeof(job->why), "client %d: want \"%s\", got \"%s\"", job->id,
                     want, got);
        }
    }
    client_close(&c);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    pthread_t threads[NCLIENTS];
    client_job_t jobs[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        jobs[i] = (client_job_t){.port = hl7_listener_port(l), .id = i};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].failures)
            fail_msg("%s", jobs[i].why);
    }
    assert_int_equal(atomic_load(&handler_store_errors), 0);
    assert_true(WAIT_STAT(l, connections_open, 0));
    hl7_listener_stats_t s;
    hl7_listener_stats(l, &s);
    assert_int_equal(s.accepted, NCLIENTS);
    assert_int_equal(s.messages, NCLIENTS * 6);
    assert_int_equal(s.garbage_bytes, 0);
    hl7_listener_stop(l);
}

static void test_frame_in_single_bytes(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    buf_t b = BUF_INIT;
    hl7_mllp_frame("MSH|^~\\&|SPLIT\rPID|1", 20, &b);
    for (size_t i = 0; i < b.len; i++) {
        assert_true(client_send(&c, b.ptr + i, 1));
        usleep(2000);
    }
    buf_release(&b);
    expect_reply(&c, "ACK|MSH|^~\\&|SPLIT\rPID|1");
    client_close(&c);
    hl7_listener_stop(l);
}

static void test_two_frames_in_one_write(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    const char both[] = "\x0bMSH|first\x1c\x0d\x0bMSH|second\x1c\x0d";
    assert_true(client_send(&c, both, sizeof(both) - 1));
    expect_reply(&c, "ACK|MSH|first");
    expect_reply(&c, "ACK|MSH|second");
    client_close(&c);
    hl7_listener_stop(l);
}

static void test_garbage_then_frame(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    const char data[] = "hello\r\n\x0bMSH|after\x1c\x0d";
    assert_true(client_send(&c, data, sizeof(data) - 1));
    expect_reply(&c, "ACK|MSH|after");
    /* garbage between frames too */
    const char more[] = "\x1c\x0d?\x0bMSH|again\x1c\x0d";
    assert_true(client_send(&c, more, sizeof(more) - 1));
    expect_reply(&c, "ACK|MSH|again");
    hl7_listener_stats_t s;
    hl7_listener_stats(l, &s);
    assert_int_equal(s.garbage_bytes, 7 + 3);
    assert_int_equal(s.messages, 2);
    client_close(&c);
    hl7_listener_stop(l);
}

static void test_close_mid_frame(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    const char part[] = "\x0bMSH|never|finished";
    assert_true(client_send(&c, part, sizeof(part) - 1));
    client_close(&c);
    assert_true(WAIT_STAT(l, dropped_partial, 1));
    assert_true(WAIT_STAT(l, connections_open, 0));
    assert_int_equal(atomic_load(&handler_started), 0);
    exchange(hl7_listener_port(l));
    assert_int_equal(atomic_load(&handler_done), 1);
    hl7_listener_stop(l);
}

static void test_peer_vanishes_in_flight(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    atomic_store(&handler_delay_ms, 300);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    assert_true(client_send_frame(&c, "MSH|vanishing"));
    assert_true(wait_for(&handler_started, 1));
    /* a reset rather than a FIN: the socket is gone for good */
    struct linger lin = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    client_close(&c);
    /* the handler still runs to the end; the reply goes nowhere */
    assert_true(wait_for(&handler_done, 1));
    assert_true(WAIT_STAT(l, connections_open, 0));
    atomic_store(&handler_delay_ms, 0);
    exchange(hl7_listener_port(l));
    hl7_listener_stop(l);
}

static void test_half_close_gets_reply(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    atomic_store(&handler_delay_ms, 100);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    assert_true(client_send_frame(&c, "MSH|then|shutdown"));
    shutdown(c.fd, SHUT_WR);
    expect_reply(&c, "ACK|MSH|then|shutdown");
    assert_true(client_sees_close(&c, 2000));
    client_close(&c);
    hl7_listener_stop(l);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    hl7_listener_config_t config = test_config();
    config.idle_timeout_ms = 200;
    hl7_listener_t *l = start_listener(&config);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    /* traffic keeps it open */
    for (int i = 0; i < 3; i++) {
        usleep(120000);
        assert_true(client_send_frame(&c, "MSH|keepalive"));
        expect_reply(&c, "ACK|MSH|keepalive");
    }
    int64_t start = clock_mono_us();
    assert_true(client_sees_close(&c, 3000));
    int64_t waited_ms = (clock_mono_us() - start) / 1000;
    assert_true(waited_ms >= 150);
    assert_true(waited_ms < 2000);
    client_close(&c);
    assert_true(WAIT_STAT(l, connections_open, 0));
    hl7_listener_stop(l);
}

static void test_max_connections(void **state)
{
    (void)state;
    hl7_listener_config_t config = test_config();
    config.max_connections = 2;
    hl7_listener_t *l = start_listener(&config);
    client_t a, b, over;
    client_connect(&a, hl7_listener_port(l));
    client_connect(&b, hl7_listener_port(l));
    assert_true(client_send_frame(&a, "MSH|a"));
    expect_reply(&a, "ACK|MSH|a");
    assert_true(client_send_frame(&b, "MSH|b"));
    expect_reply(&b, "ACK|MSH|b");
    client_connect(&over, hl7_listener_port(l));
    assert_true(client_sees_close(&over, 2000));
    client_close(&over);
    hl7_listener_stats_t s;
    hl7_listener_stats(l, &s);
    assert_int_equal(s.refused, 1);
    assert_int_equal(s.accepted, 2);
    assert_int_equal(s.connections_open, 2);
    /* the two open ones still work; once one goes, a new one is let in */
    assert_true(client_send_frame(&a, "MSH|a2"));
    expect_reply(&a, "ACK|MSH|a2");
    client_close(&b);
    assert_true(WAIT_STAT(l, connections_open, 1));
    exchange(hl7_listener_port(l));
    client_close(&a);
    hl7_listener_stop(l);
}

static void test_too_large(void **state)
{
    (void)state;
    hl7_listener_config_t config = test_config();
    config.max_message = 64;
    hl7_listener_t *l = start_listener(&config);
    client_t c;
    client_connect(&c, hl7_listener_port(l));
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "MSH|", 4);
    assert_true(client_send_frame(&c, big));
    char want[128];
    snprintf(want, sizeof(want), "TOO_LARGE|64|%.64s", big);
    expect_reply(&c, want);
    /* the connection keeps working */
    assert_true(client_send_frame(&c, "MSH|small"));
    expect_reply(&c, "ACK|MSH|small");
    hl7_listener_stats_t s;
    hl7_listener_stats(l, &s);
    assert_int_equal(s.too_large, 1);
    assert_int_equal(s.messages, 2);
    client_close(&c);
    hl7_listener_stop(l);
}

static void test_stop_with_message_in_flight(void **state)
{
    (void)state;
    hl7_listener_t *l = start_listener(NULL);
    atomic_store(&handler_delay_ms, 300);
    int port = hl7_listener_port(l);
    client_t c;
    client_connect(&c, port);
    assert_true(client_send_frame(&c, "MSH|in|flight"));
    assert_true(wait_for(&handler_started, 1));
    hl7_listener_stop(l);
    /* the reply went out before the connection was closed */
    expect_reply(&c, "ACK|MSH|in|flight");
    assert_true(client_sees_close(&c, 2000));
    client_close(&c);
    /* nothing listens any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
}

static void test_bad_config(void **state)
{
    (void)state;
    hl7_listener_config_t config = test_config();
    config.workers = 0;
    hl7_listener_t *l = (hl7_listener_t *)1;
    err_t err = ERR_INIT;
    assert_int_equal(hl7_listener_start(test_store, &config, echo_handler, NULL, &l, &err),
                     ERR_INVALID);
    assert_null(l);
    err_release(&err);
    /* a port in use */
    hl7_listener_t *first = start_listener(NULL);
    config = test_config();
    config.port = hl7_listener_port(first);
    err_init(&err);
    assert_int_equal(hl7_listener_start(test_store, &config, echo_handler, NULL, &l, &err),
                     ERR_UNAVAILABLE);
    err_release(&err);
    hl7_listener_stop(first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_frame_in_single_bytes),
        cmocka_unit_test(test_two_frames_in_one_write),
        cmocka_unit_test(test_garbage_then_frame),
        cmocka_unit_test(test_close_mid_frame),
        cmocka_unit_test(test_peer_vanishes_in_flight),
        cmocka_unit_test(test_half_close_gets_reply),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_stop_with_message_in_flight),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests_name("hl7/listener", tests, group_setup, group_teardown);
}
