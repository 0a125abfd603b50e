
/*
 * ngx_gravitee_module: the http-post entrypoint (not written yet: it matches
 * no request, so the location answers 404 to its requests).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"


static ngx_int_t ngx_gravitee_http_post_match(ngx_http_request_t *r);
static void *ngx_gravitee_http_post_create_conf(ngx_conf_t *cf);
static ngx_int_t ngx_gravitee_http_post_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);


static ngx_gravitee_param_t  ngx_gravitee_http_post_params[] = {
      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_http_post_entrypoint = {
    ngx_string("http-post"),
    ngx_gravitee_http_post_params,
    1,
    ngx_gravitee_http_post_match,
    ngx_gravitee_http_post_create_conf,
    NULL,
    ngx_gravitee_http_post_handler
};


static ngx_int_t
ngx_gravitee_http_post_match(ngx_http_request_t *r)
{
    return 0;
}


static void *
ngx_gravitee_http_post_create_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_uint_t));
}


static ngx_int_t
ngx_gravitee_http_post_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    return NGX_HTTP_NOT_FOUND;
}
