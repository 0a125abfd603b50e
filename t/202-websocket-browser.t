# The WebSocket entrypoint in a real browser: headless Chromium loads a page
# from the test NGINX whose WebSocket subscribes, publishes one message and
# writes down what it saw, over ws:// and wss://.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use GraviteeTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_202") : ();

my $dir = ($where{servroot} // 't/servroot_202-websocket-browser') . '_certs';
my ($crt, $key) = gen_self_signed_cert($dir);

my $ngx = start_nginx(<<"_EOC_", %where, master => 0);
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;

        location = /ws {
            message_proxy_entrypoint websocket subprotocols=chat
                allowed_origins=http://127.0.0.1:\$TEST_NGINX_SERVER_PORT,https://127.0.0.1:\$TEST_NGINX_RAND_PORT_1;
            message_proxy_endpoint mock interval=100ms count=2;
        }

        location = /binary {
            message_proxy_entrypoint websocket frame_type=binary;
            message_proxy_endpoint mock interval=100ms count=1 content=bytes;
        }

        # held for 1.5s: the page's load, and so the dump of its DOM, waits
        # for it (a WebSocket alone does not hold Chromium's virtual time)
        location = /hold {
            message_proxy_entrypoint http-get messages_limit_duration=1500ms;
            message_proxy_endpoint mock interval=1h;
        }

        location = /elsewhere {
            message_proxy_entrypoint websocket allowed_origins=https://app.example;
            message_proxy_endpoint mock;
        }

        location / {
            root \$TEST_NGINX_HTML_DIR;
        }
    }
_EOC_

# the page opens the WebSocket at the path after "?" (with the subprotocol
# after "#", if any), says hello once open, and writes down every event
open my $page, '>', "$ngx->{html_dir}/page.html" or die $!;
print $page <<'_EOP_';
<!doctype html>
<html><body><pre id="out">nothing happened</pre><script>
var out = document.getElementById('out'), log = [];
var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
var protocols = location.hash ? [location.hash.substring(1)] : [];
var ws = new WebSocket(scheme + location.host + location.search.substring(1),
                       protocols);
ws.onopen = function () {
    log.push('open protocol=' + JSON.stringify(ws.protocol));
    ws.send('hello from the browser');
};
ws.onmessage = function (e) {
    if (typeof e.data === 'string') {
        log.push('text ' + JSON.stringify(e.data));
    } else {
        log.push('binary blob of ' + e.data.size + ' bytes');
    }
};
ws.onerror = function () { log.push('error'); };
ws.onclose = function (e) {
    log.push('close code=' + e.code + ' reason=' + JSON.stringify(e.reason)
             + ' clean=' + e.wasClean);
    out.textContent = log.join('\n');
};
</script><img src="/hold" alt=""></body></html>
_EOP_
close $page;

my $expected = join "\n",
    'open protocol="chat"',
    'text "mock message"',
    'text "mock message"',
    'close code=1000 reason="Bye" clean=true';

my $off = error_log_size($ngx);

is(browser_text("http://127.0.0.1:$ngx->{port}/page.html?/ws#chat"), $expected,
   'ws://: the subprotocol, two text messages, a clean close 1000 "Bye"');
ok(wait_for_error_log($ngx, 'Received message: hello from the browser', 3,
                      $off), 'what the browser sent was published');

$off = error_log_size($ngx);

my $tls = $ngx->{ports}{TEST_NGINX_RAND_PORT_1};
is(browser_text("https://127.0.0.1:$tls/page.html?/ws#chat",
          '--ignore-certificate-errors'),
   $expected, 'wss://: the same over TLS');
ok(wait_for_error_log($ngx, 'Received message: hello from the browser', 3,
                      $off), 'published over TLS');

is(browser_text("http://127.0.0.1:$ngx->{port}/page.html?/binary"),
   join("\n", 'open protocol=""', 'binary blob of 5 bytes',
        'close code=1000 reason="Bye" clean=true'),
   'frame_type=binary: the browser gets a Blob, as from the reference');

$off = error_log_size($ngx);

is(browser_text("http://127.0.0.1:$ngx->{port}/page.html?/elsewhere"),
   join("\n", 'error', 'close code=1006 reason="" clean=false'),
   'a page from an Origin not allowed cannot connect');
like(error_log_text($ngx, $off),
     qr/websocket handshake on "\/elsewhere" refused with 403: Origin "http:\/\/127\.0\.0\.1:\d+" is not allowed/,
     'refused with 403, logged');

stop_nginx($ngx);

done_testing;
