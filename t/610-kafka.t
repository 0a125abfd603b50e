# The Kafka endpoint against a Kafka-protocol broker of the suite's own
# (librdkafka's mock cluster, t/broker), checked from outside with kcat:
# records reach HTTP GET, SSE and WebSocket clients; POSTs become records;
# cursors and Last-Event-ID resume exactly over several partitions while
# producing goes on; one consumer per worker; faults; reload.

use strict;
use warnings;
use Test::More;
use IO::Select;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use Time::HiRes qw(sleep time);
use POSIX ();
use lib 't/lib';
use GraviteeTest;
use KafkaTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_610") : ();

# a worker under valgrind is many times slower: the waits, not the checks,
# grow with it
my $slow = native_or_valgrind(1, 4);
my $cpu_slow = native_or_valgrind(1, 20);

my $k = start_kafka(brokers => 1);
create_topic($k, 'orders', 3);
create_topic($k, 'pages', 3);
create_topic($k, 'other', 1);
create_topic($k, 'keep', 2);
create_topic($k, 'pat-a', 1);
create_topic($k, 'pat-b', 2);
create_topic($k, 'backlog', 2);
create_topic($k, 'plain', 3);
$ENV{TEST_NGINX_KAFKA} = $k->{bootstrap};

# the mock answers an empty fetch after fetch.wait.max.ms: kept short here
my $props = <<'_EOP_';
            message_proxy_kafka_property fetch.wait.max.ms 20;
            message_proxy_kafka_property reconnect.backoff.max.ms 500;
_EOP_

my $conf = <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /status { stub_status; }
        location /other  { return 200 "other\\n"; }

        location /orders {
            message_proxy_entrypoint http-get messages_limit_duration=1500ms
                                     headers_in_payload=on
                                     metadata_in_payload=on;
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_entrypoint websocket ping_interval=0;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=orders publish_timeout=2s
                                   key=\$http_x_order_id;
$props
        }

        location /orders-too {
            message_proxy_entrypoint sse retry=1s;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=orders publish_timeout=2s
                                   key=\$http_x_order_id;
$props
        }

        location /pages {
            message_proxy_entrypoint http-get messages_limit_duration=300ms;
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_entrypoint websocket ping_interval=0;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=pages;
$props
        }

        location /keep {
            message_proxy_entrypoint http-get messages_limit_duration=2s;
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=keep;
$props
        }

        location /pattern {
            message_proxy_entrypoint sse retry=1s;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topic_pattern=^pat-.*
                                   consumer_linger=500ms;
$props
        }

        location /backlog {
            message_proxy_entrypoint sse heartbeat_interval=60s
                                     max_queued_messages=400000
                                     max_queued_size=512m;
            message_proxy_entrypoint http-get messages_limit_count=10000
                                     messages_limit_duration=2s;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=backlog auto_offset_reset=earliest
                                   producer=off;
$props
        }

        location /backlog-small {
            message_proxy_entrypoint sse heartbeat_interval=60s;
            message_proxy_entrypoint websocket ping_interval=0;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=backlog auto_offset_reset=earliest
                                   producer=off;
$props
        }

        location /plain {
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=plain encode_message_id=off;
$props
        }

        location /plain-comments {
            message_proxy_entrypoint sse retry=1s heartbeat_interval=2s
                                     metadata_as_comment=on
                                     headers_as_comment=on;
            message_proxy_entrypoint websocket ping_interval=0;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=plain encode_message_id=off;
$props
        }

        location /plain-meta {
            message_proxy_entrypoint http-get messages_limit_count=1
                                     messages_limit_duration=3s
                                     metadata_in_payload=on;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=plain encode_message_id=off;
$props
        }

        location /plain-headers {
            message_proxy_entrypoint http-get messages_limit_count=1
                                     messages_limit_duration=3s
                                     headers_in_payload=on;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=plain encode_message_id=off;
$props
        }

        location /dyn {
            message_proxy_entrypoint http-post;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=other produce_topics=other,o-\$arg_r;
$props
        }

        # a source of its own (another client.id): started by the test
        location /late {
            message_proxy_entrypoint http-get messages_limit_duration=300ms;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=orders;
$props
            message_proxy_kafka_property client.id late;
        }

        location /late-cursor {
            message_proxy_entrypoint http-get messages_limit_duration=300ms;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                                   topics=orders;
$props
            message_proxy_kafka_property client.id late-cursor;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where);
my $port = $ngx->{port};

# --- small clients -----------------------------------------------------------

sub http { http_exchange($port, @_) }

sub get_json {
    my ($path) = @_;
    my $r = http("GET $path HTTP/1.0\r\nHost: localhost\r\n"
                 . "Accept: application/json\r\n\r\n");
    my ($head, $body) = split /\r\n\r\n/, $r, 2;
    return ($head, $body // '');
}

# a first batch on a source that is starting: while the consumer does not
# know where the partitions end, the answer is a 503 to retry after, as a
# poller does
sub get_placed {
    my ($path) = @_;
    my ($head, $body);
    for (1 .. 10) {
        ($head, $body) = get_json($path);
        last unless $head =~ m{^HTTP/1.1 503} && $body =~ /not ready/;
        sleep 1;
    }
    return ($head, $body);
}

sub post {
    my ($path, $body, @h) = @_;
    return http("POST $path HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n"
                . join('', map { "$_\r\n" } @h)
                . "Content-Length: " . length($body) . "\r\n\r\n$body");
}

sub sse_open { sse_connect($port, @_) }

# the events read so far: [id, data]
sub sse_events {
    my ($c, $secs, $until) = @_;
    my $sel = IO::Select->new($c->{sock});
    my $deadline = time + $secs;
    my @ev;
    while (1) {
        @ev = ();
        my $b = $c->{buf};
        $b =~ s/\A.*?\r\n\r\n//s;
        while ($b =~ /^id: (\S+)\nevent: message\n((?:data: [^\n]*\n)+)\n/mg) {
            my ($id, $d) = ($1, $2);
            $d =~ s/^data: //mg;
            chomp $d;
            push @ev, [$id, $d];
        }
        last if $until && $until->(\@ev);
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $sel->can_read($left > 0.05 ? 0.05 : $left);
        my $n = sysread($c->{sock}, my $chunk, 65536);
        last unless $n;
        $c->{buf} .= $chunk;
    }
    return @ev;
}

sub ws_open { ws_handshake($port, @_) }

# a cursor is base64; an SSE id, the same position as text
sub decode_position {
    my ($p) = @_;
    my %o;
    $p = decode_base64($p) unless $p =~ /\@/;
    for my $t (split /;/, $p) {
        my ($topic, $parts) = split /\@/, $t, 2;
        for (split /,/, $parts) {
            my ($pt, $off) = split /#/;
            $o{"$topic\@$pt"} = $off;
        }
    }
    return \%o;
}

sub worker_broker_connections {
    my ($pid) = @_;
    my %ports = map { (split /:/)[1] => 1 } split /,/, $k->{bootstrap};
    my %inodes;
    for my $fd (glob "/proc/$pid/fd/*") {
        my $l = readlink($fd) // '';
        $inodes{$1} = 1 if $l =~ /^socket:\[(\d+)\]/;
    }
    my $n = 0;
    open my $in, '<', '/proc/net/tcp' or return -1;
    while (<$in>) {
        my @f = split;
        next unless @f > 9 && $f[3] eq '01';             # ESTABLISHED
        my $rport = hex((split /:/, $f[2])[1]);
        $n++ if $ports{$rport} && $inodes{$f[9]};
    }
    return $n;
}

# --- records reach every entrypoint ---------------------------------------

{
    my $sse = sse_open('/orders');
    my ($ws, $wh) = ws_open('/orders');
    like($wh, qr{^HTTP/1.1 101}, 'WebSocket handshake');

    my $gs = tcp_connect($port);
    print $gs "GET /orders HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n";

    sleep 0.5;
    kcat_produce($k, 'orders', [
        { value => 'first', key => 'k1', partition => 0,
          headers => ['X-Trace' => 'abc'] },
        { value => 'second', key => 'k2', partition => 1 },
        { value => 'third', partition => 2 },
    ]);

    my $r = read_until($gs, undef, 4);
    my ($head, $body) = split /\r\n\r\n/, $r, 2;
    like($head, qr{^HTTP/1.1 200}, 'GET: 200');
    my $j = eval { decode_json($body) } // {};
    my @items = @{ $j->{items} // [] };
    is(scalar @items, 3, 'GET: the three records produced in its window');
    my ($first) = grep { $_->{content} eq 'first' } @items;
    is(decode_base64($first->{id} // ''), 'orders@0#0',
       'GET: the id is base64 of topic@partition#offset');
    is($first->{metadata}{key}, 'k1', 'GET: the key is metadata');
    is($first->{metadata}{topic}, 'orders', 'GET: topic');
    is($first->{metadata}{partition}, '0', 'GET: partition');
    is($first->{metadata}{offset}, '0', 'GET: offset');
    like($first->{metadata}{sourceTimestamp} // '', qr/^\d{13}$/,
         'GET: sourceTimestamp is the record timestamp');
    is_deeply($first->{headers}, { 'X-Trace' => ['abc'] },
              'GET: record headers are headers');
    my $cur = decode_position($j->{pagination}{nextCursor} // '');
    is_deeply($cur, { 'orders@0' => 0, 'orders@1' => 0, 'orders@2' => 0 },
              'GET: nextCursor names every partition, at the last offset got');
    like(decode_base64($j->{pagination}{nextCursor} // ''), qr/^orders\@0#/,
         'GET: nextCursor is base64, as the ids');

    my @ev = sse_events($sse, 3, sub { @{ $_[0] } >= 3 });
    is_deeply([sort map { $_->[1] } @ev], [qw(first second third)],
              'SSE: the three records')
        or diag($sse->{buf});
    is_deeply(decode_position($ev[-1][0]),
              { 'orders@0' => 0, 'orders@1' => 0, 'orders@2' => 0 },
              'SSE: the last id is the whole position');
    is($ev[-1][0], 'orders@0#0,1#0,2#0', 'SSE: as text, not base64');
    # the first event: one partition delivered from, whichever came first
    is_deeply([sort values %{ decode_position($ev[0][0]) }], [-1, -1, 0],
       'SSE: an id names partitions not delivered from yet with -1');

    my @frames;
    while (@frames < 3) {
        my $f = ws_read_frame($ws, 3 * $slow) or last;
        push @frames, $f->{payload} if $f->{opcode} == 1;
    }
    is_deeply([sort @frames], [qw(first second third)],
              'WebSocket: the three records, as text frames');

    close $_ for $sse->{sock}, $ws;
}

# --- an empty batch still says where the client stands ------------------------

{
    my ($head, $body) = get_json('/orders?limit=5');
    like($body, qr/^\{"items":\[\],"pagination":\{"nextCursor":"[^"]+","limit":"5"\}\}$/,
         'GET: no items, a cursor all the same');
    my ($cursor) = $body =~ /"nextCursor":"([^"]+)"/;
    is_deeply(decode_position($cursor),
              { 'orders@0' => 0, 'orders@1' => 0, 'orders@2' => 0 },
              'GET: the cursor of an empty batch is the offset before the next record');
}

# --- publishing ------------------------------------------------------------

{
    my $r = post('/orders', 'posted body', 'X-Order-Id: order-42', 'X-Extra: yes');
    like($r, qr{^HTTP/1.1 202}, 'POST: 202 once the broker has it');

    my @rec = grep { ($_->{value} // '') eq 'posted body' }
              kcat_consume($k, 'orders');
    is(scalar @rec, 1, 'POST: one record');
    is($rec[0]{key}, 'order-42', 'POST: key=$http_x_order_id is the key');
    my %h = @{ $rec[0]{headers} // [] };
    is($h{'X-Extra'}, 'yes', 'POST: request headers are record headers');

    my ($ws) = ws_open('/orders');
    print $ws ws_frame(1, 'from websocket');
    sleep 1;
    my @w = grep { ($_->{value} // '') eq 'from websocket' }
            kcat_consume($k, 'orders');
    is(scalar @w, 1, 'WebSocket: a message becomes a record');
    close $ws;

    $r = post('/dyn?r=eu', 'to two topics');
    like($r, qr{^HTTP/1.1 202}, 'produce_topics: 202');
    is(scalar(grep { ($_->{value} // '') eq 'to two topics' }
                   kcat_consume($k, 'o-eu')), 1,
       'produce_topics with a variable: the record is on o-eu');
    is(scalar(grep { ($_->{value} // '') eq 'to two topics' }
                   kcat_consume($k, 'other')), 1, 'and on other');

    $r = post('/dyn?r=bad%20name', 'x');
    like($r, qr{^HTTP/1.1 400.*"message":"\\"o-bad%20name\\" is not a valid Kafka topic name"}s,
         'produce_topics: a value that is not a topic name is a 400');
}

# --- exact paging over three partitions while producing goes on ---------------

{
    # a poller's first page, with no cursor, starts where the worker's
    # reader finds the end of the topic: its cursor is where exact paging
    # begins (a record produced while that reader starts may come before)
    my ($h0, $b0) = get_placed('/pages?limit=7');
    my $cursor = eval { decode_json($b0)->{pagination}{nextCursor} } // '';
    ok($cursor ne '', 'paging: the first page, with no cursor, gives one');

    my $total = 90;
    my $pid = fork;
    if ($pid == 0) {
        for my $i (1 .. $total) {
            kcat_produce($k, 'pages', [{ value => "p$i", partition => $i % 3 }]);
            sleep 0.01;
        }
        POSIX::_exit(0);
    }

    my (%seen, @order, $dups);
    my $deadline = time + 40 * $slow;
    while (keys %seen < $total && time < $deadline) {
        my ($head, $body) = get_json('/pages?limit=7'
                                     . ($cursor ne '' ? "&cursor=$cursor" : ''));
        my $j = eval { decode_json($body) } or next;
        for (@{ $j->{items} }) {
            $dups++ if $seen{ $_->{content} }++;
            push @order, $_->{content};
        }
        $cursor = $j->{pagination}{nextCursor} // $cursor;
    }
    waitpid $pid, 0;

    is(scalar(keys %seen), $total, "paging: every one of $total records seen")
        or diag('missing: ' . join(' ', grep { !$seen{"p$_"} } 1 .. $total));
    ok(!$dups, 'paging: none twice');

    # within a partition, in order
    my %last;
    my $ordered = 1;
    for my $v (@order) {
        my ($i) = $v =~ /(\d+)/;
        my $p = $i % 3;
        $ordered = 0 if defined $last{$p} && $last{$p} > $i;
        $last{$p} = $i;
    }
    ok($ordered, 'paging: each partition in order');

    # the pages' records were lent to the GET clients, never kept by them
    unlike(error_log_text($ngx), qr/\[alert\]/, 'paging: no alert in the log');
}

# --- SSE reconnects with Last-Event-ID: nothing lost, nothing twice -----------

{
    my $total = 60;
    my $first = sse_open('/pages');
    sleep 0.5;

    my $pid = fork;
    if ($pid == 0) {
        for my $i (1 .. $total) {
            kcat_produce($k, 'pages', [{ value => "s$i", partition => $i % 3 }]);
            sleep 0.02;
        }
        POSIX::_exit(0);
    }

    my %seen;
    my $dups = 0;
    my $c = $first;
    my $last;
    my $rounds = 0;
    my $deadline = time + 40 * $slow;
    while (keys %seen < $total && time < $deadline) {
        my @ev = sse_events($c, 1);
        for (@ev) {
            next unless $_->[1] =~ /^s\d+$/;
            $dups++ if $seen{ $_->[1] }++;
            $last = $_->[0];
        }
        close $c->{sock};
        $rounds++;

        # away a little, as a browser is: records come meanwhile
        sleep 0.3;
        $c = sse_open('/pages', $last);
    }
    close $c->{sock};
    waitpid $pid, 0;

    is(scalar(keys %seen), $total,
       "SSE: every record through $rounds reconnections");
    is($dups, 0, 'SSE: none twice');
    ok(wait_for_error_log($ngx, qr/kafka reader \S+ started to catch clients up/, 1),
       'SSE: a reader caught the reconnecting client up');
}

# --- encode_message_id=off: the position is plain text ------------------------

{
    my $sse = sse_open('/plain');
    sleep 0.5;
    kcat_produce($k, 'plain', [
        { value => 'p1', partition => 0 },
        { value => 'p2', partition => 2 },
        { value => 'p3', partition => 2 },
    ]);
    my @ev = sse_events($sse, 3, sub { @{ $_[0] } >= 3 });
    close $sse->{sock};
    is_deeply([sort map { $_->[1] } @ev], [qw(p1 p2 p3)],
              'plain ids: the three records')
        or diag($sse->{buf});
    # whatever the order across partitions, the last id is where it is
    my $last = $ev[-1][0] // '';
    is($last, 'plain@0#0,1#-1,2#1', 'plain ids: the position as text');

    kcat_produce($k, 'plain', [{ value => 'p4', partition => 1 }]);
    sleep 0.3;
    $sse = sse_open('/plain', $last);
    # a while longer than the first event takes: nothing else may come
    @ev = sse_events($sse, 1.5 * $slow);
    close $sse->{sock};
    is_deeply(\@ev, [['plain@0#0,1#0,2#1', 'p4']],
              'plain ids: Last-Event-ID as text resumes exactly');
}

# --- a record's details reach the clients that read them ----------------------
# (a WebSocket frame is the content only, and the messages made for such
# clients alone leave the details out: an SSE client with comments on the
# same stream must still get them)

{
    my ($ws, $wh) = ws_open('/plain-comments');
    like($wh, qr{^HTTP/1.1 101}, 'details: WebSocket handshake');
    my $sse = sse_open('/plain-comments');
    sleep 0.5;
    kcat_produce($k, 'plain', [{ value => 'p5', key => 'k5', partition => 2,
                                 headers => ['X-Note' => 'n5'] }]);
    my $f = ws_read_frame($ws, 3 * $slow);
    is($f && $f->{payload}, 'p5', 'details: the WebSocket client gets the content');
    my $sel = IO::Select->new($sse->{sock});
    my $deadline = time + 3 * $slow;
    while ($sse->{buf} !~ /data: p5\n(?::[^\n]*\n)*\n/ && time < $deadline) {
        $sel->can_read(0.1) or next;
        sysread($sse->{sock}, my $chunk, 65536) or last;
        $sse->{buf} .= $chunk;
    }
    like($sse->{buf},
         qr/\nid: plain\@0#0,1#0,2#2\nevent: message\ndata: p5\n:sourceTimestamp: \d{13}\n:key: k5\n:topic: plain\n:partition: 2\n:offset: 2\n:X-Note: n5\n\n/,
         'details: the SSE client with comments gets key, topic, partition, offset and headers')
        or diag($sse->{buf});
    close $ws;
    close $sse->{sock};
}

# each HTTP GET gets what it asks for, the id always, whoever else reads the
# same stream: from the live stream, and from a reader catching it up

{
    my ($ws, $wh) = ws_open('/plain-comments');
    like($wh, qr{^HTTP/1.1 101}, 'parts: WebSocket handshake');
    my $gm = tcp_connect($port);
    print $gm "GET /plain-meta HTTP/1.0\r\nHost: localhost\r\n"
              . "Accept: application/json\r\n\r\n";
    my $gh = tcp_connect($port);
    print $gh "GET /plain-headers HTTP/1.0\r\nHost: localhost\r\n"
              . "Accept: application/json\r\n\r\n";
    sleep 0.5;
    kcat_produce($k, 'plain', [{ value => 'p6', key => 'k6', partition => 2,
                                 headers => ['X-Note' => 'n6'] }]);
    my $f = ws_read_frame($ws, 3 * $slow);
    is($f && $f->{payload}, 'p6', 'parts: the WebSocket client gets the content');
    close $ws;

    my (undef, $body) = split /\r\n\r\n/, read_until($gm, undef, 4 * $slow), 2;
    my $item = (eval { decode_json($body // '') } // {})->{items}[0] // {};
    is($item->{id}, 'plain@2#3', 'parts: the id, with metadata only')
        or diag($body);
    is_deeply([$item->{content}, $item->{metadata}{key},
               $item->{metadata}{offset}, exists $item->{headers}],
              ['p6', 'k6', '3', ''],
              'parts: content and metadata, no headers');

    (undef, $body) = split /\r\n\r\n/, read_until($gh, undef, 4 * $slow), 2;
    $item = (eval { decode_json($body // '') } // {})->{items}[0] // {};
    is($item->{id}, 'plain@2#3', 'parts: the id, with headers only')
        or diag($body);
    is_deeply([$item->{content}, $item->{headers},
               exists $item->{metadata}],
              ['p6', { 'X-Note' => ['n6'] }, ''],
              'parts: content and headers, no metadata');

    # the same record again, from a reader: after p5 of the test above
    my $cursor = 'plain%400%230%2C1%230%2C2%232';
    (undef, $body) = get_json("/plain-meta?cursor=$cursor");
    $item = (eval { decode_json($body // '') } // {})->{items}[0] // {};
    is_deeply([$item->{id}, $item->{content}, $item->{metadata}{key},
               exists $item->{headers}],
              ['plain@2#3', 'p6', 'k6', ''],
              'parts: a reader gives the id and metadata asked for')
        or diag($body);
    like($body, qr/"nextCursor":"plain\@0#0,1#0,2#3"/,
         'parts: the cursor after it')
        or diag($body);

    (undef, $body) = get_json("/plain-headers?cursor=$cursor");
    $item = (eval { decode_json($body // '') } // {})->{items}[0] // {};
    is_deeply([$item->{id}, $item->{headers}, exists $item->{metadata}],
              ['plain@2#3', { 'X-Note' => ['n6'] }, ''],
              'parts: a reader gives the id and headers asked for')
        or diag($body);
}

# --- WebSocket ?cursor= -----------------------------------------------------

{
    my ($head, $body) = get_placed('/orders?limit=1');
    my ($cursor) = $body =~ /"nextCursor":"([^"]+)"/;
    my $from = decode_position($cursor);

    kcat_produce($k, 'orders', [{ value => 'missed while away', partition => 1 }]);

    my ($ws, $h) = ws_open("/orders?cursor=$cursor");
    like($h, qr{^HTTP/1.1 101}, 'WebSocket ?cursor=: handshake');
    my @got;
    while (my $f = ws_read_frame($ws, 2 * $slow)) {
        push @got, $f->{payload} if $f->{opcode} == 1;
        last if grep { $_ eq 'missed while away' } @got;
    }
    ok(grep({ $_ eq 'missed while away' } @got),
       'WebSocket ?cursor=: a record produced before connecting, after the cursor')
        or diag("cursor ", decode_base64($cursor // ''), ", got: @got");
    close $ws;

    my $s = tcp_connect($port);
    print $s "GET /orders?cursor=bm90IGEgY3Vyc29y HTTP/1.1\r\nHost: localhost\r\n"
             . "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAccept: application/json\r\n\r\n";
    like(read_until($s, undef, 2), qr{^HTTP/1.1 400.*Invalid cursor}s,
         'WebSocket: a malformed cursor is a 400 before the upgrade');

    ($head) = get_json('/orders?cursor=' . encode_base64('nope@0#1', ''));
    like($head, qr{^HTTP/1.1 400}, 'GET: a cursor naming a topic not read here is a 400');

    # URL-safe and without padding, as a URL may carry it
    (my $safe = $cursor) =~ tr{+/}{-_};
    $safe =~ s/=+$//;
    my $plain = decode_base64($cursor);
    my ($h1, $b1) = get_json("/orders?cursor=$safe&limit=1");
    my ($h2, $b2) = get_json('/orders?cursor=' . $plain =~ s/#/%23/gr . '&limit=1');
    my ($c1) = $b1 =~ /"nextCursor":"([^"]+)"/;
    my ($c2) = $b2 =~ /"nextCursor":"([^"]+)"/;
    like($h1, qr{^HTTP/1.1 200}, 'GET: a URL-safe cursor without padding is read');
    like($h2, qr{^HTTP/1.1 200}, 'GET: so is a plain topic@p#o one');
    is(decode_position($c1 // '')->{'orders@1'},
       decode_position($cursor)->{'orders@1'} + 1,
       'GET: both resume where the cursor says');
    is($c2, $c1, 'GET: to the same place');
}

# --- a window that ends before the partitions are known ----------------------

{
    # the brokers answer, slowly: the first batch ends before the consumer
    # knows where the partitions end, so it cannot say where it stands
    kafka_cmd($k, 'rtt 1 1500');
    my ($head, $body) = get_json('/late?limit=1');
    kafka_cmd($k, 'rtt 1 0');
    like($head, qr{^HTTP/1.1 503}, 'not placed yet: an empty batch is a 503')
        or diag("$head\n$body");
    like($head, qr{\r\nRetry-After: 1(?:\r\n|$)}, 'to retry after a second');
    like($body, qr/"message":"Endpoint not ready, retry","http_status_code":503/,
         'with the JSON body');

    # the source lingers: asked again, it says where the client stands
    ($head, $body) = get_placed('/late?limit=1');
    like($body, qr/"nextCursor":"([^"]+)"/, 'asked again: a cursor')
        or diag("$head\n$body");
    my ($cursor) = $body =~ /"nextCursor":"([^"]+)"/;
    is_deeply([sort keys %{ decode_position($cursor // '') }],
              [qw(orders@0 orders@1 orders@2)],
              'naming every partition');

    # a client with a cursor stands where it asked to, placed or not
    my $asked = encode_base64('orders@0#0,1#0,2#0', '');
    kafka_cmd($k, 'rtt 1 1500');
    ($head, $body) = get_json("/late-cursor?limit=1&cursor=$asked");
    kafka_cmd($k, 'rtt 1 0');
    like($head, qr{^HTTP/1.1 200}, 'not placed yet, with a cursor: 200')
        or diag("$head\n$body");
    ($cursor) = $body =~ /"nextCursor":"([^"]+)"/;
    is($cursor, $asked, 'and its own cursor back, encoded once');
}

# --- one consumer per worker, whatever the number of clients -----------------

{
    my ($worker) = worker_pids($ngx);
    my @few = map { sse_open('/orders') } 1;
    sleep 1;
    my $one = worker_broker_connections($worker);

    my @many = map { sse_open('/orders') } 1 .. 150;
    push @many, map { sse_open('/orders-too') } 1 .. 150;
    sleep 1.5;
    my $three_hundred = worker_broker_connections($worker);

    diag("broker connections of the worker: $one with 1 subscriber, "
         . "$three_hundred with 301");
    cmp_ok($one, '>', 0, 'the worker is connected to the broker');
    cmp_ok($three_hundred, '<=', $one + 1,
           '301 subscribers, two locations: the same few connections');

    kcat_produce($k, 'orders', [{ value => 'to everyone', partition => 2 }]);
    my $got = 0;
    for my $c (@few, @many) {
        $got++ if grep { $_->[1] eq 'to everyone' }
                  sse_events($c, 3, sub { grep { $_->[1] eq 'to everyone' } @{ $_[0] } });
    }
    is($got, 301, 'every one of them gets the record');
    close $_->{sock} for @few, @many;
}

# --- a resume position older than the broker keeps ---------------------------

{
    my ($head, $body) = get_placed('/keep?limit=1');
    my ($cursor) = $body =~ /"nextCursor":"([^"]+)"/;

    # the live stream moves on, then the broker forgets partition 0
    my $sse = sse_open('/keep');
    sleep 0.5;
    kcat_produce($k, 'keep', [{ value => 'before the forgetting', partition => 0 }]);
    sse_events($sse, 3, sub { grep { $_->[1] eq 'before the forgetting' } @{ $_[0] } });
    my ($low, $high) = kafka_forget($k, 'keep', 0);
    kcat_produce($k, 'keep', [{ value => 'after the forgetting', partition => 0 }]);

    ok(grep({ $_->[1] eq 'after the forgetting' }
            sse_events($sse, 5, sub { grep { $_->[1] eq 'after the forgetting' } @{ $_[0] } })),
       'the live stream goes on at the earliest record kept');
    close $sse->{sock};

    my $off = error_log_size($ngx);
    my @got;
    for (1 .. 10) {
        ($head, $body) = get_json("/keep?cursor=$cursor&limit=1");
        my $j = eval { decode_json($body) } or next;
        push @got, map { $_->{content} } @{ $j->{items} };
        last if grep { $_ eq 'after the forgetting' } @got;
        $cursor = $j->{pagination}{nextCursor} // $cursor;
    }
    ok(grep({ $_ eq 'after the forgetting' } @got),
       'an old position resumes at the earliest record kept');
    ok(!grep({ $_ eq 'before the forgetting' } @got), 'nothing forgotten comes back');
    ok(wait_for_error_log($ngx, qr/\[warn\].*older than the broker keeps/, 2, $off),
       'with a warning in the log');
}

# --- faults: every broker down ---------------------------------------------

{
    my $sse = sse_open('/orders');
    sleep 0.5;
    broker_down($k, 1);
    sleep 2;

    my $worst = 0;
    for (1 .. 10) {
        my $t0 = time;
        my $r = http("GET /other HTTP/1.0\r\nHost: localhost\r\n\r\n");
        my $dt = time - $t0;
        $worst = $dt if $dt > $worst;
        die "no answer" unless $r =~ /other/;
    }
    cmp_ok($worst, '<', 0.1, sprintf 'brokers down: another location answers '
                                   . 'within 100 ms (%.1f ms)', $worst * 1000);

    my ($head, $body) = get_json('/orders');
    like($head, qr{^HTTP/1.1 503}, 'brokers down: an empty GET is a 503');
    like($head, qr{\r\nRetry-After: \d+}, 'with Retry-After');
    like($body, qr/"message":"Endpoint connection closed"/, 'and the JSON body');

    my $t0 = time;
    my $r = post('/orders', 'while down');
    like($r, qr{^HTTP/1.1 503.*\r\nRetry-After: \d+.*"message":"No Kafka broker could be reached"}s,
         'brokers down: a POST is a 503 with Retry-After');
    cmp_ok(time - $t0, '<', 4, 'after publish_timeout');

    broker_up($k, 1);
    sleep 3;
    kcat_produce($k, 'orders', [{ value => 'after the return', partition => 0 }]);
    ok(grep({ $_->[1] eq 'after the return' }
            sse_events($sse, 5, sub { grep { $_->[1] eq 'after the return' } @{ $_[0] } })),
       'brokers back: the SSE client that stayed gets what is produced after');
    close $sse->{sock};
}

# --- the broker refuses, the broker is slow ------------------------------------

{
    # the producer is connected again after the faults above
    my $r = '';
    for (1 .. 10) {
        $r = post('/orders', 'warm');
        last if $r =~ m{^HTTP/1.1 202};
    }
    like($r, qr{^HTTP/1.1 202}, 'the producer is back');

    kafka_cmd($k, 'rtt 1 4000');
    sleep 0.5;
    $r = post('/orders', 'too slow');
    like($r, qr{^HTTP/1.1 504.*"http_status_code":504}s,
         'no delivery report within publish_timeout is a 504');
    kafka_cmd($k, 'rtt 1 0');
    sleep 4.5;

    kafka_cmd($k, 'errors Produce TOPIC_AUTHORIZATION_FAILED');
    $r = post('/orders', 'refused');
    like($r, qr{^HTTP/1.1 502.*"message":"Broker: Topic authorization failed","http_status_code":502}s,
         'a record the broker refuses is a 502, with its reason');
    kafka_cmd($k, 'errors Produce');
}

# --- topic_pattern; a consumer that stops leaves no thread, no fd ------------

{
    my ($worker) = worker_pids($ngx);
    my $threads = sub { scalar(my @t = glob "/proc/$worker/task/*") };
    my $fds = sub { scalar(my @f = glob "/proc/$worker/fd/*") };
    my ($t0, $f0) = ($threads->(), $fds->());

    my $c = sse_open('/pattern');
    sleep 1.5;
    cmp_ok($threads->(), '>', $t0, 'topic_pattern: a consumer with its threads');
    kcat_produce($k, 'pat-a', ['from a']);
    kcat_produce($k, 'pat-b', [{ value => 'from b', partition => 1 }]);
    my @ev = sse_events($c, 4, sub { @{ $_[0] } >= 2 });
    is_deeply([sort map { $_->[1] } @ev], ['from a', 'from b'],
              'topic_pattern: records of every matching topic');
    is_deeply(decode_position($ev[-1][0]),
              { 'pat-a@0' => 0, 'pat-b@0' => -1, 'pat-b@1' => 0 },
              'topic_pattern: the position names every partition of every topic');
    close $c->{sock};

    my ($t1, $f1);
    for (1 .. 40) {
        sleep 0.1;
        ($t1, $f1) = ($threads->(), $fds->());
        last if $t1 == $t0 && $f1 == $f0;
    }
    is($t1, $t0, 'consumer_linger after the last client: its threads are gone');
    is($f1, $f0, 'and its fds');
}

# --- reload with live clients ------------------------------------------------

{
    my $sse = sse_open('/orders');
    my ($ws) = ws_open('/orders');
    sleep 0.5;
    my $off = error_log_size($ngx);
    ok(reload_nginx($ngx), 'reload: a new worker');

    my @ev = sse_events($sse, 3, sub { 0 });
    like($sse->{buf}, qr/event: goaway\n/, 'reload: SSE goaway');
    my $close;
    while (my $f = ws_read_frame($ws, 3 * $slow)) {
        if ($f->{opcode} == 8) { $close = unpack 'n', $f->{payload}; last }
    }
    is($close, 1013, 'reload: WebSocket 1013');

    ok(wait_for_error_log($ngx, qr/\bexit\b/, 5, $off), 'reload: the old worker exits');
    my $log = error_log_text($ngx, $off);
    unlike($log, qr/\[alert\]/, 'reload: no alert');
    like($log, qr/kafka consumer \S+ stopped/, 'reload: the old consumer stopped');
}

# --- a backlog does not hold the worker -------------------------------------

{
    # 30 clients that start from the earliest of 50,000 records, reading
    # nothing for a while: the worker hands the records over a batch per
    # turn of its loop, and serves other clients in between
    kcat_produce($k, 'backlog', [ map { "b$_" } 1 .. 50000 ], timeout => 30);

    my @others;
    my $c;
    for (1 .. 30) {
        $c = tcp_connect($port);
        print $c "GET /backlog HTTP/1.0\r\nHost: localhost\r\n"
                 . "Accept: text/event-stream\r\n\r\n";
        push @others, $c;
    }
    pop @others;
    sleep 0.3;

    # valgrind makes the worker's work some 20 times slower: the bound is
    # what stays the same, no answer waiting for the whole backlog
    my ($worst, $n) = (0, 0);
    my $until = time + 2 * $slow;
    while (time < $until) {
        my $t0 = time;
        my $r = http("GET /other HTTP/1.0\r\nHost: localhost\r\n\r\n", 5);
        my $took = time - $t0;
        $worst = $took if $took > $worst;
        $n++ if $r =~ /^other$/m;
        sleep 0.05;
    }
    cmp_ok($n, '>', 5, 'during a backlog: other requests are answered');
    cmp_ok($worst, '<', 0.5 * $cpu_slow,
           'during a backlog: none waits for the backlog to be handed over')
        or diag(sprintf 'worst %.3f s', $worst);

    # and the client gets its records, in order
    my $sel = IO::Select->new($c);
    my $buf = '';
    my $deadline = time + 30 * $slow;
    my $count = 0;
    while (time < $deadline && $count < 50000) {
        next unless $sel->can_read(0.5);
        sysread($c, $buf, 1 << 20, length $buf) or last;
        $count = () = $buf =~ /^data: /mg;
    }
    my @got = $buf =~ /^data: (b\d+)$/mg;
    is(scalar @got, 50000, 'the backlog client gets every record')
        or diag(substr($buf, -300));
    close $_ for $c, @others;
}

# --- paging through the backlog with big pages ---------------------------------

{
    # pages of 10,000 items, some 500 KB each: written into the worker's
    # kept buffers of 64 KB, which the next page takes again; twice over
    for my $walk (1, 2) {
        my ($cursor, $pages, $bad, $status) = (undef, 0, 0, '');
        my %seen;
        while ($pages < 100 && keys %seen < 50000) {
            my ($head, $body) = get_placed('/backlog?limit=10000'
                                           . ($cursor ? "&cursor=$cursor" : ''));
            ($status) = $head =~ m{^HTTP/1.1 (\d+)};
            last unless $status eq '200';
            my $j = eval { decode_json($body) } or do { $bad++; last };
            for my $item (@{ $j->{items} }) {
                $item->{content} =~ /^b\d+$/ or $bad++;
                $seen{ $item->{content} }++;
            }
            $cursor = $j->{pagination}{nextCursor};
            $pages++;
        }
        is_deeply([scalar keys %seen, (grep { $seen{$_} != 1 } keys %seen),
                   $bad],
                  [50000, 0],
                  "GET walk $walk: 50,000 records in pages of 10,000, "
                  . 'each once and whole')
            or diag("status $status, $pages pages, $bad bad");
    }
}

# --- catching up with the default queue caps ---------------------------------

{
    # 50,000 records behind, max_queued_messages=256: the reader hands a
    # client no more than half its queue takes, and waits for it to read
    for my $mode ('sse', 'ws') {
        my ($c, $count, $buf) = (undef, 0, '');
        if ($mode eq 'sse') {
            $c = tcp_connect($port);
            print $c "GET /backlog-small HTTP/1.0\r\nHost: localhost\r\n"
                     . "Accept: text/event-stream\r\n\r\n";
        } else {
            ($c) = ws_open('/backlog-small');
        }
        my $sel = IO::Select->new($c);
        my $deadline = time + 40 * $slow;
        my $eof = 0;
        # 16 KB every 5 ms at most; records are
        # counted in what was read up to the last one begun
        my ($re, $mark) = $mode eq 'sse' ? (qr/data: b\d+\n/, 'data: ')
                                         : (qr/b\d+/, 'b');
        my $done = 0;
        while (time < $deadline && $count < 50000) {
            next unless $sel->can_read(0.5);
            my $n = sysread($c, $buf, 16384, length $buf);
            if (!$n) { $eof = 1; last; }
            my $p = rindex($buf, $mark);
            if ($p > 0) {
                my $head = substr($buf, 0, $p, '');
                $done += () = $head =~ /$re/g;
            }
            $count = $done + (() = $buf =~ /$re/g);
            sleep 0.005;
        }
        is($count, 50000, "$mode: a client 50,000 records behind gets "
                          . 'every one with the default queue caps');
        ok(!$eof, "$mode: and is not closed as a slow client");
        close $c;
    }
}

ok(stop_nginx($ngx), 'nginx stops');
stop_kafka($k);

# --- configuration --------------------------------------------------------

{
    my ($rc, $out) = nginx_check_config(<<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /bad {
            message_proxy_entrypoint sse;
            message_proxy_endpoint kafka bootstrap_servers=127.0.0.1:1 topics=orders;
            message_proxy_kafka_property socket.timeout.ms many;
        }
    }
_EOC_
    isnt($rc, 0, 'a property librdkafka refuses fails nginx -t');
    like($out, qr/librdkafka refuses property "socket\.timeout\.ms": .*in \S+nginx\.conf:\d+/,
         'with librdkafka\'s message, the file and the line');

    ($rc, $out) = nginx_check_config(<<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /bad {
            message_proxy_entrypoint sse;
            message_proxy_endpoint kafka topics=orders;
        }
    }
_EOC_
    like($out, qr/endpoint "kafka" needs bootstrap_servers= in \S+:\d+/,
         'bootstrap_servers is required');

    ($rc, $out) = nginx_check_config(<<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        location /bad {
            message_proxy_entrypoint sse;
            message_proxy_endpoint kafka bootstrap_servers=h:1 topics=bad/name;
        }
    }
_EOC_
    like($out, qr/"bad\/name" is not a valid Kafka topic name/, 'topic names are checked');
}

done_testing();
