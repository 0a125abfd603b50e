# The WebSocket entrypoint seen from the wire: the handshake, the frames a
# subscriber gets, the protocol errors and their close codes, publishing.
# Raw frames after the 101 are what the client receives, byte for byte.

# configuration errors reach logs/error.log (see t/README.md)
BEGIN { require GraviteeTest; GraviteeTest::use_startup_error_log(); }

use Test::Nginx::Socket 'no_plan';

# a client's handshake, and its frames (masked, as a client must send them)
our $HS = "GET /ws HTTP/1.1\r\nHost: localhost\r\n"
        . "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n";

sub frame { GraviteeTest::ws_frame(@_) }

# what the server's close frame with this code and reason looks like
sub close_frame {
    my ($code, $reason) = @_;
    $reason //= '';
    return "\x88" . chr(2 + length $reason) . pack('n', $code) . $reason;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: handshake, three Mock messages as text frames, then 1000 "Bye"
--- config
    location /ws {
        message_proxy_entrypoint http-get;
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=100ms count=3 content=hello;
    }
--- raw_request eval
$::HS
--- error_code: 101
--- raw_response_headers_like eval
qr{^HTTP/1\.1 101 Switching Protocols\r\n.*Connection: upgrade\r\n.*Upgrade: websocket\r\n.*Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n}s
--- response_body eval
"\x81\x05hello" x 3 . ::close_frame(1000, "Bye")
--- no_error_log
[error]
[alert]



=== TEST 2: a GET that does not ask to upgrade goes to http-get
--- config
    location /ws {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=10ms count=3 content=hello;
    }
--- request
GET /ws
--- response_body_like: ^items\nitem\nid: 0\ncontent: hello\n



=== TEST 3: HTTP/1.0 is refused with 400
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 400
--- response_body: A WebSocket handshake needs HTTP/1.1
--- error_log
websocket handshake on "/ws" refused with 400



=== TEST 4: no "Connection: Upgrade": 400, as JSON when the client accepts it
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nAccept: application/json\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body chomp
{"message":"A WebSocket handshake needs \"Connection: Upgrade\"","http_status_code":400}



=== TEST 5: a key that is not 16 bytes of base64: 400
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body: A WebSocket handshake needs a Sec-WebSocket-Key of 16 bytes in base64



=== TEST 6: another protocol version: 426 with Sec-WebSocket-Version: 13
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n"
--- error_code: 426
--- raw_response_headers_like: ^HTTP/1.1 426 Upgrade Required\r\n.*Sec-WebSocket-Version: 13\r\n
--- response_body: Unsupported WebSocket version: Sec-WebSocket-Version 13 is required



=== TEST 7: an Origin that is not allowed: 403
--- config
    location /ws {
        message_proxy_entrypoint websocket allowed_origins=https://app.example,http://localhost:8080;
        message_proxy_endpoint mock;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Origin: https://evil.example\r\nConnection: close\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 403
--- response_body: Origin "https://evil.example" is not allowed



=== TEST 8: an allowed Origin (case aside) is let in
--- config
    location /ws {
        message_proxy_entrypoint websocket allowed_origins=https://app.example,http://localhost:8080;
        message_proxy_endpoint mock interval=50ms count=1 content=hi;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Origin: HTTP://localhost:8080\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 101
--- response_body eval
"\x81\x02hi" . ::close_frame(1000, "Bye")



=== TEST 9: the first subprotocol offered that the API speaks is chosen
--- config
    location /ws {
        message_proxy_entrypoint websocket subprotocols=chat,superchat;
        message_proxy_endpoint mock interval=50ms count=1 content=hi;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Protocol: mqtt, superchat\r\nSec-WebSocket-Protocol: chat\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 101
--- raw_response_headers_like: \r\nSec-WebSocket-Protocol: superchat\r\n



=== TEST 10: no subprotocol in common: no Sec-WebSocket-Protocol header
--- config
    location /ws {
        message_proxy_entrypoint websocket subprotocols=chat;
        message_proxy_endpoint mock interval=50ms count=1 content=hi;
    }
--- raw_request eval
"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Protocol: mqtt\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 101
--- raw_response_headers_unlike: Sec-WebSocket-Protocol



=== TEST 11: frame_type=binary, as the reference sends them
--- config
    location /ws {
        message_proxy_entrypoint websocket frame_type=binary;
        message_proxy_endpoint mock interval=50ms count=2 content=hello;
    }
--- raw_request eval
$::HS
--- error_code: 101
--- response_body eval
"\x82\x05hello" x 2 . ::close_frame(1000, "Bye")



=== TEST 12: frame_type=auto sends content that is not UTF-8 as binary
--- config eval
"location /ws {
    message_proxy_entrypoint websocket;
    message_proxy_endpoint mock interval=50ms count=1 content=a\xff\xfeb;
}"
--- raw_request eval
$::HS
--- error_code: 101
--- response_body eval
"\x82\x04a\xff\xfeb" . ::close_frame(1000, "Bye")



=== TEST 13: frame_type=auto sends UTF-8 as text; a 200-byte payload has a 16-bit length
--- config eval
"location /ws {
    message_proxy_entrypoint websocket;
    message_proxy_endpoint mock interval=50ms count=1 content=" . ("\xc3\xa9" x 100) . ";
}"
--- raw_request eval
$::HS
--- error_code: 101
--- response_body eval
"\x81\x7e\x00\xc8" . ("\xc3\xa9" x 100) . ::close_frame(1000, "Bye")



=== TEST 14: a ping is answered by a pong with the same payload
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=200ms count=1 content=hi;
    }
--- raw_request eval
$::HS . ::frame(9, "are you there")
--- error_code: 101
--- response_body eval
"\x8a\x0dare you there\x81\x02hi" . ::close_frame(1000, "Bye")



=== TEST 15: the client's close is echoed with its code, then the connection closes
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(8, pack('n', 1001) . "leaving")
--- error_code: 101
--- response_body eval
"\x88\x02\x03\xe9"
--- error_log
reason="client closed the WebSocket"



=== TEST 16: an empty close is answered by an empty close
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(8, "")
--- error_code: 101
--- response_body eval
"\x88\x00"



=== TEST 17: an unmasked client frame: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "hello", mask => 0)
--- error_code: 101
--- response_body eval
::close_frame(1002, "Client frames must be masked")
--- error_log
websocket client broke the protocol: Client frames must be masked, closing with 1002
--- no_error_log
Received message



=== TEST 18: reserved bits set: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
my $f = ::frame(1, "hello"); substr($f, 0, 1) = chr(0x80 | 0x40 | 1); $::HS . $f
--- error_code: 101
--- response_body eval
::close_frame(1002, "Reserved bits set")



=== TEST 19: a reserved opcode: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(3, "hello")
--- error_code: 101
--- response_body eval
::close_frame(1002, "Reserved opcode")



=== TEST 20: a control frame over 125 bytes: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(9, "x" x 126)
--- error_code: 101
--- response_body eval
::close_frame(1002, "Control frame over 125 bytes")



=== TEST 21: a fragmented control frame: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(9, "ping", fin => 0)
--- error_code: 101
--- response_body eval
::close_frame(1002, "Fragmented control frame")



=== TEST 22: a continuation frame with nothing to continue: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(0, "more")
--- error_code: 101
--- response_body eval
::close_frame(1002, "Continuation frame without a message to continue")



=== TEST 23: a new message before the fragmented one ends: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "first", fin => 0) . ::frame(1, "second")
--- error_code: 101
--- response_body eval
::close_frame(1002, "New message before the end of a fragmented one")
--- no_error_log
Received message



=== TEST 24: invalid UTF-8 in a text message: 1007, nothing published
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "ab\xed\xa0\x80cd")
--- error_code: 101
--- response_body eval
::close_frame(1007, "Invalid UTF-8 in a text message")
--- no_error_log
Received message



=== TEST 25: invalid UTF-8 across fragments: 1007
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "ab\xc3", fin => 0) . ::frame(0, "(")
--- error_code: 101
--- response_body eval
::close_frame(1007, "Invalid UTF-8 in a text message")



=== TEST 26: a character split across fragments is valid UTF-8
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off;
    message_proxy_endpoint mock;
    }
--- raw_request eval
$::HS . ::frame(1, "caf\xc3", fin => 0) . ::frame(0, "\xa9!") . ::frame(8, pack('n', 1000))
--- error_code: 101
--- response_body eval
"\x88\x02\x03\xe8"
--- error_log eval
"Received message: caf\xc3\xa9!"



=== TEST 27: invalid UTF-8 in a close reason: 1007
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(8, pack('n', 1000) . "\xff")
--- error_code: 101
--- response_body eval
::close_frame(1007, "Invalid UTF-8 in the close reason")



=== TEST 28: a close code no peer may send: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(8, pack('n', 1005))
--- error_code: 101
--- response_body eval
::close_frame(1002, "Invalid close code")



=== TEST 29: a close frame of one byte: 1002
--- config
    location /ws {
        message_proxy_entrypoint websocket;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(8, "x")
--- error_code: 101
--- response_body eval
::close_frame(1002, "Close frame of 1 byte")



=== TEST 30: a message over max_message_size: 1009
--- config
    location /ws {
        message_proxy_entrypoint websocket max_message_size=16;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(2, "x" x 16) . ::frame(2, "y" x 17)
--- error_code: 101
--- response_body eval
::close_frame(1009, "Message too big")
--- error_log eval
"Received message: " . ("x" x 16)
--- no_error_log eval
"Received message: y"



=== TEST 31: fragments that add up to more than max_message_size: 1009
--- config
    location /ws {
        message_proxy_entrypoint websocket max_message_size=16;
        message_proxy_endpoint mock interval=500ms content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "x" x 10, fin => 0) . ::frame(0, "y" x 7)
--- error_code: 101
--- response_body eval
::close_frame(1009, "Message too big")



=== TEST 32: publisher: each client message goes to the endpoint
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off;
        message_proxy_endpoint mock;
    }
--- raw_request eval
$::HS . ::frame(1, "hello world") . ::frame(2, "bin\x01ary") . ::frame(1, "")
. ::frame(8, pack('n', 1000))
--- error_code: 101
--- response_body eval
"\x88\x02\x03\xe8"
--- error_log eval
["Received message: hello world", "Received message: bin\x01ary",
 "Received message:  while streaming"]



=== TEST 33: fragments are reassembled, with a ping between them answered at once
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off;
        message_proxy_endpoint mock;
    }
--- raw_request eval
$::HS . ::frame(1, "Hel", fin => 0) . ::frame(9, "p") . ::frame(0, "lo", fin => 0)
. ::frame(10, "unsolicited pong") . ::frame(0, " there") . ::frame(8, pack('n', 1000))
--- error_code: 101
--- response_body eval
"\x8a\x01p\x88\x02\x03\xe8"
--- error_log
Received message: Hello there
--- no_error_log eval
[qr/Received message: Hel(?!lo there)/, "Received message: lo"]



=== TEST 34: frames split across writes, byte by byte for the header
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off;
        message_proxy_endpoint mock;
    }
--- raw_request eval
my $f = ::frame(1, "split" x 30);
[$::HS, (map { substr($f, $_, 1) } 0 .. 5), substr($f, 6, 50), substr($f, 56), ::frame(8, pack('n', 1000))]
--- raw_request_middle_delay: 0.02
--- error_code: 101
--- response_body eval
"\x88\x02\x03\xe8"
--- error_log eval
"Received message: " . ("split" x 30)



=== TEST 35: a message with a 64-bit length, and the handshake's frames in one write
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off;
        message_proxy_endpoint mock;
    }
--- raw_request eval
$::HS . ::frame(1, "z" x 70000) . ::frame(8, pack('n', 1000))
--- error_code: 101
--- response_body eval
"\x88\x02\x03\xe8"
--- error_log eval
"Received message: zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"



=== TEST 36: publisher=off: client messages are read and dropped
--- config
    location /ws {
        message_proxy_entrypoint websocket publisher=off;
        message_proxy_endpoint mock interval=200ms count=1 content=hi;
    }
--- raw_request eval
$::HS . ::frame(1, "ignored", fin => 0) . ::frame(0, " too")
--- error_code: 101
--- response_body eval
"\x81\x02hi" . ::close_frame(1000, "Bye")
--- no_error_log
Received message



=== TEST 37: subscriber=off: no message comes, the connection stays open
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off ping_interval=0;
        message_proxy_endpoint mock interval=10ms content=hi;
    }
--- raw_request eval
$::HS
--- error_code: 101
--- response_body eval
""
--- timeout: 500ms
--- abort



=== TEST 38: pings at ping_interval; a client that answers none: 1001 at idle_timeout
--- config
    location /ws {
        message_proxy_entrypoint websocket subscriber=off ping_interval=100ms idle_timeout=350ms;
        message_proxy_endpoint mock;
    }
--- raw_request eval
$::HS
--- error_code: 101
--- response_body_like eval
my $close = ::close_frame(1001, "Idle timeout");
# under valgrind a late timer may let the idle timeout come first
my $pings = GraviteeTest::native_or_valgrind(2, 1);
qr/\A(?:\x89\x00){$pings,3}\Q$close\E\z/
--- error_log
websocket client sent nothing for
reason="idle timeout"



=== TEST 39: publisher=off and subscriber=off is refused at startup
--- config
    location /ws {
        message_proxy_entrypoint websocket publisher=off subscriber=off;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
entrypoint "websocket" with publisher=off and subscriber=off would carry no message



=== TEST 40: idle_timeout must outlast ping_interval
--- config
    location /ws {
        message_proxy_entrypoint websocket ping_interval=10s idle_timeout=5s;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
parameter "idle_timeout" of entrypoint "websocket" must be longer than "ping_interval"



=== TEST 41: frame_type takes auto, text or binary
--- config
    location /ws {
        message_proxy_entrypoint websocket frame_type=json;
        message_proxy_endpoint mock;
    }
--- must_die
--- error_log
parameter "frame_type" of entrypoint "websocket" must be "auto", "text" or "binary", not "json"
