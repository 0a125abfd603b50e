
/*
 * ngx_gravitee_module: a long-lived subscriber on its bare connection
 * (being written: see ngx_gravitee_stream.h for the interface).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_gravitee_stream.h"
