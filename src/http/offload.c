/*
 * offload.c - slow work of a request (an argon2id check, about 50 ms) on a few worker threads
 * of the HTTP layer, so that an event loop keeps answering its other requests meanwhile.
 *
 * A job is queued with the request suspended; a worker runs job->work on its own store
 * connection, then hands the job back to the request's loop through that loop's queue
 * (h2o_multithread_send_message), where job->done answers. When the client goes away in
 * between, the request's pool is disposed, which clears job->req (a cell in the pool, as
 * fhir.c does for writes): done then answers nothing. Each loop counts its jobs in
 * thread->pending, so a loop that stops waits for them, and the workers stop after the loops.
 */
#include <stdlib.h>

#include "base/log.h"
#include "base/mem.h"
#include "http/http_int.h"

struct http_job_cell {
    http_job_t *job;
};

static void cell_dispose(void *p)
{
    struct http_job_cell *cell = p;
    if (cell->job)
        cell->job->req = NULL;
}

void http__job_submit(http_thread_t *thread, h2o_req_t *req, http_job_t *job)
{
    http_pool_t *pool = &thread->server->pool;
    job->thread = thread;
    job->req = req;
    job->next = NULL;
    job->cell = h2o_mem_alloc_shared(&req->pool, sizeof(*job->cell), cell_dispose);
    job->cell->job = job;
    thread->pending++;
    pthread_mutex_lock(&pool->lock);
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
}

void http__on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        http_job_t *job = H2O_STRUCT_FROM_MEMBER(http_job_t, message, message);
        job->thread->pending--;
        if (job->req)
            job->cell->job = NULL;
        job->done(job);
    }
}

typedef struct {
    http_pool_t *pool;
    store_conn_t *conn;
} worker_arg_t;

static void *worker_main(void *arg)
{
    worker_arg_t *w = arg;
    http_pool_t *pool = w->pool;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        http_job_t *job = pool->head;
        if (job) {
            pool->head = job->next;
            if (!pool->head)
                pool->tail = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
        if (!job)
            break; /* stopping, and nothing is queued */
        job->work(job, w->conn);
        h2o_multithread_send_message(&job->thread->job_receiver, &job->message);
    }
    return NULL;
}

status_t http__pool_start(http_server_t *server, int nworkers, err_t *err)
{
    http_pool_t *pool = &server->pool;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->head = pool->tail = NULL;
    pool->stopping = false;
    pool->nworkers = 0;
    pool->nslots = nworkers;
    pool->workers = xcalloc((size_t)nworkers, sizeof(*pool->workers));
    pool->args = xcalloc((size_t)nworkers, sizeof(worker_arg_t));
    worker_arg_t *args = pool->args;
    for (int i = 0; i < nworkers; i++) {
        args[i].pool = pool;
        status_t rc = store_connect(server->store, &args[i].conn, err);
        if (rc) {
            http__pool_stop(server);
            return rc;
        }
        if (pthread_create(&pool->workers[i], NULL, worker_main, &args[i]) != 0)
            die("could not start an HTTP worker thread");
        pool->nworkers++;
    }
    return ERR_OK;
}

void http__pool_stop(http_server_t *server)
{
    http_pool_t *pool = &server->pool;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    worker_arg_t *args = pool->args;
    for (int i = 0; i < pool->nworkers; i++)
        pthread_join(pool->workers[i], NULL);
    /* a connection opened for a worker that did not start is closed too */
    for (int i = 0; i < pool->nslots; i++)
        if (args[i].conn)
            store_disconnect(args[i].conn);
    free(pool->workers);
    free(pool->args);
    pool->workers = NULL;
    pool->args = NULL;
    pool->nworkers = pool->nslots = 0;
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
}
