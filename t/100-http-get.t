# The HTTP GET entrypoint on the Mock endpoint: the quickstart, each limit,
# limit/cursor, the three Accept types, headers and metadata in payload.

use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: quickstart: four "mock message" items after about five seconds
--- config
    location /qs-message-api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /qs-message-api
--- more_headers
Accept: application/json
--- response_headers
Content-Type: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"},{"id":"2","content":"mock message"},{"id":"3","content":"mock message"}],"pagination":{"nextCursor":"3"}}'
--- timeout: 6.5
--- no_error_log
[error]



=== TEST 2: messages_limit_count closes the window before the duration
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=2;
        message_proxy_endpoint mock interval=50ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"}],"pagination":{"nextCursor":"1"}}'
--- timeout: 1



=== TEST 3: messages_limit_duration closes the window before the count
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_duration=1100ms;
        message_proxy_endpoint mock interval=200ms content=tick;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"tick"},{"id":"1","content":"tick"},{"id":"2","content":"tick"},{"id":"3","content":"tick"},{"id":"4","content":"tick"}],"pagination":{"nextCursor":"4"}}'
--- timeout: 2.5



=== TEST 4: the limit argument lowers the count and is echoed as a string
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api?limit=3
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"},{"id":"1","content":"mock message"},{"id":"2","content":"mock message"}],"pagination":{"nextCursor":"2","limit":"3"}}'
--- timeout: 1



=== TEST 5: the limit argument cannot raise the configured count
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api?limit=50
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"}],"pagination":{"nextCursor":"0","limit":"50"}}'
--- timeout: 1



=== TEST 6: limit=0 answers at once, with no pagination
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api?limit=0
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[]}'
--- timeout: 0.5



=== TEST 7: a non-numeric limit is a 400 with the JSON error body
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api?limit=ten
--- more_headers
Accept: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body eval
'{"message":"Invalid limit \"ten\": a whole number of messages is expected","http_status_code":400}'



=== TEST 8: a negative limit is a 400, plain text when JSON is not accepted
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api?limit=-1
--- more_headers
Accept: text/plain
--- error_code: 400
--- response_headers
Content-Type: text/plain
--- response_body eval
'Invalid limit "-1": a whole number of messages is expected'



=== TEST 9: cursor resumes after the given id, and count stays absolute
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=20ms count=8;
    }
--- request
GET /api?cursor=5
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"6","content":"mock message"},{"id":"7","content":"mock message"}],"pagination":{"nextCursor":"7"}}'
--- timeout: 1



=== TEST 10: a cursor past the end gives an empty batch at once
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock interval=20ms count=3;
    }
--- request
GET /api?cursor=9
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[]}'
--- timeout: 0.5



=== TEST 11: an unparsable cursor restarts at 0 with a warning
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api?cursor=abc
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"}],"pagination":{"nextCursor":"0"}}'
--- error_log
mock endpoint cannot resume after id "abc": not a number, starting from 0



=== TEST 12: Accept application/xml
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=2;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api?limit=2
--- more_headers
Accept: application/xml
--- response_headers
Content-Type: application/xml
--- response_body eval
'<response><items><item><id>0</id><content><![CDATA[mock message]]></content></item><item><id>1</id><content><![CDATA[mock message]]></content></item></items><pagination><nextCursor>1</nextCursor><limit>2</limit></pagination></response>'



=== TEST 13: Accept text/plain, no final newline
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=2;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api?limit=2
--- more_headers
Accept: text/plain
--- response_headers
Content-Type: text/plain
--- response_body eval
"items\nitem\nid: 0\ncontent: mock message\n\nitem\nid: 1\ncontent: mock message\n\npagination\nnextCursor: 1\nlimit: 2"



=== TEST 14: no Accept header gives text/plain
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api
--- response_headers
Content-Type: text/plain
--- response_body eval
"items\nitem\nid: 0\ncontent: mock message\n\npagination\nnextCursor: 0"



=== TEST 15: */* gives JSON
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api
--- more_headers
Accept: */*
--- response_headers
Content-Type: application/json



=== TEST 16: q-values: the highest wins
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json;q=0.4, text/plain;q=0.9, application/xml;q=0.5
--- response_headers
Content-Type: text/plain



=== TEST 17: equal q-values keep the client's order, across Accept lines
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api
--- more_headers
Accept: application/grpc,application/xml
Accept: application/json
--- response_headers
Content-Type: application/xml



=== TEST 18: q=0 refuses a type
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json;q=0, application/xml;q=0.1
--- response_headers
Content-Type: application/xml



=== TEST 19: an unsupported Accept is a 400 listing every Accept line
--- config
    location /api {
        message_proxy_entrypoint http-get;
        message_proxy_endpoint mock;
    }
--- request
GET /api
--- more_headers
Accept: application/grpc
Accept: text/html
--- error_code: 400
--- response_body eval
'Unsupported accept header: [application/grpc, text/html]'



=== TEST 20: headers and metadata in a JSON payload; repeated headers group
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1
                                 headers_in_payload=on
                                 metadata_in_payload=on;
        message_proxy_endpoint mock interval=20ms header=X-Kind:demo
                               header=X-Tag:a header=X-Tag:b
                               metadata=topic:orders;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body_like eval
qr/^\{"items":\[\{"id":"0","content":"mock message","headers":\{"X-Kind":\["demo"\],"X-Tag":\["a","b"\]\},"metadata":\{"sourceTimestamp":1\d{12},"topic":"orders"\}\}\],"pagination":\{"nextCursor":"0"\}\}$/



=== TEST 21: headers and metadata in an XML payload, names escaped
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1
                                 headers_in_payload=on
                                 metadata_in_payload=on;
        message_proxy_endpoint mock interval=20ms "header=X-Tag:a&b"
                               "header=1<x:v" metadata=topic:orders;
    }
--- request
GET /api
--- more_headers
Accept: application/xml
--- response_body_like eval
qr{^<response><items><item><id>0</id><content><!\[CDATA\[mock message\]\]></content><headers><X-Tag>a&amp;b</X-Tag><_x31__x3C_x>v</_x31__x3C_x></headers><metadata><sourceTimestamp>1\d{12}</sourceTimestamp><topic>orders</topic></metadata></item></items><pagination><nextCursor>0</nextCursor></pagination></response>$}



=== TEST 22: headers and metadata in a text payload
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1
                                 headers_in_payload=on
                                 metadata_in_payload=on;
        message_proxy_endpoint mock interval=20ms header=X-Tag:a
                               header=X-Tag:b metadata=topic:orders;
    }
--- request
GET /api
--- more_headers
Accept: text/plain
--- response_body_like eval
qr/^items\nitem\nid: 0\ncontent: mock message\nheaders: \{X-Tag=\[a, b\]\}\nmetadata: \{sourceTimestamp=1\d{12}, topic=orders\}\n\npagination\nnextCursor: 0$/



=== TEST 23: content is escaped: JSON quotes and control bytes, invalid UTF-8
--- config eval
qq{
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms
                               "content=say \\"hi\\"\\t\\\\ \xff ok \xc3\xa9";
    }
}
--- request
GET /api
--- more_headers
Accept: application/json
--- response_body eval
qq|{"items":[{"id":"0","content":"say \\"hi\\"\\t\\\\ \\ufffd ok \xc3\xa9"}],"pagination":{"nextCursor":"0"}}|



=== TEST 24: CDATA cannot be closed by the content
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=20ms "content=a]]>b";
    }
--- request
GET /api
--- more_headers
Accept: application/xml
--- response_body eval
'<response><items><item><id>0</id><content><![CDATA[a]]]]><![CDATA[>b]]></content></item></items><pagination><nextCursor>0</nextCursor></pagination></response>'



=== TEST 25: a client leaving mid-window frees its timer, subscription and messages
Items are rendered as they come: the messages are freed at once, and a
client that leaves takes its unsent batch (4 items) with it.
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_duration=10s;
        message_proxy_endpoint mock interval=100ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json
--- timeout: 0.45
--- abort
--- ignore_response
--- wait: 0.5
--- error_log eval
[qr/gravitee message \S+ created, id:"3"/,
 qr/http-get on "\/api": client left, 4 messages not answered/,
 qr/gravitee message \S+ freed, alive:0/]
--- no_error_log eval
qr/gravitee message \S+ created, id:"6"/



=== TEST 26: parameters after q are read past (accept extensions)
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: text/plain;q=0.2, application/json;q=0.5;level=1
--- response_headers
Content-Type: application/json
--- response_body eval
'{"items":[{"id":"0","content":"mock message"}],"pagination":{"nextCursor":"0"}}'



=== TEST 27: a blank before the comma keeps the q-value
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json;q=0.9 , text/plain;q=0.2
--- response_headers
Content-Type: application/json



=== TEST 28: q is at most 1: q=5 makes the type unacceptable
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: application/xml;q=5, application/json;q=0.5
--- response_headers
Content-Type: application/json



=== TEST 29: only q=5 is a 400, as any type we do not speak
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: application/json;q=5
--- error_code: 400
--- response_body eval
'{"message":"Unsupported accept header: [application/json;q=5]","http_status_code":400}'



=== TEST 30: a parameter whose name ends in q is not q, and quoted commas do not split
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: application/xml;seq=0.1, text/plain;x="a,b";q=0.3, application/json;q=0.5
--- response_headers
Content-Type: application/xml



=== TEST 31: quoted commas do not split an element
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api
--- more_headers
Accept: application/xml;x="a,b";q=0.1, application/json;q=0.5
--- response_headers
Content-Type: application/json



=== TEST 32: a cursor at the largest signed 64-bit number resumes after it
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api?cursor=9223372036854775807
--- more_headers
Accept: application/json
--- response_body eval
'{"items":[{"id":"9223372036854775808","content":"mock message"}],"pagination":{"nextCursor":"9223372036854775808"}}'



=== TEST 33: a cursor longer than the Mock reads is a 400
--- config
    location /api {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms;
    }
--- request
GET /api?cursor=123456789012345678901
--- more_headers
Accept: application/json
--- error_code: 400
--- response_body eval
'{"message":"Resume position too long: 21 bytes, the mock endpoint reads 20 at most","http_status_code":400}'
