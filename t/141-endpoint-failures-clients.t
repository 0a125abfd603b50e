# Endpoint failures and late acknowledgements with scripted clients, where
# a block of Test::Nginx cannot do it: WebSocket (close 1011 with the error
# as the reason, publishing under publish_delay and publish_status), and
# the timings of HTTP POST under publish_delay.  The Mock's fail_after,
# publish_delay and publish_status make the failures.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use GraviteeTest;

my $HS = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
       . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
       . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

sub start {
    my ($name, $conf, %o) = @_;
    my $servroot = $ENV{TEST_NGINX_SERVROOT}
                   ? "$ENV{TEST_NGINX_SERVROOT}_fail_$name" : undef;
    return start_nginx($conf, suite => "fail_$name", servroot => $servroot,
                       master => 0, %o);
}

sub location {
    my ($entrypoint, $endpoint) = @_;
    return <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint $entrypoint;
            message_proxy_endpoint mock $endpoint;
        }
    }
_EOC_
}

sub ws_open {
    my ($ngx) = @_;
    my $sock = tcp_connect($ngx->{port});
    print $sock $HS;

    # byte by byte: a frame sent right after the 101 stays in the socket
    my $head = '';
    while ($head !~ /\r\n\r\n\z/) {
        sysread($sock, $head, 1, length $head) or last;
    }
    like($head, qr{^HTTP/1\.1 101 }, 'handshake answered 101');
    return $sock;
}

# frames until a close frame or nothing more comes: (data frames, close)
sub read_all {
    my ($sock, $timeout) = @_;
    my (@data, $close);
    while (my $f = ws_read_frame($sock, $timeout // 3)) {
        next if $f->{opcode} == 9 || $f->{opcode} == 10;
        if ($f->{opcode} == 8) { $close = $f; last }
        push @data, $f;
    }
    return (\@data, $close);
}

sub close_of {
    my $f = shift;
    return 'none' unless $f;
    my ($code, $reason) = unpack('n a*', $f->{payload});
    return "$code $reason";
}

# every message freed once the client is gone: nothing leaks
sub no_leak {
    my ($ngx) = @_;
    ok(wait_for_error_log($ngx, qr/freed, alive:0\n(?!.*alive:[1-9])/s),
       'every message freed (alive:0)');
    unlike(error_log_text($ngx), qr/\[(alert|crit)\]/, 'no alert');
}


subtest 'WebSocket: the endpoint fails: the frames so far, then 1011 '
      . 'with the error as the reason' => sub {
    my $ngx = start('ws_sub', location('websocket',
                                       'interval=100ms fail_after=2'));
    my $sock = ws_open($ngx);
    my ($data, $close) = read_all($sock);

    is_deeply([map { $_->{payload} } @$data],
              ['mock message', 'mock message'], 'two frames first');
    is(close_of($close), '1011 Mock endpoint failure after 2 messages',
       'then close 1011, the reason is the error text');

    print $sock ws_frame(8, pack('n', 1011));
    is(read_until($sock, undef, 3), '', 'then the connection is closed');

    ok(wait_for_error_log($ngx, 'reason="endpoint failed"'),
       'the close record says why');
    like(error_log_text($ngx),
         qr/websocket on "\/ws": endpoint "mock" failed: Mock endpoint /,
         'the failure is logged');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: fail_after=0 closes with 1011 at once' => sub {
    my $ngx = start('ws_sub0', location('websocket',
                                        'interval=10s fail_after=0'));
    my $t0 = time;
    my $sock = ws_open($ngx);
    my ($data, $close) = read_all($sock, 2);

    is(scalar @$data, 0, 'no frame');
    is(close_of($close), '1011 Mock endpoint failure after 0 messages',
       'close 1011');
    cmp_ok(time - $t0, '<', 1.5, 'at once, not after an interval');
    close $sock;
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: a shared stream fails for every subscriber' => sub {
    my $ngx = start('ws_shared', location('websocket',
                                   'interval=200ms fail_after=2 shared=on'));
    my $a = ws_open($ngx);
    my $b = ws_open($ngx);
    my ($da, $ca) = read_all($a);
    my ($db, $cb) = read_all($b);

    is(scalar @$da, 2, 'the first client got two frames');
    is(scalar @$db, 2, 'the second one too');
    is(close_of($ca), '1011 Mock endpoint failure after 2 messages',
       'then both close 1011');
    is(close_of($cb), close_of($ca), 'with the same reason');

    my $c = ws_open($ngx);
    my ($dc, $cc) = read_all($c, 2);
    is(scalar @$dc, 0, 'a newcomer gets no frame: the stream failed');
    is(close_of($cc), close_of($ca), 'and the same close');

    close $_ for $a, $b, $c;
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: publish_delay: published in order, one at a time, '
      . 'the client still served' => sub {
    my $ngx = start('ws_delay', location('websocket',
                     'interval=100ms count=20 publish_delay=300ms'));
    my $sock = ws_open($ngx);
    my $t0 = time;

    # three messages in one write: the second waits for the first's
    # acknowledgement, then the third for the second's
    print $sock join '', map { ws_frame(1, "m$_") } 1 .. 3;

    my $frames = 0;
    while (time - $t0 < 0.6) {
        my $f = ws_read_frame($sock, 0.7) or last;
        $frames++ if $f->{opcode} == 1;
    }
    cmp_ok($frames, '>=', 3, 'frames keep coming while a publication waits');

    my $log = error_log_text($ngx);
    like($log, qr/Received message: m1\b/, 'the first acknowledged by then');
    unlike($log, qr/Received message: m3/,
           'not the third: one at a time, each after its delay');

    ok(wait_for_error_log($ngx, 'Received message: m3', 3),
       'all three published');
    my @got = error_log_text($ngx) =~ /Received message: (m\d)/g;
    is_deeply(\@got, [qw(m1 m2 m3)], 'in the order sent');

    # the reader is not blocked: a ping is answered, a close too
    print $sock ws_frame(9, 'still there');
    my $pong;
    while (my $f = ws_read_frame($sock, 2)) {
        if ($f->{opcode} == 10) { $pong = $f; last }
    }
    is($pong && $pong->{payload}, 'still there', 'a ping is answered after');

    print $sock ws_frame(8, pack('n', 1000));
    my (undef, $close) = read_all($sock);
    is(close_of($close), '1000 ', 'a close is answered with its code');
    close $sock;
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: publish_status: closed with 1011 and the endpoint\'s '
      . 'error as the reason' => sub {
    my $ngx = start('ws_refused', location('websocket',
                     'interval=10s publish_status=412'));
    my $sock = ws_open($ngx);
    print $sock ws_frame(1, 'refused') . ws_frame(1, 'never read');

    my ($data, $close) = read_all($sock);
    is(close_of($close), '1011 Mock endpoint refused the message',
       'close 1011, the reason is the error text');
    print $sock ws_frame(8, pack('n', 1011));
    is(read_until($sock, undef, 3), '', 'then the connection is closed');

    ok(wait_for_error_log($ngx, 'reason="publishing failed"'),
       'the close record says why');
    unlike(error_log_text($ngx), qr/Received message/,
           'nothing published, not even the message after');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: publish_status after publish_delay: the same, late'
      => sub {
    my $ngx = start('ws_refused_late', location('websocket',
                     'interval=10s publish_delay=300ms publish_status=503'));
    my $sock = ws_open($ngx);
    my $t0 = time;
    print $sock ws_frame(1, 'refused') . ws_frame(1, 'never read');

    my ($data, $close) = read_all($sock);
    cmp_ok(time - $t0, '>=', 0.25, 'after the delay');
    is(close_of($close), '1011 Mock endpoint refused the message',
       'close 1011, the reason is the error text');
    print $sock ws_frame(8, pack('n', 1011));
    is(read_until($sock, undef, 3), '', 'then the connection is closed');

    ok(wait_for_error_log($ngx, 'reason="publishing failed"'),
       'the close record says why');
    unlike(error_log_text($ngx), qr/Received message/, 'nothing published');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: a client that leaves during publish_delay is noticed '
      . 'once the endpoint answered: its message is published' => sub {
    my $ngx = start('ws_gone', location('websocket',
                     'interval=10s publish_delay=500ms'));
    my $sock = ws_open($ngx);
    print $sock ws_frame(1, 'sent whole');
    sleep 0.1;
    close $sock;

    ok(wait_for_error_log($ngx, 'reason="client closed connection"', 3),
       'the connection is closed');
    like(error_log_text($ngx), qr/Received message: sent whole/,
         'the message the client sent is published');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: a close by the gateway during publish_delay cancels '
      . 'the publication' => sub {
    my $ngx = start('ws_cancel', location('websocket',
                     'interval=200ms fail_after=1 publish_delay=4s'));
    my $sock = ws_open($ngx);
    print $sock ws_frame(1, 'in flight');

    my ($data, $close) = read_all($sock);
    is(scalar @$data, 1, 'the frame made before the failure');
    is(close_of($close), '1011 Mock endpoint failure after 1 messages',
       'the endpoint failure closes with 1011');
    print $sock ws_frame(8, pack('n', 1011));
    is(read_until($sock, undef, 3), '', 'the gateway hangs up');
    close $sock;

    # the connection goes (the client hung up, or the linger's 2s ended):
    # the publication goes with it
    ok(wait_for_error_log($ngx, 'mock publication cancelled before its '
                                . 'acknowledgement'),
       'the publication in flight is cancelled');
    sleep 4;
    unlike(error_log_text($ngx), qr/Received message/,
           'and never acknowledged');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: a publication never answered ends at idle_timeout' => sub {
    my $ngx = start('ws_idle', location(
                     'websocket ping_interval=500ms idle_timeout=1200ms',
                     'interval=10s publish_delay=10s'));
    my $sock = ws_open($ngx);
    my $t0 = time;
    print $sock ws_frame(1, 'stuck');

    # pongs are sent but not read while the publication waits
    my $close;
    while (my $f = ws_read_frame($sock, 3)) {
        print $sock ws_frame(10, $f->{payload}) if $f->{opcode} == 9;
        if ($f->{opcode} == 8) { $close = $f; last }
    }
    is(close_of($close), '1001 Idle timeout', 'closed with 1001');
    my $took = time - $t0;
    cmp_ok($took, '<', 2.5, "at idle_timeout ($took s), not at the delay");
    close $sock;

    ok(wait_for_error_log($ngx, 'mock publication cancelled before its '
                                . 'acknowledgement'),
       'the publication is cancelled');
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'WebSocket: NGINX stopping during publish_delay: 1013, the '
      . 'publication cancelled, the worker not held' => sub {
    my $ngx = start('ws_quit', location('websocket',
                     'interval=10s publish_delay=10s'), master => 1);
    my $sock = ws_open($ngx);
    print $sock ws_frame(1, 'in flight');
    sleep 0.2;

    my $t0 = time;
    kill 'QUIT', $ngx->{pid};
    my (undef, $close) = read_all($sock);
    is(close_of($close), '1013 Try Again Later', 'close 1013');
    close $sock;

    ok(stop_nginx($ngx), 'the worker exits gracefully');
    cmp_ok(time - $t0, '<', 3, 'without waiting for the acknowledgement');
    my $log = error_log_text($ngx);
    like($log, qr/mock publication cancelled/, 'the publication is cancelled');
    unlike($log, qr/Received message|open socket|\[alert\]/,
           'nothing published, no socket left');
};


subtest 'HTTP POST: the 202 waits for publish_delay' => sub {
    my $ngx = start('post_delay', location('http-post',
                                           'publish_delay=500ms'));
    my $sock = tcp_connect($ngx->{port});
    my $t0 = time;
    print $sock "POST /ws HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Length: 5\r\n\r\nhello";
    my $resp = read_until($sock, qr/\r\n\r\n/, 3);
    my $took = time - $t0;

    like($resp, qr{^HTTP/1\.1 202 }, 'POST answers 202 once the endpoint acknowledged');
    cmp_ok($took, '>=', 0.45, "not before the acknowledgement ($took s)");
    cmp_ok($took, '<', 2, 'nor long after it');
    like(error_log_text($ngx), qr/Received message: hello/, 'logged then');

    # the connection is kept: a second one on it waits as long
    $t0 = time;
    print $sock "POST /ws HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Length: 5\r\n\r\nagain";
    $resp = read_until($sock, qr/\r\n\r\n/, 3);
    like($resp, qr{^HTTP/1\.1 202 }, 'a second POST on the connection: 202');
    cmp_ok(time - $t0, '>=', 0.45, 'after its own delay');
    close $sock;
    no_leak($ngx);
    stop_nginx($ngx);
};


subtest 'HTTP POST: a worker that stops still acknowledges the POST in '
      . 'flight' => sub {
    my $ngx = start('post_quit', location('http-post',
                                          'publish_delay=500ms'),
                    master => 1);
    my $sock = tcp_connect($ngx->{port});
    print $sock "POST /ws HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Length: 5\r\n\r\nquits";
    sleep 0.1;
    kill 'QUIT', $ngx->{pid};

    like(read_until($sock, qr/\r\n\r\n/, 3), qr{^HTTP/1\.1 202 },
         'the client gets its 202');
    like(error_log_text($ngx), qr/Received message: quits/, 'published');

    # not left to NGINX's lingering close, which would hold the worker
    close $sock;
    ok(stop_nginx($ngx), 'the worker exits gracefully');
    unlike(error_log_text($ngx), qr/open socket|\[alert\]/, 'no socket left');
};


subtest 'HTTP/2 over TLS (the request is kept): SSE error event, POST '
      . 'acknowledged late, refused late, cancelled' => sub {
    my $dir = ($ENV{TEST_NGINX_SERVROOT}
               ? "$ENV{TEST_NGINX_SERVROOT}_fail_h2" : 't/servroot_fail_h2')
              . '_certs';
    my ($crt, $key) = gen_self_signed_cert($dir);
    my $ngx = start('h2', <<"_EOC_");
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT ssl http2;
        ssl_certificate $crt;
        ssl_certificate_key $key;

        location /sse {
            message_proxy_entrypoint sse retry=1s;
            message_proxy_endpoint mock interval=100ms fail_after=2;
        }

        location /late {
            message_proxy_entrypoint http-post;
            message_proxy_endpoint mock publish_delay=400ms;
        }

        location /refused {
            message_proxy_entrypoint http-post;
            message_proxy_endpoint mock publish_delay=200ms
                                        publish_status=412;
        }
    }
_EOC_
    my $url = "https://127.0.0.1:$ngx->{port}";
    my $curl = 'curl -sS -k --http2';

    my $out = `$curl -N -H 'Accept: text/event-stream' --max-time 5 $url/sse 2>&1`;
    is($out, "retry: 1000\n\n"
             . "id: 0\nevent: message\ndata: mock message\n\n"
             . "id: 1\nevent: message\ndata: mock message\n\n"
             . "event: error\ndata: Mock endpoint failure after 2 messages\n\n",
       'SSE: the events so far, the error event, then the stream ends');
    ok(wait_for_error_log($ngx, qr/gravitee sse closed: api="\/sse" protocol=HTTP\/2.0 .* reason="endpoint ended"/),
       'SSE: the close record');

    my $t0 = time;
    $out = `$curl -o /dev/null -w '%{http_code}' --data-binary late $url/late`;
    is($out, '202', 'POST: 202');
    cmp_ok(time - $t0, '>=', 0.35, 'after the acknowledgement');
    like(error_log_text($ngx), qr/Received message: late/, 'published');

    $out = `$curl -H 'Accept: application/json' --data-binary no $url/refused`;
    is($out, '{"message":"Mock endpoint refused the message",'
             . '"http_status_code":412}', 'POST refused late: 412, JSON');

    my $off = error_log_size($ngx);
    `$curl --max-time 0.2 --data-binary gone $url/late 2>/dev/null`;
    ok(wait_for_error_log($ngx, 'mock publication cancelled', 3, $off),
       'POST: a client that leaves cancels');
    sleep 0.5;
    unlike(error_log_text($ngx, $off), qr/Received message: gone/,
           'and nothing is published');
    no_leak($ngx);
    stop_nginx($ngx);
};


done_testing;
