#!/usr/bin/perl
# fuzz/seeds.pl: writes the seed corpora, fuzz/corpus/<target>/seed-*,
# from the input formats of README.md.  Run it again after changing a
# format; reproducers of findings (crash-*, regress-*) are kept as they are.
# The jwt and jwks targets' seeds (and keys) come from fuzz/seeds-jwt.pl.
#
#   perl fuzz/seeds.pl [directory]     (default: fuzz/corpus)

use strict;
use warnings;
use File::Path qw(make_path);
use FindBin;

my $dir = shift // "$FindBin::Bin/corpus";
my %n;

sub seed {
    my ($target, $name, $bytes) = @_;
    make_path("$dir/$target");
    my $file = sprintf("%s/%s/seed-%02d-%s", $dir, $target,
                       ++$n{$target}, $name);
    open(my $fh, '>:raw', $file) or die "$file: $!";
    print $fh $bytes;
    close($fh);
}

# remove the old seeds: their names may have changed
for my $t (qw(websocket accept args writers sse)) {
    unlink glob("$dir/$t/seed-*");
}


# websocket: 7 bytes of configuration, N, N actions, the client's bytes

my $MASK = "\x37\xfa\x21\x3d";

sub frame {
    my ($op, $payload, %o) = @_;
    my $fin = exists $o{fin} ? $o{fin} : 1;
    my $mask = exists $o{mask} ? $o{mask} : $MASK;
    my $n = length($payload);
    my $b0 = chr(($fin ? 0x80 : 0) | ($o{rsv} // 0) | $op);
    my $m = defined $mask ? 0x80 : 0;
    my $len = $o{len} // $n;
    my $h;

    if (($o{long} // '') eq '16' || ($len >= 126 && $len <= 0xffff
                                     && !$o{long}))
    {
        $h = $b0 . chr($m | 126) . pack('n', $len);
    } elsif (($o{long} // '') eq '64' || $len > 0xffff) {
        $h = $b0 . chr($m | 127) . pack('Q>', $len);
    } else {
        $h = $b0 . chr($m | $len);
    }

    return $h unless defined $mask;

    my @k = unpack('C4', $mask);
    my $i = 0;
    my $body = join '', map { chr(ord($_) ^ $k[$i++ % 4]) } split //, $payload;

    return $h . $mask . $body;
}

sub ws {
    my ($name, %o) = @_;
    my $cfg = $o{cfg} // "\0" x 7;
    my $act = $o{act} // '';
    seed('websocket', $name, $cfg . chr(length $act) . $act . $o{wire});
}

sub cfg {
    my (%c) = @_;
    return join '', map { chr($c{$_} // 0) } 0 .. 6;
}

# actions: see ngx_gravitee_fuzz_ws_action()
sub deliver { my ($n) = @_; return chr(0x00 | ($n - 1)) }   # 1..32 bytes
my $ALL = chr(0x20 | 16);                                    # the rest
sub window { my ($k) = @_; return chr(0x40 | $k) }           # k * 7; 31 all
sub ack { my ($err, $t) = @_; return chr(0x60 | ($t // 0) << 1 | $err) }
sub verdict { my ($v, $t) = @_; return chr(0x80 | (($t // 0) * 3 + $v)) }
sub later { my ($k) = @_; return chr(0xa0 | $k) }           # (k+1)*250ms
sub endpoint { my ($a) = @_; return chr(0xc0 | $a) }
sub misc { my ($a) = @_; return chr(0xe0 | $a) }

my $bye = frame(8, "\x03\xe8bye");

ws('text', wire => frame(1, 'hello'));
ws('binary', wire => frame(2, "\x00\xff\xfe binary"));
ws('empty', wire => frame(1, '') . frame(2, ''));
ws('fragmented', wire => frame(1, 'hel', fin => 0) . frame(9, 'ping')
                         . frame(0, 'lo ', fin => 0) . frame(0, 'world')
                         . $bye);
ws('control', wire => frame(9, 'abc') . frame(10, 'pong') . frame(9, '')
                      . frame(1, 'x') . $bye);
ws('close-empty', wire => frame(8, '') . frame(1, 'after the close'));
ws('close-1-byte', wire => frame(8, "\x03"));
ws('close-1005', wire => frame(8, "\x03\xed"));
ws('close-4999', wire => frame(8, "\x13\x87app"));
ws('close-bad-reason', wire => frame(8, "\x03\xe8\xc3"));
ws('length-16', wire => frame(1, 'a' x 300));
ws('length-64', wire => frame(2, 'b' x 70, long => '64'));
ws('length-16-short', wire => frame(1, 'c' x 20, long => '16'));
ws('length-top-bit', wire => frame(2, '', len => 2**63, long => '64'));
ws('unmasked', wire => frame(1, 'no mask', mask => undef));
ws('rsv', wire => frame(1, 'rsv', rsv => 0x40));
ws('opcode-3', wire => frame(3, 'reserved'));
ws('continuation-alone', wire => frame(0, 'lost'));
ws('new-in-fragmented', wire => frame(1, 'a', fin => 0) . frame(2, 'b'));
ws('control-fragmented', wire => frame(9, 'p', fin => 0));
ws('control-126', wire => frame(9, 'p' x 126));
ws('bad-utf8', wire => frame(1, "bad \xff utf-8"));
ws('utf8-across-fragments', wire => frame(1, "\xc3", fin => 0)
                                    . frame(0, "\xa9t\xc3\xa9"));
ws('too-big', cfg => cfg(1 => 11), wire => frame(1, 'x' x 20));
ws('too-big-fragments', cfg => cfg(1 => 11),
   wire => frame(1, 'x' x 6, fin => 0) . frame(0, 'y' x 6));

# the same bytes, split oddly: one byte a read, slices across headers
my $three = frame(1, 'one') . frame(9, 'ping') . frame(2, 'two' x 50) . $bye;
ws('split-bytes', cfg => cfg(3 => 1), wire => $three);
ws('split-actions', act => join('', map { deliver($_) } 1, 2, 3, 5, 7, 11,
                                13, 17, 19, 23, 29, 31, 32),
   wire => $three);
ws('preread', cfg => cfg(2 => 9), wire => $three);
ws('preread-all', cfg => cfg(2 => 255), wire => frame(1, 'early') . $bye);

# publications: later, refused now, refused later, one at a time
ws('publish-later', act => verdict(1) . $ALL . ack(0) . $ALL,
   wire => frame(1, 'first') . frame(1, 'second') . frame(1, 'third'));
ws('publish-later-then-now', act => verdict(1) . deliver(11) . verdict(0)
                                    . ack(0) . $ALL,
   wire => frame(1, 'first') . frame(1, 'second'));
ws('publish-refused', act => verdict(2) . $ALL,
   wire => frame(1, 'refused') . frame(1, 'not published'));
ws('publish-refused-long', act => verdict(2, 1) . $ALL,
   wire => frame(1, 'refused'));
ws('publish-refused-cut', act => verdict(2, 2) . $ALL,
   wire => frame(1, 'refused'));
ws('publish-refused-later', act => verdict(1) . $ALL . ack(1, 3) . $ALL,
   wire => frame(1, 'refused later') . frame(1, 'not published'));
ws('publisher-off', cfg => cfg(0 => 0x01),
   wire => frame(1, 'dropped', fin => 0) . frame(0, '!') . frame(9, 'p')
           . $bye);

# the client reads slowly, or not at all (189 bytes: about the 101)
ws('window-small', cfg => cfg(4 => 190),
   act => $ALL . endpoint(1) . window(2) . endpoint(2) . window(31),
   wire => frame(9, 'p1') . frame(9, 'p2') . frame(1, 'x'));
ws('window-shut', cfg => cfg(4 => 190, 3 => 0x20),
   act => endpoint(4) . endpoint(4) . endpoint(4) . window(31),
   wire => frame(1, 'x'));
ws('slow-drop', cfg => cfg(0 => 0x40, 4 => 190, 3 => 0x40),
   act => endpoint(3) . endpoint(3) . endpoint(3) . window(31),
   wire => '');

# the endpoint: every size and kind, end, failure, state
ws('endpoint-messages', act => join('', map { endpoint($_) } 0 .. 23),
   wire => $bye);
ws('endpoint-end', act => endpoint(1) . endpoint(24), wire => '');
ws('endpoint-failure', act => endpoint(28), wire => '');
ws('endpoint-failure-long', act => endpoint(29) . endpoint(30), wire => '');
ws('endpoint-state', act => endpoint(31) . endpoint(0) . endpoint(31),
   wire => frame(1, 'x'));
ws('frame-text', cfg => cfg(0 => 0x10), act => endpoint(9), wire => '');
ws('frame-binary', cfg => cfg(0 => 0x20), act => endpoint(0), wire => '');

# subscriptions, bindings, cursors
ws('subscribe-error', cfg => cfg(0 => 0x08), wire => frame(1, 'x'));
ws('subscribe-declined', cfg => cfg(0 => 0x0c), wire => frame(1, 'x'));
ws('subscriber-off', cfg => cfg(0 => 0x02), act => endpoint(0),
   wire => frame(1, 'x'));
ws('bind', cfg => cfg(5 => 1), wire => frame(1, 'x'));
ws('bind-declined', cfg => cfg(5 => 3), wire => frame(1, 'x'));
ws('cursor', cfg => cfg(5 => 0x05), wire => frame(1, 'x'));
ws('cursor-refused', cfg => cfg(5 => 0x08), wire => frame(1, 'x'));
ws('pool-1k', cfg => cfg(0 => 0x80), wire => $three);

# time, pings, idle and send timeouts, a worker that stops
ws('pings', cfg => cfg(3 => 0x08), act => later(3) . later(3) . later(3),
   wire => frame(10, '') . frame(1, 'x'));
ws('idle', cfg => cfg(3 => 0x18), act => later(7) . later(7), wire => '');
ws('ping-idle', cfg => cfg(3 => 0x10),
   act => later(3) . later(3) . later(7) . later(7), wire => '');
ws('send-timeout', cfg => cfg(4 => 190, 6 => 10),
   act => endpoint(4) . later(31) . later(31), wire => '');
ws('header-timeout', cfg => cfg(4 => 1, 6 => 10), act => later(31),
   wire => frame(1, 'x'));
ws('linger-timeout', act => $ALL . later(31) . later(31), wire => $bye);
ws('shutdown', act => deliver(5) . misc(0), wire => frame(1, 'x'));
ws('shutdown-in-flight', act => verdict(1) . $ALL . misc(0) . later(31),
   wire => frame(1, 'x'));
ws('hang-up', act => deliver(3) . misc(1), wire => frame(1, 'hello'));
ws('hang-up-in-flight', act => verdict(1) . $ALL . misc(1) . ack(0),
   wire => frame(1, 'x') . frame(1, 'y'));
ws('spurious-events', act => misc(2) . misc(3) . deliver(2) . misc(2)
                             . misc(3),
   wire => frame(1, 'x'));


# accept: byte 0 even: lines of any bytes, LF-separated (a first byte of
# 1-5 names another header); odd: lines the driver makes from the bytes

sub accept_raw { seed('accept', $_[0], "\0" . join("\n", @_[1 .. $#_])) }

accept_raw('json', 'application/json');
accept_raw('xml', 'application/xml');
accept_raw('text', 'text/plain');
accept_raw('any', '*/*');
accept_raw('html', 'text/html');
accept_raw('event-stream', 'text/event-stream, application/json');
accept_raw('empty', '');
accept_raw('empty-two', '', '');
accept_raw('weights', 'text/plain;q=0.2, application/json;q=0.5;level=1');
accept_raw('weights-3', 'application/json;q=0.4, text/plain;q=0.9, '
                        . 'application/xml;q=0.5');
accept_raw('q-0', 'application/json;q=0, application/xml;q=0.1');
accept_raw('q-5', 'application/xml;q=5, application/json;q=0.5');
accept_raw('q-blank', 'application/json;q=0.9 , text/plain;q=0.2');
accept_raw('params', 'application/xml;seq=0.1, text/plain;x=');
accept_raw('grpc', 'application/grpc,application/xml');
accept_raw('quoted', 'text/plain;foo="a,b;q=0", application/json;q=0.3');
accept_raw('escaped', 'text/html;x="\\",q=1", application/xml;q=0.1');
accept_raw('lines', 'text/html', 'application/xml;q=0.3',
           'application/json;q=0.3');
accept_raw('names', "\x01application/xml", "\x02text/plain;q=0.5",
           "\x03application/json", "\x05*/*");
accept_raw('case', 'APPLICATION/JSON;Q=0.5, Text/Plain;q=0.6');
accept_raw('ext-after-q', 'application/json;q=0.5;ext=1, text/plain;q=0.4');
seed('accept', 'made', "\x01\x03" . pack('C*', map { $_ * 37 % 256 } 1 .. 64));
seed('accept', 'made-many', "\x01\x07" . pack('C*', map { $_ * 11 % 256 }
                                                     1 .. 200));


# args: flags (bit 0: the driver writes the query; 1: the endpoint
# refuses positions with a "!"), limit count (0: 500; else minus 1), the
# endpoint's longest position (x 2; 255: none), then the query

sub args { seed('args', $_[0], chr($_[1]) . chr($_[2]) . chr($_[3]) . $_[4]) }

args('limit-cursor', 0, 0, 32, 'limit=5&cursor=3');
args('cursor-escaped', 0, 0, 32, 'cursor=4%2F2');
args('limit-bad', 0, 0, 32, 'limit=abc&cursor=3');
args('limit-huge', 0, 0, 32, 'limit=99999999999999999999');
args('limit-max', 0, 0, 32, 'limit=9223372036854775807');
args('limit-sign', 0, 0, 32, 'limit=+3');
args('limit-empty', 0, 0, 32, 'limit=&cursor=');
args('limit-raises', 0, 11, 32, 'limit=50');
args('cursor-bad-escape', 0, 0, 32, 'cursor=%zz%4');
args('cursor-trailing', 0, 0, 32, 'cursor=a%');
args('cursor-bytes', 0, 0, 32, 'cursor=%00%ff%41%c3%a9');
args('case', 0, 0, 32, 'LIMIT=3&Cursor=7');
args('prefixes', 0, 0, 32, 'xlimit=1&limit=2&acursor=9&cursor=8');
args('no-value', 0, 0, 32, 'limit&cursor&limit=4');
args('refused', 2, 0, 32, 'cursor=4!');
args('refused-escaped', 2, 0, 32, 'cursor=4%21');
args('too-long', 0, 0, 2, 'cursor=12345');
args('too-long-decoded', 0, 0, 2, 'cursor=%31%32');
args('unbounded', 0, 0, 255, 'cursor=' . ('9' x 600));
args('zero', 0, 1, 32, 'limit=0');
seed('args', 'made', "\x01\x00\x20\x05" . pack('C*', map { $_ * 29 % 256 }
                                                     1 .. 80));
seed('args', 'made-check', "\x03\x05\x08\x04" . pack('C*', map { $_ * 53 % 256 }
                                                          1 .. 80));


# writers: flags (bits 0-1: JSON, XML, text, all three; 2 headers, 3
# metadata, 4 an error message, 5 a limit, 6 a cursor), the number of
# messages, [limit], [cursor], the messages (see message() below)

sub str {
    my ($s) = @_;
    my $n = length($s);
    return $n < 0xf0 ? chr($n) . $s : chr(0xf0 + ($n >> 8)) . chr($n & 0xff) . $s;
}

# flags: 0 id, 1 error, 2-3 headers, 4-5 metadata, 6 four more headers,
# 7 a timestamp; more: 0 the position is the id, 1 a position of its own
sub message {
    my (%m) = @_;
    my @h = @{ $m{headers} // [] };
    my @md = @{ $m{metadata} // [] };
    my $nh = @h / 2;
    my $flags = (defined $m{id} ? 1 : 0) | ($m{error} ? 2 : 0)
                | (($nh & 3) << 2) | ((@md / 2) << 4) | ($nh >= 4 ? 0x40 : 0)
                | (defined $m{ts} ? 0x80 : 0);
    my $more = ($m{position_is_id} ? 1 : 0) | (defined $m{position} ? 2 : 0);
    my $b = chr($flags) . chr($more);
    $b .= pack('q>', $m{ts}) if defined $m{ts};
    $b .= str($m{id}) if defined $m{id};
    $b .= str($m{position}) if defined $m{position};
    $b .= str($m{content} // '');
    for (my $i = 0; $i < @h; $i += 2) {
        $b .= ($h[$i] =~ /^\xef(.)$/s) ? $h[$i] : str($h[$i]);
        $b .= str($h[$i + 1]);
    }
    for (my $i = 0; $i < @md; $i += 2) {
        $b .= str($md[$i]) . str($md[$i + 1]);
    }
    return $b;
}

sub writers {
    my ($name, $flags, $msgs, %o) = @_;
    my $b = chr($flags) . chr(scalar @$msgs);
    $b .= str($o{limit}) if $flags & 0x20;
    $b .= str($o{cursor}) if $flags & 0x40;
    $b .= join '', @$msgs;
    $b .= $o{error} if $flags & 0x10;
    seed('writers', $name, $b);
}

my @plain = (message(id => '0', content => 'mock message', ts => 1700000000000),
             message(id => '1', content => 'mock message'));
my $rich = message(id => '7', ts => -1, content => "a \"quoted\" \\ \x01 \n"
                   . "\xff\xc3\xa9 ]]> <&>",
                   headers => ['X-A', 'v1', "\xef\x00", 'v2', 'x-b', '',
                               '1bad name', "<v&>"],
                   metadata => ['key', "va\"lue", 'sourceTimestamp', 'dup']);
my $error = message(error => 1, content => 'Mock endpoint failure',
                    metadata => ['key', 'FAILURE_ENDPOINT_UNKNOWN_ERROR',
                                 'statusCode', '500']);

writers('json', 0x60, \@plain, limit => '2', cursor => '1');
writers('xml', 0x61, \@plain, limit => '2', cursor => '1');
writers('text', 0x62, \@plain, limit => '2', cursor => '1');
writers('empty', 0x03, []);
writers('error-only', 0x13, [], error => $error);
writers('rich-all', 0x7f, [$rich, @plain], limit => '', cursor => "c\"<&\n",
        error => $error);
writers('rich-json', 0x0c, [$rich]);
writers('rich-xml', 0x0d, [$rich]);
writers('rich-text', 0x0e, [$rich]);
writers('no-id', 0x0f, [message(content => 'no id, no position')]);
writers('cdata', 0x0d, [message(id => ']]>', content => ']]]>]]>>]]')]);
writers('names', 0x0f, [message(content => '', headers => ['', 'empty name',
                        '-dash', 'x', '.dot', 'y', "\xc3\xa9", 'z'])]);
writers('big', 0x0f, [message(id => 'big', content => 'x' x 4000,
                              headers => ['h', 'v' x 3000]),
                      message(content => "\x00" x 1000)]);
writers('ts-min', 0x0f, [message(id => '1', ts => -2**63, content => 'min')]);


# sse: flags (0 headers_as_comment, 1 metadata_as_comment, 2-3 those of a
# second conf, 4 encode again, 5 encode with the second conf, 6 a client
# with a position of its own: [position]), then a message

sub sse {
    my ($name, $flags, $msg, %o) = @_;
    my $b = chr($flags);
    $b .= str($o{own}) if $flags & 0x40;
    seed('sse', $name, $b . $msg);
}

sse('plain', 0x00, message(id => '0', position_is_id => 1,
                           content => 'mock message'));
sse('lines', 0x13, message(id => "1\r\n2", position_is_id => 1,
                           content => "a\r\nb\rc\nd\r\r\n\n\re\r",
                           headers => ['H', "v\r\n1", 'h', 'v2'],
                           metadata => ["k\n", "v\r"]));
sse('comments', 0x3f, $rich);
sse('error', 0x33, $error);
sse('own-position', 0x53, message(id => '5', position_is_id => 1,
                                  content => 'catching up'),
    own => "5\n6");
sse('position', 0x30, message(id => 'id', position => 'p:1,2',
                              content => "x\n"));
sse('no-position', 0x13, message(content => '', metadata => ['a', 'b']));
sse('big', 0x13, message(id => 'b', position_is_id => 1,
                         content => ("line\n" x 700) . "\r" x 300));
sse('ts-min', 0x02, message(ts => -2**63, content => 'min'));
