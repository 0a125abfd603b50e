# Self-test of t/lib/GraviteeTest.pm's socket readers, without NGINX: a
# server that sends a WebSocket frame in the same write as its 101 must not
# lose the frame to the reading of the head (as a Kafka reader with the
# record already fetched does; t/610's ?cursor= case lost it one time in
# about ten before read_head).

use strict;
use warnings;
use Test::More;
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use IO::Handle;
use lib 't/lib';
use GraviteeTest;

my $head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           . "Connection: upgrade\r\n\r\n";

socketpair(my $client, my $server, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
    or die "socketpair: $!";
$_->autoflush(1) for $client, $server;

syswrite($server, $head . ws_frame(1, 'first', mask => 0)
                  . ws_frame(1, 'second', mask => 0));

is(read_head($client, 2), $head, 'read_head: the head, up to its blank line');

my $f = ws_read_frame($client, 2);
is($f && $f->{payload}, 'first', 'the frame sent with the head is still there');
$f = ws_read_frame($client, 2);
is($f && $f->{payload}, 'second', 'and the one after it');

syswrite($server, "HTTP/1.1 200 OK\r\n");
is(read_head($client, 0.3), "HTTP/1.1 200 OK\r\n",
   'read_head: a head cut short is returned as it is, at the timeout');

close $server;
is(read_head($client, 1), '', 'read_head: nothing at EOF');

done_testing();
