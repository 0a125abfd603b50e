
/*
 * ngx_gravitee_module: plans, who may call an API (keyless, API key, JWT,
 * mTLS).
 *
 * ngx_gravitee_plan.c holds the directive, the choice of the plan that
 * decides a request (the reference's order: JWT, API key, mTLS, keyless)
 * and the access phase handler; each kind of plan is one file that fills
 * an ngx_gravitee_plan_t.  A plan finds its credential in the request
 * (credential()) and checks it (verify()); who the caller is goes into an
 * ngx_gravitee_identity_t, which the module's request ctx carries to the
 * entrypoints, the access log and a detached stream's end record.
 */


#ifndef _NGX_GRAVITEE_PLAN_H_INCLUDED_
#define _NGX_GRAVITEE_PLAN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"


/* the kinds, in the order the reference tries them */
#define NGX_GRAVITEE_PLAN_JWT      0
#define NGX_GRAVITEE_PLAN_API_KEY  1
#define NGX_GRAVITEE_PLAN_MTLS     2
#define NGX_GRAVITEE_PLAN_KEYLESS  3
#define NGX_GRAVITEE_PLAN_KINDS    4


typedef struct {
    ngx_str_t                   name;        /* "jwt", as in the directive */
    ngx_uint_t                  kind;
    ngx_gravitee_param_t       *params;

    /* the reference's error keys, for the error log */
    const char                 *missing;     /* JWT_MISSING_TOKEN */
    const char                 *invalid;     /* JWT_INVALID_TOKEN */

    void                     *(*create_conf)(ngx_conf_t *cf);
    char                     *(*init_conf)(ngx_conf_t *cf, void *conf);

    /* NGX_OK: the request carries a credential for this plan (cred);
       NGX_DECLINED: none */
    ngx_int_t                 (*credential)(ngx_http_request_t *r,
                                            void *conf, ngx_str_t *cred);
    /*
     * NGX_OK: the caller is let in, "id" says who it is (in r->pool);
     * NGX_DECLINED: refused, "reason" says why in a few words (never the
     * credential); NGX_ERROR: out of memory
     */
    ngx_int_t                 (*verify)(ngx_http_request_t *r, void *conf,
                                        ngx_str_t *cred,
                                        ngx_gravitee_identity_t *id,
                                        const char **reason);
} ngx_gravitee_plan_t;


extern ngx_gravitee_plan_t  ngx_gravitee_plan_jwt;
extern ngx_gravitee_plan_t  ngx_gravitee_plan_api_key;
extern ngx_gravitee_plan_t  ngx_gravitee_plan_mtls;


/* helpers for the plans' files */

/* a file read whole at configuration time (start, reload), in cf->pool */
ngx_int_t ngx_gravitee_plan_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content, size_t max);
/* the next line of a list file that is not blank nor a "#" comment */
ngx_int_t ngx_gravitee_plan_next_line(u_char **pos, u_char *last,
    ngx_str_t *line, ngx_uint_t *n);
/* the value of a query argument, %-decoded */
ngx_int_t ngx_gravitee_plan_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);


#endif /* _NGX_GRAVITEE_PLAN_H_INCLUDED_ */
