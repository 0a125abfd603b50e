
/*
 * ngx_gravitee_module: what each worker process keeps for the connectors.
 * See ngx_gravitee_worker.h for what it is and why.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <pthread.h>
#if (NGX_HAVE_EVENTFD)
#include <sys/eventfd.h>
#endif
#include "ngx_gravitee_worker.h"


typedef struct {
    ngx_gravitee_wakeup_t       wakeup;      /* threads' tasks, shutdown */

    pthread_mutex_t             lock;        /* guards tasks and closed */
    ngx_gravitee_task_t        *tasks;       /* newest first */
    ngx_uint_t                  closed;

    ngx_queue_t                 hooks;
} ngx_gravitee_worker_t;


static ngx_int_t ngx_gravitee_worker_open(ngx_log_t *log,
    ngx_socket_t fds[2]);
static void ngx_gravitee_wakeup_read(ngx_event_t *rev);
static void ngx_gravitee_wakeup_drain(ngx_connection_t *c);
static void ngx_gravitee_worker_wake(void *data);
static void ngx_gravitee_worker_run_tasks(void);
static void ngx_gravitee_worker_shutdown(void);
static void ngx_gravitee_worker_empty(ngx_event_t *ev);


ngx_uint_t  ngx_gravitee_stopping;

static ngx_gravitee_worker_t  ngx_gravitee_worker = {
    { NULL, (ngx_socket_t) -1, NULL, NULL },
    PTHREAD_MUTEX_INITIALIZER, NULL, 0, { NULL, NULL }
};


ngx_int_t
ngx_gravitee_worker_init(ngx_cycle_t *cycle)
{
    ngx_gravitee_worker_t  *w;

    w = &ngx_gravitee_worker;

    ngx_queue_init(&w->hooks);
    ngx_gravitee_stopping = 0;

    w->wakeup.handler = ngx_gravitee_worker_wake;
    w->wakeup.data = w;

    if (ngx_gravitee_wakeup_open(&w->wakeup, cycle->log) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a reload or quit reaches us through ngx_close_idle_connections() */
    w->wakeup.connection->idle = 1;
    w->closed = 0;

    return NGX_OK;
}


ngx_int_t
ngx_gravitee_wakeup_open(ngx_gravitee_wakeup_t *wk, ngx_log_t *log)
{
    ngx_socket_t       fds[2];
    ngx_connection_t  *c;

    if (ngx_gravitee_worker_open(log, fds) != NGX_OK) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(fds[0], log);
    if (c == NULL) {
        (void) close(fds[0]);

        if (fds[1] != fds[0]) {
            (void) close(fds[1]);
        }

        return NGX_ERROR;
    }

    c->data = wk;
    c->log = log;
    c->read->handler = ngx_gravitee_wakeup_read;
    c->read->log = log;
    c->write->handler = ngx_gravitee_worker_empty;
    c->write->log = log;

    wk->connection = c;
    wk->fd = fds[1];

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_gravitee_wakeup_close(wk);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_gravitee_wakeup_close(ngx_gravitee_wakeup_t *wk)
{
    if (wk->connection == NULL) {
        return;
    }

    if (wk->fd != wk->connection->fd) {
        (void) close(wk->fd);
    }

    ngx_close_connection(wk->connection);

    wk->connection = NULL;
    wk->fd = (ngx_socket_t) -1;
}


/*
 * At the next turn of the loop, after epoll: a handler that drains a batch
 * and posts itself again for the rest (a Kafka backlog) lets clients,
 * timers and new connections have their turn between two batches.  On
 * ngx_posted_events it would run again in the same turn, until the
 * backlog is gone.
 */

void
ngx_gravitee_wakeup_post(ngx_gravitee_wakeup_t *wk)
{
    if (wk->connection && !wk->connection->read->posted) {
        ngx_post_event(wk->connection->read, &ngx_posted_next_events);
    }
}


/* an eventfd where there is one; a pipe otherwise (fds[0] is read) */

static ngx_int_t
ngx_gravitee_worker_open(ngx_log_t *log, ngx_socket_t fds[2])
{
#if (NGX_HAVE_EVENTFD)

    fds[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fds[0] == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "gravitee worker: eventfd() failed");
        return NGX_ERROR;
    }

    fds[1] = fds[0];

#else

    int  p[2];

    if (pipe(p) == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "gravitee worker: pipe() failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(p[0]) == -1 || ngx_nonblocking(p[1]) == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_socket_errno,
                      "gravitee worker: " ngx_nonblocking_n " failed");
        (void) close(p[0]);
        (void) close(p[1]);
        return NGX_ERROR;
    }

    fds[0] = p[0];
    fds[1] = p[1];

#endif

    return NGX_OK;
}


/*
 * The worker's exit, after the endpoints stopped their threads: tasks
 * still queued run now (they free what they carry), then the fd goes, so
 * that NGINX finds no socket of ours left open.
 */

void
ngx_gravitee_worker_exit(ngx_cycle_t *cycle)
{
    ngx_gravitee_worker_t  *w;

    w = &ngx_gravitee_worker;

    if (w->wakeup.connection == NULL) {
        return;
    }

    (void) pthread_mutex_lock(&w->lock);
    w->closed = 1;
    (void) pthread_mutex_unlock(&w->lock);

    ngx_gravitee_worker_run_tasks();

    ngx_gravitee_wakeup_close(&w->wakeup);
}


/*
 * From any thread.  The write may find the counter or the pipe full
 * (EAGAIN): the loop is woken already, and it takes every queued task.
 */

ngx_int_t
ngx_gravitee_thread_post(ngx_gravitee_task_t *task)
{
    uint64_t                one;
    ngx_uint_t              wake;
    ngx_gravitee_worker_t  *w;

    w = &ngx_gravitee_worker;

    (void) pthread_mutex_lock(&w->lock);

    if (w->wakeup.connection == NULL || w->closed) {
        (void) pthread_mutex_unlock(&w->lock);
        return NGX_ERROR;
    }

    wake = (w->tasks == NULL);
    task->next = w->tasks;
    w->tasks = task;

    (void) pthread_mutex_unlock(&w->lock);

    if (wake) {
        one = 1;

        if (write(w->wakeup.fd, &one, sizeof(one)) == -1) {
            /* EAGAIN: the counter is full, the loop is woken already */
        }
    }

    return NGX_OK;
}


static void
ngx_gravitee_wakeup_read(ngx_event_t *rev)
{
    ngx_connection_t       *c;
    ngx_gravitee_wakeup_t  *wk;

    c = rev->data;
    wk = c->data;

    if (c->close) {
        /* ngx_close_idle_connections(): the worker is stopping */
        c->close = 0;
        ngx_gravitee_worker_shutdown();
    }

    ngx_gravitee_wakeup_drain(c);

    wk->handler(wk->data);

    if (wk->connection && ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "gravitee worker: the event fd cannot be watched");
    }
}


/*
 * A short read has emptied the fd: an eventfd's one read takes its whole
 * counter (8 bytes), a pipe's gives what it held.  A write after it makes
 * a new event, so no read is spent to meet EAGAIN: one syscall per wake.
 */

static void
ngx_gravitee_wakeup_drain(ngx_connection_t *c)
{
    u_char   buf[64];
    ssize_t  n;

    do {
        n = read(c->fd, buf, sizeof(buf));
    } while (n == (ssize_t) sizeof(buf)
             || (n == -1 && ngx_errno == NGX_EINTR));

    c->read->ready = 0;
}


static void
ngx_gravitee_worker_wake(void *data)
{
    ngx_gravitee_worker_run_tasks();
}


/* in the order they were posted */

static void
ngx_gravitee_worker_run_tasks(void)
{
    ngx_gravitee_task_t    *task, *next, *fifo;
    ngx_gravitee_worker_t  *w;

    w = &ngx_gravitee_worker;

    (void) pthread_mutex_lock(&w->lock);
    task = w->tasks;
    w->tasks = NULL;
    (void) pthread_mutex_unlock(&w->lock);

    for (fifo = NULL; task; task = next) {
        next = task->next;
        task->next = fifo;
        fifo = task;
    }

    for (task = fifo; task; task = next) {
        next = task->next;
        task->handler(task->data);
    }
}


void
ngx_gravitee_on_shutdown(ngx_gravitee_hook_t *hook)
{
    if (hook->registered) {
        return;
    }

    ngx_queue_insert_tail(&ngx_gravitee_worker.hooks, &hook->queue);
    hook->registered = 1;
}


void
ngx_gravitee_hook_remove(ngx_gravitee_hook_t *hook)
{
    if (!hook->registered) {
        return;
    }

    ngx_queue_remove(&hook->queue);
    hook->registered = 0;
}


/* each hook runs once; one may remove others, or itself */

static void
ngx_gravitee_worker_shutdown(void)
{
    ngx_queue_t          *q, *hooks;
    ngx_gravitee_hook_t  *hook;

    if (ngx_gravitee_stopping) {
        return;
    }

    ngx_gravitee_stopping = 1;

    hooks = &ngx_gravitee_worker.hooks;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "gravitee worker stopping: running shutdown hooks");

    while (!ngx_queue_empty(hooks)) {
        q = ngx_queue_head(hooks);
        hook = ngx_queue_data(q, ngx_gravitee_hook_t, queue);

        ngx_queue_remove(q);
        hook->registered = 0;

        hook->handler(hook->data);
    }
}


static void
ngx_gravitee_worker_empty(ngx_event_t *ev)
{
}
