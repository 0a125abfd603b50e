# Self-test of the MQTT test harness (t/lib/MqttTest.pm): the suite's own
# mosquitto on 127.0.0.1 with plain, password, TLS, mutual-TLS and
# websockets listeners, messages written with mosquitto_pub and read back
# with mosquitto_sub, restart, SIGSTOP.  No nginx.

use strict;
use warnings;
use Test::More;
use Errno qw(ECONNREFUSED);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use MqttTest;

my $t0 = time;
my $m = start_mqtt();
my @ports = @$m{qw(port auth_port tls_port mtls_port ws_port)};
diag(sprintf 'mosquitto %d up in %.2f s, ports %s', $m->{pid}, time - $t0,
     join ' ', @ports);

# --- listeners: 127.0.0.1 only, never 1883 -------------------------------

my %listening;
for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
    open my $in, '<', $f or next;
    while (<$in>) {
        next unless /^\s*\d+:\s+([0-9A-F]+):([0-9A-F]{4})\s+\S+\s+0A\b/;
        push @{ $listening{ hex $2 } }, $1;
    }
}
is(scalar(keys %{{ map { $_ => 1 } @ports }}), 5, 'five different ports');
ok(!grep({ $_ == 1883 } @ports), 'none of them is 1883');
for my $p (@ports) {
    is_deeply($listening{$p}, ['0100007F'], "port $p listens on 127.0.0.1 only");
}
is(mqtt_log_count($m, qr/Opening (?:ipv6|websockets) listen socket on port 1883\b|port 1883\./),
   0, 'no default listener on 1883');

{
    my @ss = grep { /:$m->{ws_port}\s/ } `ss -ltnH`;
    is(scalar @ss, 1, 'ss: one listening socket on the websockets port');
    like($ss[0] // '', qr/\s127\.0\.0\.1:$m->{ws_port}\s/,
         'ss: websockets listener bound to 127.0.0.1');
}

# a websockets handshake with the mqtt subprotocol
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $m->{ws_port}, Timeout => 3);
    print $s "GET / HTTP/1.1\r\nHost: 127.0.0.1:$m->{ws_port}\r\n"
           . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           . "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    my ($buf, $deadline) = ('', time + 5);
    my $sel = IO::Select->new($s);
    while ($buf !~ /\r\n\r\n/ && $sel->can_read($deadline - time)) {
        sysread($s, $buf, 4096, length $buf) or last;
    }
    like($buf, qr{^HTTP/1\.1 101 .*^Sec-WebSocket-Protocol: mqtt\r$}ms,
         'websockets listener: 101 with the mqtt subprotocol');
}

# --- MQTT 5: properties back --------------------------------------------

my $payload = "hello \"x\" \\ \n\t" . join('', map { chr } 0 .. 255);
{
    my $s = mqtt_sub_start($m, topic => 'v5/#', count => 2, timeout => 5);
    ok($s->{ready}, 'subscribed');
    is(broker_connections($m, $s->{pid}), 1,
       'broker_connections: the subscriber holds one connection');
    cmp_ok(mqtt_clients($m), '>=', 1, 'mqtt_clients: the broker holds it');
    ok(mqtt_pub($m, topic => 'v5/a', message => $payload, props => [
            'user-property' => 'trace abc 1',
            'user-property' => [ 'dup', 'one' ],
            'user-property' => 'dup two',
            'content-type' => 'application/octet-stream',
            'message-expiry-interval' => 60,
            'response-topic' => 'reply/here',
            'correlation-data' => 'corr-1',
            'payload-format-indicator' => 0,
       ]), 'MQTT 5 publish with properties')
        or diag($m->{last}{output});
    ok(mqtt_pub($m, topic => 'v5/b', message => undef), 'empty message');
    my @r = mqtt_sub_collect($s);
    is($s->{exit}, 0, 'mosquitto_sub exited after 2 messages');
    is(scalar @r, 2, 'two messages');
    my $r = $r[0] // {};
    is($r->{topic}, 'v5/a', 'topic');
    is($r->{payload}, $payload, 'payload: every byte');
    is($r->{payloadlen}, length $payload, 'payloadlen');
    is_deeply($r->{user_properties},
              [ [ trace => 'abc 1' ], [ dup => 'one' ], [ dup => 'two' ] ],
              'user properties in order, duplicates kept');
    is($r->{content_type}, 'application/octet-stream', 'content type');
    is($r->{response_topic}, 'reply/here', 'response topic');
    is($r->{correlation_data}, 'corr-1', 'correlation data');
    is($r->{payload_format_indicator}, 0, 'payload format indicator');
    cmp_ok($r->{message_expiry_interval} // 0, '>', 55, 'message expiry');
    is_deeply([ @{ $r[1] // {} }{qw(topic payload payloadlen)}, $r[1]{user_properties} ],
              [ 'v5/b', '', 0, [] ], 'the empty message');
}

# --- MQTT 3.1.1 ---------------------------------------------------------

{
    my $s = mqtt_sub_start($m, topic => 'v3', version => 311, count => 2,
                           timeout => 5);
    ok(mqtt_pub($m, topic => 'v3', message => 'from 3.1.1', version => 311),
       'MQTT 3.1.1 publish');
    ok(mqtt_pub($m, topic => 'v3', message => 'from 5',
                props => [ 'user-property' => 'k v' ]), 'MQTT 5 publish');
    my @r = mqtt_sub_collect($s);
    is_deeply([ map { [ $_->{payload}, $_->{user_properties},
                        $_->{content_type} ] } @r ],
              [ [ 'from 3.1.1', [], undef ], [ 'from 5', [], undef ] ],
              'a 3.1.1 subscriber gets both, without properties');
    # mosquitto logs its own protocol number: p1 3.1, p2 3.1.1, p5 5
    like(mqtt_log($m), qr/New client connected from 127\.0\.0\.1:\d+ as \S+ \(p2,/,
         'the log shows a 3.1.1 client (p2)');
}

# --- QoS 1 and 2 ----------------------------------------------------------

{
    my $mark = mqtt_log_mark($m);
    my $s = mqtt_sub_start($m, topic => 'q/#', qos => 2, count => 3,
                           timeout => 5);
    is_deeply($s->{granted}, [2], 'QoS 2 granted');
    ok(mqtt_pub($m, topic => 'q/0', message => 'zero', qos => 0), 'QoS 0');
    ok(mqtt_pub($m, topic => 'q/1', message => 'one', qos => 1), 'QoS 1');
    ok(mqtt_pub($m, topic => 'q/2', message => 'two', qos => 2), 'QoS 2');
    my @r = mqtt_sub_collect($s);
    is_deeply([ map { [ $_->{topic}, $_->{qos}, $_->{payload} ] } @r ],
              [ [ 'q/0', 0, 'zero' ], [ 'q/1', 1, 'one' ], [ 'q/2', 2, 'two' ] ],
              'each delivered with its QoS');
    cmp_ok(mqtt_log_count($m, qr/Sending PUBACK to/, $mark), '>=', 1,
           'the broker sent a PUBACK');
    cmp_ok(mqtt_log_count($m, qr/Sending PUBCOMP to/, $mark), '>=', 1,
           'and a PUBCOMP');
    my $low = mqtt_sub_start($m, topic => 'q/#', qos => 0, count => 1,
                             timeout => 5);
    mqtt_pub($m, topic => 'q/2', message => 'down', qos => 2);
    is((mqtt_sub_collect($low))[0]{qos}, 0, 'QoS downgraded to the subscription');
}

# --- retained ---------------------------------------------------------------

{
    ok(mqtt_pub($m, topic => 'keep/me', message => 'kept', qos => 1,
                retain => 1, props => [ 'user-property' => 'r 1' ]),
       'retained publish');
    my $s = mqtt_sub_start($m, topic => 'keep/#', count => 1, timeout => 5);
    my @r = mqtt_sub_collect($s);
    is_deeply([ map { [ @$_{qw(topic payload retain)}, $_->{user_properties} ] } @r ],
              [ [ 'keep/me', 'kept', 1, [ [ r => 1 ] ] ] ],
              'a new subscriber gets it with the retain flag');
    my $nr = mqtt_sub_start($m, topic => 'keep/#', no_retained => 1,
                            timeout => 1);
    is(scalar(my @none = mqtt_sub_collect($nr)), 0, 'no_retained: not printed');
    is($nr->{exit}, 27, 'mosquitto_sub -W timeout: exit 27');
    ok(mqtt_pub($m, topic => 'keep/me', message => undef, retain => 1),
       'clear it');
    my $after = mqtt_sub_start($m, topic => 'keep/#', timeout => 1);
    is(scalar(my @gone = mqtt_sub_collect($after)), 0, 'cleared');
}

# --- password listener --------------------------------------------------

{
    my $s = mqtt_sub_start($m, listener => 'auth', topic => 'auth', count => 1,
                           timeout => 5);
    ok($s->{ready}, "auth listener: $m->{user}/$m->{password} subscribes");
    ok(mqtt_pub($m, listener => 'auth', topic => 'auth', message => 'ok'),
       'and publishes');
    is((mqtt_sub_collect($s))[0]{payload}, 'ok', 'message through');

    my $bad = mqtt_sub_start($m, listener => 'auth', password => 'wrong',
                             topic => 'auth', timeout => 3, may_fail => 1);
    ok(!$bad->{ready}, 'wrong password: not subscribed');
    mqtt_sub_collect($bad);
    isnt($bad->{exit}, 0, 'mosquitto_sub exits non-zero');
    like($bad->{output}, qr/not authori[sz]ed/i, 'not authorised');
    diag("wrong password: exit $bad->{exit}: "
         . join(' | ', grep { !/^Client / } split /\n/, $bad->{output}));

    ok(!mqtt_pub($m, listener => 'auth', user => undef, password => undef,
                 topic => 'auth', message => 'x', timeout => 3),
       'anonymous publish refused');
    diag("anonymous on the auth listener: exit $m->{last}{exit}: $m->{last}{output}");
    ok(!mqtt_pub($m, listener => 'auth', version => 311, password => 'no',
                 topic => 'auth', message => 'x', timeout => 3),
       'wrong password refused for 3.1.1');
    diag("wrong password, 3.1.1: exit $m->{last}{exit}: $m->{last}{output}");
}

# --- TLS --------------------------------------------------------------------

{
    my $s = mqtt_sub_start($m, listener => 'tls', topic => 'tls', count => 2,
                           timeout => 5);
    ok($s->{ready}, 'TLS subscriber with the CA file');
    ok(mqtt_pub($m, listener => 'tls', topic => 'tls', message => 'secure'),
       'TLS publish with the CA file');
    ok(mqtt_pub($m, listener => 'mtls', topic => 'tls', message => 'mutual'),
       'mutual TLS publish with the client certificate');
    is_deeply([ map { $_->{payload} } mqtt_sub_collect($s) ],
              [ 'secure', 'mutual' ], 'both through');

    ok(!mqtt_pub($m, listener => 'tls', cafile => undef, topic => 'tls',
                 message => 'x', timeout => 3),
       'TLS listener: a plain client (no CA file) fails');
    diag("no CA file: exit $m->{last}{exit}: $m->{last}{output}");
    ok(!mqtt_pub($m, listener => 'tls', cafile => undef,
                 args => [ '--capath', '/etc/ssl/certs' ], topic => 'tls',
                 message => 'x', timeout => 3),
       'TLS listener: the system CAs do not verify the server');
    diag("system CAs: exit $m->{last}{exit}: $m->{last}{output}");
    ok(!mqtt_pub($m, listener => 'mtls', cert => undef, key => undef,
                 topic => 'tls', message => 'x', timeout => 3),
       'mutual TLS listener: no client certificate fails');
    diag("no client certificate: exit $m->{last}{exit}: $m->{last}{output}");
    like(scalar `openssl x509 -noout -ext subjectAltName -in $m->{cert_file}`,
         qr/IP Address:127\.0\.0\.1/, 'server certificate: IP:127.0.0.1');
}

# --- SIGSTOP ----------------------------------------------------------------

{
    my $s = mqtt_sub_start($m, topic => 'held', qos => 1, count => 1,
                           timeout => 10);
    pause_mqtt($m);
    my $t = time;
    ok(!mqtt_pub($m, topic => 'held', message => 'lost', qos => 1,
                 timeout => 1), 'paused: a QoS 1 publish does not complete');
    ok($m->{last}{timed_out}, 'it timed out');
    my $h = mqtt_pub_start($m, topic => 'held', message => 'late', qos => 1);
    ok(!defined mqtt_pub_done($h, timeout => 1), 'paused: still waiting after 1 s');
    resume_mqtt($m);
    is(mqtt_pub_done($h, timeout => 5), 1, 'resumed: the publish completes')
        or diag($h->{output});
    my @r = mqtt_sub_collect($s);
    is_deeply([ map { $_->{payload} } @r ], ['late'], 'and is delivered');
}

# --- restart on the same ports ---------------------------------------------

{
    my $pid = $m->{pid};
    my $s = mqtt_sub_start($m, topic => 'gone', timeout => 10);
    my $connected = mqtt_log_count($m, qr/New client connected/);
    restart_mqtt($m);
    isnt($m->{pid}, $pid, 'restart: a new process');
    ok(!kill(0, $pid), 'the old one is gone');
    is_deeply([ @$m{qw(port auth_port tls_port mtls_port ws_port)} ], \@ports,
              'the same ports');
    my $r = mqtt_sub_start($m, topic => 'again', count => 1, timeout => 5);
    ok(mqtt_pub($m, topic => 'again', message => 'after restart'),
       'publish after restart');
    is((mqtt_sub_collect($r))[0]{payload}, 'after restart', 'delivered');
    cmp_ok(mqtt_log_count($m, qr/New client connected/), '>', $connected,
           'the log continues across the restart');
    mqtt_sub_stop($s);
}

# persistence: retained messages survive a restart
{
    my $p = start_mqtt(persistence => 1);
    mqtt_pub($p, topic => 'p', message => 'persisted', retain => 1, qos => 1);
    restart_mqtt($p);
    my $s = mqtt_sub_start($p, topic => 'p', count => 1, timeout => 5);
    is((mqtt_sub_collect($s))[0]{payload}, 'persisted',
       'persistence => 1: the retained message survives restart_mqtt');
    ok(stop_mqtt($p), 'second broker stopped');
}

# --- stop ---------------------------------------------------------------------

{
    my $pid = $m->{pid};
    ok(stop_mqtt($m), 'stopped cleanly');
    ok(!kill(0, $pid), 'and gone');
    local $!;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $m->{port},
                                  Timeout => 2);
    ok(!$c && $! == ECONNREFUSED, 'its port refuses connections');
}

diag(sprintf 'self-test took %.1f s', time - $t0);
done_testing;
