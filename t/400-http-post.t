# HTTP POST entrypoint: the request body becomes one message (section 2.2)

use lib 't/lib';
use GraviteeTest ();

BEGIN { GraviteeTest::use_startup_error_log() }

use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a POST publishes its body as one message, 202 with an empty body
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- request
POST /post
hello world
--- error_code: 202
--- response_body eval
""
--- response_headers
Content-Length: 0
!Content-Type
--- error_log
Received message: hello world
--- no_error_log
[error]



=== TEST 1b: request_headers_to_message=on publishes the same way
--- config
    location /post {
        message_proxy_entrypoint http-post request_headers_to_message=on;
        message_proxy_endpoint mock;
    }
--- request
POST /post
with headers
--- more_headers
X-One: 1
X-One: 2
--- error_code: 202
--- response_body eval
""
--- error_log
Received message: with headers
--- no_error_log
[error]



=== TEST 2: a chunked body is read in several parts and published whole
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- raw_request eval
["POST /post HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
 "6\r\n world\r\n",
 "0\r\n\r\n"]
--- raw_request_middle_delay: 0.2
--- error_code: 202
--- response_body eval
""
--- error_log
Received message: hello world
--- no_error_log
[error]



=== TEST 3: a body larger than the client body buffer stays in memory
--- config
    client_body_buffer_size 1k;
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- request eval
"POST /post\n" . ("x" x 50000) . "END"
--- error_code: 202
--- response_body eval
""
--- error_log eval
qr/Received message: x{1000}/
--- no_error_log
a client request body is buffered to a temporary file
[error]



=== TEST 4: no body at all is a 400 with the error text
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"POST /post HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body chomp
A request body is required: it is the message to publish
--- response_headers
Content-Type: text/plain
--- no_error_log
Received message



=== TEST 5: an empty body is a 400 too, as JSON when the client accepts it
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"POST /post HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n"
--- error_code: 400
--- response_body chomp
{"message":"A request body is required: it is the message to publish","http_status_code":400}
--- response_headers
Content-Type: application/json
--- no_error_log
Received message



=== TEST 6: a chunked body with no data is a 400
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"POST /post HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
--- error_code: 400
--- response_body chomp
A request body is required: it is the message to publish
--- no_error_log
Received message



=== TEST 7: a Content-Length over max_message_size is a 413 before reading
--- config
    location /post {
        message_proxy_entrypoint http-post max_message_size=10;
        message_proxy_endpoint mock;
    }
--- request
POST /post
hello world!
--- error_code: 413
--- response_body chomp
Message too large: the limit is 10 bytes
--- error_log
request body over max_message_size 10
--- no_error_log
Received message



=== TEST 8: a chunked body is refused as soon as it crosses the limit
--- config
    location /post {
        message_proxy_entrypoint http-post max_message_size=8;
        message_proxy_endpoint mock;
    }
--- raw_request eval
["POST /post HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
 "6\r\n world\r\n"]
--- raw_request_middle_delay: 0.2
--- error_code: 413
--- response_body chomp
{"message":"Message too large: the limit is 8 bytes","http_status_code":413}
--- no_error_log
Received message



=== TEST 9: exactly max_message_size bytes is accepted
--- config
    location /post {
        message_proxy_entrypoint http-post max_message_size=5;
        message_proxy_endpoint mock;
    }
--- request
POST /post
hello
--- error_code: 202
--- error_log
Received message: hello



=== TEST 10: client_max_body_size still applies first, as NGINX's own 413
--- config
    location /post {
        client_max_body_size 4;
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- request
POST /post
hello
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large
--- no_error_log
Received message



=== TEST 11: GET on a location with only http-post is not matched: 404
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- request
GET /post
--- error_code: 404
--- response_body chomp
No context-path matches the request URI.



=== TEST 12: a client that leaves mid-body publishes nothing and frees its body
--- config
    location /post {
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nhello"
--- shutdown
--- ignore_response
--- wait: 0.3
--- error_log
client prematurely closed connection
--- no_error_log
Received message
[alert]



=== TEST 13: bad parameter values are refused at startup
--- config
    location /post {
        message_proxy_entrypoint http-post max_message_size=0;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
parameter "max_message_size" of entrypoint "http-post" must be at least 1 byte



=== TEST 14: unknown parameters list the allowed ones
--- config
    location /post {
        message_proxy_entrypoint http-post max_size=1k;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
unknown parameter "max_size" of "http-post", allowed: max_message_size, request_headers_to_message



=== TEST 15: Expect: 100-continue on a body known to be too large: 413, no invitation
--- config
    location /post {
        message_proxy_entrypoint http-post max_message_size=10;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\nExpect: 100-continue\r\nAccept: application/json\r\n\r\n"
--- timeout: 1
--- abort
--- error_code: 413
--- raw_response_headers_unlike: 100 Continue
--- response_body eval
'{"message":"Message too large: the limit is 10 bytes","http_status_code":413}'
--- no_error_log
Received message
