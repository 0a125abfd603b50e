package MqttTest;

=head1 NAME

MqttTest - an MQTT broker for ngx_gravitee_module suites: starts the
suite's own mosquitto (Debian's 2.0.11) on 127.0.0.1, on free ports, with
a plain, a password, a TLS, a mutual-TLS and a websockets listener, and
publishes and subscribes with mosquitto_pub / mosquitto_sub.  Independent
of which Test::Nginx::Socket is loaded.  Never uses the system broker nor
port 1883.

=head1 SYNOPSIS

    use Test::More;
    use lib 't/lib';
    use MqttTest;

    my $m = start_mqtt();                   # $m->{port} for nginx.conf
    my $s = mqtt_sub_start($m, topic => 'orders/#', count => 1);
    ok(mqtt_pub($m, topic => 'orders/1', message => 'hi', qos => 1,
                props => [ 'user-property' => 'k v',
                           'content-type' => 'text/plain' ]));
    my @msgs = mqtt_sub_collect($s);        # [{topic, qos, retain, payload,
                                            #   user_properties => [[k, v]],
                                            #   content_type, ...}]
    pause_mqtt($m);  resume_mqtt($m);       # SIGSTOP / SIGCONT
    restart_mqtt($m);                       # same ports
    is(broker_connections($m, $worker_pid), 1);
    stop_mqtt($m);                          # also done in END
    done_testing;

=head1 API (all exported by default)

  start_mqtt(%opts) -> $m, a hash:
        port         plain listener, anonymous
        auth_port    username/password only (password file made with
                     mosquitto_passwd -b), no anonymous
        tls_port     TLS, anonymous, no client certificate needed
        mtls_port    TLS, a client certificate signed by the CA required
        ws_port      MQTT over websockets (ws://127.0.0.1:P/), anonymous
        user, password            of the auth listener
        ca_file, cert_file, key_file      the CA and the server's
                     certificate (CN and subjectAltName IP:127.0.0.1,
                     DNS:localhost) and key, PEM
        client_cert, client_key   a client certificate signed by the CA
        pid, dir (temp dir, removed at exit unless MQTTTEST_KEEP=1 is
                     in the environment), conf, log (mosquitto's log,
                     log_type all), stderr (its stdout/stderr)
        %opts: user => 'alice', password => 'secret', config => "lines"
        (global mosquitto.conf lines, before the listeners: e.g.
        "max_inflight_messages 1"), persistence => 1 (retained messages
        and sessions survive restart_mqtt), key_type => 'ec' | 'rsa'
        (certificates; ec: prime256v1), timeout => 10 (to be ready).
        Dies if mosquitto does not start.
  stop_mqtt($m, timeout => 5)  SIGTERM (SIGCONT too if paused), wait,
        SIGKILL fallback; true when it exited by itself.  Keeps the dir.
  restart_mqtt($m, timeout => 10)  stop_mqtt, then the same config on the
        same ports (retries while a port is still taken); new $m->{pid}.
        Without persistence retained messages are gone.
  pause_mqtt($m) / resume_mqtt($m)  SIGSTOP / SIGCONT: connections and
        the listen queue stay, nothing is answered while paused.
  mqtt_pub($m, %o) -> 1 on success, 0 otherwise (never a list); details
        of the run in $m->{last}: {exit, output (stdout+stderr),
        timed_out, argv}.  %o:
          topic, message (any bytes, sent with -f from a file; undef: a
                 zero-length message, -n), qos => 0, retain => 0,
          version => 5 | 311 | 31, client_id,
          props => [ name => value, ... ] for MQTT 5 PUBLISH properties,
                 user-property values are "key value" (split on the first
                 space) or [key, value]: e.g. 'user-property' => 'k v',
                 'content-type' => 'x', 'message-expiry-interval' => 60,
                 'response-topic' => 't', 'correlation-data' => 'c',
                 'payload-format-indicator' => 1 (mosquitto_pub
                 -D PUBLISH name [key] value),
          listener => 'plain' | 'auth' | 'tls' | 'mtls' (port and the
                 options it needs: -u/-P, --cafile, --cert/--key), or
                 port => P explicitly; user, password (default the
                 broker's for 'auth'), cafile (undef: none), cert, key,
          args => [ more mosquitto_pub arguments ], timeout => 10.
  mqtt_pub_start($m, %o) -> $h: the same, in the background;
  mqtt_pub_done($h, timeout => 0) -> undef while still running after the
        timeout, else 1/0 (success); $h->{exit}, $h->{output}.
  mqtt_pub_kill($h)
  mqtt_sub_start($m, %o) -> $h: mosquitto_sub in the background, returned
        once the broker has acknowledged the subscription (SUBACK with a
        granted QoS < 128).  %o: topic (or topics => [...]), qos => 0,
        version => 5, count => N (exit after N messages, -C), timeout =>
        10 (-W, seconds, rounded up: it then exits with status 27),
        no_retained => 1 (-R), client_id, clean => 0 (-c, a persistent
        session; needs client_id), listener/port/user/password/cafile/
        cert/key as for mqtt_pub, args, ready_timeout => 10 (for the
        SUBACK), may_fail => 1 (return the handle even if it did not
        subscribe: $h->{ready} false, see collect; otherwise it dies).
        $h->{pid} is mosquitto_sub's (for broker_connections),
        $h->{granted} the granted QoS list.
  mqtt_sub_collect($h, timeout => sub timeout + 5) -> list of messages
        (in arrival order), each {topic, qos, retain, payload (bytes),
        payloadlen, tst, user_properties => [[k, v], ...] (in order,
        duplicates kept), content_type, response_topic, correlation_data,
        payload_format_indicator, message_expiry_interval (what is left
        of it), subscription_identifier, topic_alias, properties (the raw
        JSON hash, duplicate user properties collapsed)}.  Waits for
        mosquitto_sub to exit (count reached or its -W timeout); kills it
        past the timeout.  Then $h->{exit} (0, 27 for -W timeout, ...),
        $h->{output} (its stderr and debug lines), $h->{timed_out}.
  mqtt_sub_messages($h) -> the messages received so far, without waiting.
  mqtt_sub_stop($h) -> kills it, then as mqtt_sub_collect.
  broker_connections($m, $pid, port => undef) -> number of ESTABLISHED
        TCP connections from process $pid to the broker's listeners (or to
        port P), from /proc/PID/fd and /proc/net/tcp{,6}.
  mqtt_clients($m, port => undef) -> number of connections the broker
        holds (its accepted sockets, ESTABLISHED, on its listeners).
  mqtt_log($m, $since = 0) -> the log's text from byte offset $since;
  mqtt_log_mark($m) -> the log's current size (an offset for the others);
  mqtt_log_count($m, qr/New client connected/, $since) -> matching lines;
  wait_for_mqtt_log($m, qr/.../, timeout => 5, since => 0) -> the first
        matching line or undef.

Cleanup: mosquitto and the mosquitto_pub/_sub still running are killed
and the temp dirs removed in END (only in the process that loaded the
module, not in forked children).  The children also get SIGKILL
(PR_SET_PDEATHSIG) when the test process dies without running END.

=head1 NOTES ON MOSQUITTO 2.0.11 (Debian 12)

Run as root it drops privileges to user mosquitto after reading the
config and before opening the log file unless the config says
"user root".  "bind_address" is a legacy option that makes the default
listener on 1883: listeners are bound with "listener PORT 127.0.0.1"; a
websockets listener ignores that address (binds 0.0.0.0) unless
"socket_domain ipv4" is set.  "per_listener_settings true" makes
allow_anonymous / password_file apply to the listener they follow.
mosquitto_sub's stdout to a file is block-buffered (it is run under
stdbuf -oL); its -F %j prints MQTT 5 properties as
"properties":{"user-properties":{"k":"v","k":"v2"},"content-type":...}
(an object with duplicate keys) and the payload with raw non-ASCII bytes;
this module prints "%x" (hex payload) before it and parses the user
properties itself.  %j has no message id.  message-expiry-interval comes
back as what is left of it.

Exit codes seen: mosquitto_sub/_pub with a wrong password or none on the
auth listener: MQTT 5 135 (the CONNACK reason code, "Connection error:
Not authorized"), 3.1.1 5 ("Connection Refused: not authorised."); -W
timeout 27; a plain client on a TLS port 7 ("The connection was lost");
a server certificate that does not verify 8 or 1 ("A TLS error
occurred").  The log's "New client connected ... (pN, cN, kN)" gives
mosquitto's own protocol number: p2 is 3.1.1, p5 is 5, p1 is 3.1.
Logging "log_type all" includes every PUBLISH/PUBACK/PUBREC/PUBCOMP:
count "New client connected" lines for connections, "Received PUBLISH
from" for messages.

=cut

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use File::Temp ();
use File::Path ();
use IO::Socket::INET ();
use JSON::PP ();

our @EXPORT = qw(start_mqtt stop_mqtt restart_mqtt pause_mqtt resume_mqtt
                 mqtt_pub mqtt_pub_start mqtt_pub_done mqtt_pub_kill
                 mqtt_sub_start mqtt_sub_collect mqtt_sub_messages
                 mqtt_sub_stop broker_connections mqtt_clients
                 mqtt_log mqtt_log_mark mqtt_log_count wait_for_mqtt_log);

my %Brokers;    # pid => $m
my %Clients;    # pid => 1, mosquitto_pub/_sub still running
my @Dirs;       # removed in END
my $Owner = $$; # END in a forked child that exit()s leaves them alone
my $Json = JSON::PP->new->allow_nonref;     # byte strings in and out

sub _which {
    my ($name, $pkg) = @_;
    for my $d (split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/usr/bin') {
        return "$d/$name" if length $d && -x "$d/$name";
    }
    die "MqttTest: no $name in PATH (Debian package $pkg)\n";
}

# the child dies with us even if END does not run (SIGKILL of the test)
sub _die_with_parent {
    eval {
        require 'syscall.ph';
        syscall(&SYS_prctl(), 1, 9);        # PR_SET_PDEATHSIG, SIGKILL
    };
}

# fork + exec; stdin from /dev/null, stdout and stderr to files
sub _spawn {
    my ($argv, $stdout, $stderr) = @_;
    my $pid = fork // die "MqttTest: fork: $!\n";
    if ($pid == 0) {
        _die_with_parent();
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $stdout or POSIX::_exit(126);
        if (defined $stderr && $stderr eq $stdout) {
            open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        } else {
            open STDERR, '>', $stderr // '/dev/null' or POSIX::_exit(126);
        }
        exec { $argv->[0] } @$argv or POSIX::_exit(127);
    }
    return $pid;
}

# waits up to $timeout s for $pid; -> exit status ($?) or undef
sub _wait {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        return $? if $r == $pid;
        return -1 if $r == -1;
        return undef if time >= $deadline;
        sleep 0.01;
    }
}

sub _kill {
    my ($pid) = @_;
    kill 'TERM', $pid;
    my $st = _wait($pid, 2);
    return $st if defined $st;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return $?;
}

sub _slurp {
    my ($file, $from) = @_;
    open my $fh, '<', $file or return '';
    binmode $fh;
    seek $fh, $from, 0 if $from;
    local $/;
    return <$fh> // '';
}

sub _run {
    my ($argv, $timeout) = @_;
    my $out = File::Temp->new;
    my $pid = _spawn($argv, $out->filename, $out->filename);
    my $st = _wait($pid, $timeout);
    my $timed_out = !defined $st;
    $st = _kill($pid) if $timed_out;
    return ($st, _slurp($out->filename), $timed_out);
}

sub _free_ports {
    my ($n) = @_;
    my (@socks, @ports);
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 1)
            or die "MqttTest: no free port: $!\n";
        push @socks, $s;
        push @ports, $s->sockport;
    }
    close $_ for @socks;
    return @ports;
}

# --- certificates -------------------------------------------------------

sub _openssl {
    my ($dir, @args) = @_;
    my ($st, $out, $to) = _run([_which('openssl', 'openssl'), @args], 30);
    die "MqttTest: openssl @args: " . ($to ? 'timed out' : "status $st")
        . ": $out\n" if $to || $st != 0;
}

sub _write {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "MqttTest: $file: $!\n";
    binmode $fh;
    print $fh $text;
    close $fh or die "MqttTest: $file: $!\n";
}

sub _make_certs {
    my ($dir, $type) = @_;
    my @key = ($type // 'ec') eq 'rsa'
        ? ('-newkey', 'rsa:2048')
        : ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1');
    _openssl($dir, 'req', '-x509', @key, '-nodes', '-days', '3650',
             '-keyout', "$dir/ca.key", '-out', "$dir/ca.crt",
             '-subj', '/CN=MqttTest CA',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    my %ext = (
        server => "basicConstraints=CA:FALSE\n"
                . "keyUsage=digitalSignature,keyEncipherment\n"
                . "extendedKeyUsage=serverAuth\n"
                . "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        client => "basicConstraints=CA:FALSE\n"
                . "keyUsage=digitalSignature,keyEncipherment\n"
                . "extendedKeyUsage=clientAuth\n",
    );
    my %cn = (server => '127.0.0.1', client => 'mqtt-client');
    my $serial = 1000 + int rand 1000000;
    for my $who (qw(server client)) {
        _write("$dir/$who.ext", $ext{$who});
        _openssl($dir, 'req', @key, '-nodes', '-keyout', "$dir/$who.key",
                 '-out', "$dir/$who.csr", '-subj', "/CN=$cn{$who}");
        _openssl($dir, 'x509', '-req', '-in', "$dir/$who.csr",
                 '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
                 '-set_serial', $serial++, '-days', '3650',
                 '-extfile', "$dir/$who.ext", '-out', "$dir/$who.crt");
    }
}

# --- the broker -----------------------------------------------------------

sub _config {
    my ($m, $o) = @_;
    my $d = $m->{dir};
    my $tls = "cafile $m->{ca_file}\ncertfile $m->{cert_file}\n"
            . "keyfile $m->{key_file}\n";
    my $persist = $o->{persistence}
        ? "persistence true\npersistence_location $d/\n"
          . "autosave_interval 1\n"
        : "persistence false\n";
    return <<"EOF";
# generated by t/lib/MqttTest.pm
user root
per_listener_settings true
log_dest file $m->{log}
log_type all
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true
$persist${\ ($o->{config} // '')}

listener $m->{port} 127.0.0.1
allow_anonymous true

listener $m->{auth_port} 127.0.0.1
allow_anonymous false
password_file $d/passwd

listener $m->{tls_port} 127.0.0.1
allow_anonymous true
${tls}
listener $m->{mtls_port} 127.0.0.1
allow_anonymous true
require_certificate true
${tls}
listener $m->{ws_port} 127.0.0.1
socket_domain ipv4
protocol websockets
allow_anonymous true
EOF
}

sub _launch {
    my ($m, $timeout) = @_;
    my $mark = -s $m->{log} // 0;
    my $pid = _spawn([$m->{binary}, '-c', $m->{conf}], $m->{stderr},
                     $m->{stderr});
    $m->{pid} = $pid;
    $Brokers{$pid} = $m;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $log = _slurp($m->{log}, $mark);
        if ($log =~ /mosquitto version \S+ running/) {
            # every listener answers
            return 1 unless grep {
                !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_,
                                       Proto => 'tcp', Timeout => 1)
            } _ports($m);
        }
        my $st = _wait($pid, 0);
        if (defined $st) {
            delete $Brokers{$pid};
            delete $m->{pid};
            $m->{status} = $st;
            $m->{why} = _slurp($m->{stderr}) . $log;
            return 0;
        }
        sleep 0.02;
    }
    stop_mqtt($m, timeout => 2);
    $m->{why} = "not ready within $timeout s: " . _slurp($m->{stderr})
              . _slurp($m->{log}, $mark);
    return 0;
}

sub _ports {
    my ($m) = @_;
    return @$m{qw(port auth_port tls_port mtls_port ws_port)};
}

sub start_mqtt {
    my (%o) = @_;
    my $timeout = $o{timeout} // 10;
    my $bin = _which('mosquitto', 'mosquitto');
    my $dir = File::Temp::tempdir('mqtt-test-XXXXXX', TMPDIR => 1);
    push @Dirs, $dir;
    my $m = bless {
        binary    => $bin,
        dir       => $dir,
        conf      => "$dir/mosquitto.conf",
        log       => "$dir/mosquitto.log",
        stderr    => "$dir/mosquitto.stderr",
        user      => $o{user} // 'alice',
        password  => $o{password} // 'secret',
        ca_file   => "$dir/ca.crt",
        cert_file => "$dir/server.crt",
        key_file  => "$dir/server.key",
        client_cert => "$dir/client.crt",
        client_key  => "$dir/client.key",
    }, 'MqttTest::Broker';

    _make_certs($dir, $o{key_type});
    my ($st, $out, $to) = _run([_which('mosquitto_passwd', 'mosquitto'),
                                '-c', '-b', "$dir/passwd", $m->{user},
                                $m->{password}], 10);
    die "MqttTest: mosquitto_passwd: status $st: $out\n" if $to || $st != 0;

    for my $try (1 .. 5) {
        @$m{qw(port auth_port tls_port mtls_port ws_port)} = _free_ports(5);
        _write($m->{conf}, _config($m, \%o));
        return $m if _launch($m, $timeout);
        # a port taken meanwhile: other ports
        last unless ($m->{why} // '') =~ /Address already in use/;
    }
    die "MqttTest: mosquitto did not start: $m->{why}\n";
}

sub stop_mqtt {
    my ($m, %o) = @_;
    my $pid = $m->{pid} or return 1;
    delete $Brokers{$pid};
    kill 'TERM', $pid;
    kill 'CONT', $pid;
    delete $m->{paused};
    my $st = _wait($pid, $o{timeout} // 5);
    my $clean = defined $st;
    unless ($clean) {
        warn "MqttTest: mosquitto $pid did not stop; killing it\n";
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $st = $?;
    }
    $m->{status} = $st;
    delete $m->{pid};
    return $clean;
}

sub restart_mqtt {
    my ($m, %o) = @_;
    my $timeout = $o{timeout} // 10;
    stop_mqtt($m);
    my $deadline = time + $timeout;
    while (1) {
        return $m if _launch($m, $deadline - time > 1 ? $deadline - time : 1);
        die "MqttTest: mosquitto did not restart: $m->{why}\n"
            unless ($m->{why} // '') =~ /Address already in use/
                   && time < $deadline;
        sleep 0.2;
    }
}

sub pause_mqtt {
    my ($m) = @_;
    die "MqttTest: broker not running\n" unless $m->{pid};
    kill 'STOP', $m->{pid};
    # wait until the kernel has stopped it
    for (1 .. 200) {
        last if (_slurp("/proc/$m->{pid}/stat") =~ /\)\s+T\b/);
        sleep 0.005;
    }
    $m->{paused} = 1;
    return 1;
}

sub resume_mqtt {
    my ($m) = @_;
    die "MqttTest: broker not running\n" unless $m->{pid};
    kill 'CONT', $m->{pid};
    delete $m->{paused};
    return 1;
}

# --- log ----------------------------------------------------------------

sub mqtt_log { return _slurp($_[0]{log}, $_[1] // 0) }
sub mqtt_log_mark { return -s $_[0]{log} // 0 }

sub mqtt_log_count {
    my ($m, $re, $since) = @_;
    return scalar grep { /$re/ } split /\n/, mqtt_log($m, $since);
}

sub wait_for_mqtt_log {
    my ($m, $re, %o) = @_;
    my $deadline = time + ($o{timeout} // 5);
    while (1) {
        for (split /\n/, mqtt_log($m, $o{since})) {
            return $_ if /$re/;
        }
        return undef if time >= $deadline;
        sleep 0.05;
    }
}

# --- clients --------------------------------------------------------------

# the options of a listener: port, credentials, TLS files
sub _conn_args {
    my ($m, $o) = @_;
    my $l = $o->{listener} // 'plain';
    my %port = (plain => 'port', auth => 'auth_port', tls => 'tls_port',
                mtls => 'mtls_port');
    die "MqttTest: unknown listener \"$l\"\n" unless $port{$l};
    my @a = ('-h', '127.0.0.1', '-p', $o->{port} // $m->{ $port{$l} });
    my $user = exists $o->{user} ? $o->{user}
             : $l eq 'auth' ? $m->{user} : undef;
    my $pass = exists $o->{password} ? $o->{password}
             : $l eq 'auth' ? $m->{password} : undef;
    push @a, '-u', $user if defined $user;
    push @a, '-P', $pass if defined $pass;
    my $tls = $l eq 'tls' || $l eq 'mtls';
    my $ca = exists $o->{cafile} ? $o->{cafile} : $tls ? $m->{ca_file} : undef;
    push @a, '--cafile', $ca if defined $ca;
    my $cert = exists $o->{cert} ? $o->{cert}
             : $l eq 'mtls' ? $m->{client_cert} : undef;
    my $key = exists $o->{key} ? $o->{key}
            : $l eq 'mtls' ? $m->{client_key} : undef;
    push @a, '--cert', $cert if defined $cert;
    push @a, '--key', $key if defined $key;
    my $v = $o->{version} // 5;
    push @a, '-V', { 5 => 'mqttv5', 311 => 'mqttv311', 31 => 'mqttv31' }->{$v}
                   // die "MqttTest: unknown MQTT version \"$v\"\n";
    push @a, '-i', $o->{client_id} if defined $o->{client_id};
    return @a;
}

sub _pub_argv {
    my ($m, $o, $tmp) = @_;
    my @a = (_which('mosquitto_pub', 'mosquitto-clients'), _conn_args($m, $o),
             '-t', $o->{topic} // die("MqttTest: mqtt_pub: no topic\n"),
             '-q', $o->{qos} // 0);
    push @a, '-r' if $o->{retain};
    if (defined $o->{message} && length $o->{message}) {
        binmode $tmp;
        print $tmp $o->{message};
        close $tmp;
        push @a, '-f', $tmp->filename;
    } else {
        push @a, '-n';
    }
    my @p = @{ $o->{props} // [] };
    die "MqttTest: props are name => value pairs\n" if @p % 2;
    while (my ($name, $value) = splice @p, 0, 2) {
        if ($name eq 'user-property') {
            my @kv = ref $value ? @$value : split / /, $value, 2;
            die "MqttTest: user-property \"$value\" is not \"key value\"\n"
                unless @kv == 2;
            push @a, '-D', 'PUBLISH', $name, @kv;
        } else {
            push @a, '-D', 'PUBLISH', $name, $value;
        }
    }
    push @a, @{ $o->{args} // [] };
    return @a;
}

sub mqtt_pub {
    my ($m, %o) = @_;
    my $tmp = File::Temp->new;
    my @argv = _pub_argv($m, \%o, $tmp);
    my ($st, $out, $to) = _run(\@argv, $o{timeout} // 10);
    $m->{last} = { exit => $st >> 8, status => $st, output => $out,
                   timed_out => $to, argv => \@argv };
    return (!$to && $st == 0) ? 1 : 0;
}

sub mqtt_pub_start {
    my ($m, %o) = @_;
    my $tmp = File::Temp->new;
    my @argv = _pub_argv($m, \%o, $tmp);
    my $out = File::Temp->new;
    my $pid = _spawn(\@argv, $out->filename, $out->filename);
    $Clients{$pid} = 1;
    return bless { pid => $pid, _msg => $tmp, _out => $out, argv => \@argv,
                   started => time }, 'MqttTest::Client';
}

sub _finish {
    my ($h, $st) = @_;
    delete $Clients{ $h->{pid} };
    $h->{status} = $st;
    $h->{exit} = $st >> 8;
    $h->{done} = 1;
}

sub mqtt_pub_done {
    my ($h, %o) = @_;
    unless ($h->{done}) {
        my $st = _wait($h->{pid}, $o{timeout} // 0);
        return undef unless defined $st;
        _finish($h, $st);
        $h->{output} = _slurp($h->{_out}->filename);
    }
    return $h->{status} == 0 ? 1 : 0;
}

sub mqtt_pub_kill {
    my ($h) = @_;
    return if $h->{done};
    _finish($h, _kill($h->{pid}));
    $h->{killed} = 1;
    $h->{output} = _slurp($h->{_out}->filename);
}

sub mqtt_sub_start {
    my ($m, %o) = @_;
    my @topics = $o{topics} ? @{ $o{topics} } : ($o{topic} // '#');
    my $timeout = $o{timeout} // 10;
    my $w = int($timeout) == $timeout ? $timeout : int($timeout) + 1;
    my @argv = (_which('stdbuf', 'coreutils'), '-oL',
                _which('mosquitto_sub', 'mosquitto-clients'),
                _conn_args($m, \%o), '-d', '-q', $o{qos} // 0,
                '-W', $w, '-F', 'MSG %x %j', map { ('-t', $_) } @topics);
    push @argv, '-C', $o{count} if $o{count};
    push @argv, '-R' if $o{no_retained};
    push @argv, '-c' if defined $o{clean} && !$o{clean};
    push @argv, @{ $o{args} // [] };

    my $out = File::Temp->new;
    my $err = File::Temp->new;
    my $pid = _spawn(\@argv, $out->filename, $err->filename);
    $Clients{$pid} = 1;
    my $h = bless { pid => $pid, _out => $out, _err => $err, argv => \@argv,
                    timeout => $timeout, started => time },
                  'MqttTest::Client';
    # SUBACK, then "Subscribed (mid: N): QOS[, QOS...]"
    my $deadline = time + ($o{ready_timeout} // 10);
    while (time < $deadline) {
        my $text = _slurp($out->filename);
        if ($text =~ /^Subscribed \(mid: \d+\): ([\d, ]+)$/m) {
            my @granted = split /, ?/, $1;
            $h->{granted} = \@granted;
            $h->{ready} = !grep { $_ >= 128 } @granted;
            last;
        }
        my $st = _wait($pid, 0);
        if (defined $st) {
            _finish($h, $st);
            last;
        }
        sleep 0.01;
    }
    unless ($h->{ready} || $o{may_fail}) {
        mqtt_sub_stop($h);
        die "MqttTest: mosquitto_sub @argv did not subscribe (exit "
            . ($h->{exit} // '?') . "): $h->{output}\n";
    }
    return $h;
}

# { "k":"v", "k":"v2" } in order, duplicates kept
my $Str = qr/"((?:[^"\\]|\\.)*)"/s;

sub _user_props {
    my ($json) = @_;
    # mosquitto prints them first among the properties
    return [] unless $json =~ /"payloadlen":\d+,"properties":\{"user-properties":\{/g
                  || $json =~ /"user-properties":\{/g;
    my @kv;
    while ($json =~ /\G\s*$Str\s*:\s*$Str\s*(,?)/gc) {
        push @kv, [ $Json->decode(qq{"$1"}), $Json->decode(qq{"$2"}) ];
        last unless $3;
    }
    return \@kv;
}

sub _parse {
    my ($text) = @_;
    my @msgs;
    for my $line (split /\n/, $text) {
        next unless $line =~ /^MSG ([0-9a-f]*) (\{.*\})$/;
        my ($hex, $json) = ($1, $2);
        # the payload is taken from %x: its JSON copy may be dropped
        my $j = eval { $Json->decode($json) }
             // eval { (my $t = $json) =~ s/,"payload":.*\}\z/}/s;
                       $Json->decode($t) };
        die "MqttTest: mosquitto_sub -F %j output: $@: $line\n" unless $j;
        my $p = $j->{properties} // {};
        push @msgs, {
            topic   => $j->{topic},
            qos     => $j->{qos},
            retain  => $j->{retain},
            payload => pack('H*', $hex),
            payloadlen => $j->{payloadlen},
            tst     => $j->{tst},
            user_properties => _user_props($json),
            content_type    => $p->{'content-type'},
            response_topic  => $p->{'response-topic'},
            correlation_data => $p->{'correlation-data'},
            payload_format_indicator => $p->{'payload-format-indicator'},
            message_expiry_interval  => $p->{'message-expiry-interval'},
            subscription_identifier  => $p->{'subscription-identifier'},
            topic_alias     => $p->{'topic-alias'},
            properties      => $p,
        };
    }
    return @msgs;
}

sub mqtt_sub_messages {
    my ($h) = @_;
    return _parse(_slurp($h->{_out}->filename));
}

sub _collected {
    my ($h) = @_;
    my $text = _slurp($h->{_out}->filename);
    $h->{output} = _slurp($h->{_err}->filename)
                 . join('', map { "$_\n" } grep { !/^MSG / } split /\n/, $text);
    return _parse($text);
}

sub mqtt_sub_collect {
    my ($h, %o) = @_;
    unless ($h->{done}) {
        my $left = $h->{started} + $h->{timeout} + 5 - time;
        my $st = _wait($h->{pid}, $o{timeout} // ($left > 0 ? $left : 0));
        if (defined $st) {
            _finish($h, $st);
        } else {
            $h->{timed_out} = 1;
            _finish($h, _kill($h->{pid}));
        }
    }
    return _collected($h);
}

sub mqtt_sub_stop {
    my ($h) = @_;
    unless ($h->{done}) {
        _finish($h, _kill($h->{pid}));
        $h->{killed} = 1;
    }
    return _collected($h);
}

# --- connections ------------------------------------------------------------

sub _socket_inodes {
    my ($pid) = @_;
    my %inodes;
    for my $fd (glob "/proc/$pid/fd/*") {
        my $l = readlink($fd) // '';
        $inodes{$1} = 1 if $l =~ /^socket:\[(\d+)\]/;
    }
    return \%inodes;
}

# ESTABLISHED sockets of %$inodes whose local (which 1) or remote (2) port
# is in %$ports
sub _count {
    my ($inodes, $ports, $which) = @_;
    my $n = 0;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        while (<$in>) {
            my @f = split;
            next unless @f > 9 && $f[3] eq '01';
            my $port = hex((split /:/, $f[$which])[-1]);
            $n++ if $ports->{$port} && $inodes->{ $f[9] };
        }
    }
    return $n;
}

sub broker_connections {
    my ($m, $pid, %o) = @_;
    my %ports = map { $_ => 1 } defined $o{port} ? $o{port} : _ports($m);
    return _count(_socket_inodes($pid), \%ports, 2);
}

sub mqtt_clients {
    my ($m, %o) = @_;
    return 0 unless $m->{pid};
    my %ports = map { $_ => 1 } defined $o{port} ? $o{port} : _ports($m);
    return _count(_socket_inodes($m->{pid}), \%ports, 1);
}

END {
    local $?;
    return unless $$ == $Owner;
    for my $pid (keys %Clients) {
        _kill($pid);
    }
    stop_mqtt($_, timeout => 3) for values %Brokers;
    File::Path::remove_tree($_) for $ENV{MQTTTEST_KEEP} ? () : @Dirs;
}

1;
