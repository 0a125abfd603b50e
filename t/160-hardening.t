# What a hostile client can make a worker keep, and clients that leave at
# once: a ping flood that reads nothing, GET and POST clients that hang up
# right after their request, GETs open across a reload or quit, huge
# positions and request lines.  Each block is a defect found by an
# adversarial run (issue 12), kept as a regression test.

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER SO_SNDBUF IPPROTO_TCP TCP_NODELAY);
use Errno qw(EAGAIN EWOULDBLOCK);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use GraviteeTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_160") : ();

my $conf = <<'_EOC_';
    log_format ends '"$request" $status "$message_proxy_close_reason"';

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        large_client_header_buffers 4 80k;

        location /status {
            stub_status;
        }

        location /ws {
            message_proxy_entrypoint websocket send_timeout=30s
                                     ping_interval=0 idle_timeout=0;
            message_proxy_endpoint mock interval=1h;
        }

        location /forever {
            message_proxy_entrypoint http-get messages_limit_duration=0;
            message_proxy_endpoint mock interval=100ms;
        }

        location /ack {
            message_proxy_entrypoint http-post;
            message_proxy_endpoint mock publish_delay=1500ms;
        }

        location /sse {
            access_log logs/ends.log ends;
            message_proxy_entrypoint sse retry=1s;
            message_proxy_endpoint mock interval=100ms;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where);
my $port = $ngx->{port};
my ($worker) = worker_pids($ngx);

sub rss_kb {
    my ($pid) = @_;
    open my $in, '<', "/proc/$pid/status" or return 0;
    while (<$in>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

sub active {
    my $s = tcp_connect($port);
    print $s "GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my $r = read_until($s, undef, 2);
    return $r =~ /Active connections: (\d+)/ ? $1 : -1;
}

sub ws_connect {
    my ($path) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    my $h = read_head($s);
    return ($s, $h);
}

# --- 1. a ping flood from a client that reads nothing ---------------------

{
    my ($s, $head) = ws_connect('/ws');
    like($head, qr{^HTTP/1.1 101}, 'ping flood: handshake');

    sleep 0.3;
    my $before = rss_kb($worker);

    $s->blocking(0);
    my $ping = ws_frame(0x9, 'p' x 125);
    my ($sent, $deadline, $stalled) = (0, time + 3, 0);
    my $pending = '';
    while (time < $deadline) {
        $pending = $ping x 64 if $pending eq '';
        my $n = syswrite($s, $pending);
        if (!defined $n) {
            last unless $! == EAGAIN || $! == EWOULDBLOCK;
            $stalled++;
            sleep 0.01;
            next;
        }
        $sent += $n;
        substr($pending, 0, $n) = '';
    }
    sleep 0.3;
    my $after = rss_kb($worker);
    my $pings = int($sent / length $ping);

    diag(sprintf "ping flood: %.1f MB of pings (%d) taken by the socket in "
                 . "3 s, worker RSS %d -> %d kB", $sent / 1e6, $pings,
                 $before, $after);

    ok($stalled > 0, 'ping flood: the client is held back by TCP');
    cmp_ok($sent, '<', 32e6,
           'ping flood: the worker stops reading a client whose pongs wait');
    SKIP: {
        # valgrind's own shadow memory grows with whatever the worker does
        skip 'RSS is valgrind\'s under valgrind', 1
            if under_valgrind();
        cmp_ok($after - $before, '<', 2048,
               'ping flood: the worker grows by less than 2 MB');
    }

    # the client reads again: every ping is answered in turn, and the last
    # one too (the reading resumed after each pong)
    $pending .= ws_frame(0x9, 'last');
    my ($pongs, $last, $in) = (0, 0, '');
    $deadline = time + 20;
    while (!$last && time < $deadline) {
        my ($r, $w) = ('', '');
        vec($r, fileno $s, 1) = 1;
        vec($w, fileno $s, 1) = 1 if length $pending;
        select($r, $w, undef, 0.1);
        if (length $pending && vec($w, fileno $s, 1)) {
            my $n = syswrite($s, $pending);
            substr($pending, 0, $n) = '' if $n;
        }
        next unless vec($r, fileno $s, 1);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $in .= $buf;
        # server frames: unmasked, 2-byte headers for pongs of <= 125 bytes
        while (length($in) >= 2) {
            my $len = ord(substr $in, 1, 1) & 0x7f;
            last if length($in) < 2 + $len;
            my ($op, $payload) = (ord(substr $in, 0, 1) & 0xf,
                                  substr($in, 2, $len));
            substr($in, 0, 2 + $len) = '';
            next unless $op == 0xa;
            $pongs++;
            $last = 1 if $payload eq 'last';
        }
    }
    ok($last, "ping flood: the last ping is answered ($pongs pongs read)");
    close $s;
}

# --- 2. clients that leave right after their request ------------------------

{
    sleep 0.5;
    my $base = active();

    for my $i (1 .. 20) {
        my $s = tcp_connect($port);
        print $s "GET /forever HTTP/1.1\r\nHost: localhost\r\n"
                 . "Accept: application/json\r\n\r\n";
        if ($i % 2) {
            shutdown($s, 1);        # FIN
            close $s;
        } else {
            setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            close $s;               # RST
        }
    }

    my $now = -1;
    for (1 .. 20) { sleep 0.1; $now = active(); last if $now == $base }
    is($now, $base, 'GET: 20 clients gone at once are gone from the worker');

    my $off = error_log_size($ngx);
    for my $i (1 .. 20) {
        my $s = tcp_connect($port);
        my $body = "cancel me $i";
        print $s "POST /ack HTTP/1.1\r\nHost: localhost\r\n"
                 . "Content-Length: " . length($body) . "\r\n\r\n$body";
        shutdown($s, 1);
        close $s;
    }

    for (1 .. 20) { sleep 0.1; $now = active(); last if $now == $base }
    is($now, $base, 'POST: 20 clients gone before the ack are gone at once');

    sleep 2;
    my $log = error_log_text($ngx, $off);
    my @cancelled = $log =~ /publication cancelled while/g;
    is(scalar @cancelled, 20, 'POST: the 20 publications are cancelled');
    unlike($log, qr/Received message: cancel me/,
           'POST: none of them is published');
}

# --- 3. a reload and a quit answer open GETs --------------------------------

{
    my $s = tcp_connect($port);
    print $s "GET /forever HTTP/1.1\r\nHost: localhost\r\n"
             . "Accept: application/json\r\n\r\n";
    sleep 0.45;
    my $off = error_log_size($ngx);
    my @new = reload_nginx($ngx);
    ok(@new, 'reload: a new worker');

    my $r = read_until($s, undef, 5);
    like($r, qr{^HTTP/1.1 200}, 'reload: the open GET is answered');
    like($r, qr/\r\nConnection: close\r\n/i, 'reload: with Connection: close');
    like($r, qr/\{"items":\[\{"id":"0","content":"mock message"\}/,
         'reload: with what it collected');

    wait_for_error_log($ngx, qr/exit/, 3, $off);
    my $log = error_log_text($ngx, $off);
    unlike($log, qr/\[alert\]/, 'reload: no alert from the old worker');
    unlike($log, qr/open socket/, 'reload: no socket left open');
    ($worker) = worker_pids($ngx);
}

# --- 4. what a client sends does not size what is kept ----------------------

{
    my $s = tcp_connect($port);
    print $s "GET /sse HTTP/1.1\r\nHost: localhost\r\n"
             . "Accept: text/event-stream, application/json\r\n"
             . "Last-Event-ID: " . ('7' x 60000) . "\r\n\r\n";
    my $r = read_until($s, undef, 3);
    like($r, qr{^HTTP/1.1 400}, 'a 60 KB Last-Event-ID is refused with 400');
    like($r, qr/"message":"Resume position too long: 60000 bytes, the mock endpoint reads 20 at most"/,
         'the 400 says why, as JSON');

    $s = tcp_connect($port);
    my $pad = 'p' x 60000;
    print $s "GET /sse?$pad HTTP/1.1\r\nHost: localhost\r\n"
             . "Accept: text/event-stream\r\n\r\n";
    $r = read_until($s, qr/data: mock message/, 3);
    like($r, qr{^HTTP/1.1 200}, 'a 60 KB request line streams');
    close $s;

    my $ends = "$ngx->{servroot}/logs/ends.log";
    my $line = '';
    for (1 .. 30) {
        sleep 0.1;
        open my $in, '<', $ends or next;
        ($line) = grep { /client closed/ } <$in>;
        last if $line;
    }
    like($line // '', qr{^"GET /sse\?p{1000,1024}\.\.\.\[cut\]" 200 "client closed"},
         'the end record keeps the request line cut at 1 KiB, with a marker');
    ok($line && length($line) < 1100, 'and no more of it');
}

# --- 5. quit answers an open GET too ----------------------------------------

{
    my $s = tcp_connect($port);
    print $s "GET /forever HTTP/1.1\r\nHost: localhost\r\n"
             . "Accept: application/json\r\n\r\n";
    sleep 0.25;
    my $off = error_log_size($ngx);
    ok(stop_nginx($ngx), 'quit: the worker exits by itself');
    my $r = read_until($s, undef, 3);
    like($r, qr{^HTTP/1.1 200.*\r\nConnection: close\r\n.*"items":\[\{"id":"0"}s,
         'quit: the open GET is answered with what it collected');
    unlike(error_log_text($ngx, $off), qr/\[alert\]/, 'quit: no alert');
}

done_testing();
