
/*
 * ngx_gravitee_module: a long-lived subscriber on its bare connection.
 * See ngx_gravitee_stream.h for what it is and why.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_stream.h"


/* frames given to one c->send_chain() call: 3 buffers each at most */
#define NGX_GRAVITEE_STREAM_BATCH  64

/* how long a stream that said goodbye waits for the client to hang up */
#define NGX_GRAVITEE_STREAM_LINGER  2000

/*
 * what the end record keeps of the handshake: the request line, cut with a
 * marker past NGX_GRAVITEE_STREAM_LINE_MAX bytes, and the host
 */
#define NGX_GRAVITEE_STREAM_LINE_MAX  1024
#define NGX_GRAVITEE_STREAM_HOST_MAX  255
#define NGX_GRAVITEE_STREAM_CUT       "...[cut]"
/* and of the caller's identity: a plan name, an application, a subject */
#define NGX_GRAVITEE_STREAM_PLAN_MAX  16
#define NGX_GRAVITEE_STREAM_NAME_MAX  256

/* the made-up request of the end record: the request, its ctx and
   variables fit */
#define NGX_GRAVITEE_STREAM_LOG_POOL_SIZE  4096


static ngx_int_t ngx_gravitee_stream_keep_record(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r);
static void ngx_gravitee_stream_cleanup(void *data);
static void ngx_gravitee_stream_detach_handler(ngx_event_t *ev);
static void ngx_gravitee_stream_abort(ngx_http_request_t *r);
static void ngx_gravitee_stream_detach(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r);
static ngx_int_t ngx_gravitee_stream_keep_preread(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r);
static void ngx_gravitee_stream_free_buffers(ngx_connection_t *c,
    ngx_http_connection_t *hc);
static void ngx_gravitee_stream_free_position(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_read_handler(ngx_event_t *rev);
static void ngx_gravitee_stream_linger(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_stream_expires_in(ngx_gravitee_stream_t *s,
    ngx_msec_t *left);
static void ngx_gravitee_stream_expiry(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_gravitee_stream_write(ngx_gravitee_stream_t *s,
    ngx_uint_t *progress);
static ngx_chain_t *ngx_gravitee_stream_send(ngx_connection_t *c,
    ngx_chain_t *in, off_t *sent);
static ngx_chain_t *ngx_gravitee_stream_chain(ngx_gravitee_stream_t *s,
    ngx_buf_t *bufs, ngx_chain_t *links);
static void ngx_gravitee_stream_drop(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_sent(ngx_gravitee_stream_t *s, off_t sent);
static ngx_int_t ngx_gravitee_stream_queue(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len, ngx_uint_t chunk);
static ngx_int_t ngx_gravitee_stream_overflow(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_stream_frame(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len, ngx_uint_t chunk);
static ngx_int_t ngx_gravitee_stream_grow(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_free_ring(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_post_write(ngx_gravitee_stream_t *s);
static void ngx_gravitee_stream_log(ngx_gravitee_stream_t *s);
static ngx_int_t ngx_gravitee_stream_log_request(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r, ngx_pool_t *pool);
static void ngx_gravitee_stream_free(ngx_gravitee_stream_t *s);


ngx_uint_t  ngx_gravitee_streams_alive;


ngx_gravitee_stream_t *
ngx_gravitee_stream_create(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, ngx_gravitee_stream_conf_t *conf,
    ngx_gravitee_stream_handler_t *handler, ngx_str_t *entrypoint,
    size_t size)
{
    ngx_pool_cleanup_t     *cln;
    ngx_gravitee_stream_t  *s;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    s = ngx_calloc(ngx_max(size, sizeof(ngx_gravitee_stream_t)),
                   r->connection->log);
    if (s == NULL) {
        return NULL;
    }

    if (ngx_gravitee_stream_keep_record(s, r) != NGX_OK) {
        ngx_free(s);
        return NULL;
    }

    s->connection = r->connection;
    s->handler = handler;
    s->conf = conf;
    s->glcf = glcf;
    s->entrypoint = entrypoint;

    /* until the detach, the stream dies with the request */
    cln->handler = ngx_gravitee_stream_cleanup;
    cln->data = s;
    s->cleanup = cln;

    ngx_http_set_ctx(r, s, ngx_gravitee_module);

    ngx_gravitee_streams_alive++;

    return s;
}


/*
 * For the end record ($request, $host): the request will be gone.  The
 * connection's pool block has some 130 bytes left after what NGINX keeps
 * there: the record goes in them when it fits, so that it costs nothing,
 * and is malloc'd otherwise (a long request line, TLS state in the pool).
 */

static ngx_int_t
ngx_gravitee_stream_keep_record(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r)
{
    size_t                         size, line, host, plan, app, subject;
    u_char                        *p;
    ngx_pool_t                    *pool;
    ngx_gravitee_identity_t       *id, *copy;
    ngx_gravitee_stream_record_t  *rec;

    /* what the client sent does not size what is kept: all is capped */

    line = ngx_min(r->request_line.len, NGX_GRAVITEE_STREAM_LINE_MAX);
    host = ngx_min(r->headers_in.server.len, NGX_GRAVITEE_STREAM_HOST_MAX);

    id = ngx_gravitee_request_identity(r);

    if (id) {
        plan = ngx_min(id->plan.len, NGX_GRAVITEE_STREAM_PLAN_MAX);
        app = ngx_min(id->application.len, NGX_GRAVITEE_STREAM_NAME_MAX);
        subject = ngx_min(id->subject.len, NGX_GRAVITEE_STREAM_NAME_MAX);

    } else {
        plan = 0;
        app = 0;
        subject = 0;
    }

    /* the identity, only where a plan let the caller in */

    size = sizeof(ngx_gravitee_stream_record_t) + line
           + sizeof(NGX_GRAVITEE_STREAM_CUT) - 1 + host
           + (id ? NGX_ALIGNMENT + sizeof(ngx_gravitee_identity_t)
                   + plan + app + subject
                 : 0);

    pool = r->connection->pool->current;
    p = ngx_align_ptr(pool->d.last, NGX_ALIGNMENT);

    if (p + size <= pool->d.end) {
        rec = ngx_palloc(r->connection->pool, size);

    } else {
        rec = ngx_alloc(size, r->connection->log);
        s->record_allocated = 1;
    }

    if (rec == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(rec, sizeof(ngx_gravitee_stream_record_t));

    rec->request_line.data = (u_char *) (rec + 1);
    p = ngx_cpymem(rec->request_line.data, r->request_line.data, line);

    if (line < r->request_line.len) {
        p = ngx_cpymem(p, NGX_GRAVITEE_STREAM_CUT,
                       sizeof(NGX_GRAVITEE_STREAM_CUT) - 1);
    }

    rec->request_line.len = p - rec->request_line.data;

    rec->host.data = p;
    rec->host.len = host;

    if (host) {
        ngx_memcpy(rec->host.data, r->headers_in.server.data, host);
    }

    if (id) {
        copy = (ngx_gravitee_identity_t *)
                   ngx_align_ptr(rec->host.data + host, NGX_ALIGNMENT);
        p = (u_char *) (copy + 1);

        copy->plan.data = p;
        copy->plan.len = plan;
        p = ngx_cpymem(p, id->plan.data, plan);

        copy->application.data = p;
        copy->application.len = app;
        p = ngx_cpymem(p, id->application.data, app);

        copy->subject.data = p;
        copy->subject.len = subject;
        ngx_memcpy(p, id->subject.data, subject);

        copy->expires = id->expires;

        s->tally.identity = copy;
    }

    s->record = rec;

    return NGX_OK;
}


static void
ngx_gravitee_stream_cleanup(void *data)
{
    ngx_gravitee_stream_t *s = data;

    ngx_gravitee_stream_free(s);
}


/*
 * Called by the content handler once the response header is out (101 or
 * 200): the rest happens from a posted event, after the content handler
 * has unwound, so that nothing of the HTTP machinery runs on a request
 * that no longer exists.  Returns what the content handler returns.
 */

ngx_int_t
ngx_gravitee_stream_start(ngx_gravitee_stream_t *s, ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    /* a short header waits in r->out for postpone_output: send it now */

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (r != r->main || r->discard_body || r->reading_body
#if (NGX_HTTP_V2)
        || r->stream
#endif
       )
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "gravitee stream cannot run on this request");
        return NGX_ERROR;
    }

    s->chunked = r->chunked;

    c->read->handler = ngx_gravitee_stream_detach_handler;
    c->write->handler = ngx_gravitee_stream_detach_handler;

    r->main->count++;

    ngx_post_event(c->write, &ngx_posted_events);

    return NGX_DONE;
}


static void
ngx_gravitee_stream_detach_handler(ngx_event_t *ev)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_gravitee_stream_t  *s;

    c = ev->data;
    r = c->data;
    s = ngx_http_get_module_ctx(r, ngx_gravitee_module);

    if (!ev->write) {
        /* the client speaks early: read it once detached (ev->ready) */
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out sending the stream's header");
        c->timedout = 1;
        ngx_gravitee_stream_abort(r);
        return;
    }

    /* the response header, if the socket did not take it all at once */

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR || c->error) {
        ngx_gravitee_stream_abort(r);
        return;
    }

    if (r->out || c->buffered) {
        if (ngx_handle_write_event(ev, 0) != NGX_OK) {
            ngx_gravitee_stream_abort(r);
            return;
        }

        ngx_add_timer(ev, s->conf->send_timeout);
        return;
    }

    ngx_gravitee_stream_detach(s, r);
}


static void
ngx_gravitee_stream_abort(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/*
 * The request is freed (its access log line is written now, with the
 * status of the handshake) and only the connection is kept, as
 * ngx_http_set_keepalive() keeps an idle one: the header buffers go back.
 */

static void
ngx_gravitee_stream_detach(ngx_gravitee_stream_t *s, ngx_http_request_t *r)
{
    ngx_msec_t              left;
    ngx_connection_t       *c;
    ngx_http_connection_t  *hc;

    c = r->connection;
    hc = r->http_connection;

    if (ngx_gravitee_stream_keep_preread(s, r) != NGX_OK) {
        ngx_gravitee_stream_abort(r);
        return;
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    s->cleanup->handler = NULL;
    s->cleanup = NULL;

    s->record->http_connection = hc;
    s->record->srv_conf = r->srv_conf;
    s->record->loc_conf = r->loc_conf;
    s->record->status = r->headers_out.status;

    ngx_http_free_request(r, 0);

    c->destroyed = 0;
    s->sent_before = c->sent;

    ngx_gravitee_stream_free_buffers(c, hc);

    c->data = s;
    c->read->handler = ngx_gravitee_stream_read_handler;
    c->write->handler = ngx_gravitee_stream_write_handler;
    c->log->action = "streaming to client";

    /* reload and shutdown reach the stream: ngx_close_idle_connections() */
    c->idle = 1;

    if (ngx_tcp_nodelay(c) != NGX_OK) {
        ngx_gravitee_stream_close(s, "tcp_nodelay failed");
        return;
    }

#if (NGX_STAT_STUB)
    /* stub_status keeps counting the subscriber as a request writing */
    (void) ngx_atomic_fetch_add(ngx_stat_writing, 1);
#endif

    s->detached = 1;
    s->start = ngx_current_msec;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "gravitee stream %p detached, preread:%uz",
                   s, s->preread.len);

    /* started() may finish the stream, never close it: s is still ours */
    s->handler->started(s);

    /* an entrypoint without a timer of its own still ends at expiry */

    if (!c->read->timer_set && !s->finishing
        && ngx_gravitee_stream_expires_in(s, &left) == NGX_OK)
    {
        ngx_gravitee_stream_timer(s, left);
    }

    if (ngx_exiting && !s->finishing) {
        /*
         * detached after ngx_close_idle_connections() went by: the
         * goodbye is said now, as it was to the others
         */
        c->close = 1;
    }

    if (c->read->ready || s->preread.len || c->close) {
        ngx_post_event(c->read, &ngx_posted_events);
    }

    ngx_gravitee_stream_post_write(s);
}


/* what the client sent after its handshake, a WebSocket frame already */

static ngx_int_t
ngx_gravitee_stream_keep_preread(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r)
{
    size_t      len;
    ngx_buf_t  *b;

    b = r->header_in;

    if (b == NULL || b->pos >= b->last) {
        return NGX_OK;
    }

    len = b->last - b->pos;

    s->preread.data = ngx_alloc(len, r->connection->log);
    if (s->preread.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->preread.data, b->pos, len);
    s->preread.len = len;

    return NGX_OK;
}


static void
ngx_gravitee_stream_free_buffers(ngx_connection_t *c,
    ngx_http_connection_t *hc)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    for (cl = hc->free; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    for (cl = hc->busy; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    hc->free = NULL;
    hc->busy = NULL;
    hc->nbusy = 0;

    b = c->buffer;

    if (b && ngx_pfree(c->pool, b->start) == NGX_OK) {
        b->start = NULL;
        b->pos = NULL;
        b->last = NULL;
        b->end = NULL;
    }

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }
#endif
}


/*
 * The position to resume from (SSE Last-Event-ID, a WebSocket cursor),
 * copied: the request is gone when the stream subscribes.  The copy lives
 * until then only; the entrypoint has checked its length against what the
 * endpoint reads (ngx_gravitee_position_check).
 */

ngx_int_t
ngx_gravitee_stream_set_position(ngx_gravitee_stream_t *s, ngx_str_t *pos)
{
    if (pos->len == 0) {
        return NGX_OK;
    }

    s->sub.resume.data = ngx_alloc(pos->len, s->connection->log);
    if (s->sub.resume.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->sub.resume.data, pos->data, pos->len);
    s->sub.resume.len = pos->len;

    return NGX_OK;
}


/*
 * Up to half of either limit (sub->handler->room): what a waiting
 * endpoint leaves free is for the live messages that come meanwhile.
 */

ngx_uint_t
ngx_gravitee_stream_room(ngx_gravitee_sub_t *sub)
{
    ngx_gravitee_stream_t *s = sub->data;

    ngx_uint_t  half;

    half = ngx_max(s->conf->max_messages / 2, 1);

    if (s->nframes >= half || s->queued * 2 >= s->conf->max_size) {
        return 0;
    }

    return half - s->nframes;
}


ngx_int_t
ngx_gravitee_stream_subscribe(ngx_gravitee_stream_t *s,
    ngx_gravitee_sub_handler_t *handler)
{
    ngx_int_t  rc;

    s->sub.handler = handler;
    s->sub.data = s;
    s->sub.log = s->connection->log;

    rc = ngx_gravitee_subscribe(s->glcf, &s->sub);

    /* the position was needed for subscribing only */
    ngx_gravitee_stream_free_position(s);

    if (rc != NGX_OK) {
        /* NGX_DECLINED: s->sub.error says why, for the client */
        return rc;
    }

    s->subscribed = 1;

    return NGX_OK;
}


static void
ngx_gravitee_stream_free_position(ngx_gravitee_stream_t *s)
{
    if (s->sub.resume.data) {
        ngx_free(s->sub.resume.data);
        ngx_str_null(&s->sub.resume);
    }
}


static void
ngx_gravitee_stream_read_handler(ngx_event_t *rev)
{
    ngx_connection_t       *c;
    ngx_gravitee_stream_t  *s;

    c = rev->data;
    s = c->data;

    if (c->close) {
        /* the worker is shutting down or reloading */
        c->close = 0;

        if (s->lingering) {
            ngx_gravitee_stream_close(s, s->tally.reason);
            return;
        }

        if (!s->finishing) {
            s->tally.reason = "shutdown";
            s->handler->shutdown(s);

            if (!s->finishing) {
                ngx_gravitee_stream_finish(s, "shutdown");
            }
        }

        /*
         * ngx_close_idle_connections() calls us from the worker's cycle,
         * after this turn's posted events: a write posted now would wait
         * for the next I/O event.  The "next" queue makes the coming epoll
         * wait return at once.
         */

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_post_event(c->write, &ngx_posted_next_events);

        return;
    }

    if (s->lingering) {
        ngx_gravitee_stream_linger(s);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;

        if (s->expiring) {
            ngx_gravitee_stream_expiry(s);
            return;
        }

        s->handler->timer(s);
        return;
    }

    s->handler->read(s);
}


/* goodbye said and sent: wait a little for the client to hang up */

static void
ngx_gravitee_stream_linger(ngx_gravitee_stream_t *s)
{
    u_char             buf[512];
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->connection;

    if (c->read->timedout) {
        ngx_gravitee_stream_close(s, s->tally.reason);
        return;
    }

    do {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                break;
            }

            return;
        }

    } while (n > 0);

    ngx_gravitee_stream_close(s, s->tally.reason);
}


static void
ngx_gravitee_stream_write_handler(ngx_event_t *wev)
{
    ngx_int_t               rc;
    ngx_uint_t              progress;
    ngx_connection_t       *c;
    ngx_gravitee_stream_t  *s;

    c = wev->data;
    s = c->data;

    if (s->lingering) {
        /* all is sent: only the client's hanging up matters now */
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "gravitee stream: client timed out reading");
        c->timedout = 1;
        ngx_gravitee_stream_close(s, "send timeout");
        return;
    }

    if (s->overflowed && !s->finishing
        && s->conf->policy == NGX_GRAVITEE_SLOW_CLOSE)
    {
        /*
         * what waits for a client that does not read will not reach it in
         * time: release it now, so that the goodbye comes next, and give
         * the goodbye a short grace rather than the whole send_timeout
         */
        ngx_gravitee_stream_drop(s);

        s->handler->overflow(s);

        if (!s->finishing) {
            ngx_gravitee_stream_finish(s, "slow client");
        }

        ngx_add_timer(wev, ngx_min(s->conf->send_timeout,
                                   NGX_GRAVITEE_STREAM_LINGER));
    }

    rc = ngx_gravitee_stream_write(s, &progress);

    if (rc == NGX_ERROR) {
        ngx_gravitee_stream_close(s, "client closed");
        return;
    }

    if (rc == NGX_AGAIN) {
        /*
         * a client that keeps up costs no timer; a blocked one gets
         * send_timeout from its last progress, which new messages do not
         * extend
         */
        if (progress || !wev->timer_set) {
            ngx_add_timer(wev, s->conf->send_timeout);
        }

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_gravitee_stream_close(s, "write event failed");
            return;
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (!s->finishing) {
        /* an idle subscriber keeps no output state: no ring, no buffer */

        ngx_gravitee_stream_free_ring(s);

#if (NGX_HTTP_SSL)
        if (c->ssl) {
            ngx_ssl_free_buffer(c);
        }
#endif
        return;
    }

    if (s->linger && !c->ssl && !c->read->eof) {
        s->lingering = 1;

        if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
            ngx_gravitee_stream_close(s, s->tally.reason);
            return;
        }

        /* a worker that exits waits this long for the client, no longer */
        c->read->cancelable = 0;
        ngx_add_timer(c->read, NGX_GRAVITEE_STREAM_LINGER);
        ngx_gravitee_stream_linger(s);
        return;
    }

    ngx_gravitee_stream_close(s, s->tally.reason);
}


/* NGX_OK: all sent; NGX_AGAIN: the socket is full; NGX_ERROR */

/*
 * What send_chain took is counted from the chain, not from c->sent: with
 * TLS, OpenSSL's write buffer takes bytes that c->sent counts only later.
 */

static ngx_int_t
ngx_gravitee_stream_write(ngx_gravitee_stream_t *s, ngx_uint_t *progress)
{
    off_t              sent;
    ngx_buf_t          bufs[NGX_GRAVITEE_STREAM_BATCH * 3];
    ngx_chain_t        links[NGX_GRAVITEE_STREAM_BATCH * 3], *in, *cl;
    ngx_connection_t  *c;

    c = s->connection;
    *progress = 0;

    while (s->nframes || c->buffered) {

        if (!c->write->ready) {
            return NGX_AGAIN;
        }

        in = ngx_gravitee_stream_chain(s, bufs, links);

        if (in && in->next == NULL && c->ssl == NULL) {
            /*
             * one message in one buffer, the common case of a client that
             * keeps up: send() costs the kernel less than writev()
             */
            cl = ngx_gravitee_stream_send(c, in, &sent);

        } else {
            sent = 0;

            for (cl = in; cl; cl = cl->next) {
                sent += ngx_buf_size(cl->buf);
            }

            cl = c->send_chain(c, in, 0);

            for (in = cl; cl != NGX_CHAIN_ERROR && in; in = in->next) {
                sent -= ngx_buf_size(in->buf);
            }
        }

        if (cl == NGX_CHAIN_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        ngx_gravitee_stream_sent(s, sent);

        if (sent) {
            *progress = 1;
        }

        if (cl && !c->write->ready) {
            return NGX_AGAIN;
        }

        if (cl && sent == 0) {
            return NGX_AGAIN;
        }
    }

    return NGX_OK;
}


/* what c->send_chain() returns, for one buffer sent with c->send() */

static ngx_chain_t *
ngx_gravitee_stream_send(ngx_connection_t *c, ngx_chain_t *in, off_t *sent)
{
    ssize_t  n;

    n = c->send(c, in->buf->pos, in->buf->last - in->buf->pos);

    if (n == NGX_ERROR) {
        return NGX_CHAIN_ERROR;
    }

    if (n == NGX_AGAIN) {
        n = 0;
    }

    *sent = n;
    in->buf->pos += n;

    return (in->buf->pos == in->buf->last) ? NULL : in;
}


/* the queued frames, from where the last write stopped */

static ngx_chain_t *
ngx_gravitee_stream_chain(ngx_gravitee_stream_t *s, ngx_buf_t *bufs,
    ngx_chain_t *links)
{
    u_char                *part[3];
    size_t                 len[3], skip;
    ngx_uint_t             i, j, n, k;
    ngx_chain_t           *in, **last;
    ngx_gravitee_frame_t  *f;

    static u_char  crlf[] = CRLF;

    in = NULL;
    last = &in;
    skip = s->offset;
    n = 0;

    for (i = 0; i < s->nframes && i < NGX_GRAVITEE_STREAM_BATCH; i++) {
        k = (s->first + i) % s->capacity;
        f = &s->frames[k];

        part[0] = f->head;
        len[0] = f->head_len;
        part[1] = f->body;
        len[1] = f->body_len;
        part[2] = crlf;
        len[2] = f->tail_len;

        for (j = 0; j < 3; j++) {
            if (skip >= len[j]) {
                skip -= len[j];
                continue;
            }

            ngx_memzero(&bufs[n], sizeof(ngx_buf_t));
            bufs[n].pos = part[j] + skip;
            bufs[n].last = part[j] + len[j];
            bufs[n].memory = 1;
            skip = 0;

            links[n].buf = &bufs[n];
            links[n].next = NULL;
            *last = &links[n];
            last = &links[n].next;
            n++;
        }
    }

    if (n) {
        /* OpenSSL's write buffer holds what is not flushed */
        bufs[n - 1].flush = 1;
    }

    return in;
}


/* the queue goes, but for a frame half sent, which must be completed */

static void
ngx_gravitee_stream_drop(ngx_gravitee_stream_t *s)
{
    ngx_uint_t             keep, k;
    ngx_gravitee_frame_t  *f;

    keep = (s->offset > 0) ? 1 : 0;

    while (s->nframes > keep) {
        k = (s->first + s->nframes - 1) % s->capacity;
        f = &s->frames[k];

        s->queued -= f->body_len;

        if (f->msg) {
            ngx_gravitee_message_unref(f->msg);
        }

        s->nframes--;
        s->tally.dropped++;
    }
}


static void
ngx_gravitee_stream_sent(ngx_gravitee_stream_t *s, off_t sent)
{
    size_t                 rest;
    ngx_gravitee_frame_t  *f;

    while (sent && s->nframes) {
        f = &s->frames[s->first];
        rest = f->head_len + f->body_len + f->tail_len - s->offset;

        if ((size_t) sent < rest) {
            s->offset += sent;
            return;
        }

        sent -= rest;
        s->offset = 0;
        s->queued -= f->body_len;

        if (f->msg) {
            ngx_gravitee_message_unref(f->msg);
        }

        s->first = (s->first + 1) % s->capacity;
        s->nframes--;
    }
}


ngx_int_t
ngx_gravitee_stream_push(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len)
{
    return ngx_gravitee_stream_queue(s, msg, body, len, head, head_len, 1);
}


ngx_int_t
ngx_gravitee_stream_push_chunk(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *chunk, size_t len)
{
    return ngx_gravitee_stream_queue(s, msg, chunk, len, NULL, 0, 0);
}


static ngx_int_t
ngx_gravitee_stream_queue(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len, ngx_uint_t chunk)
{
    if (s->finishing) {
        return NGX_ERROR;
    }

    /* a message larger than the byte cap still goes through an empty queue */

    if (s->nframes >= s->conf->max_messages
        || (s->nframes && s->queued + len > s->conf->max_size))
    {
        return ngx_gravitee_stream_overflow(s);
    }

    if (ngx_gravitee_stream_frame(s, msg, body, len, head, head_len, chunk)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    s->tally.messages++;

    return NGX_OK;
}


static ngx_int_t
ngx_gravitee_stream_overflow(ngx_gravitee_stream_t *s)
{
    s->tally.dropped++;

    if (s->overflowed) {
        return NGX_DECLINED;
    }

    s->overflowed = 1;

    ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                  "gravitee stream: slow client on \"%V\", %ui messages and "
                  "%uz bytes queued, %s", &s->glcf->name, s->nframes,
                  s->queued,
                  s->conf->policy == NGX_GRAVITEE_SLOW_DROP
                  ? "dropping new messages until it catches up"
                  : "closing");

    if (s->conf->policy == NGX_GRAVITEE_SLOW_CLOSE && s->detached
        && !s->connection->write->posted)
    {
        /*
         * the goodbye is said from the write handler, not from here; and
         * it runs even if the socket is full: it may never drain
         */
        ngx_post_event(s->connection->write, &ngx_posted_events);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_gravitee_stream_push_control(ngx_gravitee_stream_t *s, u_char *data,
    size_t len, ngx_uint_t copy)
{
    ngx_int_t                     rc;
    ngx_gravitee_message_t       *msg;
    ngx_gravitee_message_init_t   init;

    if (s->finishing) {
        return NGX_ERROR;
    }

    if (!copy) {
        return ngx_gravitee_stream_frame(s, NULL, data, len, NULL, 0, 1);
    }

    ngx_memzero(&init, sizeof(ngx_gravitee_message_init_t));
    init.content.data = data;
    init.content.len = len;

    msg = ngx_gravitee_message_create(s->connection->log, &init);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_gravitee_stream_push_control_msg(s, msg);

    ngx_gravitee_message_unref(msg);

    return rc;
}


ngx_int_t
ngx_gravitee_stream_push_control_msg(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg)
{
    if (s->finishing) {
        return NGX_ERROR;
    }

    return ngx_gravitee_stream_frame(s, msg, msg->content.data,
                                     msg->content.len, NULL, 0, 1);
}


static ngx_int_t
ngx_gravitee_stream_frame(ngx_gravitee_stream_t *s,
    ngx_gravitee_message_t *msg, u_char *body, size_t len, u_char *head,
    size_t head_len, ngx_uint_t chunk)
{
    u_char                *p;
    ngx_gravitee_frame_t  *f;

    if (head_len > 14) {
        ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                      "gravitee stream frame header of %uz bytes", head_len);
        return NGX_ERROR;
    }

    if (s->nframes == s->capacity && ngx_gravitee_stream_grow(s) != NGX_OK) {
        return NGX_ERROR;
    }

    f = &s->frames[(s->first + s->nframes) % s->capacity];

    p = f->head;
    f->tail_len = 0;

    if (s->chunked && chunk) {
        p = ngx_sprintf(p, "%xz" CRLF, head_len + len);
        f->tail_len = 2;
    }

    if (head_len) {
        p = ngx_cpymem(p, head, head_len);
    }

    f->head_len = p - f->head;
    f->body = body;
    f->body_len = len;
    f->msg = msg ? ngx_gravitee_message_ref(msg) : NULL;

    s->nframes++;
    s->queued += len;

    ngx_gravitee_stream_post_write(s);

    return NGX_OK;
}


/* the ring doubles as needed; the caps bound it, control frames aside */

static ngx_int_t
ngx_gravitee_stream_grow(ngx_gravitee_stream_t *s)
{
    ngx_uint_t             i, capacity;
    ngx_gravitee_frame_t  *frames;

    if (s->capacity == 0) {
        /* the common case, one frame at a time: no allocation */
        s->frames = &s->frame;
        s->capacity = 1;
        s->first = 0;
        return NGX_OK;
    }

    capacity = (s->capacity == 1) ? 4 : s->capacity * 2;

    frames = ngx_alloc(capacity * sizeof(ngx_gravitee_frame_t),
                       s->connection->log);
    if (frames == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < s->nframes; i++) {
        frames[i] = s->frames[(s->first + i) % s->capacity];
    }

    ngx_gravitee_stream_free_ring(s);

    s->frames = frames;
    s->capacity = capacity;
    s->first = 0;

    return NGX_OK;
}


static void
ngx_gravitee_stream_free_ring(ngx_gravitee_stream_t *s)
{
    if (s->frames && s->frames != &s->frame) {
        ngx_free(s->frames);
    }

    s->frames = NULL;
    s->capacity = 0;
    s->first = 0;
}


/* one write per turn of the event loop, whatever a fan-out queued */

static void
ngx_gravitee_stream_post_write(ngx_gravitee_stream_t *s)
{
    ngx_connection_t  *c;

    c = s->connection;

    if (s->detached && c->write->ready && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


void
ngx_gravitee_stream_timer(ngx_gravitee_stream_t *s, ngx_msec_t timer)
{
    ngx_msec_t    left;
    ngx_event_t  *rev;

    rev = s->connection->read;

    /* the worker does not wait for a ping or heartbeat timer to exit */
    rev->cancelable = 1;

    /*
     * One timer serves the entrypoint and the credential's end: when the
     * credential ends first, the timer is set for that, and the
     * entrypoint's own (a ping, a heartbeat) does not matter any more.
     */

    s->expiring = 0;

    if (ngx_gravitee_stream_expires_in(s, &left) == NGX_OK && left < timer) {
        timer = left;
        s->expiring = 1;
    }

    ngx_add_timer(rev, timer);
}


/* NGX_OK: the caller's credential ends in "left" ms */

static ngx_int_t
ngx_gravitee_stream_expires_in(ngx_gravitee_stream_t *s, ngx_msec_t *left)
{
    time_t       expires;
    ngx_time_t  *tp;

    if (s->tally.identity == NULL || s->tally.identity->expires == 0) {
        return NGX_DECLINED;
    }

    expires = s->tally.identity->expires;
    tp = ngx_timeofday();

    if (expires <= tp->sec) {
        *left = 0;
        return NGX_OK;
    }

    /* a credential valid for years does not overflow a timer */

    if (expires - tp->sec > 365 * 86400) {
        return NGX_DECLINED;
    }

    *left = (ngx_msec_t) (expires - tp->sec) * 1000 - tp->msec;

    return NGX_OK;
}


static void
ngx_gravitee_stream_expiry(ngx_gravitee_stream_t *s)
{
    ngx_msec_t  left;

    if (ngx_gravitee_stream_expires_in(s, &left) == NGX_OK && left > 0) {
        /* woken a little early: the clocks' rounding */
        ngx_gravitee_stream_timer(s, left);
        return;
    }

    s->expiring = 0;

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "%V stream: the caller's credential expired",
                  s->entrypoint);

    s->handler->expired(s);
}


void
ngx_gravitee_stream_finish(ngx_gravitee_stream_t *s, const char *reason)
{
    static u_char  last_chunk[] = "0" CRLF CRLF;

    if (s->finishing) {
        return;
    }

    if (s->tally.reason == NULL || !s->overflowed) {
        s->tally.reason = reason;
    }

    if (s->subscribed) {
        s->subscribed = 0;
        ngx_gravitee_unsubscribe(s->glcf, &s->sub);
    }

    if (s->chunked) {
        (void) ngx_gravitee_stream_frame(s, NULL, last_chunk,
                                         sizeof(last_chunk) - 1, NULL, 0, 0);
    }

    s->finishing = 1;

    if (s->connection->read->timer_set) {
        ngx_del_timer(s->connection->read);
    }

    if (!s->connection->write->timer_set) {
        ngx_add_timer(s->connection->write, s->conf->send_timeout);
    }

    if (s->detached) {
        ngx_post_event(s->connection->write, &ngx_posted_events);
    }
}


void
ngx_gravitee_stream_close(ngx_gravitee_stream_t *s, const char *reason)
{
    ngx_connection_t  *c;

    c = s->connection;

    if (s->tally.reason == NULL) {
        s->tally.reason = reason;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "gravitee stream closed: api=\"%V\" entrypoint=%V "
                  "duration=%Mms sent=%O messages=%ui dropped=%ui "
                  "reason=\"%s\"", &s->glcf->name, s->entrypoint,
                  ngx_current_msec - s->start, c->sent, s->tally.messages,
                  s->tally.dropped, s->tally.reason);

    ngx_gravitee_stream_log(s);

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_writing, -1);
#endif

    ngx_gravitee_stream_free(s);

    ngx_http_close_connection(c);
}


/*
 * The access log record of the stream's end.  The request was freed at the
 * detach, when the record of the stream's start was written: a short-lived
 * request is made up from what the stream kept, and the location's log
 * phase handlers (access_log with its format, buffer, if= or syslog) write
 * it as any other.  $request_time is the stream's duration, $bytes_sent
 * what the connection sent, $message_proxy_close_reason why it ended.  Of
 * the request's header lines only the host is kept ($http_* are empty).
 */

static void
ngx_gravitee_stream_log(ngx_gravitee_stream_t *s)
{
    ngx_uint_t                  i, n;
    ngx_pool_t                 *pool;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_handler_pt        *handler;
    ngx_http_core_main_conf_t  *cmcf;

    if (!s->detached) {
        return;
    }

    c = s->connection;

    pool = ngx_create_pool(NGX_GRAVITEE_STREAM_LOG_POOL_SIZE, c->log);
    if (pool == NULL) {
        return;
    }

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));

    if (r && ngx_gravitee_stream_log_request(s, r, pool) == NGX_OK) {
        c->log->action = "logging the end of the stream";

        cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);
        handler = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
        n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

        for (i = 0; i < n; i++) {
            handler[i](r);
        }
    }

    ngx_destroy_pool(pool);
}


static ngx_int_t
ngx_gravitee_stream_log_request(ngx_gravitee_stream_t *s,
    ngx_http_request_t *r, ngx_pool_t *pool)
{
    u_char                     *p, *last;
    ngx_msec_t                  start;
    ngx_time_t                 *tp;
    ngx_http_conf_ctx_t        *ctx;
    ngx_http_core_main_conf_t  *cmcf;

    ctx = (ngx_http_conf_ctx_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_http_module);

    r->pool = pool;
    r->signature = NGX_HTTP_MODULE;
    r->connection = s->connection;
    r->http_connection = s->record->http_connection;
    r->main = r;
    r->count = 1;
    r->main_conf = ctx->main_conf;
    r->srv_conf = s->record->srv_conf;
    r->loc_conf = s->record->loc_conf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    r->ctx = ngx_pcalloc(pool, sizeof(void *) * ngx_http_max_module);
    r->variables = ngx_pcalloc(pool, cmcf->variables.nelts
                                     * sizeof(ngx_http_variable_value_t));
    if (r->ctx == NULL || r->variables == NULL) {
        return NGX_ERROR;
    }

    /* the tally starts the stream: $message_proxy_* read it */
    ngx_http_set_ctx(r, s, ngx_gravitee_module);

    r->headers_in.content_length_n = -1;
    r->headers_in.keep_alive_n = -1;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;
    r->headers_out.status = s->record->status;
    r->header_size = (size_t) s->sent_before;
    r->headers_in.server = s->record->host;

    tp = ngx_timeofday();
    start = (ngx_msec_t) tp->sec * 1000 + tp->msec
            - (ngx_current_msec - s->start);
    r->start_sec = start / 1000;
    r->start_msec = start % 1000;

    /* "GET /path?args HTTP/1.1": a stream's handshake was well formed */

    r->request_line = s->record->request_line;
    p = r->request_line.data;
    last = p + r->request_line.len;

    r->method_name.data = p;
    p = ngx_strlchr(p, last, ' ');
    if (p == NULL) {
        return NGX_OK;
    }
    r->method_name.len = p - r->method_name.data;
    r->method = (r->method_name.len == 3
                 && ngx_strncmp(r->method_name.data, "GET", 3) == 0)
                ? NGX_HTTP_GET : NGX_HTTP_UNKNOWN;

    r->unparsed_uri.data = ++p;
    p = ngx_strlchr(p, last, ' ');
    r->unparsed_uri.len = (p ? p : last) - r->unparsed_uri.data;
    r->uri = r->unparsed_uri;

    p = ngx_strlchr(r->uri.data, r->uri.data + r->uri.len, '?');
    if (p) {
        r->uri.len = p - r->uri.data;
        r->args.data = p + 1;
        r->args.len = r->unparsed_uri.data + r->unparsed_uri.len - p - 1;
    }

    if (r->unparsed_uri.data + r->unparsed_uri.len < last) {
        r->http_protocol.data = r->unparsed_uri.data + r->unparsed_uri.len + 1;
        r->http_protocol.len = last - r->http_protocol.data;
    }

    r->http_version = (r->http_protocol.len == 8
                       && ngx_strncmp(r->http_protocol.data, "HTTP/1.0", 8)
                          == 0)
                      ? NGX_HTTP_VERSION_10 : NGX_HTTP_VERSION_11;

    return NGX_OK;
}


/* everything but the connection: the subscription, the queue, the struct */

static void
ngx_gravitee_stream_free(ngx_gravitee_stream_t *s)
{
    ngx_gravitee_frame_t  *f;
    ngx_connection_t      *c;

    c = s->connection;

    if (s->subscribed) {
        s->subscribed = 0;
        ngx_gravitee_unsubscribe(s->glcf, &s->sub);
    }

    if (s->handler->closed) {
        s->handler->closed(s);
    }

    while (s->nframes) {
        f = &s->frames[s->first];

        if (f->msg) {
            ngx_gravitee_message_unref(f->msg);
        }

        s->first = (s->first + 1) % s->capacity;
        s->nframes--;
    }

    ngx_gravitee_stream_free_ring(s);
    ngx_gravitee_stream_free_position(s);
    ngx_gravitee_unbind(s->glcf, s->sub.binding);

    if (s->preread.data) {
        ngx_free(s->preread.data);
    }

    if (s->detached) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }
    }

    if (s->record_allocated) {
        ngx_free(s->record);
    }

    s->connection = NULL;

    ngx_gravitee_streams_alive--;

    ngx_free(s);
}


char *
ngx_gravitee_param_slow_client(ngx_conf_t *cf, ngx_gravitee_param_t *param,
    ngx_str_t *value, void *conf)
{
    ngx_uint_t  *np;

    np = (ngx_uint_t *) ((char *) conf + param->offset);

    if (value->len == 5 && ngx_strncmp(value->data, "close", 5) == 0) {
        *np = NGX_GRAVITEE_SLOW_CLOSE;

    } else if (value->len == 4 && ngx_strncmp(value->data, "drop", 4) == 0) {
        *np = NGX_GRAVITEE_SLOW_DROP;

    } else {
        return "must be \"close\" or \"drop\"";
    }

    return NGX_CONF_OK;
}


void
ngx_gravitee_stream_create_conf(ngx_gravitee_stream_conf_t *conf)
{
    conf->max_messages = NGX_CONF_UNSET_UINT;
    conf->max_size = NGX_CONF_UNSET_SIZE;
    conf->policy = NGX_CONF_UNSET_UINT;
    conf->send_timeout = NGX_CONF_UNSET_MSEC;
}


char *
ngx_gravitee_stream_init_conf(ngx_conf_t *cf,
    ngx_gravitee_stream_conf_t *conf, const char *entrypoint)
{
    ngx_conf_init_uint_value(conf->max_messages, 256);
    ngx_conf_init_size_value(conf->max_size, 1024 * 1024);
    ngx_conf_init_uint_value(conf->policy, NGX_GRAVITEE_SLOW_CLOSE);
    ngx_conf_init_msec_value(conf->send_timeout, 60000);

    if (conf->max_messages == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "parameter \"max_queued_messages\" of entrypoint "
                           "\"%s\" must be at least 1", entrypoint);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
