# The Mock endpoint with shared=on: one stream per worker and location,
# started by the first subscriber and stopped when the last one leaves.

use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a shared source starts with its first subscriber and stops after the last
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=2;
        message_proxy_endpoint mock shared=on interval=50ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"}],"pagination":{"nextCursor":"1"}}'
--- wait: 0.2
--- error_log eval
[qr/mock shared source \S+ started at id 0/,
 qr/mock shared source \S+ stopped at id 2: no subscriber left/,
 qr/gravitee message \S+ freed, alive:0/]
--- no_error_log eval
qr/gravitee message \S+ created, id:"2"/



=== TEST 2: a shared stream that reaches its count ends its subscribers
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock shared=on interval=20ms count=2;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"}],"pagination":{"nextCursor":"1"}}'
--- timeout: 1
--- error_log eval
qr/mock shared source \S+ ended: count 2 reached/



=== TEST 3: stamp=on starts each content with the time it was made, in ns
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=2
                                 headers_in_payload=on;
        message_proxy_endpoint mock interval=20ms content=payload
                               header=X-A:1 stamp=on;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body_like eval
qr/^\{"items":\[\{"id":"0","content":"t=1\d{18} payload","headers":\{"X-A":\["1"\]\}\},\{"id":"1","content":"t=1\d{18} payload","headers":\{"X-A":\["1"\]\}\}\],"pagination":\{"nextCursor":"1"\}\}$/
