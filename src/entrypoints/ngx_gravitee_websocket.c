
/*
 * ngx_gravitee_module: the websocket entrypoint (not written yet: it matches
 * no request, so the location answers 404 to its requests).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_connector.h"


static ngx_int_t ngx_gravitee_websocket_match(ngx_http_request_t *r);
static void *ngx_gravitee_websocket_create_conf(ngx_conf_t *cf);
static ngx_int_t ngx_gravitee_websocket_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf);


static ngx_gravitee_param_t  ngx_gravitee_websocket_params[] = {
      ngx_gravitee_null_param
};


ngx_gravitee_entrypoint_t  ngx_gravitee_websocket_entrypoint = {
    ngx_string("websocket"),
    ngx_gravitee_websocket_params,
    4,
    ngx_gravitee_websocket_match,
    ngx_gravitee_websocket_create_conf,
    NULL,
    ngx_gravitee_websocket_handler
};


static ngx_int_t
ngx_gravitee_websocket_match(ngx_http_request_t *r)
{
    return 0;
}


static void *
ngx_gravitee_websocket_create_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_uint_t));
}


static ngx_int_t
ngx_gravitee_websocket_handler(ngx_http_request_t *r,
    ngx_gravitee_loc_conf_t *glcf, void *conf)
{
    return NGX_HTTP_NOT_FOUND;
}
