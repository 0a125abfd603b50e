# Bad directives make nginx refuse the configuration, naming the file, the
# line and what is wrong and allowed (what `nginx -t` prints).

BEGIN {
    # Debian's nginx prints start-up errors on stderr only: send them to
    # logs/error.log, where the error_log sections look, in either harness
    require GraviteeTest;
    GraviteeTest::use_startup_error_log();
}

use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: an unknown entrypoint lists the known ones
--- config
    location /api {
        message_proxy_entrypoint grpc;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown entrypoint "grpc", allowed: http-get, http-post, websocket, sse in \S+nginx\.conf:\d+/



=== TEST 2: an unknown endpoint lists the known ones
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint rabbitmq;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown endpoint "rabbitmq", allowed: mock\b.* in \S+nginx\.conf:\d+/



=== TEST 3: an unknown parameter lists the connector's parameters
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit=5;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown parameter "messages_limit" of "http-get", allowed: messages_limit_count, messages_limit_duration, headers_in_payload, metadata_in_payload in \S+nginx\.conf:\d+/



=== TEST 4: an unknown endpoint parameter
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock rate=5;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown parameter "rate" of "mock", allowed: interval, content, count, header, metadata, shared, stamp, fail_after, publish_delay, publish_status in \S+nginx\.conf:\d+/



=== TEST 5: a parameter without a value
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock shared;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "shared" of endpoint "mock": parameters are written key=value in \S+nginx\.conf:\d+/



=== TEST 6: a bad time
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=often;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*parameter "interval" of endpoint "mock" must be a time such as 500ms, 5s or 1m, not "often" in \S+nginx\.conf:\d+/



=== TEST 7: a bad number
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=-3;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*parameter "messages_limit_count" of entrypoint "http-get" must be a whole number, not "-3" in \S+nginx\.conf:\d+/



=== TEST 8: a bad flag
--- config
    location /api {
        message_proxy_entrypoint http-get headers_in_payload=yes;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*parameter "headers_in_payload" of entrypoint "http-get" must be "on" or "off", not "yes" in \S+nginx\.conf:\d+/



=== TEST 9: a bad header pair
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock header=NoColon;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*parameter "header" of endpoint "mock" must be written Name:value, not "NoColon" in \S+nginx\.conf:\d+/



=== TEST 10: a zero interval
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=0;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*parameter "interval" of endpoint "mock" must be at least 1ms in \S+nginx\.conf:\d+/



=== TEST 11: an entrypoint without an endpoint
--- config
    location /api {
        message_proxy_entrypoint http-get;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*location "\/api" has "message_proxy_entrypoint" but no "message_proxy_endpoint": an API needs one endpoint \(mock\) in \S+nginx\.conf:\d+/



=== TEST 12: an endpoint without an entrypoint
--- config
    location /api {
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*location "\/api" has "message_proxy_endpoint" but no "message_proxy_entrypoint": an API needs at least one entrypoint in \S+nginx\.conf:\d+/



=== TEST 13: two endpoints in one API
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
        message_proxy_endpoint mock interval=2s;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*an API has one endpoint: "message_proxy_endpoint" is duplicate in this location in \S+nginx\.conf:\d+/



=== TEST 14: the same entrypoint twice
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_entrypoint http-get messages_limit_count=3;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*entrypoint "http-get" is declared twice in this location in \S+nginx\.conf:\d+/



=== TEST 15: message_proxy_api takes started or stopped
--- config
    location /api {
        message_proxy_api paused;
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "paused" of "message_proxy_api": it must be "started" or "stopped" in \S+nginx\.conf:\d+/



=== TEST 16: the directives belong in a location
--- config
    message_proxy_entrypoint http-get;
--- must_die
--- error_log eval
qr/\[emerg\] .*"message_proxy_entrypoint" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 17: a good configuration starts
--- config
    location /api {
        message_proxy_api started;
        message_proxy_entrypoint http-get messages_limit_count=10
                                 messages_limit_duration=1500ms
                                 headers_in_payload=on metadata_in_payload=off;
        message_proxy_endpoint mock interval=1s "content=hello there"
                               count=100 header=X-A:1 metadata=k:v
                               shared=off;
    }
--- request
GET /api?limit=0
--- response_body eval
"items\n"
