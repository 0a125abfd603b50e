package Test::Nginx::Socket;

# ngx_gravitee_module's own, minimal stand-in for openresty's
# Test::Nginx::Socket (CPAN, v0.33).  Written from the documented behaviour
# of the real harness (see t/README.md and /work/shared/reference/test-nginx.md);
# it implements the subset of sections our suites use, with the same
# semantics, so that every t/*.t also passes unchanged under the real one.
#
# It is only used when the real Test::Nginx is not earlier in @INC:
#   PERL5LIB=t/lib prove -r t/                        (this runner)
#   PERL5LIB=/path/to/test-nginx/lib:t/lib prove -r t/ (the real one)
#
# Not supported (bail out or ignored): HTTP/2/3, valgrind/stap/HUP/check-leak
# modes, pipelined_requests, tcp_listen/udp_listen mock servers,
# shutdown_error_log, access_log checks, curl, response_body_filters.

use strict;
use warnings;

use Test::Base -base;    # lowercase: no Spiffy source filtering

use POSIX qw(:sys_wait_h EAGAIN EINTR);
use Time::HiRes qw(sleep time);
use File::Spec ();
use File::Path qw(make_path remove_tree);
use List::Util qw(shuffle);
use Scalar::Util qw(looks_like_number);
use IO::Socket::INET ();
use IO::Select ();
use HTTP::Response ();

our $VERSION = '0.33_gravitee';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location
    server_name server_addr server_root html_dir server_port
    server_port_for_client timeout check_accum_error_log
    add_block_preprocessor bail_out add_cleanup_handler
);

# ----------------------------------------------------------------- settings

our $NginxBinary   = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Timeout       = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $Workers       = 1;
our $WorkerConnections = 64;
our $LogLevel      = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled = 'on';
our $ServerAddr    = '127.0.0.1';
our $ServerName    = 'localhost';
our $ServerPort    = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoRootLocation = 0;
our $NoShuffle     = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString;
our $RepeatEach    = 1;
our $TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $LoadModules   = $ENV{TEST_NGINX_LOAD_MODULES};
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $ConfigPreamble = '';
our $Verbose       = $ENV{TEST_NGINX_VERBOSE};
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;

for my $unsupported (qw(TEST_NGINX_USE_HTTP2 TEST_NGINX_USE_HTTP3
                        TEST_NGINX_USE_VALGRIND TEST_NGINX_USE_STAP
                        TEST_NGINX_USE_HUP TEST_NGINX_CHECK_LEAK
                        TEST_NGINX_BENCHMARK))
{
    if ($ENV{$unsupported}) {
        warn "WARNING: $unsupported is not supported by the project's own "
           . "Test::Nginx::Socket (t/lib); ignored. Use the real Test::Nginx "
           . "for that mode.\n";
    }
}

our $ServRoot   = $ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

our ($NginxVersion, $NginxRawVersion);
our $PrevBlockConf;       # [config, http_config, main_config] of last block
our $ErrLogFilePos = 0;
our $RunningPid;          # master (or single) pid of the nginx we started
our $InSubprocess;
our $HaveLongString = eval { require Test::LongString; 1 };

# ------------------------------------------------------ exported functions

sub no_long_string ()     { $NoLongString = 1 }
sub no_shuffle ()         { $NoShuffle = 1 }
sub no_root_location ()   { $NoRootLocation = 1 }
sub master_on ()          { $MasterProcessEnabled = 'on' }
sub master_off ()         { $MasterProcessEnabled = 'off' }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub html_dir ()           { $HtmlDir }
sub server_root ()        { $ServRoot }
sub config_preamble ($)   { $ConfigPreamble = shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

sub _getset { my ($ref, @a) = @_; $$ref = $a[0] if @a; return $$ref }
sub timeout (@)            { _getset(\$Timeout, @_) }
sub workers (@)            { _getset(\$Workers, @_) }
sub worker_connections (@) { _getset(\$WorkerConnections, @_) }
sub log_level (@)          { _getset(\$LogLevel, @_) }
sub server_addr (@)        { _getset(\$ServerAddr, @_) }
sub server_name (@)        { _getset(\$ServerName, @_) }
sub server_port (@)        { _getset(\$ServerPort, @_) }
sub server_port_for_client (@) { _getset(\$ServerPortForClient, @_) }
sub repeat_each (@)        { _getset(\$RepeatEach, @_) }

sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}

sub env_to_nginx (@) {
    die "env_to_nginx: no arguments specified\n" unless @_;
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub _show ($) {
    my $s = shift;
    return 'undef' unless defined $s;
    $s =~ s/([\0-\010\013-\037\177-\377])/sprintf('\\x%02x', ord $1)/ge;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# is_string-like comparison with a short, useful diagnostic
sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    if ($NoLongString) {
        return Test::More::is($got, $expected, $desc);
    }
    if ($HaveLongString) {
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        return Test::LongString::is_string($got, $expected, $desc);
    }
    my $tb = Test::More->builder;
    if (defined $got && defined $expected && $got eq $expected) {
        return $tb->ok(1, $desc);
    }
    if (!defined $got && !defined $expected) {
        return $tb->ok(1, $desc);
    }
    my $ok = $tb->ok(0, $desc);
    if (!defined $got || !defined $expected) {
        $tb->diag("         got: " . _show($got) . "\n    expected: " . _show($expected));
        return $ok;
    }
    my $i = 0;
    my $n = length($got) < length($expected) ? length($got) : length($expected);
    $i++ while $i < $n && substr($got, $i, 1) eq substr($expected, $i, 1);
    my $from = $i > 50 ? $i - 50 : 0;
    $tb->diag(sprintf("length got: %d, length expected: %d, strings begin to differ at char %d\n"
                      . "         got (from byte %d, max 500 bytes): \"%s\"\n"
                      . "    expected (from byte %d, max 500 bytes): \"%s\"",
                      length $got, length $expected, $i + 1,
                      $from, _show(substr($got, $from, 500)),
                      $from, _show(substr($expected, $from, 500))));
    return $ok;
}

sub parse_time ($) {
    my $tm = shift;
    return undef unless defined $tm;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm = $tm / 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

# ------------------------------------------------------------- processes

# a zombie (exited, not yet reaped by its new parent) counts as gone
sub _is_running ($) {
    my $pid = shift;
    return 0 unless $pid && kill(0, $pid);
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        close $fh;
        return 0 if $stat =~ /\)\s+Z\b/;
    }
    return 1;
}

sub _children_of ($) {
    my $ppid = shift;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $d (readdir $dh) {
        next unless $d =~ /^\d+$/;
        open my $fh, '<', "/proc/$d/stat" or next;
        my $stat = <$fh>;
        close $fh;
        next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
        push @kids, $d if $1 == $ppid;
    }
    closedir $dh;
    return @kids;
}

sub _read_pid () {
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# graceful QUIT, wait up to $Timeout, then KILL the process and its children
sub _stop_nginx ($) {
    my $name = shift;
    my $pid = $RunningPid // _read_pid();
    undef $RunningPid;
    return unless $pid && _is_running($pid);
    my @procs = ($pid, _children_of($pid));
    kill 'QUIT', $pid;
    my $deadline = time + ($Timeout > 3 ? $Timeout : 3);
    while (time < $deadline) {
        waitpid($pid, WNOHANG);
        last unless grep { _is_running($_) } @procs;
        sleep 0.02;
    }
    my @left = grep { _is_running($_) } @procs;
    if (@left) {
        warn "WARNING: $name - nginx ($pid) did not exit after QUIT; killing @left\n";
        kill 'KILL', @left;
        for (1 .. 100) {
            waitpid($pid, WNOHANG);
            last unless grep { _is_running($_) } @left;
            sleep 0.02;
        }
    }
    unlink $PidFile;
}

sub cleanup () {
    $_->() for @CleanupHandlers;
    _stop_nginx('cleanup');
}

END {
    unless ($InSubprocess) {
        local $?;
        cleanup();
    }
}

for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub {
        local $SIG{$sig} = 'DEFAULT';
        cleanup();
        kill $sig, $$;
        exit 128 + 2;
    };
}

sub _can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return -f $cmd && -x _ ? $cmd : undef;
    }
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        my $p = "$dir/$cmd";
        return $p if -f $p && -x _;
    }
    return undef;
}

sub _nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: "
                 . ($out // '') . "\n");
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s) {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf "%d.%03d%03d", $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# ----------------------------------------------------------- config file

my %RandPorts;

sub _free_port {
    my %used = ($ServerPort => 1, map { $_ => 1 } values %RandPorts);
    for (1 .. 1000) {
        my $port = int(rand 63550) + 1985;
        next if $used{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      ReuseAddr => 1);
        if ($s) { close $s; return $port }
    }
    return undef;
}

sub _expand_env ($$) {
    my ($text, $name) = @_;
    return undef unless defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts{$var} //= _free_port()
                // bail_out("$name - Cannot find an available listening port number for $var.\n");
            $val = $RandPorts{$var};
        } else {
            defined $ENV{$var}
                or bail_out("$name - No environment $var defined.\n");
            $val = $ENV{$var};
        }
        $val;
    }ge;
    return $text;
}

sub _setup_server_root () {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!\n");
    }
    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $d or bail_out("Failed to do mkdir $d: $!\n");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

sub _write_user_files ($) {
    my $block = shift;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless defined $files;
    if (!ref $files) {
        my @list;
        my ($fname, $body, $date);
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$fname, $body, $date] if defined $fname;
                ($fname, $date, $body) = ($1, $2, undef);
            } else {
                $body .= $line;
            }
        }
        push @list, [$fname, $body, $date] if defined $fname;
        $files = \@list;
    }
    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        (my $dir = $path) =~ s{/[^/]*$}{};
        make_path($dir) unless -d $dir;
        $body = _expand_env($body // '', $name);
        open my $out, '>', $path or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out("$name - failed to touch $path\n");
        }
    }
}

sub _write_config_file ($$$$) {
    my ($block, $config, $http_config, $main_config) = @_;
    my $name = $block->name;
    $config      //= '';
    $http_config //= '';
    $main_config //= '';

    # same placement as the real harness: the generated load_module
    # lines are appended to main_config
    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/, $LoadModules;
        $main_config .= join ' ', @mods if @mods;
    }
    $main_config = _expand_env($main_config, $name);
    my $server_name = $block->server_name // $ServerName;
    my $err_log = $block->error_log_file || $ErrLogFile;
    my $log_level = $block->log_level || $LogLevel;

    my $env = join '', map { my $v = $_; $v = "'$v'" if $v =~ /\s/; "env $v;\n" } @EnvToNginx;

    my $root_loc = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = '';
    if (defined $ENV{TEST_NGINX_WORKER_USER}) {
        $user = "user $ENV{TEST_NGINX_WORKER_USER};\n";
    } elsif ($> == 0) {
        $user = "user root;\n";
    }

    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out <<"_EOC_";
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log $log_level;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
$env
$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_loc    }
}

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
$user
_EOC_
    close $out;
}

sub _port_listening ($) {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        while (<$in>) {
            # local_address rem_address st
            if (/^\s*\d+:\s+[0-9A-F]+:$hex\s+[0-9A-F]+:[0-9A-F]+\s+0A\b/) {
                close $in;
                return 1;
            }
        }
        close $in;
    }
    return 0;
}

# -------------------------------------------------------------- requests

sub _parse_more_headers ($) {
    my $in = shift;
    my ($out, $chunked) = ('', 0);
    for my $h (split /\n+/, $in) {
        next if $h =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $h, 2;
        $v //= '';
        $chunked = 1 if lc($k) eq 'transfer-encoding' && $v eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $chunked);
}

sub _build_request ($$$) {
    my ($name, $req, $more_headers) = @_;
    bail_out("$name - Request line should be non-empty\n")
        unless defined $req && length $req;
    my ($hdrs, $chunked) = _parse_more_headers($more_headers);
    my ($first, $content) = split /\n/, $req, 2;
    $first =~ /^\s*(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?\s*$/
        or bail_out("$name - Request line is not valid. Should be 'meth [url [version]]' but got \"$first\".\n");
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $content //= '';
    my $len = '';
    if (!$chunked && $content ne '' && $hdrs !~ /(?:^|\n)Content-Length:/) {
        $content =~ s/^\s+|\s+$//gs;
        $len = "Content-Length: " . length($content) . "\r\n";
    }
    my $h = '';
    $h .= "Host: $ServerName\r\n" if $hdrs !~ /(?:^|\n)Host:/i;
    $h .= "Connection: close\r\n" if $hdrs !~ /(?:^|\n)Connection/i;
    return "$meth $url $ver\r\n$h$hdrs$len\r\n$content";
}

# returns a list of requests, each an arrayref of packets
sub _requests_of ($) {
    my $block = shift;
    my $name = $block->name;
    if (defined(my $raw = $block->raw_request)) {
        return ([ref $raw eq 'ARRAY' ? @$raw : $raw]);
    }
    bail_out("$name - pipelined_requests is not supported by this runner\n")
        if defined $block->pipelined_requests;
    my $request = $block->request;
    bail_out("$name - request empty\n") unless defined $request;
    my $more = $block->more_headers // '';
    my @reqs = ref $request eq 'ARRAY' ? @$request : ($request);
    my @out;
    my $i = 0;
    for my $r (@reqs) {
        my $mh = ref $more eq 'ARRAY' ? $more->[$i] : $more;
        bail_out("$name - --- more_headers lacks data for request $i\n")
            unless defined $mh;
        if (ref $r eq 'ARRAY') {
            # packets of one request: headers are added to the joined text
            # (sent as one write here; the real harness keeps the splits)
            $r = join '', map { ref $_ ? $_->{value} : $_ } @$r;
        } else {
            1 while $r =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        }
        push @out, [_build_request($name, $r, $mh)];
        $i++;
    }
    return @out;
}

sub _connect ($) {
    my $name = shift;
    my $err;
    for my $try (1 .. 50) {
        my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                         PeerPort => $ServerPortForClient,
                                         Proto => 'tcp', Timeout => $Timeout);
        return $sock if $sock;
        $err = $!;
        my $wait = $TestNginxSleep * $try;
        $wait = 0.5 if $wait > 0.5;
        sleep $wait;
    }
    Test::More->builder->no_ending(1);
    Test::More::fail("$name - Can't connect to $ServerAddr:$ServerPortForClient: $err (aborted)\n");
    return undef;
}

# send packets, read until EOF or timeout (per I/O gap).
sub _send_request ($$$$) {
    my ($block, $packets, $timeout, $middle_delay) = @_;
    my $name = $block->name;
    my $sock = _connect($name) or return undef;
    $sock->blocking(0);
    my @bits = @$packets;
    my $wbuf = shift @bits;
    my $woff = 0;
    my $resp = '';
    my $writing = 1;
    my $rsel = IO::Select->new($sock);
    while (1) {
        my $wsel = $writing ? IO::Select->new($sock) : undef;
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);
        if (!$r && !$w) {
            if ($! == EINTR) { next }
            # timed out
            close $sock;
            if (!defined $block->abort) {
                Test::More->builder->no_ending(1);
                Test::More::fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }
        if ($w && @$w) {
            while (1) {
                my $rest = length($wbuf) - $woff;
                if ($rest > 0) {
                    my $n = syswrite($sock, $wbuf, $rest, $woff);
                    if (!defined $n) {
                        last if $! == EAGAIN;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" if $resp eq '';
                        $writing = 0;
                        last;
                    }
                    $woff += $n;
                    next;
                }
                if (!@bits) {
                    $writing = 0;
                    if (defined(my $sd = $block->shutdown)) {
                        shutdown($sock, $sd =~ /^\s*$/ ? 1 : $sd);
                    }
                    last;
                }
                sleep $middle_delay if $middle_delay;
                ($wbuf, $woff) = (shift(@bits), 0);
            }
        }
        if ($r && @$r) {
            my $eof;
            while (1) {
                my $n = sysread($sock, my $buf, 16384);
                if (!defined $n) {
                    last if $! == EAGAIN;
                    warn "WARNING: $name - HTTP response read failure: $!\n";
                    $eof = 1;
                    last;
                }
                if ($n == 0) { $eof = 1; last }
                $resp .= $buf;
            }
            if ($eof) { close $sock; last }
        }
    }
    return $resp;
}

# ------------------------------------------------------- response parsing

sub _parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = '';
    $raw_headers = $1 if $raw =~ /(.*?\r\n)\r\n/s;
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        $res->code(undef);
        $code = undef;
    }
    return ($res, $raw_headers) if $code && ($code == 101 || $code == 304);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $left;
    if (defined $enc && $enc eq 'chunked') {
        my $body = $res->content // '';
        my $decoded = '';
        pos($body) = 0;
        while (1) {
            if ($body =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $body =~ /\G(.+)/gcs;
                last;
            }
            if ($body =~ /\G[ \t]*([0-9A-Fa-f]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $p = pos $body;
                if (length($body) - $p < $size) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data section)");
                    return (undef, $raw_headers);
                }
                $decoded .= substr($body, $p, $size);
                pos($body) = $p + $size;
                if ($body !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return (undef, $raw_headers);
                }
                next;
            }
            Test::More->builder->no_ending(1);
            if ($body =~ /\G(.+)/gcs) {
                Test::More::fail("$name - invalid chunked body received: $1");
            } else {
                Test::More::fail("$name - no last chunk found - "
                                 . substr($body, 0, 500));
            }
            return (undef, $raw_headers);
        }
        $res->content($decoded);
    } elsif (defined $len && $len =~ /^\d+$/) {
        my $body = $res->content // '';
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, but got "
                 . length($body) . "\n" unless $head_req;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------- checks

sub _indexed ($$$$) {
    my ($name, $v, $idx, $need_array) = @_;
    if ($need_array) {
        return $v->[$idx] if ref $v eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results should be arrays as well.\n");
    }
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

sub _parse_headers ($) {
    my $s = shift;
    my @h;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @h, [$line, undef];
        } else {
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            push @h, [$k, $v];
        }
    }
    return @h;
}

sub _subst_port ($) {
    my $v = shift;
    return $v if !defined $v || ref $v;
    $v =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
    $v =~ s/\$ServerPort\b/$ServerPort/g;
    return $v;
}

sub _check_response ($$$$$$) {
    my ($block, $res, $raw_headers, $idx, $rep, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';

    if (defined $block->error_code_like) {
        my $v = _indexed($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($code, qr/$v/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($code, _indexed($name, $block->error_code, $idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }

    if (defined $block->raw_response_headers_like) {
        my $v = _indexed($name, $block->raw_response_headers_like, $idx, $need_array);
        Test::More::like($raw_headers, qr/$v/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $v = _indexed($name, $block->raw_response_headers_unlike, $idx, $need_array);
        Test::More::unlike($raw_headers, qr/$v/s, "$name - raw resp headers unlike");
    }

    if (defined $block->response_headers) {
        for my $kv (_parse_headers(_indexed($name, $block->response_headers, $idx, $need_array))) {
            my ($k, $v) = @$kv;
            if (!defined $v) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$k\E\s*:/ms,
                                   "$name - header $k not present in the raw headers");
                next;
            }
            my $got = $res ? $res->header($k) : undef;
            Test::More::is($got // '', _subst_port($v), "$name - header $k ok");
        }
    } elsif (defined $block->response_headers_like) {
        for my $kv (_parse_headers(_indexed($name, $block->response_headers_like, $idx, $need_array))) {
            my ($k, $v) = @$kv;
            my $got = $res ? $res->header($k) : undef;
            Test::More::like($got // '', qr/^$v$/, "$name - header $k like ok");
        }
    }

    my $content = $res ? $res->content : undef;
    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if (defined $block->response_body_eval) {
            $expected = eval _indexed($name, $block->response_body_eval, $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = _indexed($name, $block->response_body, $idx, $need_array);
        }
        $expected = _subst_port($expected);
        my $desc = "$name - response_body - response is expected (repeated req $rep, req $idx)";
        if (ref $expected) {
            Test::More::like($content, $expected,
                "$name - response_body - like (repeated req $rep, req $idx)");
        } else {
            is_str($content, $expected, $desc);
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $like = defined $block->response_body_like;
        my $pat = _indexed($name, $like ? $block->response_body_like
                                        : $block->response_body_unlike, $idx, $need_array);
        $pat = _subst_port($pat);
        my $summary = $content // '';
        $summary =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        $summary = substr($summary, 0, 500);
        my $type = $like ? 'like' : 'unlike';
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        if ($like) {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }
}

sub _error_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos > 0;
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub _value_contains ($$);

sub _value_contains ($$) {
    my ($v, $pat) = @_;
    return $v =~ /\Q$pat\E/ if !ref $v || ref $v eq 'Regexp';
    if (ref $v eq 'ARRAY') {
        for (@$v) { return 1 if _value_contains($_, $pat) }
    }
    return undef;
}

sub _pat_list ($) {
    my $p = shift;
    if (!ref $p) {
        chomp $p;
        return [split /\n+/, $p];
    }
    return [$p] if ref $p eq 'Regexp';
    return [@$p];
}

sub _fmt ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub _match ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
}

sub _check_error_log ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $lines;
    my %warn_on = (alert => 1, crit => 1, emerg => 1);

    if (defined(my $gp = $block->grep_error_log)) {
        $gp = $gp->[$rep] if ref $gp eq 'ARRAY';
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined\n")
            unless defined $expected;
        $expected = $expected->[$rep] if ref $expected eq 'ARRAY';
        $lines ||= _error_log_data();
        my $matched = '';
        for my $line (@$lines) {
            if (ref $gp ? $line =~ /$gp/ : $line =~ /\Q$gp\E/) {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        is_str($matched, $expected, "$name - grep_error_log_out (req $rep)");
    }

    for my $sec (qw(error_log no_error_log)) {
        my $pats = $block->$sec;
        next unless defined $pats;
        for my $lvl (keys %warn_on) {
            delete $warn_on{$lvl} if _value_contains($pats, "[$lvl");
        }
        $pats = _pat_list($pats);
        $lines ||= _error_log_data();
        if ($sec eq 'error_log') {
            for my $line (@$lines) {
                for my $pat (@$pats) {
                    next unless defined $pat;
                    if (_match($line, $pat)) {
                        Test::More::pass("$name - pattern \"$pat\" matches a line in error.log (req $rep)");
                        undef $pat;
                    }
                }
            }
            for my $pat (grep { defined } @$pats) {
                Test::More::fail("$name - pattern \"$pat\" should match a line in error.log (req $rep)");
                _diag_missing_pattern($block, $pat);
            }
        } else {
            my %found;
            for my $i (0 .. $#$lines) {
                my $line = $lines->[$i];
                for my $pat (@$pats) {
                    next unless defined $pat;
                    next unless _match($line, $pat);
                    Test::More->builder->no_ending(1) if $found{$pat}++;
                    my $end = $i + 10 < $#$lines ? $i + 10 : $#$lines;
                    Test::More::fail("$name - pattern \"" . _fmt($pat)
                        . "\" should not match any line in error.log but matches line \""
                        . _fmt($line) . "\" (req $rep)\n"
                        . join('', @$lines[$i + 1 .. $end]));
                }
            }
            for my $pat (@$pats) {
                next if $found{$pat};
                Test::More::pass("$name - pattern \"" . _fmt($pat)
                                 . "\" does not match a line in error.log (req $rep)");
            }
        }
    }

    $lines ||= _error_log_data() if %warn_on;
    for my $line (@{ $lines || [] }) {
        for my $lvl (keys %warn_on) {
            warn "WARNING: $name - " . _fmt($line) . "\n" if $line =~ /\[$lvl\]/;
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            Test::More->builder->no_ending(1);
            (my $l = $line) =~ s/\n$//;
            Test::More::fail("$name - $l\n");
        }
    }
}

our $LastStartStderr = '';

sub _diag_missing_pattern ($$) {
    my ($block, $pat) = @_;
    return unless defined $block->must_die && $LastStartStderr ne '';
    if (_match($LastStartStderr, $pat)) {
        Test::More::diag("note: this text was printed by nginx on stderr, which "
            . "Test::Nginx does not check: an nginx built with "
            . "--error-log-path=stderr (Debian) logs configuration errors only "
            . "there. See t/README.md (GraviteeTest::use_startup_error_log).");
    }
}

# -------------------------------------------------------------- the loop

sub run_tests () {
    $NginxVersion = _nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    for my $block ($NoShuffle ? Test::Base::blocks() : shuffle Test::Base::blocks()) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', $0 . ' ' . $block->name);
        run_test($block);
    }
    cleanup();
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;
    my $name = $block->name;
    %RandPorts = ();

    my ($config, $http_config, $main_config);
    if (defined $block->config) {
        ($config, $http_config, $main_config)
            = (scalar $block->config, scalar $block->http_config,
               scalar $block->main_config);
    } else {
        bail_out("$name - No '--- config' section specified and could not get previous one.\n")
            unless $PrevBlockConf;
        # the real harness keeps the previous block's nginx running
        ($config, $http_config, $main_config) = @$PrevBlockConf;
    }
    $PrevBlockConf = [$config, $http_config, $main_config];
    $config      = _expand_env($config, $name);
    $http_config = _expand_env($http_config, $name);

    bail_out("$name - Cannot find the nginx executable in the PATH environment\n")
        unless _can_run($NginxBinary);

    _stop_nginx($name);
    _setup_server_root();
    _write_user_files($block);
    _write_config_file($block, $config, $http_config, $main_config);

    $ErrLogFilePos = 0;
    $LastStartStderr = '';

    if (defined(my $must_die = $block->must_die)) {
      for my $rep (0 .. $RepeatEach - 1) {
        my $status = _exec_nginx_capturing_stderr();
        my $exit_code = $status >> 8;
        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($must_die, $exit_code, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }
        _check_error_log($block, 0);
        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it\n";
            for (1 .. 15) { last if -f $PidFile; sleep $TestNginxSleep }
            _stop_nginx($name);
        }
      }
        return;
    }

    my $waited = 0;
    my $status;
    while (1) {
        $status = _exec_nginx_capturing_stderr();
        last if $status == 0;
        # e.g. the port is still held by a previous instance
        last if $waited >= 5;
        sleep 0.2;
        $waited += 0.2;
    }
    if ($status != 0) {
        bail_out("$name - Cannot start nginx using command \"$NginxBinary -p $ServRoot/ -c $ConfFile\" "
                 . "(status code $status): $LastStartStderr\n");
    }
    for (1 .. 200) { last if -f $PidFile; sleep 0.01 }
    $RunningPid = _read_pid();
    for (1 .. 200) { last if _port_listening($ServerPort); sleep 0.01 }
    sleep $TestNginxSleep;

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    my $timeout = parse_time($block->timeout) // $Timeout;
    for my $rep (0 .. $RepeatEach - 1) {
        my @reqs = _requests_of($block);
        my $need_array = @reqs > 1;
        my $idx = 0;
        for my $packets (@reqs) {
            my $head_req = join('', @$packets) =~ /^\s*HEAD\s+/ ? 1 : 0;
            my $raw = _send_request($block, $packets,
                                    $timeout, parse_time($block->raw_request_middle_delay));
            $raw //= '';
            warn "!!! resp: [$raw]\n" if $Verbose;
            if (!defined $block->ignore_response) {
                my ($res, $raw_headers, $left) = _parse_response($name, $raw, $head_req);
                if (defined $left && length $left) {
                    (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last chunk in response: \"$l\"\n";
                }
                _check_response($block, $res, $raw_headers // '', $idx, $rep, $need_array);
            }
            if ($idx < $#reqs) {
                sleep $block->wait if $block->wait;
                _check_error_log($block, $rep);
            }
            $idx++;
        }
        sleep $block->wait if $block->wait;
        _check_error_log($block, $rep);
    }
    _stop_nginx($name);
}

# like the real harness (stdout to /dev/null, stderr not checked), but the
# stderr text is kept so that a failing must_die pattern can say where it went.
sub _exec_nginx_capturing_stderr () {
    my $errf = "$ServRoot/nginx-start.stderr";
    my $cmd = "$NginxBinary -p $ServRoot/ -c $ConfFile > /dev/null 2> $errf";
    warn "starting: $cmd\n" if $Verbose;
    system($cmd);
    my $status = $?;
    if (open my $in, '<', $errf) {
        local $/;
        $LastStartStderr = <$in> // '';
        close $in;
        unlink $errf;
    }
    # keep it visible, as the real harness leaves stderr on the console
    print STDERR $LastStartStderr if $LastStartStderr ne '';
    return $status;
}

1;
__END__

=head1 NAME

Test::Nginx::Socket - ngx_gravitee_module's small stand-in for openresty's
Test::Nginx::Socket. See t/README.md.

=cut
