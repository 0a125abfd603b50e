# Choosing the entrypoint, the reference's 404 and a stopped API.

use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a request no declared entrypoint matches is the reference's 404 (JSON)
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
POST /api
hello
--- more_headers
Accept: application/json
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body eval
'{"message":"No context-path matches the request URI.","http_status_code":404}'



=== TEST 2: the same 404 in plain text when JSON is not accepted
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
DELETE /api
--- error_code: 404
--- response_headers
Content-Type: text/plain
--- response_body eval
'No context-path matches the request URI.'



=== TEST 3: a stopped API answers every request 404
--- config
    location /api {
        message_proxy_api stopped;
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api
--- more_headers
Accept: */*
--- error_code: 404
--- response_body eval
'{"message":"No context-path matches the request URI.","http_status_code":404}'



=== TEST 4: message_proxy_api stopped at server level stops its APIs
--- config
    message_proxy_api stopped;

    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api
--- error_code: 404
--- response_body eval
'No context-path matches the request URI.'



=== TEST 5: a location can restart what its server stopped
--- config
    message_proxy_api stopped;

    location /api {
        message_proxy_api started;
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api?limit=0
--- response_body eval
"items\n"



=== TEST 6: the API's context path is its location: sub-paths are served too
--- config
    location /api/ {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api/orders?limit=0
--- response_body eval
"items\n"



=== TEST 7: other locations are untouched
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }

    location /other {
        return 200 "plain\n";
    }
--- request
GET /other
--- response_body
plain
