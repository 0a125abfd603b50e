
/*
 * ngx_gravitee_module: what each worker process keeps for the connectors.
 *
 * A worker has one event loop and NGINX structures are touched from it
 * only.  Two things cross that line, and both go through one eventfd that
 * the worker watches as a connection:
 *
 *   tasks     a broker library's thread (paho, or our own metadata thread)
 *             hands a task to the event loop: ngx_gravitee_thread_post()
 *             queues it under a lock and wakes the loop, which runs it;
 *
 *   shutdown  the connection is "idle" for NGINX, so a reload or quit
 *             reaches it through ngx_close_idle_connections(): the hooks
 *             registered with ngx_gravitee_on_shutdown() run then, once,
 *             so that what waits on a broker (an HTTP GET window, a
 *             consumer) can answer and let the worker exit.
 */


#ifndef _NGX_GRAVITEE_WORKER_H_INCLUDED_
#define _NGX_GRAVITEE_WORKER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef void (*ngx_gravitee_task_pt)(void *data);


/* owned by the poster until its handler runs; the handler may free it */

typedef struct ngx_gravitee_task_s  ngx_gravitee_task_t;

struct ngx_gravitee_task_s {
    ngx_gravitee_task_t        *next;
    ngx_gravitee_task_pt        handler;
    void                       *data;
};


typedef struct {
    ngx_queue_t                 queue;
    ngx_gravitee_task_pt        handler;
    void                       *data;
    unsigned                    registered:1;
} ngx_gravitee_hook_t;


/*
 * A wake-up fd: an eventfd (a pipe where there is none) watched by the
 * event loop, which calls handler(data) when a library wrote to fd (e.g.
 * rd_kafka_queue_io_event_enable).  The handler drains what the library
 * queued; the fd is already drained when it runs.  The handler does not
 * close its own wake-up: it posts an event to do so.
 */

typedef struct {
    ngx_connection_t           *connection;  /* the read end */
    ngx_socket_t                fd;          /* what the library writes */
    ngx_gravitee_task_pt        handler;
    void                       *data;
} ngx_gravitee_wakeup_t;


ngx_int_t ngx_gravitee_worker_init(ngx_cycle_t *cycle);
void ngx_gravitee_worker_exit(ngx_cycle_t *cycle);

ngx_int_t ngx_gravitee_wakeup_open(ngx_gravitee_wakeup_t *wk, ngx_log_t *log);
void ngx_gravitee_wakeup_close(ngx_gravitee_wakeup_t *wk);
/* from the event loop: run the handler again at the next turn */
void ngx_gravitee_wakeup_post(ngx_gravitee_wakeup_t *wk);

/* any thread; NGX_ERROR: the worker is gone or has no event fd */
ngx_int_t ngx_gravitee_thread_post(ngx_gravitee_task_t *task);

/* event loop only */
void ngx_gravitee_on_shutdown(ngx_gravitee_hook_t *hook);
void ngx_gravitee_hook_remove(ngx_gravitee_hook_t *hook);

/* a reload or quit has begun in this worker */
extern ngx_uint_t  ngx_gravitee_stopping;


#endif /* _NGX_GRAVITEE_WORKER_H_INCLUDED_ */
