package KafkaTest;

=head1 NAME

KafkaTest - a Kafka-protocol cluster for ngx_gravitee_module suites:
starts build/kafka-mock-broker (librdkafka's mock cluster, see
t/broker/kafka-mock-broker.c), drives it over its control port, and
writes and reads records with kcat.  Independent of which
Test::Nginx::Socket is loaded.  Everything is on 127.0.0.1.

=head1 SYNOPSIS

    use Test::More;
    use lib 't/lib';
    use KafkaTest;

    my $k = start_kafka(brokers => 3);      # $k->{bootstrap} for nginx.conf
    create_topic($k, 'orders', 3);          # partition P: leader P % 3 + 1
    kcat_produce($k, 'orders', [
        'plain value',                                  # any partition, no key
        { key => 'k1', value => "v\0\n1", partition => 2,
          headers => [trace => 'abc', empty => ''] },
    ]);
    my @r = kcat_consume($k, 'orders');     # every partition, from the start
    is($r[0]{value}, ...);                  # {topic partition offset key value
                                            #  headers timestamp broker}
    broker_down($k, 3);                     # partition 2 is unreachable now
    broker_up($k, 3);
    my ($low, $high) = kafka_forget($k, 'orders', 2);  # older offsets gone
    my $w = kcat_offsets($k, 'orders');     # {0 => [low, high], 1 => ...}
    like(kafka_cmd($k, 'leader orders 2 1'), qr/^ok/);
    stop_kafka($k);                         # also done in END
    done_testing;

=head1 API (all exported by default)

  start_kafka(brokers => 1, control_port => undef, debug => undef,
              stderr => undef, timeout => 10) -> $k (hash: bootstrap
        "127.0.0.1:P1,127.0.0.1:P2,...", control_port, pid, brokers,
        binary).  Runs kafka-mock-broker from $ENV{GRAVITEE_KAFKA_BROKER},
        else next to a module of $ENV{TEST_NGINX_LOAD_MODULES} (make test's
        build directory), else <repo>/build/kafka-mock-broker; dies when
        there is none ("make build/kafka-mock-broker").  Broker ids are 1
        to brokers.  control_port: fixed port (default: a free one).  debug:
        librdkafka debug contexts for the broker ("mock").  stderr: a file
        for the broker's stderr (default: the test's stderr; librdkafka
        only logs warnings there unless debug is set).  The broker also
        stops when this process dies (it watches the pipe on its stdin).
  stop_kafka($k, timeout => 5)  SIGTERM, wait, SIGKILL fallback; true when
        it exited cleanly.  The broker can take a second to exit.
  kafka_cmd($k, $line, timeout => 20) -> its reply line ("ok ..." or
        "error ..."); dies if there is no reply.  Commands of
        kafka-mock-broker ("help" lists them):
          topic NAME PARTITIONS      partition P led by broker P % N + 1
          leader TOPIC PARTITION BROKER|-1   move (or drop) a leadership
          coordinator GROUP BROKER   group coordinator (else a hash)
          down BROKER / up BROKER    see "Brokers going down" below
          rtt BROKER MS              delay every response of a broker
          errors API [ERROR ...]     the next requests of API (Produce,
                                     Fetch, Metadata, JoinGroup, ... or a
                                     number), to any broker, fail with
                                     these errors (names as
                                     rd_kafka_err2name() gives them, e.g.
                                     NOT_LEADER_FOR_PARTITION; _TRANSPORT
                                     closes the connection); none: clear
          forget TOPIC PARTITION     -> "ok LOW HIGH", see kafka_forget
          bootstrap / brokers / broker ID / help / quit
  create_topic($k, $name, $partitions), broker_down($k, $id),
  broker_up($k, $id)  the commands above; die unless the reply is "ok".
  kafka_forget($k, $topic, $partition) -> ($low, $high): the partition
        drops every record it holds; afterwards low = high = the old high
        watermark + 2 and every older offset, including the old high
        watermark itself, is out of range (a consumer positioned there
        gets OFFSET_OUT_OF_RANGE and its auto.offset.reset applies).  The
        next record produced gets offset low.  Only for topics made with
        create_topic, and the partition's leader must be up.
  kcat_produce($k, $topic, \@records, %opts) -> number of records sent.
        A record is a string (the value) or a hash {value, key, partition,
        headers => [name => value, ...]}.  Keys and values may hold any
        bytes; an undef value is a null value (a tombstone, needs a key);
        an undef header value is a null one.  A record without key and with
        an empty value cannot be sent (kcat skips it) and dies; header
        names cannot hold "=" or NUL, header values no NUL.  Consecutive
        records with the same partition, headers and nullness go in one
        kcat run.  %opts: compression (gzip, snappy, lz4, zstd),
        idempotent => 1, acks, props => {librdkafka property => value},
        timeout (10 s: also message.timeout.ms).  Dies if kcat fails.
  kcat_consume($k, $topic, %opts) -> records, sorted by partition then
        offset, each {topic, partition, offset, key, value, headers
        (array ref of name/value pairs), timestamp (ms), broker}; undef
        key/value/header value for null ones.  Reads without a group
        (assign), from offset 'beginning' until the end of every
        partition.  %opts: partition, offset (kcat -o: beginning, end,
        an offset, -N from the end), count (stop after that many),
        timeout (10 s), may_timeout => 1 (return what was read by then
        instead of dying, e.g. while a leader is down), props.
  kcat_offsets($k, $topic, timeout => 10) -> {partition => [low, high]}
        (ListOffsets earliest/latest through kcat -Q; the mock answers no
        lookup by timestamp).  Dies if the topic does not exist.
  kcat_metadata($k, timeout => 10) -> kcat -L -J's metadata, decoded
        (brokers, topics, their partitions and leaders).  It asks for all
        topics: a metadata request that names an unknown topic makes the
        mock create it with 4 partitions.

=head1 NOTES ON THE MOCK (librdkafka 2.0.2)

Brokers going down: "down" closes every connection to the broker (clients
see EOF; one still in the listen queue, not yet accepted, is reset) and
refuses new ones (the port stays bound, connect() gets ECONNREFUSED); "up"
listens again on the same port.  Partitions do not
change leader: those led by a down broker cannot be produced to or fetched
until it is up again or "leader" moves them.  Records, topics, committed
offsets and producer ids are not lost.  librdkafka clients reconnect with
their reconnect.backoff.ms / reconnect.backoff.max.ms (up to 10 s by
default).

Fetch returns at most one record batch per partition and, with no data,
waits the full fetch.wait.max.ms even if records arrive meanwhile.  Groups:
the first join waits 3 s; a member joining a group that has (or just had)
members waits session.timeout.ms - 1 s.  An idempotent producer gets a
producer id but the mock checks sequence numbers only for transactional
ones: a batch retried after a lost response is written twice.

=cut

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use Cwd ();
use File::Basename qw(dirname);
use File::Spec ();
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();

our @EXPORT = qw(start_kafka stop_kafka kafka_cmd create_topic broker_down
                 broker_up kafka_forget kcat_produce kcat_consume
                 kcat_offsets kcat_metadata);

my %Started;    # pid => $k, stopped in END

# raw bytes in, raw bytes out: kcat writes keys and values unescaped
my $Json = JSON::PP->new;

sub _broker_binary {
    if (defined $ENV{GRAVITEE_KAFKA_BROKER}) {
        my $b = $ENV{GRAVITEE_KAFKA_BROKER};
        return $b if -x $b;
        die "KafkaTest: GRAVITEE_KAFKA_BROKER=$b is not an executable\n";
    }
    my @tried;
    my $mods = $ENV{TEST_NGINX_LOAD_MODULES} // '';
    for my $mod (grep { length } split /\s+/, $mods) {
        push @tried, File::Spec->catfile(dirname($mod), 'kafka-mock-broker');
    }
    my $repo = Cwd::abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..'));
    push @tried, File::Spec->catfile($repo, 'build', 'kafka-mock-broker');
    for my $b (@tried) {
        return $b if -x $b;
    }
    die "KafkaTest: no kafka-mock-broker (looked for @tried); build it with "
        . "\"make build/kafka-mock-broker\" or set GRAVITEE_KAFKA_BROKER\n";
}

sub _kcat {
    my $k = $ENV{KCAT} // 'kcat';
    return $k if $k =~ m{/} && -x $k;
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/$k" if length $d && -x "$d/$k";
    }
    die "KafkaTest: no $k in PATH (Debian package kcat)\n";
}

sub start_kafka {
    my (%o) = @_;
    my $bin = _broker_binary();
    my $n = $o{brokers} // 1;
    my @argv = ($bin, '-s', '-b', $n);
    push @argv, '-c', $o{control_port} if defined $o{control_port};
    push @argv, '-d', $o{debug} if defined $o{debug};

    pipe(my $out_r, my $out_w) or die "KafkaTest: pipe: $!\n";
    pipe(my $in_r, my $in_w) or die "KafkaTest: pipe: $!\n";
    my $pid = fork // die "KafkaTest: fork: $!\n";
    if ($pid == 0) {
        close $out_r;
        close $in_w;
        open STDIN, '<&', $in_r or POSIX::_exit(126);
        open STDOUT, '>&', $out_w or POSIX::_exit(126);
        if (defined $o{stderr}) {
            open STDERR, '>>', $o{stderr} or POSIX::_exit(126);
        }
        exec { $argv[0] } @argv or POSIX::_exit(127);
    }
    close $out_w;
    close $in_r;

    my $k = bless { pid => $pid, brokers => $n, binary => $bin,
                    _stdin => $in_w, _stdout => $out_r }, 'KafkaTest::Cluster';
    $Started{$pid} = $k;

    my $text = _read_ready($out_r, $o{timeout} // 10);
    if ($text !~ /^ready$/m) {
        stop_kafka($k, timeout => 2);
        die "KafkaTest: $bin did not start (status $k->{status}): $text\n";
    }
    ($k->{bootstrap}) = $text =~ /^bootstrap (\S+)$/m;
    ($k->{control_port}) = $text =~ /^control (\d+)$/m;
    die "KafkaTest: unexpected start lines: $text\n"
        unless $k->{bootstrap} && $k->{control_port};
    return $k;
}

sub _read_ready {
    my ($fh, $timeout) = @_;
    my $buf = '';
    my $sel = IO::Select->new($fh);
    my $deadline = time + $timeout;
    while ($buf !~ /^ready\n/m) {
        my $left = $deadline - time;
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($fh, my $chunk, 4096);
        last unless $n;
        $buf .= $chunk;
    }
    return $buf;
}

sub stop_kafka {
    my ($k, %o) = @_;
    my $pid = $k->{pid} or return 1;
    delete $Started{$pid};
    kill 'TERM', $pid;
    my $deadline = time + ($o{timeout} // 5);
    my $gone;
    while (1) {
        $gone = waitpid($pid, WNOHANG);
        last if $gone == $pid || $gone == -1 || time > $deadline;
        sleep 0.02;
    }
    if ($gone != $pid && $gone != -1) {
        warn "KafkaTest: kafka-mock-broker $pid did not stop; killing it\n";
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    $k->{status} = $?;
    close $k->{_stdin} if $k->{_stdin};
    close $k->{_stdout} if $k->{_stdout};
    delete @$k{qw(pid _stdin _stdout)};
    return $gone == $pid && $k->{status} == 0;
}

sub kafka_cmd {
    my ($k, $line, %o) = @_;
    my $timeout = $o{timeout} // 20;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $k->{control_port},
                                     Proto => 'tcp', Timeout => 3)
        or die "KafkaTest: control port $k->{control_port}: $!\n";
    binmode $sock;
    syswrite($sock, "$line\n") or die "KafkaTest: control: $!\n";
    my $buf = '';
    my $sel = IO::Select->new($sock);
    my $deadline = time + $timeout;
    while (index($buf, "\n") < 0) {
        my $left = $deadline - time;
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($sock, my $chunk, 4096);
        last unless $n;
        $buf .= $chunk;
    }
    close $sock;
    die "KafkaTest: no reply to \"$line\" within $timeout s\n"
        unless $buf =~ /\A([^\n]*)\n/;
    return $1;
}

sub _ok {
    my ($k, $line) = @_;
    my $reply = kafka_cmd($k, $line);
    die "KafkaTest: \"$line\": $reply\n" unless $reply =~ /^ok(?: (.*))?$/;
    return $1 // '';
}

sub create_topic {
    my ($k, $name, $partitions) = @_;
    _ok($k, "topic $name $partitions");
    return 1;
}

sub broker_down { _ok($_[0], "down $_[1]"); return 1 }
sub broker_up   { _ok($_[0], "up $_[1]"); return 1 }

sub kafka_forget {
    my ($k, $topic, $partition) = @_;
    return split / /, _ok($k, "forget $topic $partition");
}

# runs kcat with $stdin (a string) as its input; -> (status, stdout, stderr,
# timed_out).  stdin and stderr go through files: no pipe to deadlock on.
sub _run {
    my ($argv, $stdin, $timeout) = @_;
    my $in = File::Temp->new;
    my $err = File::Temp->new;
    binmode $in;
    print $in $stdin // '';
    close $in;

    pipe(my $out_r, my $out_w) or die "KafkaTest: pipe: $!\n";
    my $pid = fork // die "KafkaTest: fork: $!\n";
    if ($pid == 0) {
        close $out_r;
        open STDIN, '<', $in->filename or POSIX::_exit(126);
        open STDOUT, '>&', $out_w or POSIX::_exit(126);
        open STDERR, '>', $err->filename or POSIX::_exit(126);
        exec { $argv->[0] } @$argv or POSIX::_exit(127);
    }
    close $out_w;

    my ($out, $timed_out) = ('', 0);
    my $sel = IO::Select->new($out_r);
    my $deadline = time + $timeout;
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $timed_out = 1;
            last;
        }
        next unless $sel->can_read($left);
        my $n = sysread($out_r, my $chunk, 65536);
        last unless $n;
        $out .= $chunk;
    }
    if ($timed_out) {
        kill 'TERM', $pid;
        for (1 .. 100) { last if waitpid($pid, WNOHANG) == $pid; sleep 0.02 }
        kill 'KILL', $pid if kill 0, $pid;
    }
    waitpid($pid, 0);
    my $status = $?;
    close $out_r;
    my $errtext = do { local $/; open my $e, '<', $err->filename; <$e> // '' };
    return ($status, $out, $errtext, $timed_out);
}

sub _props {
    my ($props) = @_;
    return map { ('-X', "$_=$props->{$_}") } sort keys %{ $props // {} };
}

# a delimiter that no key or value contains
sub _delimiter {
    my ($tag, @data) = @_;
    while (1) {
        my $d = join '', "|$tag", map({ sprintf '%02x', int rand 256 } 1 .. 8),
                         '|';
        return $d unless grep { defined && index($_, $d) >= 0 } @data;
    }
}

sub _record {
    my ($r) = @_;
    $r = { value => $r } unless ref $r;
    die "KafkaTest: a record is a string or a hash\n" unless ref $r eq 'HASH';
    my @h = @{ $r->{headers} // [] };
    die "KafkaTest: headers are name => value pairs\n" if @h % 2;
    my @args;
    while (my ($name, $value) = splice @h, 0, 2) {
        die "KafkaTest: kcat cannot send header name \"$name\"\n"
            if $name eq '' || $name =~ /[=\0]/;
        die "KafkaTest: kcat cannot send a NUL in a header value\n"
            if defined $value && $value =~ /\0/;
        push @args, '-H', defined $value ? "$name=$value" : $name;
    }
    die "KafkaTest: kcat cannot send a record with no key and an empty value\n"
        if !defined $r->{key} && defined $r->{value} && $r->{value} eq '';
    die "KafkaTest: kcat cannot send a null value without a key\n"
        if !defined $r->{key} && !defined $r->{value};
    return { %$r, args => \@args,
             group => join("\0", $r->{partition} // '', defined $r->{value},
                           @args) };
}

sub kcat_produce {
    my ($k, $topic, $records, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my @recs = map { _record($_) } @$records;
    my @data = map { ($_->{key}, $_->{value}) } @recs;
    my $kd = _delimiter('K', @data);
    my $rd = _delimiter('R', @data, $kd);

    my @common = (_kcat(), '-P', '-b', $k->{bootstrap}, '-t', $topic,
                  '-K', $kd, '-D', $rd,
                  '-X', 'message.timeout.ms=' . int($timeout * 1000));
    push @common, '-z', $o{compression} if $o{compression};
    push @common, '-X', 'enable.idempotence=true' if $o{idempotent};
    push @common, '-X', "acks=$o{acks}" if defined $o{acks};
    push @common, _props($o{props});

    while (@recs) {
        my $g = $recs[0]{group};
        my @batch;
        push @batch, shift @recs while @recs && $recs[0]{group} eq $g;
        my $r0 = $batch[0];
        my @argv = (@common, @{ $r0->{args} });
        push @argv, '-p', $r0->{partition} if defined $r0->{partition};
        push @argv, '-Z' unless defined $r0->{value};
        my $stdin = join '', map {
            (defined $_->{key} ? $_->{key} . $kd : '') . ($_->{value} // '')
            . $rd
        } @batch;
        my ($status, undef, $err, $timed_out) =
            _run(\@argv, $stdin, $timeout + 5);
        die "KafkaTest: kcat -P to $topic "
            . ($timed_out ? 'timed out' : "failed (status $status)")
            . ": $err\n"
            if $timed_out || $status != 0;
    }
    return scalar @$records;
}

sub kcat_consume {
    my ($k, $topic, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my @argv = (_kcat(), '-C', '-J', '-e', '-b', $k->{bootstrap},
                '-t', $topic, '-o', $o{offset} // 'beginning',
                _props($o{props}));
    push @argv, '-p', $o{partition} if defined $o{partition};
    push @argv, '-c', $o{count} if defined $o{count};
    my ($status, $out, $err, $timed_out) = _run(\@argv, '', $timeout);
    die "KafkaTest: kcat -C on $topic "
        . ($timed_out ? "timed out after $timeout s"
                      : "failed (status $status)")
        . ": $err\n"
        if ($timed_out && !$o{may_timeout}) || (!$timed_out && $status != 0);

    my @records;
    for my $line (split /\n/, $out) {
        next unless $line =~ /^\{/;
        my $j = eval { $Json->decode($line) };
        # a record cut by the timeout
        next if !$j && $timed_out;
        die "KafkaTest: kcat -J output: $@: $line\n" unless $j;
        push @records, {
            topic     => $j->{topic},
            partition => $j->{partition},
            offset    => $j->{offset},
            key       => $j->{key},
            value     => $j->{payload},
            headers   => $j->{headers} // [],
            timestamp => $j->{ts},
            broker    => $j->{broker},
        };
    }
    return sort { $a->{partition} <=> $b->{partition}
                  || $a->{offset} <=> $b->{offset} } @records;
}

sub kcat_metadata {
    my ($k, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my ($status, $out, $err, $timed_out) =
        _run([_kcat(), '-L', '-J', '-b', $k->{bootstrap}], '', $timeout);
    die "KafkaTest: kcat -L failed: $err\n" if $timed_out || $status != 0;
    return $Json->decode($out);
}

sub kcat_offsets {
    my ($k, $topic, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my ($t) = grep { $_->{topic} eq $topic }
              @{ kcat_metadata($k, %o)->{topics} // [] };
    die "KafkaTest: no topic $topic\n" unless $t;
    my @parts = sort { $a <=> $b }
                map { $_->{partition} } @{ $t->{partitions} };

    my %w = map { $_ => [] } @parts;
    # -2: earliest, -1: latest; one run each, as kcat keeps one query per
    # partition
    for my $i (0, 1) {
        my @argv = (_kcat(), '-Q', '-J', '-b', $k->{bootstrap},
                    map { ('-t', "$topic:$_:" . ($i ? -1 : -2)) } @parts);
        my ($status, $out, $err, $timed_out) = _run(\@argv, '', $timeout);
        die "KafkaTest: kcat -Q on $topic failed: $err\n"
            if $timed_out || $status != 0;
        my $j = $Json->decode($out)->{$topic} // {};
        for my $p (@parts) {
            my $e = $j->{$p};
            die "KafkaTest: kcat -Q: no offset for $topic [$p]: $out\n"
                unless $e && defined $e->{offset} && !defined $e->{error};
            $w{$p}[$i] = $e->{offset};
        }
    }
    return \%w;
}

END {
    local $?;
    stop_kafka($_, timeout => 3) for values %Started;
}

1;
