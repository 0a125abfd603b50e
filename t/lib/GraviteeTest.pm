package GraviteeTest;

=head1 NAME

GraviteeTest - helpers for ngx_gravitee_module suites that need a scripted
client (WebSocket, TLS, slow readers, reloads).  Independent of which
Test::Nginx::Socket is loaded (the project's t/lib one or openresty's).

=head1 SYNOPSIS

    use Test::More;
    use lib 't/lib';
    use GraviteeTest;

    my $ngx = start_nginx(<<'_EOC_', suite => 'ws');
        server {
            listen $TEST_NGINX_SERVER_PORT;
            location / { return 200 "ok\n"; }
        }
    _EOC_
    my $sock = tcp_connect($ngx->{port});
    print $sock "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    like(read_until($sock, qr/ok\n/), qr/200 OK/);
    my @new_workers = reload_nginx($ngx);          # HUP, waits for new worker
    like(error_log_text($ngx), qr/reconfiguring/);
    stop_nginx($ngx);                              # QUIT, KILL fallback
    done_testing;

=head1 API (all exported by default)

  start_nginx($text, %opts) -> $ngx (hash: port, ports{TEST_NGINX_RAND_PORT_N},
        pid, servroot, conf_file, error_log, access_log, pid_file, html_dir,
        stderr).  $text is put inside "http { }" (your server blocks), unless
        it contains a top-level "http {" / "events {" / "stream {" block, in
        which case it is the full nginx.conf (load_module lines, pid and
        error_log are added when missing).  $TEST_NGINX_* variables are
        expanded ($TEST_NGINX_SERVER_PORT = the port; $TEST_NGINX_RAND_PORT_N
        = free ports; $TEST_NGINX_SERVER_ROOT/$TEST_NGINX_HTML_DIR; others
        from %ENV, undefined ones die).  Options: suite (default: basename of
        $0, servroot t/servroot_<suite>), servroot, port (default
        $ENV{TEST_NGINX_SERVER_PORT} || 1984), master (1), workers (1),
        log_level ('debug'), main_config, http_config (before $text),
        worker_connections (1024), may_fail (return {failed=>1, status,
        stderr} instead of dying).  TEST_NGINX_LOAD_MODULES and
        TEST_NGINX_BINARY are honoured.
  stop_nginx($ngx, timeout => 5)  QUIT, wait for master+workers, KILL fallback;
        true when the shutdown was graceful.
  reload_nginx($ngx, $new_text?, timeout => 5) -> new worker pids (HUP; waits
        until a worker that did not exist before appears; () on timeout,
        e.g. when the new configuration was rejected).
  error_log_text($ngx, $offset = 0), error_log_size($ngx),
  wait_for_error_log($ngx, $str_or_qr, $timeout = 3, $offset = 0) -> bool
  worker_pids($ngx)
  nginx_check_config($text, %opts) -> ($exit_code, $output_of_nginx_-t)
  use_startup_error_log()  call in BEGIN before "use Test::Nginx::Socket":
        sets TEST_NGINX_BINARY to a wrapper running "nginx -e logs/error.log",
        so that configuration errors of "--- must_die" blocks reach
        servroot/logs/error.log under both harnesses (Debian's nginx is
        built with --error-log-path=stderr).
  tcp_connect($port, tls => 0, timeout => 3, host => '127.0.0.1', sni => ...)
  read_until($sock, $qr_or_undef, $timeout = 3) -> data read (until match,
        EOF or timeout)
  read_head($sock, $timeout = 3) -> a response head up to its blank line and
        not a byte more: what follows (a WebSocket frame sent at once after
        the 101) stays in the socket for ws_read_frame
  ws_frame($opcode, $payload, mask => 1, fin => 1) -> bytes
  ws_read_frame($sock, $timeout = 3) -> {fin, opcode, payload} or undef
  gen_self_signed_cert($dir, $cn = 'localhost') -> ($crt, $key)
  browser_text($url, @chromium_flags) -> the text of the page's
        <pre id="out"> once headless Chromium (Debian's chromium) has loaded
        $url (the DOM after its load event, --virtual-time-budget 10 s);
        "no page: ..." when there is none
  free_port()
  http_exchange($port, $request, $timeout = 5) -> the whole answer of one
        request sent on its own connection
  ws_handshake($port, $path[, $timeout]) -> ($sock, $response_head)
  sse_connect($port, $path, $last_event_id) -> { sock, buf => '' }

=cut

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(:sys_wait_h EAGAIN);
use Time::HiRes qw(sleep time);
use File::Spec ();
use File::Path qw(make_path remove_tree);
use File::Basename qw(basename);
use IO::Socket::INET ();
use IO::Select ();
use Cwd ();

our @EXPORT = qw(start_nginx stop_nginx reload_nginx error_log_text
                 error_log_size wait_for_error_log worker_pids
                 nginx_check_config use_startup_error_log tcp_connect
                 read_until read_head ws_frame ws_read_frame gen_self_signed_cert
                 free_port browser_text http_exchange ws_handshake
                 sse_connect under_valgrind native_or_valgrind);

my %Started;    # pid => $ngx, stopped in END

# Under t/valgrind.sh (GRAVITEE_UNDER_VALGRIND) the worker is many times
# slower: what a test waits for may grow, and a bound on time may loosen,
# there only.  What the test checks stays the same.
sub under_valgrind { return $ENV{GRAVITEE_UNDER_VALGRIND} ? 1 : 0 }

sub native_or_valgrind {
    my ($native, $valgrind) = @_;
    return under_valgrind() ? $valgrind : $native;
}

sub _nginx_binary {
    return $ENV{TEST_NGINX_BINARY} || 'nginx';
}

sub _which {
    my $cmd = shift;
    return (-x $cmd ? $cmd : undef) if $cmd =~ m{/};
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/$cmd" if length $d && -f "$d/$cmd" && -x _;
    }
    return undef;
}

sub free_port {
    for (1 .. 1000) {
        my $port = 20000 + int rand 40000;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                      Proto => 'tcp', ReuseAddr => 1) or next;
        close $s;
        return $port;
    }
    die "GraviteeTest: no free port found\n";
}

sub _alive {
    my $pid = shift;
    return 0 unless $pid && kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $st = <$fh> // '';
        return 0 if $st =~ /\)\s+Z\b/;
    }
    return 1;
}

sub _children {
    my $ppid = shift;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $d (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$d/stat" or next;
        my $st = <$fh> // '';
        push @kids, $d if $st =~ /\)\s+[^Z]\S*\s+(\d+)/ && $1 == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

sub worker_pids {
    my $ngx = shift;
    return $ngx->{master} ? _children($ngx->{pid}) : ($ngx->{pid});
}

sub _port_listening {
    my $hex = sprintf '%04X', shift;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        while (<$in>) {
            return 1 if /^\s*\d+:\s+[0-9A-F]+:$hex\s+[0-9A-F]+:[0-9A-F]+\s+0A\b/;
        }
    }
    return 0;
}

sub _expand {
    my ($text, $vars) = @_;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $v = $1;
        if (!defined $vars->{$v} && $v =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $vars->{$v} = free_port();
        }
        my $val = $vars->{$v} // $ENV{$v};
        defined $val or die "GraviteeTest: No environment $v defined.\n";
        $val;
    }ge;
    return $text;
}

sub _load_module_lines {
    my $mods = $ENV{TEST_NGINX_LOAD_MODULES} // '';
    return join '', map { "load_module $_;\n" } grep { length } split /\s+/, $mods;
}

sub _prepare {
    my ($text, %o) = @_;
    my $suite = $o{suite} // do { (my $b = basename($0)) =~ s/\.t$//; $b =~ s/\W/_/g; $b };
    my $root = File::Spec->rel2abs($o{servroot} // "t/servroot_$suite");
    my $port = $o{port} // $ENV{TEST_NGINX_SERVER_PORT} // 1984;
    my $ngx = bless {
        %o,
        suite      => $suite,
        servroot   => $root,
        port       => $port,
        master     => $o{master} // 1,
        workers    => $o{workers} // 1,
        conf_file  => "$root/conf/nginx.conf",
        error_log  => "$root/logs/error.log",
        access_log => "$root/logs/access.log",
        pid_file   => "$root/logs/nginx.pid",
        html_dir   => "$root/html",
        text       => $text,
        ports      => {},
    }, 'GraviteeTest::Nginx';
    return $ngx;
}

sub _write_conf {
    my ($ngx, $text) = @_;
    my %vars = (TEST_NGINX_SERVER_PORT => $ngx->{port},
                TEST_NGINX_SERVER_ROOT => $ngx->{servroot},
                TEST_NGINX_HTML_DIR    => $ngx->{html_dir},
                %{ $ngx->{ports} });
    my $body = _expand($text, \%vars);
    $ngx->{ports}{$_} = $vars{$_} for grep { /^TEST_NGINX_RAND_PORT_/ } keys %vars;
    my $level = $ngx->{log_level} // 'debug';
    my $user = $> == 0 ? "user root;\n" : '';
    my $conf;
    if ($body =~ /^\s*(?:http|events|stream)\s*\{/m) {
        $conf = '';
        $conf .= _load_module_lines() unless $body =~ /^\s*load_module\s/m;
        $conf .= "pid $ngx->{pid_file};\n" unless $body =~ /^\s*pid\s/m;
        $conf .= "error_log $ngx->{error_log} $level;\n" unless $body =~ /^\s*error_log\s/m;
        $conf .= $body;
    } else {
        my $main = _expand($ngx->{main_config} // '', \%vars);
        my $http = _expand($ngx->{http_config} // '', \%vars);
        my $master = $ngx->{master} ? 'on' : 'off';
        my $wc = $ngx->{worker_connections} // 1024;
        $conf = _load_module_lines() . <<"_EOC_";
$main
worker_processes $ngx->{workers};
daemon on;
master_process $master;
error_log $ngx->{error_log} $level;
pid $ngx->{pid_file};
$user
events {
    accept_mutex off;
    worker_connections $wc;
}

http {
    access_log $ngx->{access_log};
    default_type text/plain;
    keepalive_timeout 68;
$http
$body
}
_EOC_
    }
    open my $out, '>', $ngx->{conf_file} or die "GraviteeTest: $ngx->{conf_file}: $!\n";
    print $out $conf;
    close $out;
}

sub _setup_root {
    my $ngx = shift;
    my $root = $ngx->{servroot};
    remove_tree($root) if -d $root;
    make_path("$root/conf", "$root/logs", "$root/html");
    open my $o, '>', "$root/html/index.html" or die $!;
    print $o "It works!\n";
    close $o;
}

sub _run_nginx {
    my ($ngx, @args) = @_;
    my $bin = _nginx_binary();
    die "GraviteeTest: cannot find nginx ($bin) in PATH\n" unless _which($bin);
    my $errf = "$ngx->{servroot}/logs/stderr.log";
    system("$bin -p $ngx->{servroot}/ -c $ngx->{conf_file} @args > /dev/null 2> $errf");
    my $status = $?;
    my $err = '';
    if (open my $in, '<', $errf) { local $/; $err = <$in> // '' }
    return ($status, $err);
}

sub start_nginx {
    my ($text, %o) = @_;
    my $ngx = _prepare($text, %o);
    _setup_root($ngx);
    _write_conf($ngx, $text);
    my ($status, $err) = _run_nginx($ngx);
    $ngx->{stderr} = $err;
    if ($status != 0) {
        if ($o{may_fail}) {
            $ngx->{failed} = 1;
            $ngx->{status} = $status >> 8;
            return $ngx;
        }
        die "GraviteeTest: nginx failed to start (status $status): $err\n";
    }
    my $deadline = time + 5;
    sleep 0.01 until -s $ngx->{pid_file} || time > $deadline;
    open my $in, '<', $ngx->{pid_file} or die "GraviteeTest: no pid file: $!\n";
    ($ngx->{pid}) = (<$in> // '') =~ /(\d+)/;
    close $in;
    die "GraviteeTest: bad pid file\n" unless $ngx->{pid};
    $Started{ $ngx->{pid} } = $ngx;
    sleep 0.01 until _port_listening($ngx->{port}) || time > $deadline;
    if ($ngx->{master}) {
        sleep 0.01 until scalar(my @k = _children($ngx->{pid})) >= $ngx->{workers}
                         || time > $deadline;
    }
    return $ngx;
}

sub stop_nginx {
    my ($ngx, %o) = @_;
    my $pid = $ngx->{pid} or return 1;
    delete $Started{$pid};
    return 1 unless _alive($pid);
    my @procs = ($pid, _children($pid));
    kill 'QUIT', $pid;
    my $deadline = time + ($o{timeout} // 5);
    while (time < $deadline) {
        last unless grep { _alive($_) } @procs;
        sleep 0.02;
    }
    my @left = grep { _alive($_) } @procs, _children($pid);
    return 1 unless @left;
    warn "GraviteeTest: nginx $pid did not stop gracefully; killing @left\n";
    kill 'KILL', @left;
    for (1 .. 100) { last unless grep { _alive($_) } @left; sleep 0.02 }
    return 0;
}

sub reload_nginx {
    my ($ngx, $new_text, %o) = @_;
    die "GraviteeTest: reload needs master => 1\n" unless $ngx->{master};
    if (defined $new_text) {
        $ngx->{text} = $new_text;
        _write_conf($ngx, $new_text);
    }
    my %old = map { $_ => 1 } _children($ngx->{pid});
    kill 'HUP', $ngx->{pid} or die "GraviteeTest: HUP failed: $!\n";
    my $deadline = time + ($o{timeout} // 5);
    while (time < $deadline) {
        my @new = grep { !$old{$_} } _children($ngx->{pid});
        return @new if @new >= $ngx->{workers};
        sleep 0.02;
    }
    return ();
}

sub error_log_size {
    my $ngx = shift;
    return -s $ngx->{error_log} || 0;
}

sub error_log_text {
    my ($ngx, $offset) = @_;
    open my $in, '<', $ngx->{error_log} or return '';
    seek $in, $offset, 0 if $offset;
    local $/;
    my $t = <$in>;
    return $t // '';
}

sub wait_for_error_log {
    my ($ngx, $pat, $timeout, $offset) = @_;
    my $deadline = time + ($timeout // 3);
    while (1) {
        my $t = error_log_text($ngx, $offset);
        return 1 if ref $pat ? $t =~ $pat : index($t, $pat) >= 0;
        return 0 if time > $deadline;
        sleep 0.02;
    }
}

sub nginx_check_config {
    my ($text, %o) = @_;
    my $ngx = _prepare($text, %o, suite => ($o{suite} // 'check'));
    _setup_root($ngx);
    _write_conf($ngx, $text);
    my $bin = _nginx_binary();
    my $out = `$bin -t -p $ngx->{servroot}/ -c $ngx->{conf_file} 2>&1`;
    return ($? >> 8, $out);
}

sub use_startup_error_log {
    my $real = _which(_nginx_binary())
        or die "GraviteeTest: cannot find nginx in PATH\n";
    my $dir = File::Spec->rel2abs('t/servroot_bin');
    make_path($dir);
    my $wrapper = "$dir/nginx";
    open my $o, '>', $wrapper or die "GraviteeTest: $wrapper: $!\n";
    print $o "#!/bin/sh\n# written by GraviteeTest::use_startup_error_log\n"
           . "exec '$real' -e logs/error.log \"\$@\"\n";
    close $o;
    chmod 0755, $wrapper;
    $ENV{TEST_NGINX_BINARY} = $wrapper;
    return $wrapper;
}

sub tcp_connect {
    my ($port, %o) = @_;
    my $host = $o{host} // '127.0.0.1';
    my $timeout = $o{timeout} // 3;
    my $sock;
    for (1 .. 50) {
        if ($o{tls}) {
            require IO::Socket::SSL;
            $sock = IO::Socket::SSL->new(
                PeerAddr => $host, PeerPort => $port, Timeout => $timeout,
                SSL_verify_mode => 0,    # SSL_VERIFY_NONE
                SSL_hostname => $o{sni} // 'localhost',
                ($o{ssl_opts} ? %{ $o{ssl_opts} } : ()));
        } else {
            $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                          Proto => 'tcp', Timeout => $timeout);
        }
        last if $sock;
        sleep 0.05;
    }
    die "GraviteeTest: cannot connect to $host:$port: $! "
        . ($o{tls} ? IO::Socket::SSL::errstr() : '') . "\n" unless $sock;
    $sock->autoflush(1);
    binmode $sock;
    return $sock;
}

sub read_until {
    my ($sock, $pat, $timeout) = @_;
    $timeout //= 3;
    my $buf = '';
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    while (1) {
        return $buf if defined $pat && (ref $pat ? $buf =~ $pat : index($buf, $pat) >= 0);
        my $left = $deadline - time;
        return $buf if $left <= 0;
        # IO::Socket::SSL may hold decrypted bytes that select() cannot see
        my $pending = $sock->can('pending') ? $sock->pending : 0;
        next unless $pending || $sel->can_read($left);
        my $n = sysread($sock, my $chunk, 65536);
        if (!defined $n) {
            next if $! == EAGAIN || ($sock->isa('IO::Socket::SSL')
                                     && $IO::Socket::SSL::SSL_ERROR
                                     == IO::Socket::SSL::SSL_WANT_READ());
            return $buf;
        }
        return $buf if $n == 0;
        $buf .= $chunk;
    }
}

# one request on its own connection, the whole answer (until the server
# closes or $timeout, 5 s)
sub http_exchange {
    my ($port, $req, $timeout) = @_;
    my $s = tcp_connect($port);
    print $s $req;
    my $r = read_until($s, undef, $timeout // 5);
    close $s;
    return $r;
}

# byte by byte: a frame the server sends right after its 101 arrives in the
# same segment, and read_until's big reads would swallow it with the head
sub read_head {
    my ($sock, $timeout) = @_;
    my $deadline = time + ($timeout // 3);
    my $h = '';
    while ($h !~ /\r\n\r\n\z/) {
        _read_exact($sock, length($h) + 1, $deadline, \$h) or last;
    }
    return $h;
}

# a WebSocket client after its handshake: (socket, response head)
sub ws_handshake {
    my ($port, $path, $timeout) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    my $h = read_head($s, $timeout);
    return ($s, $h);
}

# an SSE client, with a Last-Event-ID if given: { sock, buf => '' }
sub sse_connect {
    my ($port, $path, $last) = @_;
    my $s = tcp_connect($port);
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
             . (defined $last ? "Last-Event-ID: $last\r\n" : '') . "\r\n";
    return { sock => $s, buf => '' };
}

sub ws_frame {
    my ($opcode, $payload, %o) = @_;
    $payload //= '';
    my $mask = $o{mask} // 1;
    my $fin = $o{fin} // 1;
    my $len = length $payload;
    my $h = chr(($fin ? 0x80 : 0) | ($opcode & 0x0f));
    my $m = $mask ? 0x80 : 0;
    if ($len < 126) {
        $h .= chr($m | $len);
    } elsif ($len < 65536) {
        $h .= chr($m | 126) . pack('n', $len);
    } else {
        $h .= chr($m | 127) . pack('Q>', $len);
    }
    return $h . $payload unless $mask;
    my $key = $o{mask_key} // pack('N', int rand 2**32);
    my @k = unpack 'C4', $key;
    my $i = 0;
    my $masked = join '', map { chr(ord($_) ^ $k[$i++ % 4]) } split //, $payload;
    return $h . $key . $masked;
}

sub _read_exact {
    my ($sock, $n, $deadline, $bufref) = @_;
    my $sel = IO::Select->new($sock);
    while (length($$bufref) < $n) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        my $pending = $sock->can('pending') ? $sock->pending : 0;
        next unless $pending || $sel->can_read($left);
        my $r = sysread($sock, my $chunk, $n - length $$bufref);
        return 0 if defined $r && $r == 0;
        $$bufref .= $chunk if $r;
    }
    return 1;
}

sub ws_read_frame {
    my ($sock, $timeout) = @_;
    my $deadline = time + ($timeout // 3);
    my $b = '';
    _read_exact($sock, 2, $deadline, \$b) or return undef;
    my ($b0, $b1) = unpack 'C2', $b;
    my $len = $b1 & 0x7f;
    my $need = 2;
    if ($len == 126) { $need += 2 } elsif ($len == 127) { $need += 8 }
    my $masked = $b1 & 0x80;
    $need += 4 if $masked;
    _read_exact($sock, $need, $deadline, \$b) or return undef;
    my $off = 2;
    if ($len == 126) { $len = unpack 'n', substr($b, 2, 2); $off = 4 }
    elsif ($len == 127) { $len = unpack 'Q>', substr($b, 2, 8); $off = 10 }
    my $key = $masked ? substr($b, $off, 4) : undef;
    $off += 4 if $masked;
    _read_exact($sock, $off + $len, $deadline, \$b) or return undef;
    my $payload = substr($b, $off, $len);
    if ($masked) {
        my @k = unpack 'C4', $key;
        my $i = 0;
        $payload = join '', map { chr(ord($_) ^ $k[$i++ % 4]) } split //, $payload;
    }
    return { fin => ($b0 & 0x80) ? 1 : 0, opcode => $b0 & 0x0f, payload => $payload };
}

sub browser_text {
    my ($url, @flags) = @_;
    require File::Temp;
    my $profile = File::Temp::tempdir(CLEANUP => 1);
    # no background traffic: this machine reaches no network but loopback
    my $cmd = join ' ', 'timeout 90 chromium --headless --no-sandbox',
        '--disable-gpu --disable-quic --no-first-run',
        '--disable-background-networking --disable-component-update',
        "--disable-sync --user-data-dir=$profile --virtual-time-budget=10000",
        @flags, "--dump-dom '$url' 2>/dev/null";
    my $dom = `$cmd`;
    my ($out) = $dom =~ m{<pre id="out">(.*?)</pre>}s;
    return $out // "no page: $dom";
}

sub gen_self_signed_cert {
    my ($dir, $cn) = @_;
    $cn //= 'localhost';
    # absolute: nginx resolves a relative path against its prefix
    $dir = File::Spec->rel2abs($dir);
    make_path($dir);
    my ($crt, $key) = ("$dir/$cn.crt", "$dir/$cn.key");
    system("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=$cn' "
           . "-keyout '$key' -out '$crt' > /dev/null 2>&1") == 0
        or die "GraviteeTest: openssl failed\n";
    return ($crt, $key);
}

END {
    local $?;
    stop_nginx($_, timeout => 3) for values %Started;
}

1;
