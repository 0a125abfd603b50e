# Endpoint failures and late acknowledgements, through every entrypoint,
# with the Mock's fail_after, publish_delay and publish_status: what the
# reference does when a broker fails (gravitee.md 2.1 to 2.4, 3.1).  The
# WebSocket entrypoint, and timings, are in 141-endpoint-failures-clients.t.

use lib 't/lib';
use GraviteeTest ();

BEGIN { GraviteeTest::use_startup_error_log() }

use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: HTTP GET, JSON: 200 with the items so far, then the error object
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms fail_after=2;
    }
--- request
GET /fail
--- more_headers
Accept: application/json
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"items":\[\{"id":"0","content":"mock message"\},\{"id":"1","content":"mock message"\}\],"error":\{"content":"Mock endpoint failure after 2 messages","headers":\{\},"metadata":\{"sourceTimestamp":\d+,"key":"FAILURE_ENDPOINT_UNKNOWN_ERROR","statusCode":"500"\}\},"pagination":\{"nextCursor":"1"\}\}$
--- error_log
mock client stream failed: Mock endpoint failure after 2 messages
freed, alive:0
--- no_error_log
[error]
[alert]



=== TEST 2: HTTP GET, XML: the error element between items and pagination
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms fail_after=1;
    }
--- request
GET /fail
--- more_headers
Accept: application/xml
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_body_like: ^<response><items><item><id>0</id><content><!\[CDATA\[mock message\]\]></content></item></items><error><content><!\[CDATA\[Mock endpoint failure after 1 messages\]\]></content><headers></headers><metadata><sourceTimestamp>\d+</sourceTimestamp><key>FAILURE_ENDPOINT_UNKNOWN_ERROR</key><statusCode>500</statusCode></metadata></error><pagination><nextCursor>0</nextCursor></pagination></response>$
--- no_error_log
[error]



=== TEST 3: HTTP GET, text: an "error" section before the pagination
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms fail_after=1;
    }
--- request
GET /fail
--- error_code: 200
--- response_headers
Content-Type: text/plain
--- response_body_like: ^items\nitem\nid: 0\ncontent: mock message\n\nerror\ncontent: Mock endpoint failure after 1 messages\nheaders: \{\}\nmetadata: \{sourceTimestamp=\d+, key=FAILURE_ENDPOINT_UNKNOWN_ERROR, statusCode=500\}\n\npagination\nnextCursor: 0$
--- no_error_log
[error]



=== TEST 4: HTTP GET, fail_after=0: the error at once, no item, no pagination
--- config
    location /fail {
        message_proxy_entrypoint http-get messages_limit_duration=10s;
        message_proxy_endpoint mock interval=10s fail_after=0;
    }
--- request
GET /fail?cursor=7
--- more_headers
Accept: application/json
--- timeout: 2
--- error_code: 200
--- response_body_like: ^\{"items":\[\],"error":\{"content":"Mock endpoint failure after 0 messages","headers":\{\},"metadata":\{"sourceTimestamp":\d+,"key":"FAILURE_ENDPOINT_UNKNOWN_ERROR","statusCode":"500"\}\}\}$
--- error_log
freed, alive:0
--- no_error_log
[error]



=== TEST 5: HTTP GET, the client's limit reached with the last message: no error
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms fail_after=2;
    }
--- request
GET /fail?limit=2
--- more_headers
Accept: application/json
--- error_code: 200
--- response_body chomp
{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"}],"pagination":{"nextCursor":"1","limit":"2"}}



=== TEST 6: count reached before fail_after: a clean end, no error
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms count=2 fail_after=3;
    }
--- request
GET /fail
--- more_headers
Accept: application/json
--- error_code: 200
--- response_body chomp
{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"}],"pagination":{"nextCursor":"1"}}
--- no_error_log
stream failed



=== TEST 7: count and fail_after at the same message: the failure wins
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms count=2 fail_after=2;
    }
--- request
GET /fail
--- more_headers
Accept: application/json
--- error_code: 200
--- response_body_like: "items":\[\{"id":"0".*\{"id":"1".*\],"error":\{"content":"Mock endpoint failure after 2 messages"



=== TEST 8: a shared stream fails for its subscriber, and stays failed
--- config
    location /fail {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=50ms fail_after=1 shared=on;
    }
--- request eval
["GET /fail", "GET /fail"]
--- more_headers
Accept: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{"items":\[\{"id":"0","content":"mock message"\}\],"error":\{"content":"Mock endpoint failure after 1 messages"',
 '^\{"items":\[\],"error":\{"content":"Mock endpoint failure after 1 messages"']
--- error_log
mock shared stream failed: Mock endpoint failure after 1 messages



=== TEST 9: SSE: the events so far, then "event: error" with the text, then the end
--- config
    location /fail {
        message_proxy_entrypoint sse retry=3s;
        message_proxy_endpoint mock interval=50ms fail_after=2;
    }
--- request
GET /fail
--- more_headers
Accept: text/event-stream
--- error_code: 200
--- response_body eval
"retry: 3000\n\n"
. "id: 0\nevent: message\ndata: mock message\n\n"
. "id: 1\nevent: message\ndata: mock message\n\n"
. "event: error\ndata: Mock endpoint failure after 2 messages\n\n"
--- error_log
reason="endpoint ended"
freed, alive:0
--- no_error_log
[alert]



=== TEST 10: SSE, fail_after=0: the error event right after the retry
--- config
    location /fail {
        message_proxy_entrypoint sse retry=3s metadata_as_comment=on;
        message_proxy_endpoint mock interval=10s fail_after=0;
    }
--- request
GET /fail
--- more_headers
Accept: text/event-stream
--- timeout: 2
--- error_code: 200
--- response_body eval
"retry: 3000\n\nevent: error\ndata: Mock endpoint failure after 0 messages\n\n"



=== TEST 11: HTTP POST refused with 503: the reference's error body, connection closed
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_status=503;
    }
--- request
POST /pub
hello
--- more_headers
Accept: application/json
--- error_code: 503
--- response_headers
Content-Type: application/json
Connection: close
--- response_body chomp
{"message":"Mock endpoint refused the message","http_status_code":503}
--- error_log
publishing to endpoint "mock" failed with 503: "Mock endpoint refused the message"
--- no_error_log
Received message



=== TEST 12: HTTP POST refused with 500, as text for a client that does not accept JSON
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_status=500;
    }
--- request
POST /pub
hello
--- more_headers
Accept: text/plain
--- error_code: 500
--- response_headers
Content-Type: text/plain
--- response_body chomp
Mock endpoint refused the message



=== TEST 13: HTTP POST refused with 412, as the reference's policy test
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_status=412;
    }
--- request
POST /pub
hello
--- more_headers
Accept: application/json
--- error_code: 412
--- response_body chomp
{"message":"Mock endpoint refused the message","http_status_code":412}



=== TEST 14: HTTP POST with publish_delay: 202 once acknowledged, then logged
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_delay=300ms;
    }
--- request
POST /pub
late
--- error_code: 202
--- response_body eval
""
--- error_log
Received message: late
freed, alive:0
--- no_error_log
[error]
cancelled



=== TEST 15: HTTP POST with publish_delay and publish_status: refused late
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_delay=200ms publish_status=412;
    }
--- request
POST /pub
late
--- more_headers
Accept: application/json
--- error_code: 412
--- response_body chomp
{"message":"Mock endpoint refused the message","http_status_code":412}
--- error_log
freed, alive:0
--- no_error_log
Received message



=== TEST 16: HTTP POST, a client that leaves during publish_delay cancels it
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_delay=1s;
    }
--- raw_request eval
"POST /pub HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\ngone"
--- timeout: 300ms
--- abort
--- ignore_response
--- wait: 1.2
--- error_log
client left before the endpoint acknowledged, publication cancelled
mock publication cancelled before its acknowledgement
freed, alive:0
--- no_error_log
Received message
[alert]



=== TEST 17: publish_status must be an error status
--- config
    location /pub {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock publish_status=200;
    }
--- must_die
--- error_log
parameter "publish_status" of endpoint "mock" must be an error status, from 400 to 599
