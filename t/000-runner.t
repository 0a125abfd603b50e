# Self-test of the test harness, using stock NGINX directives only.
# Must pass unchanged under the project's t/lib/Test/Nginx/Socket.pm and
# under openresty's Test::Nginx::Socket (see t/README.md).

use Test::Nginx::Socket 'no_plan';

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: response_body (Test::Base trim keeps the final newline)
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]
[alert]



=== TEST 2: response_body eval, HTTP/1.0 request
--- config
    location = /t {
        return 200 "a\n\nb\n\n";
    }
--- request
GET /t HTTP/1.0
--- response_body eval
"a\n\nb\n\n"



=== TEST 3: response_body_like (qr//s, unanchored) and response_body_unlike
--- config
    location = /t {
        return 200 "line one\nline two\n";
    }
--- request
    # leading blanks and comment lines before the request line are stripped
    GET /t
--- response_body_like: one.line two
--- error_code: 200



=== TEST 4: response_body_unlike
--- config
    location = /t {
        return 200 "abc";
    }
--- request
GET /t
--- response_body_unlike: xyz



=== TEST 5: response_headers: exact value, "X-Foo:" empty, "!X-Bar" absent
--- config
    location = /t {
        add_header X-Foo "foo value";
        add_header X-Multi a;
        add_header X-Multi b;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers
X-Foo: foo value
X-Multi: a, b
X-Missing:
!X-Bar
Content-Type: text/plain
Content-Length: 3
--- response_body
ok



=== TEST 6: response_headers_like and raw_response_headers_like
--- config
    location = /t {
        add_header X-Num 12345;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers_like
X-Num: \d+
Server: nginx.*
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n.*X-Num: 12345\r\n



=== TEST 7: error_code 404 and the matching error_log line
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /does-not-exist.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
open() "
No such file or directory



=== TEST 8: error_log literal substring and eval qr//
--- config
    location = /t {
        return 204;
    }
--- request
GET /t?a=1
--- error_code: 204
--- response_body eval
""
--- error_log eval
[qr/http request line: "GET \/t\?a=1 HTTP\/1\.1"/, "http args: \"a=1\""]
--- no_error_log eval
qr/\[(?:error|crit)\]/



=== TEST 9: more_headers, Host replaced, Connection: close by default
--- config
    location = /t {
        return 200 "$http_x_test|$host|$http_connection\n";
    }
--- request
GET /t
--- more_headers
X-Test: hello world
Host: foo.example.com
--- response_body
hello world|foo.example.com|close



=== TEST 10: request body gets a Content-Length
--- config
    location = /t {
        return 200 "len=$http_content_length\n";
    }
--- request
POST /t
hello, world
--- response_body
len=12



=== TEST 11: $TEST_NGINX_SERVER_PORT in config, $ServerPort in expectations
--- http_config
    map $uri $is_t {
        default 0;
        /t      1;
    }
--- config
    location = /t {
        return 200 "port $TEST_NGINX_SERVER_PORT $is_t\n";
    }
--- request
GET /t
--- response_body
port $ServerPort 1



=== TEST 12: raw_request sent verbatim
--- config
    location = /t {
        return 200 "raw $server_protocol $http_x_raw\n";
    }
--- raw_request eval
"GET /t HTTP/1.0\r
Host: localhost\r
X-Raw: yes\r
\r
"
--- response_body
raw HTTP/1.0 yes



=== TEST 13: raw_request in several writes with raw_request_middle_delay
--- config
    location = /t {
        return 200 "split $http_x_split\n";
    }
--- raw_request eval
["GET /t HTTP/1.0\r\nHost: local", "host\r\nX-Split: ", "ok\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body
split ok
--- error_log
http request line: "GET /t HTTP/1.0"



=== TEST 14: chunked response is de-chunked (sub_filter drops Content-Length)
--- config
    location = /t {
        sub_filter_types *;
        sub_filter 'world' 'nginx';
        return 200 "hello world\n";
    }
--- request
GET /t
--- raw_response_headers_like: Transfer-Encoding: chunked\r\n
--- response_headers
Content-Length:
--- response_body
hello nginx



=== TEST 15: abort: a trickling response, client timeout is not a failure
--- config
    location = /t {
        limit_rate_after 180;
        limit_rate 1;
        return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
    }
--- request
GET /t HTTP/1.0
--- timeout: 400ms
--- abort
--- response_headers
Content-Length: 100
--- response_body_like: ^0123
--- wait: 0.1



=== TEST 16: must_die on an unknown directive
--- config
    location = /t {
        this_directive_does_not_exist on;
    }
--- must_die



=== TEST 17: must_die with the expected exit code (invalid parameter)
--- config
    location = /t {
        return 200 "ok\n";
    }
--- http_config
    sendfile maybe;
--- must_die: 1



=== TEST 18: main_config and log_level per block
--- main_config
    worker_rlimit_nofile 1024;
--- config
    location = /t {
        return 200 "main ok\n";
    }
--- log_level: info
--- request
GET /t
--- response_body
main ok
--- no_error_log
[debug]
