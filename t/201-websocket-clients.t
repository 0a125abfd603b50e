# The WebSocket entrypoint with scripted clients, where a block of
# Test::Nginx cannot do it: a plain RFC 6455 client library, TLS, clients
# that go away mid-frame, that never read, that answer pings or not, and
# NGINX shutting down or reloading under a connected client.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use IO::Socket::INET ();
use Protocol::WebSocket::Handshake::Client;
use Protocol::WebSocket::Frame;
use GraviteeTest;

my $HS = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
       . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
       . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

sub servroot {
    my $name = shift;
    return $ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}_$name"
                                     : undef;
}

sub start {
    my ($name, $conf, %o) = @_;
    return start_nginx($conf, suite => "ws_$name", servroot => servroot($name),
                       master => 0, %o);
}

# a raw client past its handshake: the socket, with the 101 checked
sub ws_open {
    my ($sock) = @_;
    print $sock $HS;
    my $head = read_head($sock);
    like($head, qr{^HTTP/1\.1 101 }, 'handshake answered 101');
    return $sock;
}

sub close_code {
    my $f = shift;
    return undef unless $f && $f->{opcode} == 8 && length $f->{payload} >= 2;
    return unpack('n', $f->{payload});
}

# frames until a close frame or nothing more comes: (data frames, close)
sub read_all {
    my ($sock, $timeout) = @_;
    my (@data, $close);
    while (my $f = ws_read_frame($sock, $timeout // 3)) {
        if ($f->{opcode} == 8) { $close = $f; last }
        push @data, $f;
    }
    return (\@data, $close);
}


subtest 'a plain RFC 6455 client library (Protocol::WebSocket)' => sub {
    my $ngx = start('lib', <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=150ms count=3;
        }
    }
_EOC_
    my $sock = tcp_connect($ngx->{port});
    my $hs = Protocol::WebSocket::Handshake::Client->new(
        url => "ws://127.0.0.1:$ngx->{port}/ws");
    print $sock $hs->to_string;

    my $buf = read_head($sock);
    $hs->parse($buf);
    ok($hs->is_done, 'the library accepts the handshake (Sec-WebSocket-Accept)')
        or diag($hs->error // $buf);

    # what followed the 101 in the same read, then the rest
    my $parser = Protocol::WebSocket::Frame->new;
    $parser->append($buf =~ /\r\n\r\n(.*)\z/s ? $1 : '');

    print $sock Protocol::WebSocket::Frame->new(
        buffer => 'from a library', type => 'text', masked => 1)->to_bytes;

    my (@texts, $close);
    my $deadline = time + 5;
    while (!$close && time < $deadline) {
        while (defined(my $bytes = $parser->next_bytes)) {
            if ($parser->is_text) { push @texts, $bytes }
            elsif ($parser->is_close) { $close = $bytes; last }
        }
        last if $close;
        my $more = read_until($sock, undef, 0.3);
        $parser->append($more) if length $more;
    }

    is_deeply(\@texts, ['mock message', 'mock message', 'mock message'],
              'three text frames "mock message"');
    is($close, pack('n', 1000) . 'Bye', 'then close 1000 "Bye"');

    print $sock Protocol::WebSocket::Frame->new(
        type => 'close', buffer => pack('n', 1000), masked => 1)->to_bytes;

    ok(wait_for_error_log($ngx, 'Received message: from a library'),
       'the client message was published to the Mock');
    ok(wait_for_error_log($ngx, 'reason="endpoint ended"'),
       'the close record says why');
    stop_nginx($ngx);
};


subtest 'wss: over NGINX\'s ssl listener' => sub {
    my $dir = (servroot('tls') // "t/servroot_ws_tls") . '_cert';
    my ($crt, $key) = gen_self_signed_cert($dir);
    my $ngx = start('tls', <<"_EOC_");
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=100ms count=2 content=secret;
        }
    }
_EOC_
    my $sock = ws_open(tcp_connect($ngx->{port}, tls => 1));
    ok($sock->isa('IO::Socket::SSL'), 'the connection is TLS');
    print $sock ws_frame(1, 'over tls');
    my ($data, $close) = read_all($sock);
    is_deeply([map { "$_->{opcode}:$_->{payload}" } @$data],
              ['1:secret', '1:secret'], 'two text frames');
    is(close_code($close), 1000, 'close 1000');
    ok(wait_for_error_log($ngx, 'Received message: over tls'),
       'published over TLS');
    stop_nginx($ngx);
};


subtest 'clients that go away mid-frame or mid-message' => sub {
    my $ngx = start('gone', <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=100ms;
        }
    }
_EOC_
    my $frame = ws_frame(1, 'x' x 300);
    my @cuts = (['in the header', substr($frame, 0, 3)],
                ['in the payload', substr($frame, 0, 100)],
                ['between fragments', ws_frame(1, 'part', fin => 0)]);
    my $n = 0;
    for my $cut (@cuts) {
        my $off = error_log_size($ngx);
        my $sock = ws_open(tcp_connect($ngx->{port}));
        print $sock $cut->[1];
        sleep 0.15;
        close $sock;
        my $what = $n++ < 2 ? 'frame' : 'fragmented message';
        ok(wait_for_error_log($ngx, "closed the connection in the middle of "
                                    . "a $what", 3, $off),
           "gone $cut->[0]: logged");
        ok(wait_for_error_log($ngx, 'reason="client closed connection"', 3,
                              $off), "gone $cut->[0]: closed");
    }
    unlike(error_log_text($ngx), qr/\[(alert|crit|emerg)\]|signal \d+ .*exited/,
           'no alert, no crash');

    my $sock = ws_open(tcp_connect($ngx->{port}));
    my $f = ws_read_frame($sock);
    is($f && $f->{payload}, 'mock message', 'the worker still serves');
    stop_nginx($ngx);
};


subtest 'NGINX shutting down: 1013 "Try Again Later"' => sub {
    # single-process NGINX exits at once on QUIT: the master does it gracefully
    my $ngx = start('quit', <<'_EOC_', master => 1);
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=100ms;
        }
    }
_EOC_
    my @workers = worker_pids($ngx);
    my $sock = ws_open(tcp_connect($ngx->{port}));
    my $f = ws_read_frame($sock);
    is($f && $f->{payload}, 'mock message', 'subscribed');

    kill 'QUIT', $ngx->{pid};
    my (undef, $close) = read_all($sock);
    is(close_code($close), 1013, 'close 1013');
    is($close && substr($close->{payload}, 2), 'Try Again Later', 'its reason');

    my $deadline = time + 5;
    sleep 0.05 while kill(0, $ngx->{pid}) && time < $deadline;
    ok(!kill(0, $ngx->{pid}), 'NGINX exited, without waiting for the client');
    like(error_log_text($ngx), qr/worker process $workers[0] exited with code 0/,
         'its worker exited cleanly');
    like(error_log_text($ngx), qr/gravitee stream closed: .*reason="shutdown"/,
         'the close record says why');
    unlike(error_log_text($ngx), qr/open socket .* left/, 'no socket left');
    stop_nginx($ngx);
};


subtest 'NGINX stopping while a closed client has not hung up yet' => sub {
    my $ngx = start('quitlinger', <<'_EOC_', master => 1);
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=50ms count=1;
        }
    }
_EOC_
    my $sock = ws_open(tcp_connect($ngx->{port}));
    my (undef, $close) = read_all($sock);
    is(close_code($close), 1000, 'the flow ended: 1000');

    kill 'QUIT', $ngx->{pid};
    sleep 0.5;
    close $sock;

    my $deadline = time + 5;
    sleep 0.05 while kill(0, $ngx->{pid}) && time < $deadline;
    my $log = error_log_text($ngx);
    unlike($log, qr/open socket .* left/, 'the worker waited for it');
    like($log, qr/gravitee stream closed: .*reason="endpoint ended"/,
         'and closed it, with its close record');
    stop_nginx($ngx);
};


subtest 'NGINX reloading: 1013, and the new workers serve' => sub {
    my $conf = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket;
            message_proxy_endpoint mock interval=100ms;
        }
    }
_EOC_
    my $ngx = start('hup', $conf, master => 1);
    my $sock = ws_open(tcp_connect($ngx->{port}));
    ok(ws_read_frame($sock), 'subscribed');

    my @new = reload_nginx($ngx);
    ok(@new, 'new worker started');
    my (undef, $close) = read_all($sock);
    is(close_code($close), 1013, 'the old worker\'s client gets 1013');

    my $again = ws_open(tcp_connect($ngx->{port}));
    my $f = ws_read_frame($again);
    is($f && $f->{payload}, 'mock message', 'a reconnecting client is served');
    stop_nginx($ngx);
};


subtest 'the quickstart: one text "mock message" a second' => sub {
    open my $in, '<', 'conf-examples/quickstart.conf' or die $!;
    my $conf = do { local $/; <$in> };
    my ($module) = split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
    ok($conf =~ s{^load_module .*$}{load_module $module;}m
       && $conf =~ s{^error_log .*$}{}m
       && $conf =~ s{listen 127\.0\.0\.1:8082;}{listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;},
       'conf-examples/quickstart.conf, on the test port');

    my $ngx = start('qs', $conf, master => 1);
    my $sock = tcp_connect($ngx->{port});
    print $sock $HS =~ s{^GET /ws }{GET /qs-message-api }r;
    like(read_head($sock), qr{^HTTP/1\.1 101 }, 'upgraded');

    my @at;
    for (1 .. 2) {
        my $f = ws_read_frame($sock, 3);
        is($f && "$f->{opcode}:$f->{payload}", '1:mock message',
           "message $_: a text frame");
        push @at, time;
    }
    my $gap = $at[1] - $at[0];
    ok($gap > 0.8 && $gap < 1.3, sprintf('a second apart (%.2fs)', $gap));
    stop_nginx($ngx);
};


# a client socket with a small receive buffer, against a small send buffer
# (listen ... sndbuf), so that a client that does not read fills up fast
sub slow_client {
    my $port = shift;
    my $sock = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
    setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 4096) or die "SO_RCVBUF: $!";
    $sock->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1')))
        or die "connect: $!";
    $sock->autoflush(1);
    binmode $sock;
    return ws_open($sock);
}

my $payload = 'p' x 1000;

subtest 'a client that does not read: close 1008 at the cap (default policy)'
=> sub {
    my $ngx = start('slow', <<"_EOC_");
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT sndbuf=4k;
        location /ws {
            message_proxy_entrypoint websocket max_queued_messages=20 max_queued_size=1m;
            message_proxy_endpoint mock interval=1ms content=$payload;
        }
    }
_EOC_
    my $sock = slow_client($ngx->{port});
    ok(wait_for_error_log($ngx, qr/slow client on "\/ws", 20 messages and \d+ bytes queued, closing/, 5),
       'the cap of 20 queued messages is hit, and logged');

    my ($data, $close) = read_all($sock, 2);
    ok(@$data > 0 && !grep({ $_->{payload} ne $payload } @$data),
       scalar(@$data) . ' whole frames first, from the socket buffers');
    is(close_code($close), 1008, 'then close 1008');
    like($close && $close->{payload}, qr/Slow client/, 'with its reason');
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: .*dropped=\d+ reason="slow client"/),
       'the close record says why');
    stop_nginx($ngx);
};


subtest 'a client that does not read: the cap in bytes' => sub {
    my $ngx = start('slowsize', <<"_EOC_");
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT sndbuf=4k;
        location /ws {
            message_proxy_entrypoint websocket max_queued_messages=100000 max_queued_size=10k;
            message_proxy_endpoint mock interval=1ms content=$payload;
        }
    }
_EOC_
    my $sock = slow_client($ngx->{port});
    ok(wait_for_error_log($ngx, qr/slow client on "\/ws", 10 messages and 10040 bytes queued, closing/, 5),
       'the cap of 10k bytes is hit at 10 frames of 1004 bytes (1000 of payload)');
    my (undef, $close) = read_all($sock, 2);
    is(close_code($close), 1008, 'close 1008');
    stop_nginx($ngx);
};


subtest 'slow_client=drop: new messages are dropped, the client stays' => sub {
    my $ngx = start('drop', <<"_EOC_");
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT sndbuf=4k;
        location /ws {
            message_proxy_entrypoint websocket max_queued_messages=20 slow_client=drop;
            message_proxy_endpoint mock interval=1ms count=300 content=$payload;
        }
    }
_EOC_
    my $sock = slow_client($ngx->{port});
    ok(wait_for_error_log($ngx, 'dropping new messages until it catches up', 5),
       'logged once');
    sleep 1;    # the Mock is done with its 300 messages
    my ($data, $close) = read_all($sock, 2);
    ok(@$data < 300, scalar(@$data) . ' of 300 messages arrive');
    is(close_code($close), 1000, 'then the normal end, 1000');
    print $sock ws_frame(8, pack('n', 1000));
    close $sock;
    ok(wait_for_error_log($ngx, qr/gravitee stream closed: .*messages=\d+ dropped=[1-9]\d* /),
       'the close record counts the dropped');
    stop_nginx($ngx);
};


subtest 'server pings: a client that answers stays, one that stops is closed'
=> sub {
    my $ngx = start('ping', <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /ws {
            message_proxy_entrypoint websocket subscriber=off ping_interval=200ms idle_timeout=500ms;
            message_proxy_endpoint mock;
        }
    }
_EOC_
    my $sock = ws_open(tcp_connect($ngx->{port}));
    my $start = time;
    my $pings = 0;
    while (time - $start < 1.5) {
        my $f = ws_read_frame($sock, 1) or last;
        last unless $f->{opcode} == 9;
        $pings++;
        print $sock ws_frame(10, $f->{payload});
    }
    ok($pings >= 6, "$pings pings answered in 1.5s, still open");

    my $silent = time;
    my ($data, $close) = read_all($sock, 2);
    is(close_code($close), 1001, 'silent for idle_timeout: close 1001');
    my $waited = time - $silent;
    ok($waited > 0.25 && $waited < 1, sprintf('after %.2fs', $waited));
    ok(!grep({ $_->{opcode} != 9 } @$data), 'only pings in between');
    stop_nginx($ngx);
};


done_testing();
