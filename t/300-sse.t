# Server-Sent Events entrypoint over HTTP/1.x: the wire format of section 2.4

use lib 't/lib';
use GraviteeTest ();

BEGIN { GraviteeTest::use_startup_error_log() }

use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: retry first, then one event per message, byte for byte
--- config
    location /sse {
        message_proxy_entrypoint sse retry=3s;
        message_proxy_endpoint mock interval=100ms count=2;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 3000\n\n"
. "id: 0\nevent: message\ndata: mock message\n\n"
. "id: 1\nevent: message\ndata: mock message\n\n"
--- response_headers
Content-Type: text/event-stream;charset=UTF-8
Cache-Control: no-cache
Transfer-Encoding: chunked
!Content-Length
--- error_log
gravitee stream closed: api="/sse" entrypoint=sse
reason="endpoint ended"
--- no_error_log
[error]



=== TEST 2: without retry=, the delay is a random one in [1000, 30000) ms
--- config
    location /sse {
        message_proxy_entrypoint sse;
        message_proxy_endpoint mock interval=100ms count=1;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body_like eval
qr/\Aretry: (?:[1-9]\d{3}|[12]\d{4})\n\nid: 0\nevent: message\ndata: mock message\n\n\z/



=== TEST 3: metadata_as_comment: sourceTimestamp first, then the metadata
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s metadata_as_comment=on;
        message_proxy_endpoint mock interval=100ms count=1
                                    metadata=greeting:mate metadata=type:informal
                                    header=X-Ignored:yes;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body_like eval
qr/\Aretry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:greeting: mate\n:type: informal\n\n\z/



=== TEST 4: headers_as_comment: values of a repeated header joined by ","
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s headers_as_comment=on;
        message_proxy_endpoint mock interval=100ms count=1
                                    header=X-A:1 header=X-B:b header=X-A:2
                                    metadata=k:v;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:X-A: 1,2\n:X-B: b\n\n"



=== TEST 5: both: metadata comments, then header comments
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s headers_as_comment=on
                                 metadata_as_comment=on;
        message_proxy_endpoint mock interval=100ms count=1 header=X-A:1
                                    metadata=k:v;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body_like eval
qr/\Aretry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: v\n:X-A: 1\n\n\z/



=== TEST 6: a payload with line breaks becomes several data lines
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=100ms count=1
            "content=one\ntwo\r\nthree\rfour\n\nevent: forged\nid: 99\n";
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\n"
. "data: one\ndata: two\ndata: three\ndata: four\ndata: \n"
. "data: event: forged\ndata: id: 99\ndata: \n\n"



=== TEST 7: a line break in a comment cannot end the event either
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s metadata_as_comment=on;
        message_proxy_endpoint mock interval=100ms count=1
            "metadata=k:a\n\ndata: forged";
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body_like eval
qr/\Aretry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: a  data: forged\n\n\z/



=== TEST 8: heartbeats when nothing was sent for a whole interval
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
        message_proxy_endpoint mock interval=4500ms count=1;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 1000\n\n:\n\n:\n\nid: 0\nevent: message\ndata: mock message\n\n"
--- timeout: 8



=== TEST 9: no heartbeat when a message was sent during the interval
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
        message_proxy_endpoint mock interval=1500ms count=2;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n\n"
. "id: 1\nevent: message\ndata: mock message\n\n"
--- timeout: 6



=== TEST 10: HTTP/1.0: no chunks, the stream ends with the connection
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=200ms count=2;
    }
--- request
GET /sse HTTP/1.0
--- more_headers
Accept: text/event-stream
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n\n"
. "id: 1\nevent: message\ndata: mock message\n\n"
--- response_headers
!Transfer-Encoding
!Content-Length
Cache-Control: no-cache
--- raw_response_headers_like: ^HTTP/1.1 200 OK\r\n



=== TEST 11: Last-Event-ID is the position the endpoint resumes after
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=100ms count=8;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
Last-Event-ID: 5
--- response_body eval
"retry: 1000\n\n"
. "id: 6\nevent: message\ndata: mock message\n\n"
. "id: 7\nevent: message\ndata: mock message\n\n"



=== TEST 12: a Last-Event-ID the Mock cannot read: it starts fresh
--- config
    location /sse {
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=100ms count=1;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
Last-Event-ID: topic@0#12
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n\n"
--- error_log
mock endpoint cannot resume after id "topic@0#12": not a number, starting from 0



=== TEST 13: never compressed, even where gzip is on for text/event-stream
--- config
    gzip on;
    gzip_types text/event-stream;
    gzip_min_length 1;
    location /sse {
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=100ms count=1;
    }
--- request
GET /sse
--- more_headers
Accept: text/event-stream
Accept-Encoding: gzip
--- response_body eval
"retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n\n"
--- response_headers
!Content-Encoding



=== TEST 14: the same gzip server does compress its other responses
--- config
    gzip on;
    gzip_types text/event-stream text/plain;
    gzip_min_length 1;
    location /plain {
        return 200 "hello hello hello hello";
    }
--- request
GET /plain
--- more_headers
Accept-Encoding: gzip
--- response_headers
Content-Encoding: gzip
--- response_body_unlike: hello



=== TEST 15: a GET that does not accept text/event-stream is not SSE
--- config
    location /sse {
        message_proxy_entrypoint sse;
        message_proxy_endpoint mock interval=100ms count=1;
    }
--- request
GET /sse
--- more_headers
Accept: application/json
--- error_code: 404
--- response_body chomp
{"message":"No context-path matches the request URI.","http_status_code":404}



=== TEST 16: sse outranks http-get for an event-stream GET, not for others
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_entrypoint sse retry=1s;
        message_proxy_endpoint mock interval=100ms count=1;
    }
--- request eval
["GET /api", "GET /api"]
--- more_headers eval
["Accept: text/event-stream", "Accept: text/plain"]
--- response_body eval
["retry: 1000\n\nid: 0\nevent: message\ndata: mock message\n\n",
 "items\nitem\nid: 0\ncontent: mock message\n\npagination\nnextCursor: 0"]



=== TEST 17: a heartbeat under 2s is refused, as the reference does
--- config
    location /sse {
        message_proxy_entrypoint sse heartbeat_interval=1500ms;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
parameter "heartbeat_interval" must be at least 2000ms, not "1500ms"



=== TEST 18: slow_client takes close or drop only
--- config
    location /sse {
        message_proxy_entrypoint sse slow_client=wait;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
parameter "slow_client" of entrypoint "sse" must be "close" or "drop", not "wait"



=== TEST 19: an event stream request with a body is refused
--- config
    location /sse {
        message_proxy_entrypoint sse;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /sse HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: text/event-stream\r\nContent-Length: 3\r\n\r\nabc"
--- error_code: 400
--- response_body chomp
An event stream request carries no body
