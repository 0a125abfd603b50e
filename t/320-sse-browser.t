# Server-Sent Events in a real browser: headless Chromium loads a page from
# the test NGINX whose EventSource collects the events, reconnects by itself
# when the stream ends (with Last-Event-ID), over HTTP/1.1 and HTTP/2.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use GraviteeTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_320") : ();

my $dir = ($where{servroot} // 't/servroot_320-sse-browser') . '_certs';
my ($crt, $key) = gen_self_signed_cert($dir);

my $ngx = start_nginx(<<"_EOC_", %where);
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1 ssl http2;
        ssl_certificate $crt;
        ssl_certificate_key $key;

        location = /events {
            message_proxy_entrypoint sse retry=500ms;
            message_proxy_endpoint mock interval=100ms count=2
                                        "content=first line\\nsecond line";
        }

        location / {
            root \$TEST_NGINX_HTML_DIR;
        }
    }
_EOC_

# the page writes what its EventSource saw; after the second end of stream
# (the reconnection's) it stops the browser from reconnecting again
open my $page, '>', "$ngx->{html_dir}/page.html" or die $!;
print $page <<'_EOP_';
<!doctype html>
<html><body><pre id="out">no event</pre><script>
var out = document.getElementById('out'), log = [], errors = 0;
var es = new EventSource('/events');
es.onopen = function () { log.push('open'); };
es.addEventListener('message', function (e) {
    log.push('message id=' + e.lastEventId + ' data=' + JSON.stringify(e.data));
});
es.onerror = function () {
    errors++;
    log.push('error readyState=' + es.readyState);
    if (errors >= 2) { es.close(); log.push('done'); }
    out.textContent = log.join('\n');
};
</script></body></html>
_EOP_
close $page;

my $expected = join "\n",
    'open',
    'message id=0 data="first line\nsecond line"',
    'message id=1 data="first line\nsecond line"',
    'error readyState=0',
    'open',
    'error readyState=0',
    'done';

my $off = error_log_size($ngx);

is(browser_text("http://127.0.0.1:$ngx->{port}/page.html"), $expected,
   'HTTP/1.1: both events, the multi-line payload whole, one automatic reconnect');

my $log = error_log_text($ngx, $off);
like($log, qr/http header: "Last-Event-ID: 1"/,
     'the browser reconnected with the id of the last event');
my @closed = $log =~ /gravitee stream closed: api="\/events" .*? messages=(\d+) .*?reason="endpoint ended"/g;
is("@closed", '2 0', 'two streams: two events, then none after id 1 (count=2)');

$off = error_log_size($ngx);

my $h2 = $ngx->{ports}{TEST_NGINX_RAND_PORT_1};
is(browser_text("https://127.0.0.1:$h2/page.html", '--ignore-certificate-errors'),
   $expected, 'HTTP/2: the same, from the kept request path');

$log = error_log_text($ngx, $off);
my @h2 = $log =~ /gravitee sse closed: api="\/events" protocol=HTTP\/2\.0 .*? messages=(\d+) .*?reason="endpoint ended"/g;
is("@h2", '2 0', 'HTTP/2: two streams, the second one resumed after id 1');

stop_nginx($ngx);

done_testing;
