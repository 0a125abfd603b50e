# Server-Sent Events, interactively: clients that leave, slow readers,
# shutdown and reload (goaway), HTTP/2 over TLS, POST over HTTP/2.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use GraviteeTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_310") : ();

my $dir = ($where{servroot} // 't/servroot_310-sse-stream') . '_certs';
my ($crt, $key) = gen_self_signed_cert($dir);

my $big = 'x' x 4000;

my $conf = <<"_EOC_";
    log_format sse '"\$request" \$status "\$message_proxy_close_reason" '
                   '\$message_proxy_messages \$message_proxy_dropped';

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT sndbuf=16k;
        access_log logs/sse.log sse;
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1 ssl http2;
        ssl_certificate $crt;
        ssl_certificate_key $key;

        # as the README advises for SSE over HTTP/2: every HTTP/2 test
        # below runs with a kept request that fits one pool block
        request_pool_size 7k;

        location /sse {
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_entrypoint http-post;
            message_proxy_endpoint mock interval=100ms;
        }

        location /sse2 {
            message_proxy_entrypoint sse retry=1s metadata_as_comment=on;
            message_proxy_endpoint mock interval=100ms count=2 metadata=k:v;
        }

        location /quiet {
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_endpoint mock interval=4500ms count=1;
        }

        location /fanout {
            message_proxy_entrypoint sse retry=1s;
            message_proxy_endpoint mock interval=500ms count=3 shared=on;
        }

        location /slow-close {
            message_proxy_entrypoint sse retry=1s max_queued_messages=20;
            message_proxy_endpoint mock interval=1ms content=$big;
        }

        location /slow-drop {
            message_proxy_entrypoint sse retry=1s max_queued_messages=20
                                     slow_client=drop;
            message_proxy_endpoint mock interval=1ms content=$big;
        }
    }
_EOC_

sub request {
    my ($port, $path, @headers) = @_;
    my $sock = tcp_connect($port);
    print $sock join "\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                             'Accept: text/event-stream', @headers, '', '';
    return $sock;
}

sub dechunk {
    my $raw = shift;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my $out = '';
    while ($body =~ s/\A([0-9a-f]+)\r\n//) {
        my $n = hex $1;
        return ($head, $out, 1) if $n == 0;
        $out .= substr $body, 0, $n, '';
        $body =~ s/\A\r\n//;
    }
    return ($head, $out, 0);
}

# the last "alive:N" of the message debug lines: what is still allocated
sub alive {
    my @n = error_log_text(shift) =~ /gravitee message \S+ (?:created|freed).*?alive:(\d+)/g;
    return @n ? $n[-1] : -1;
}

my $ngx = start_nginx($conf, %where);
my $h2 = $ngx->{ports}{TEST_NGINX_RAND_PORT_1};

# 1. a client that leaves: the stream closes and frees every message

{
    my $sock = request($ngx->{port}, '/sse');
    my $got = read_until($sock, qr/id: 2\n/, 3);
    like($got, qr/Transfer-Encoding: chunked/, 'HTTP/1.1 stream is chunked');
    like($got, qr/id: 0\nevent: message\ndata: mock message\n\n/, 'events arrive as they come');
    close $sock;

    ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/sse" entrypoint=sse .* reason="client closed"/, 3),
       'close record of a client that left');
    sleep 0.3;
    is(alive($ngx), 0, 'no message left alive once the client left');
}

# 2. shutdown: the client is told to reconnect, then the stream ends

sub goaway_test {
    my ($signal, $name) = @_;
    my $off = error_log_size($ngx);
    my $sock = request($ngx->{port}, '/sse');
    my $got = read_until($sock, qr/id: 1\n.*\n\n/s, 3);
    like($got, qr/id: 0\n/, "$name: stream running");
    kill $signal, $ngx->{pid};
    $got .= read_until($sock, undef, 5);
    my ($head, $body, $last) = dechunk($got);
    like($body, qr/\n\nevent: goaway\ndata: Stopping, please reconnect\n\n\z/,
         "$name: goaway is the last event");
    ok($last, "$name: the chunked body is complete");
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: .* reason="shutdown"/, 3, $off),
       "$name: close record says shutdown");
}

goaway_test('HUP', 'reload');
sleep 0.5;

# 3. a slow reader, slow_client=close: the stream ends, the client reconnects

{
    my $off = error_log_size($ngx);
    my $sock = request($ngx->{port}, '/slow-close');
    read_until($sock, qr/id: 0\n/, 3);
    # not reading: the socket fills, then the queue
    ok(wait_for_error_log($ngx, qr/slow client on "\/slow-close", 20 messages .* closing/, 15, $off),
       'slow reader over max_queued_messages is logged once');
    my $got = read_until($sock, undef, 15);
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/slow-close" .* reason="slow client"/, 5, $off),
       'close record says slow client');
    my @ids = $got =~ /^id: (\d+)$/mg;
    my @gaps = grep { $ids[$_] != $ids[$_ - 1] + 1 } 1 .. $#ids;
    is(scalar @gaps, 0, 'slow_client=close: no message is skipped before the end');
    like($got, qr/\n0\r\n\r\n\z/, 'slow_client=close: the stream ends cleanly');
    close $sock;
    sleep 0.3;
    is(alive($ngx), 0, 'the queued messages are freed');
}

# 4. slow_client=drop: new messages are dropped until the client catches up

{
    my $off = error_log_size($ngx);
    my $sock = request($ngx->{port}, '/slow-drop');
    read_until($sock, qr/id: 0\n/, 3);
    ok(wait_for_error_log($ngx, qr/slow client on "\/slow-drop".*dropping new messages/, 15, $off),
       'slow_client=drop is logged');
    my $got = read_until($sock, qr/id: \d+\n(?s:.*)id: \d+\n(?s:.*)id: \d+\n/, 1);
    $got .= read_until($sock, undef, 1);
    my @ids = $got =~ /^id: (\d+)$/mg;
    my @gaps = grep { $ids[$_] != $ids[$_ - 1] + 1 } 1 .. $#ids;
    ok(@gaps > 0, 'slow_client=drop: the client misses messages but keeps its stream');
    close $sock;
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/slow-drop" .* dropped=[1-9]\d* reason="client closed"/, 5, $off),
       'close record counts the dropped messages');
}

# 5. HTTP/2 over TLS: the request is kept, the events are the same

sub access_log_text {
    my ($ngx) = @_;
    open my $fh, '<', "$ngx->{servroot}/logs/sse.log" or return '';
    local $/;
    return <$fh>;
}

my @curl = ('curl', '-sS', '-k', '--http2', '-N', "-H 'Accept: text/event-stream'");

{
    my $out = `@curl -i --max-time 5 https://127.0.0.1:$h2/sse2 2>&1`;
    like($out, qr{\AHTTP/2 200 \r\n}, 'HTTP/2 200');
    like($out, qr{^content-type: text/event-stream;charset=UTF-8\r$}m, 'HTTP/2 content type');
    like($out, qr{^cache-control: no-cache\r$}m, 'HTTP/2 no-cache');
    unlike($out, qr{^content-length:}mi, 'HTTP/2 no content-length');
    my ($body) = $out =~ /\r\n\r\n(.*)\z/s;
    like($body, qr/\Aretry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: v\n\nid: 1\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: v\n\n\z/,
         'HTTP/2 events byte for byte, stream ended with the endpoint');
    ok(wait_for_error_log($ngx, qr/gravitee sse closed: api="\/sse2" protocol=HTTP\/2.0 .* messages=2 .* reason="endpoint ended"/, 3),
       'HTTP/2 close record');
    like(access_log_text($ngx), qr{^"GET /sse2 HTTP/2.0" 200 "endpoint ended" 2 0$}m,
         'HTTP/2: the kept request has one access log record, at the end, with the reason');
}

{
    my $out = `@curl -H 'Last-Event-ID: 41' --max-time 1 https://127.0.0.1:$h2/sse 2>/dev/null`;
    like($out, qr/\Aretry: 1000\n\nid: 42\nevent: message\n/, 'HTTP/2 Last-Event-ID resumes after it');
}

{
    my $off = error_log_size($ngx);
    my $out = `@curl --max-time 1 https://127.0.0.1:$h2/sse 2>/dev/null`;
    like($out, qr/id: 3\n/, 'HTTP/2 endless stream');
    ok(wait_for_error_log($ngx, qr/gravitee sse closed: api="\/sse" protocol=HTTP\/2.0 .* reason="client closed"/, 3, $off),
       'HTTP/2 client that leaves: close record');
    like(access_log_text($ngx), qr{^"GET /sse HTTP/2.0" 200 "client closed" [1-9]\d* 0$}m,
         'HTTP/2 client that leaves: its access log record says so');
    sleep 0.3;
    is(alive($ngx), 0, 'HTTP/2: no message left alive');
}

{
    my $off = error_log_size($ngx);
    my $out = `curl -sS -k --http2 -o /dev/null -w '%{http_version} %{http_code} %{size_download}' --data-binary 'over h2' https://127.0.0.1:$h2/sse`;
    is($out, '2 202 0', 'HTTP/2 POST: 202, empty body');
    ok(wait_for_error_log($ngx, 'Received message: over h2', 3, $off), 'HTTP/2 POST published');
}

# 5b. HTTP/1.1 over TLS is detached as well

{
    my $out = `curl -sS -k --http1.1 -N -H 'Accept: text/event-stream' --max-time 5 https://127.0.0.1:$h2/sse2 2>&1`;
    like($out, qr/\Aretry: 1000\n\nid: 0\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: v\n\nid: 1\n/,
         'HTTP/1.1 over TLS: the same events');
    like($out, qr/\n\nid: 1\nevent: message\ndata: mock message\n:sourceTimestamp: \d{13}\n:k: v\n\n\z/,
         'HTTP/1.1 over TLS: each event once, the stream ends after the last');
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/sse2" entrypoint=sse .* messages=2 .* reason="endpoint ended"/, 3),
       'HTTP/1.1 over TLS: a detached stream, its close record');
}

# 5c. a slow HTTP/2 reader: the same cap and policy on the kept request

{
    my $off = error_log_size($ngx);
    my $t0 = time;
    system("@curl --limit-rate 2k --max-time 3 -o /dev/null https://127.0.0.1:$h2/slow-close 2>/dev/null");
    ok(wait_for_error_log($ngx, qr/sse on "\/slow-close": slow client, 20 messages and \d+ bytes unsent, closing/, 1, $off),
       'HTTP/2 slow reader over max_queued_messages is logged');
    ok(wait_for_error_log($ngx, qr/gravitee sse closed: api="\/slow-close" protocol=HTTP\/2.0 .* reason="slow client"/, 3, $off),
       'HTTP/2 slow reader: close record says slow client');
    sleep 0.3;
    is(alive($ngx), 0, 'HTTP/2 slow reader: the unsent messages are freed');
}

# 5d. heartbeats on HTTP/2 too

{
    my $out = `@curl --max-time 8 https://127.0.0.1:$h2/quiet 2>&1`;
    is($out, "retry: 1000\n\n:\n\n:\n\nid: 0\nevent: message\ndata: mock message\n\n",
       'HTTP/2: a heartbeat at each quiet tick, then the event');
}

# 5e. a fan-out encodes each event once, whatever the number of clients

{
    my $off = error_log_size($ngx);
    my @socks = map { request($ngx->{port}, '/fanout') } 1 .. 3;
    my @got = map { read_until($_, qr/\n0\r\n\r\n/, 4) } @socks;
    for my $i (0 .. 2) {
        my (undef, $body) = dechunk($got[$i]);
        is($body, join('', "retry: 1000\n\n",
                       map { "id: $_\nevent: message\ndata: mock message\n\n" } 0 .. 2),
           "fan-out: client $i got every event");
    }
    my @enc = error_log_text($ngx, $off) =~ /sse event of message \S+ id:"(\d+)" encoded/g;
    is("@enc", '0 1 2', 'fan-out: each event encoded once for three clients');
    close $_ for @socks;
}

# 6. shutdown with an HTTP/2 subscriber: goaway at the next heartbeat tick

{
    my $off = error_log_size($ngx);
    my $file = "$dir/h2-goaway.out";
    my $pid = fork // die;
    if (!$pid) {
        exec "@curl --max-time 10 -o $file https://127.0.0.1:$h2/sse 2>/dev/null";
    }
    sleep 0.5;
    my $t0 = time;
    my $graceful = stop_nginx($ngx, timeout => 8);
    waitpid $pid, 0;
    my $took = time - $t0;
    ok($graceful, 'the worker exits gracefully with an HTTP/2 subscriber');
    ok($took < 4, "HTTP/2 subscriber released within a heartbeat ($took s)");
    open my $in, '<', $file or die;
    my $body = do { local $/; <$in> };
    like($body, qr/\n\nevent: goaway\ndata: Stopping, please reconnect\n\n\z/,
         'HTTP/2: goaway is the last event');
    like(error_log_text($ngx, $off), qr/gravitee sse closed: api="\/sse" protocol=HTTP\/2.0 .* reason="shutdown"/,
         'HTTP/2 close record says shutdown');
}

# 7. shutdown with an HTTP/1.1 subscriber

$ngx = start_nginx($conf, %where);
goaway_test('QUIT', 'shutdown');

done_testing;
