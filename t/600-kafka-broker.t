# Self-test of the Kafka test harness (t/lib/KafkaTest.pm and
# t/broker/kafka-mock-broker.c): a 3-broker mock cluster on 127.0.0.1,
# records written and read back with kcat, brokers down and up, the
# control commands, and forgetting a partition's records.  No nginx.

use strict;
use warnings;
use Test::More;
use Errno qw(ECONNREFUSED);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use lib 't/lib';
use KafkaTest;

my $k = start_kafka(brokers => 3);
my @addr = split /,/, $k->{bootstrap};
my @port = map { /:(\d+)$/ } @addr;

like($k->{bootstrap}, qr/^127\.0\.0\.1:\d+(?:,127\.0\.0\.1:\d+){2}$/,
     'three brokers, all on 127.0.0.1');

# what listens, in the kernel's tables: 127.0.0.1 only, never 0.0.0.0 or ::
my %listening;
for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
    open my $in, '<', $f or next;
    while (<$in>) {
        next unless /^\s*\d+:\s+([0-9A-F]+):([0-9A-F]{4})\s+\S+\s+0A\b/;
        push @{ $listening{ hex $2 } }, $1;
    }
}
for my $p (@port, $k->{control_port}) {
    is_deeply($listening{$p}, ['0100007F'],
              "port $p listens on 127.0.0.1 only");
}

# --- control channel ------------------------------------------------------

is(kafka_cmd($k, 'brokers'), 'ok 1 2 3', 'brokers');
is(kafka_cmd($k, 'bootstrap'), "ok $k->{bootstrap}", 'bootstrap');
is(kafka_cmd($k, 'broker 2'), "ok 2 $addr[1] up", 'broker 2');
like(kafka_cmd($k, 'nonsense'), qr/^error unknown command "nonsense"$/,
     'unknown command');
like(kafka_cmd($k, 'down 4'), qr/^error no broker "4"/, 'no broker 4');
is(kafka_cmd($k, 'topic orders'), 'error usage: topic NAME PARTITIONS',
   'usage');
like(kafka_cmd($k, 'topic bad/name 1'), qr/^error bad topic name/, 'bad name');
like(kafka_cmd($k, 'leader nosuch 0 1'), qr/^error no topic "nosuch"/,
     'leader of an unknown topic');

# one connection, several commands, one reply line each
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $k->{control_port});
    print $s "brokers\n\nbroker 1\r\n";
    my $sel = IO::Select->new($s);
    my ($buf, $deadline) = ('', time + 5);
    while (($buf =~ tr/\n//) < 2 && $sel->can_read($deadline - time)) {
        sysread($s, $buf, 4096, length $buf) or last;
    }
    is($buf, "ok 1 2 3\nok 1 $addr[0] up\n",
       'commands in a row, empty line ignored');
}

create_topic($k, 'orders', 3);
is(kafka_cmd($k, 'topic orders 3'), 'error TOPIC_ALREADY_EXISTS',
   'topic exists');

my $md = kcat_metadata($k);
my ($orders) = grep { $_->{topic} eq 'orders' } @{ $md->{topics} };
is_deeply([ map { [ $_->{partition}, $_->{leader} ] }
            sort { $a->{partition} <=> $b->{partition} }
            @{ $orders->{partitions} } ],
          [ [0, 1], [1, 2], [2, 3] ], 'partition P is led by broker P % 3 + 1');
is_deeply([ sort map { $_->{name} } @{ $md->{brokers} } ], [ sort @addr ],
          'metadata lists the three brokers');

# --- records with keys and headers, back field by field -------------------

my $bytes = join '', map { chr } 0 .. 255;
my @sent = (
    { partition => 0, key => 'k0', value => 'v0',
      headers => [h1 => 'a', h2 => 'b'] },
    { partition => 0, key => "k\n\0" . '1', value => $bytes,
      headers => [h1 => 'c'] },
    { partition => 1, key => '', value => "caf\xc3\xa9 \\ \"",
      headers => [empty => '', null => undef, dup => 1, dup => 2,
                  eq => 'a=b'] },
    { partition => 2, value => 'no key' },
    { partition => 2, key => 'tombstone', value => undef },
);
my $t0 = int(time * 1000);
is(kcat_produce($k, 'orders', \@sent), 5, 'produced 5 records');
my $t1 = int(time * 1000);

my @want = (
    [0, 0, 'k0', 'v0', [h1 => 'a', h2 => 'b']],
    [0, 1, "k\n\0" . '1', $bytes, [h1 => 'c']],
    [1, 0, '', "caf\xc3\xa9 \\ \"",
     [empty => '', null => undef, dup => '1', dup => '2', eq => 'a=b']],
    [2, 0, undef, 'no key', []],
    [2, 1, 'tombstone', undef, []],
);

sub check_records {
    my ($what, $got, @want) = @_;
    is(scalar @$got, scalar @want, "$what: " . @want . ' records');
    for my $i (0 .. $#want) {
        my ($p, $o, $key, $value, $h) = @{ $want[$i] };
        my $r = $got->[$i] // {};
        is_deeply([ @$r{qw(topic partition offset key value headers broker)} ],
                  [ 'orders', $p, $o, $key, $value, $h, $p + 1 ],
                  "$what: record $p/$o");
    }
}

my @got = kcat_consume($k, 'orders');
check_records('read back', \@got, @want);
ok(!grep({ $_->{timestamp} < $t0 - 1000 || $_->{timestamp} > $t1 + 1000 } @got),
   'timestamps are the produce time');

is_deeply(kcat_offsets($k, 'orders'), { 0 => [0, 2], 1 => [0, 1], 2 => [0, 2] },
          'watermarks');

is_deeply([ map { $_->{offset} }
            kcat_consume($k, 'orders', partition => 0, offset => 1) ],
          [1], 'consume one partition from an offset');

# the codecs the Kafka endpoint may meet; values big enough to be compressed
create_topic($k, 'codecs', 1);
my @codecs = qw(gzip snappy lz4 zstd);
for my $c (@codecs) {
    kcat_produce($k, 'codecs', [ { key => $c, value => "$c " . ('x' x 4000) } ],
                 compression => $c);
}
is_deeply([ map { [ $_->{key}, $_->{value} ] } kcat_consume($k, 'codecs') ],
          [ map { [ $_, "$_ " . ('x' x 4000) ] } @codecs ],
          'gzip, snappy, lz4 and zstd records read back');

# --- brokers down and up ---------------------------------------------------

# one bare ApiVersions v0 request and its response: the broker has taken
# the connection (one still in the listen queue would be reset instead)
sub api_versions {
    my ($s) = @_;
    syswrite($s, pack('N n n N n/a*', 14, 18, 0, 7, 'test'));
    my $sel = IO::Select->new($s);
    my ($buf, $deadline) = ('', time + 3);
    while ($sel->can_read($deadline - time)) {
        sysread($s, $buf, 65536, length $buf) or last;
        last if length $buf >= 8 && length $buf >= 4 + unpack 'N', $buf;
    }
    return length $buf >= 8 ? unpack 'x4 N', $buf : undef;
}

{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port[2]);
    is(api_versions($s), 7, 'broker 3 answers ApiVersions');
    broker_down($k, 3);
    my $n = IO::Select->new($s)->can_read(3) ? sysread($s, my $b, 16) : -1;
    is($n, 0, 'broker 3 down: its open connection gets EOF');
    broker_up($k, 3);
}

broker_down($k, 2);
is(kafka_cmd($k, 'broker 2'), "ok 2 $addr[1] down", 'broker 2 is down');
{
    local $!;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port[1],
                                  Timeout => 2);
    ok(!$s && $! == ECONNREFUSED, 'broker 2 down: new connections refused');
}

kcat_produce($k, 'orders',
             [ { partition => 0, key => 'during', value => 'down' } ]);
push @want, [0, 2, 'during', 'down', []];
is_deeply([ map { $_->{value} } kcat_consume($k, 'orders', partition => 0) ],
          [ 'v0', $bytes, 'down' ],
          'partitions of the other brokers still work');

my @none = kcat_consume($k, 'orders', partition => 1, timeout => 2,
                        may_timeout => 1);
is(scalar @none, 0, 'the partition led by the down broker reads nothing');

broker_up($k, 2);
is(kafka_cmd($k, 'broker 2'), "ok 2 $addr[1] up", 'broker 2 is up');

kcat_produce($k, 'orders',
             [ { partition => 1, key => 'after', value => 'up' } ]);
@got = kcat_consume($k, 'orders');
check_records('after down and up', \@got,
              sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
              @want, [1, 1, 'after', 'up', []]);

# leadership moves only when told to
is(kafka_cmd($k, 'leader orders 1 3'), 'ok', 'move the leader of partition 1');
($orders) = grep { $_->{topic} eq 'orders' } @{ kcat_metadata($k)->{topics} };
my ($p1) = grep { $_->{partition} == 1 } @{ $orders->{partitions} };
is($p1->{leader}, 3, 'metadata shows the new leader');
is(kafka_cmd($k, 'leader orders 1 2'), 'ok', 'and back');

# --- injected errors -------------------------------------------------------

is(kafka_cmd($k, 'errors Produce MSG_SIZE_TOO_LARGE'), 'ok', 'inject an error');
eval { kcat_produce($k, 'orders', [ { partition => 2, value => 'refused' } ]) };
like($@, qr/Message size too large/, 'the next produce fails with it');
kcat_produce($k, 'orders',
             [ { partition => 2, key => 'k', value => 'accepted' } ]);
is((kcat_consume($k, 'orders', partition => 2))[-1]{value}, 'accepted',
   'the one after does not');

# --- forgetting records: positions older than the log start ---------------

is_deeply([ kafka_forget($k, 'orders', 0) ], [5, 5],
          'forget: low = high = old high (3) + 2');
is_deeply(kcat_offsets($k, 'orders')->{0}, [5, 5], 'watermarks after forget');
is(scalar(my @e = kcat_consume($k, 'orders', partition => 0)), 0,
   'partition 0 holds nothing');
eval { kcat_consume($k, 'orders', partition => 0, offset => 1,
                    props => { 'auto.offset.reset' => 'error' }) };
like($@, qr/Offset out of range/, 'an old offset is out of range');
kcat_produce($k, 'orders',
             [ { partition => 0, key => 'new', value => 'kept' } ]);
is_deeply([ map { [ $_->{offset}, $_->{value} ] }
            kcat_consume($k, 'orders', partition => 0) ],
          [ [5, 'kept'] ], 'the next record is kept, at the new low watermark');
like(kafka_cmd($k, 'forget orders 3'), qr/^error no partition "3"/,
     'forget: partition range checked');

# --- stopping ---------------------------------------------------------------

my $pid = $k->{pid};
is(kafka_cmd($k, 'quit'), 'ok', 'quit');
ok(stop_kafka($k), 'the broker exited cleanly');
ok(!kill(0, $pid), 'and is gone');

done_testing;
