# The shared fan-out path: one Mock stream per worker and location
# (shared=on) feeding clients on every entrypoint, stored once, slow
# clients bounded, memory released after the last client.

use strict;
use warnings;
use Test::More;
use IO::Select;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use GraviteeTest;

# --- small clients that read side by side --------------------------------

sub sse_open {
    my ($port, $path, $version) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/" . ($version // '1.0') . "\r\nHost: localhost\r\n"
             . "Accept: text/event-stream\r\n\r\n";
    return { sock => $s, buf => '', kind => 'sse' };
}

# the body of an HTTP/1.1 chunked response, or undef if a chunk is malformed
sub dechunk {
    my ($b) = @_;
    my $out = '';
    while ($b =~ s/\A([0-9a-f]+)\r\n//) {
        my $n = hex $1;
        return $out if length($b) < $n + 2;
        return undef unless substr($b, $n, 2) eq "\r\n";
        $out .= substr($b, 0, $n);
        $b = substr($b, $n + 2);
    }
    return $out;
}

sub ws_open {
    my ($port, $path) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    return { sock => $s, buf => '', kind => 'ws' };
}

sub get_open {
    my ($port, $path) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n"
             . "Accept: application/json\r\n\r\n";
    return { sock => $s, buf => '', kind => 'get' };
}

# read every client for $secs, or until $done->() says enough
sub pump {
    my ($clients, $secs, $done) = @_;
    my $sel = IO::Select->new(map { $_->{sock} } @$clients);
    my %by = map { fileno($_->{sock}) => $_ } @$clients;
    my $deadline = time + $secs;
    while ((my $left = $deadline - time) > 0) {
        last if $done && $done->();
        for my $s ($sel->can_read($left > 0.05 ? 0.05 : $left)) {
            my $c = $by{ fileno $s };
            my $n = sysread($s, my $chunk, 65536);
            if (!$n) { $sel->remove($s); $c->{eof} = 1; next }
            $c->{buf} .= $chunk;
        }
    }
}

sub body_of { my ($c) = @_; my $i = index($c->{buf}, "\r\n\r\n");
              $i < 0 ? '' : substr($c->{buf}, $i + 4) }

sub sse_ids { my @ids = body_of($_[0]) =~ /^id: (\d+)\ndata: |^id: (\d+)\n/mg;
              [ grep { defined } @ids ] }

sub ws_texts {
    my ($c) = @_;
    my $b = body_of($c);
    my @out;
    while (length($b) >= 2) {
        my ($b0, $b1) = unpack 'C2', $b;
        my $len = $b1 & 0x7f;
        my $off = 2;
        if ($len == 126) { last if length($b) < 4; $len = unpack 'n', substr($b, 2, 2); $off = 4 }
        last if length($b) < $off + $len;
        push @out, substr($b, $off, $len) if ($b0 & 0x0f) == 1;
        $b = substr($b, $off + $len);
    }
    return \@out;
}

# --- TEST: one stream, three entrypoints, the same messages --------------

my $ngx = start_nginx(<<'_EOC_', suite => 'fanout');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /fan {
            message_proxy_entrypoint websocket;
            message_proxy_entrypoint sse;
            message_proxy_entrypoint http-get messages_limit_count=3;
            message_proxy_endpoint mock shared=on interval=150ms;
        }
    }
_EOC_

my $port = $ngx->{port};
my $sse = sse_open($port, '/fan');
my $ws = ws_open($port, '/fan');
my $sse11 = sse_open($port, '/fan', '1.1');  # chunked
my $ws2 = ws_open($port, '/fan');
pump([$sse, $ws, $sse11, $ws2], 0.4);        # subscribed, ids flowing
my $get = get_open($port, '/fan');
pump([$sse, $ws, $sse11, $ws2, $get], 3, sub { $get->{eof} });

ok($get->{eof}, 'the HTTP GET batch came back');
my @got = body_of($get) =~ /"id":"(\d+)"/g;
is(scalar @got, 3, 'HTTP GET collected three messages of the shared stream');
cmp_ok($got[0], '>', 0, 'HTTP GET joined a stream already counting');
is_deeply(\@got, [ $got[0] .. $got[0] + 2 ], 'its ids follow each other');

my %sse_ids = map { $_ => 1 } @{ sse_ids($sse) };
ok((!grep { !$sse_ids{$_} } @got),
   "the SSE client got the same ids (@got) among its own ("
   . join(' ', sort { $a <=> $b } keys %sse_ids) . ')');
ok(exists $sse_ids{0}, 'the SSE client, first to join, got id 0');

my $texts = ws_texts($ws);
cmp_ok(scalar @$texts, '>=', $got[-1] + 1,
       'the WebSocket client got as many messages as ids went by');
is_deeply([ grep { $_ ne 'mock message' } @$texts ], [],
          'each WebSocket frame carries the content');

like($sse11->{buf}, qr{\r\nTransfer-Encoding: chunked\r\n}i, 'the HTTP/1.1 SSE client is sent chunks');
my $events11 = dechunk(body_of($sse11));
ok(defined $events11, 'each of its chunks is well formed');
my @ids11 = ($events11 // '') =~ /^id: (\d+)\n/mg;
my @ids10 = @{ sse_ids($sse) };
is("@ids11[0 .. 2]", "@ids10[0 .. 2]", 'the chunked and the HTTP/1.0 SSE clients got the same events');
is_deeply(ws_texts($ws2), [ @{ ws_texts($ws) }[0 .. $#{ ws_texts($ws2) }] ],
          'the two WebSocket clients got the same frames');

close $_->{sock} for $sse, $ws, $sse11, $ws2, $get;
ok(wait_for_error_log($ngx, qr/mock shared source \S+ stopped at id \d+: no subscriber left/, 3),
   'the generator stops when the last client leaves');

my $log = error_log_text($ngx);
my %created;
$created{$1}++ while $log =~ /gravitee message \S+ created, id:"(\d+)"/g;
is_deeply([ grep { $created{$_} != 1 } keys %created ], [],
          'each message was made once for all clients ('
          . scalar(keys %created) . ' messages)');

my (%sse_enc, %ws_enc);
$sse_enc{$1}++ while $log =~ /sse event of message \S+ id:"(\d+)" encoded/g;
$ws_enc{$1}++ while $log =~ /websocket frame of message \S+ id:"(\d+)" made/g;
ok(keys(%sse_enc) >= 3 && !grep({ $_ != 1 } values %sse_enc),
   'each SSE event was encoded once for both SSE clients, chunked or not ('
   . scalar(keys %sse_enc) . ' events)');
ok(keys(%ws_enc) >= 3 && !grep({ $_ != 1 } values %ws_enc),
   'each WebSocket frame was made once for both WebSocket clients ('
   . scalar(keys %ws_enc) . ' frames)');
like($log, qr/gravitee message \S+ freed, alive:0\b(?![\s\S]*alive:[1-9])/,
     'every message is released once sent');

# no timer left: nothing is made after the stop
my $size = error_log_size($ngx);
sleep 0.5;
unlike(error_log_text($ngx, $size), qr/created, id:/,
       'nothing is generated after the last client left');

stop_nginx($ngx);

# --- TEST: a client that never reads hits its cap; the others go on ------

$ngx = start_nginx(<<'_EOC_', suite => 'fanout');
    server {
        # a small send buffer, so a client that never reads fills it fast
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT sndbuf=4k;

        location /fan {
            message_proxy_entrypoint sse max_queued_messages=8;
            message_proxy_endpoint mock shared=on interval=20ms
                content=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789;
        }
    }
_EOC_

$port = $ngx->{port};
my @readers = map { sse_open($port, '/fan') } 1 .. 5;

my @slow;
for (1 .. 2) {
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die $!;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 2048);
    $s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1')))
        or die "connect: $!";
    print $s "GET /fan HTTP/1.0\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    push @slow, $s;
}

pump(\@readers, 2.5);

my @slow_lines = error_log_text($ngx) =~ /(gravitee stream: slow client on "\/fan".*)/g;
is(scalar @slow_lines, 2, 'each slow client is logged once')
    or diag join "\n", @slow_lines;
like($slow_lines[0] // '', qr/closing/, 'the policy is to close it');

for my $i (0 .. $#readers) {
    my $ids = sse_ids($readers[$i]);
    ok(@$ids >= 60, "reader $i kept receiving (" . scalar(@$ids) . ' events)');
    is_deeply($ids, [ $ids->[0] .. $ids->[-1] ], "reader $i lost nothing");
}

ok(wait_for_error_log($ngx, qr/reason="slow client"/, 2),
   'the slow clients are closed with the reason logged');

close $_ for @slow;
close $_->{sock} for @readers;
ok(wait_for_error_log($ngx, qr/mock shared source \S+ stopped/, 3),
   'the generator stops after the last reader');

stop_nginx($ngx);

# --- TEST: detached streams still show in stub_status and the access log --

$ngx = start_nginx(<<'_EOC_', suite => 'fanout');
    log_format stream '"$request" $status $bytes_sent $body_bytes_sent '
                      '$request_time host=$host args=$args '
                      '"$message_proxy_close_reason" $message_proxy_messages '
                      '$message_proxy_dropped';

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        access_log logs/stream.log stream;

        location /fan {
            message_proxy_entrypoint websocket;
            message_proxy_entrypoint sse;
            message_proxy_endpoint mock shared=on interval=100ms;
        }

        location = /status {
            stub_status;
        }
    }
_EOC_

$port = $ngx->{port};
my @subs = (ws_open($port, '/fan'), sse_open($port, '/fan'));
pump(\@subs, 0.5);

my $st = tcp_connect($port);
print $st "GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n";
my $status = read_until($st, undef, 2);
like($status, qr/Active connections: 3 /, 'stub_status counts the streams as connections');
like($status, qr/Writing: 3 /, 'and as requests writing (the two streams and this one)');

open my $al, '<', "$ngx->{servroot}/logs/stream.log" or die $!;
my $access = join '', <$al>;
close $al;
like($access, qr{^"GET /fan HTTP/1.1" 101 \d+ 0 0.000 host=localhost args=- "-" 0 0$}m,
     'the WebSocket handshake has its access log line, at once');
like($access, qr{^"GET /fan HTTP/1.0" 200 \d+ 0 0.000 host=localhost args=- "-" 0 0$}m,
     'the SSE stream has its access log line, at once');

close $_->{sock} for @subs;
ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/fan" entrypoint=websocket duration=\d+ms sent=\d+ messages=\d+ dropped=0 reason="[^"]+"/, 3),
   'the WebSocket stream ends with its close record');
ok(wait_for_error_log($ngx, qr/gravitee stream closed: api="\/fan" entrypoint=sse duration=\d+ms sent=\d+ messages=[1-9]\d* dropped=0 reason="client closed"/, 3),
   'the SSE stream ends with its close record');

$st = tcp_connect($port);
print $st "GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n";
like(read_until($st, undef, 2), qr/Writing: 1 /, 'stub_status forgets closed streams');

sub access_log_lines {
    my ($ngx) = @_;
    open my $fh, '<', "$ngx->{servroot}/logs/stream.log" or die $!;
    return [ <$fh> ];
}

# the streams lived the 0.5 s pumped and a little more; under valgrind the
# worker reads a request late, and the time counts from then
my $stream_secs = native_or_valgrind(qr/0\.[4-9]\d\d/,
                                     qr/(?:0\.[1-9]|[1-9]\.)\d\d/);
my ($ws_end) = grep { m{^"GET /fan HTTP/1.1" 101 .* "client closed connection"} }
               @{ access_log_lines($ngx) };
like($ws_end // '', qr{^"GET /fan HTTP/1.1" 101 \d+ \d+ $stream_secs host=localhost args=- "client closed connection" [1-9]\d* 0$},
     'the WebSocket stream\'s end has its access log record: duration, messages, reason');
my ($sse_end) = grep { m{^"GET /fan HTTP/1.0" 200 .* "client closed"} }
                @{ access_log_lines($ngx) };
like($sse_end // '', qr{^"GET /fan HTTP/1.0" 200 \d+ \d+ $stream_secs host=localhost args=- "client closed" [1-9]\d* 0$},
     'the SSE stream\'s end has its access log record');

# at shutdown, the record counts exactly what the client got

# a request line too long for the connection pool's spare room: the
# record is then kept in memory of its own
my $long = '/fan?token=t2&pad=' . ('p' x 300);
@subs = (ws_open($port, '/fan?token=t1'), sse_open($port, $long));
pump(\@subs, 0.5);
stop_nginx($ngx);
pump(\@subs, 3, sub { !grep { !$_->{eof} } @subs });

my %end = map { m{^"GET (\S+) [^"]*" (\d+) (\d+) (\d+) \S+ \S+ \S+ "shutdown" (\d+) (\d+)$}
                ? ($1 => { status => $2, bytes => $3, body => $4,
                           messages => $5, dropped => $6 }) : () }
          @{ access_log_lines($ngx) };
my ($ws_sub, $sse_sub) = @subs;
my $ws_n = scalar @{ ws_texts($ws_sub) };
my $sse_n = scalar @{ sse_ids($sse_sub) };
is_deeply($end{'/fan?token=t1'},
          { status => 101, bytes => length($ws_sub->{buf}),
            body => length(body_of($ws_sub)), messages => $ws_n, dropped => 0 },
          "WebSocket at shutdown: the record has the bytes and the $ws_n messages the client got");
is_deeply($end{$long},
          { status => 200, bytes => length($sse_sub->{buf}),
            body => length(body_of($sse_sub)), messages => $sse_n, dropped => 0 },
          "SSE at shutdown: the record has the bytes and the $sse_n messages the client got");

done_testing();
