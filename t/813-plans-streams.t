# Plans on streams and over TLS, with scripted clients: SSE and WebSocket
# callers refused before the upgrade (401, no 101, no event stream); the
# identity variables in the access log, also in the end record of a
# detached stream; a stream that ends when its token expires (SSE "event:
# error", WebSocket close 1008); leeway; mTLS with ssl_verify_client
# optional and optional_no_ca; a keys file read again at reload only; and
# no credential anywhere in the error log.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use GraviteeTest;
use PlanTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_813") : ();
my $p = make_plan_files(($where{servroot} // 't/servroot_813_plans_streams') . '_files');
my $d = $p->{dir};
my ($MTLS, $NOCA) = (2986, 2987);

api_keys_write("$d/keys.txt", [['key-one', 'app-one'], ['key-two']]);
fingerprints_write("$d/fp.txt", [$p->{client1_crt}]);

my @secrets = qw(key-one key-two key-new zz-unknown-813);   # never in the log

sub now { return int CORE::time() }

sub rs {
    my %c = (sub => 'alice', azp => 'app-1', exp => now() + 3600, @_);
    delete @c{ grep { !defined $c{$_} } keys %c };
    my $t = jwt_sign(alg => 'RS256', key => $p->{rsa_key}, claims => \%c);
    push @secrets, (split /\./, $t)[1, 2];
    return $t;
}

my $streams = <<'_EOC_';
            message_proxy_entrypoint http-get messages_limit_count=1;
            message_proxy_entrypoint sse retry=1s;
            message_proxy_entrypoint websocket;
            message_proxy_entrypoint http-post;
_EOC_

my $conf = <<"_EOC_";
    log_format plans '\$uri \$status plan=\$message_proxy_plan app=\$message_proxy_application '
                     'sub=\$message_proxy_subject reason="\$message_proxy_close_reason"';
    access_log logs/plans.log plans;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /jwt {
            message_proxy_plan jwt public_key=$p->{rsa_pub};
$streams            message_proxy_endpoint mock interval=100ms;
        }
        location /jwt0 {
            message_proxy_plan jwt public_key=$p->{rsa_pub} leeway=0s;
$streams            message_proxy_endpoint mock interval=300ms;
        }
        location /ak {
            message_proxy_plan api_key keys=$d/keys.txt;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
        location /kl {
            message_proxy_plan keyless;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
    }

    server {
        listen 127.0.0.1:$MTLS ssl;
        ssl_certificate $p->{server_crt};
        ssl_certificate_key $p->{server_key};
        ssl_client_certificate $p->{ca_crt};
        ssl_verify_client optional;

        location /mtls {
            message_proxy_plan mtls fingerprints=$d/fp.txt;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
        location /mtls-any {
            message_proxy_plan mtls;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
        location /mtls-kl {
            message_proxy_plan mtls fingerprints=$d/fp.txt;
            message_proxy_plan keyless;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
        location /mtls-ak {
            message_proxy_plan mtls fingerprints=$d/fp.txt;
            message_proxy_plan api_key keys=$d/keys.txt;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
    }

    server {
        listen 127.0.0.1:$NOCA ssl;
        ssl_certificate $p->{server_crt};
        ssl_certificate_key $p->{server_key};
        ssl_client_certificate $p->{ca_crt};
        ssl_verify_client optional_no_ca;

        location /mtls {
            message_proxy_plan mtls fingerprints=$d/fp.txt;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
        location /mtls-any {
            message_proxy_plan mtls;
$streams            message_proxy_endpoint mock interval=50ms count=2;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where, log_level => 'info');
my $port = $ngx->{port};

# --- small clients -------------------------------------------------------------

sub access_lines {
    open my $in, '<', "$ngx->{servroot}/logs/plans.log" or return ();
    return map { chomp; $_ } <$in>;
}

# the access log record of $uri that matches $qr, waiting for it
sub wait_access {
    my ($qr, $timeout) = @_;
    my $deadline = CORE::time() + ($timeout // 3);
    while (1) {
        my @l = grep { $_ =~ $qr } access_lines();
        return $l[-1] if @l;
        return undef if CORE::time() > $deadline;
        sleep 0.05;
    }
}

sub refused_log {
    my ($off, $key, $reason) = @_;
    my $r = defined $reason ? qr/(?=.*\breason="\Q$reason\E")/ : qr//;
    return wait_for_error_log($ngx, qr/\[info\] (?=.*\bkey=$key\b)$r/, 3, $off);
}

sub get {
    my ($path, @h) = @_;
    return http_exchange($port, join("\r\n", "GET $path HTTP/1.0", 'Host: localhost', @h, '', ''), 3);
}

sub sse_open {
    my ($sock, $path, @h) = @_;
    print $sock join "\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                             'Accept: text/event-stream', @h, '', '';
    return $sock;
}

sub ws_open {
    my ($sock, $path, @h) = @_;
    print $sock join "\r\n", "GET $path HTTP/1.1", 'Host: localhost', 'Upgrade: websocket',
        'Connection: Upgrade', 'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', @h, '', '';
    my $head = read_head($sock, 3);
    return ($sock, $head);
}

sub close_frame {
    my $sock = shift;
    while (my $f = ws_read_frame($sock, shift // 3)) {
        return $f if $f->{opcode} == 8;
    }
    return undef;
}

sub ws_bye {
    my $sock = shift;
    print $sock ws_frame(8, pack('n', 1000));
    read_until($sock, undef, 1);
    close $sock;
}

sub bearer { return 'Authorization: Bearer ' . shift }

# --- refused before the upgrade -------------------------------------------------

{
    my $off = error_log_size($ngx);
    my $s = sse_open(tcp_connect($port), '/jwt', 'Accept: application/json');
    my $r = read_until($s, undef, 2);
    like($r, qr{\AHTTP/1\.1 401 }, 'SSE without a token: 401');
    unlike($r, qr{text/event-stream}i, 'SSE without a token: no event stream');
    unlike($r, qr{^retry:|^id: }m, 'SSE without a token: no event');
    ok(refused_log($off, 'JWT_MISSING_TOKEN'), 'SSE without a token: the refusal is logged');
    unlike(error_log_text($ngx, $off), qr/gravitee stream closed/, 'SSE refused: no stream was opened');
    like(wait_access(qr{^/jwt 401 }) // '', qr{^/jwt 401 plan=- app=- sub=- }, 'SSE refused: access log, no identity');
}

{
    my $off = error_log_size($ngx);
    my $bad = jwt_sign(alg => 'RS256', key => $p->{rsa2_key}, claims => { sub => 'eve' });
    push @secrets, (split /\./, $bad)[1, 2];
    my $s = sse_open(tcp_connect($port), "/jwt?access_token=$bad");
    my $r = read_until($s, undef, 2);
    like($r, qr{\AHTTP/1\.1 401 }, 'SSE with a bad access_token: 401');
    unlike($r, qr{text/event-stream}i, 'SSE with a bad access_token: no event stream');
    ok(refused_log($off, 'JWT_INVALID_TOKEN', 'bad signature'), 'SSE bad token: logged');
}

{
    my $off = error_log_size($ngx);
    my ($s, $head) = ws_open(tcp_connect($port), '/jwt', bearer(rs(exp => now() - 3600)));
    like($head, qr{\AHTTP/1\.1 401 }, 'WebSocket with an expired token: 401');
    unlike($head, qr{\AHTTP/1\.1 101}, 'WebSocket with an expired token: no 101');
    unlike($head, qr{^Upgrade:}mi, 'WebSocket refused: no Upgrade header');
    unlike($head, qr{^Sec-WebSocket-Accept:}mi, 'WebSocket refused: no Sec-WebSocket-Accept');
    ok(refused_log($off, 'JWT_INVALID_TOKEN', 'token expired'), 'WebSocket expired token: logged');
    unlike(error_log_text($ngx, $off), qr/gravitee stream closed/, 'WebSocket refused: no stream was opened');
}

{
    my $off = error_log_size($ngx);
    my ($s, $head) = ws_open(tcp_connect($port), '/ak', 'X-Gravitee-Api-Key: zz-unknown-813');
    like($head, qr{\AHTTP/1\.1 401 }, 'WebSocket with an unknown key: 401');
    ok(refused_log($off, 'API_KEY_INVALID'), 'WebSocket unknown key: logged');
    ($s, $head) = ws_open(tcp_connect($port), '/kl', 'X-Gravitee-Api-Key: key-one');
    like($head, qr{\AHTTP/1\.1 401 }, 'WebSocket on keyless with a stray key: 401');
}

# --- let in: the identity in the access log, at the end of the stream -------------

{
    my $s = sse_open(tcp_connect($port), '/jwt', bearer(rs()));
    my $got = read_until($s, qr/id: 1\n/, 3);
    like($got, qr{\AHTTP/1\.1 200 }, 'SSE with a good token: 200');
    like($got, qr{Content-Type: text/event-stream}, 'SSE with a good token: an event stream');
    like($got, qr/id: 0\nevent: message\ndata: mock message\n/, 'SSE with a good token: events');
    close $s;
    like(wait_access(qr{^/jwt 200 .*client closed}) // 'none',
         qr{^/jwt 200 plan=jwt app=app-1 sub=alice reason="client closed"$},
         'SSE: the end record has the identity');
}

{
    my $s = sse_open(tcp_connect($port), '/jwt?access_token=' . rs(sub => 'bob', azp => 'web'));
    my $got = read_until($s, qr/id: 0\n/, 3);
    like($got, qr/id: 0\nevent: message\n/, 'SSE with access_token (what EventSource can send)');
    close $s;
    like(wait_access(qr{sub=bob}) // 'none', qr{^/jwt 200 plan=jwt app=web sub=bob },
         'SSE access_token: identity in the access log');
}

{
    my $s = sse_open(tcp_connect($port), '/ak', 'X-Gravitee-Api-Key: key-one');
    my $got = read_until($s, qr/\r\n0\r\n\r\n/, 3);
    like($got, qr/id: 1\nevent: message\n/, 'SSE with a key: the two events, then the end');
    like(wait_access(qr{^/ak 200 .*endpoint ended}) // 'none',
         qr{^/ak 200 plan=api_key app=app-one sub=- reason="endpoint ended"$},
         'SSE api_key, detached stream: identity in the end record');
}

{
    my ($s, $head) = ws_open(tcp_connect($port), '/ak', 'X-Gravitee-Api-Key: key-two');
    like($head, qr{\AHTTP/1\.1 101 }, 'WebSocket with a key: 101');
    my $f = ws_read_frame($s);
    is($f && $f->{payload}, 'mock message', 'WebSocket with a key: a message');
    my $c = close_frame($s);
    is($c && unpack('n', $c->{payload}), 1000, 'WebSocket: the endpoint ended, close 1000');
    ws_bye($s);
    like(wait_access(qr{^/ak 101 .*endpoint ended}) // 'none',
         qr{^/ak 101 plan=api_key app=- sub=- reason="endpoint ended"$},
         'WebSocket api_key without application: the end record');
}

{
    my ($s, $head) = ws_open(tcp_connect($port), '/kl');
    like($head, qr{\AHTTP/1\.1 101 }, 'WebSocket keyless: 101');
    close_frame($s);
    ws_bye($s);
    like(wait_access(qr{^/kl 101 .*endpoint ended}) // 'none',
         qr{^/kl 101 plan=keyless app=- sub=- reason="endpoint ended"$},
         'WebSocket keyless: the end record');
}

{
    my ($s, $head) = ws_open(tcp_connect($port), '/jwt', bearer(rs(sub => 'carol', azp => 'ws-app')));
    like($head, qr{\AHTTP/1\.1 101 }, 'WebSocket with a token: 101');
    my $f = ws_read_frame($s);
    is($f && $f->{payload}, 'mock message', 'WebSocket with a token: a message');
    print $s ws_frame(1, 'from carol');
    ok(wait_for_error_log($ngx, 'Received message: from carol'), 'WebSocket with a token: publishes');
    ws_bye($s);
    like(wait_access(qr{sub=carol reason="client}) // 'none',
         qr{^/jwt 101 plan=jwt app=ws-app sub=carol reason="client closed[^"]*"$},
         'WebSocket jwt: the end record has the identity');
}

{
    my $r = get('/jwt', bearer(rs(sub => 'dave', azp => undef)));
    like($r, qr{\AHTTP/1\.1 200 }, 'http-get with a token: 200');
    like(wait_access(qr{sub=dave}) // 'none', qr{^/jwt 200 plan=jwt app=- sub=dave }, 'http-get: no azp, app -');
}

# --- leeway -----------------------------------------------------------------------

{
    like(get('/jwt', bearer(rs(exp => now() - 10))), qr{\AHTTP/1\.1 200 },
         'default leeway 30s: expired 10 s ago is still in');
    like(get('/jwt', bearer(rs(nbf => now() + 10))), qr{\AHTTP/1\.1 200 },
         'default leeway: nbf 10 s ahead is in');
    like(get('/jwt', bearer(rs(iat => now() + 10))), qr{\AHTTP/1\.1 200 },
         'default leeway: iat 10 s ahead is in');
    my $off = error_log_size($ngx);
    like(get('/jwt', bearer(rs(exp => now() - 60))), qr{\AHTTP/1\.1 401 },
         'default leeway: expired 60 s ago is out');
    ok(refused_log($off, 'JWT_INVALID_TOKEN', 'token expired'), 'expired 60 s ago: token expired');
    $off = error_log_size($ngx);
    like(get('/jwt0', bearer(rs(nbf => now() + 10))), qr{\AHTTP/1\.1 401 },
         'leeway=0s: nbf 10 s ahead is out');
    ok(refused_log($off, 'JWT_INVALID_TOKEN', 'not yet valid'), 'leeway=0s: not yet valid');
    $off = error_log_size($ngx);
    like(get('/jwt0', bearer(rs(iat => now() + 10))), qr{\AHTTP/1\.1 401 },
         'leeway=0s: iat 10 s ahead is out');
    ok(refused_log($off, 'JWT_INVALID_TOKEN', 'issued in the future'), 'leeway=0s: issued in the future');
}

# --- a stream ends when its token expires ------------------------------------------------

{
    my $exp = now() + 3;
    my $s = sse_open(tcp_connect($port), '/jwt0', bearer(rs(sub => 'erin', exp => $exp)));
    my $got = read_until($s, qr/\r\n0\r\n\r\n/, 8);
    my $ended = Time::HiRes::time();
    like($got, qr/id: 0\nevent: message\ndata: mock message\n\n/, 'SSE until exp: events first');
    like($got, qr/\nevent: error\ndata: \{"message":"Token expired","http_status_code":401\}\n\n/,
         'SSE at exp: event error "Token expired"');
    unlike($got, qr/Token expired.*event: message/s, 'SSE: no event after the error');
    like($got, qr/\r\n0\r\n\r\n\z/, 'SSE: then the stream ends');
    ok($ended >= $exp - 0.01 && $ended <= $exp + 2,
       sprintf('SSE: ended at exp (%+.3f s), not before', $ended - $exp));
    like(wait_access(qr{sub=erin reason="(?!-")}) // 'none', qr{^/jwt0 200 plan=jwt app=app-1 sub=erin reason="credential expired"$},
         'SSE expired: the end record says credential expired');
    close $s;
}

{
    my $exp = now() + 3;
    my ($s, $head) = ws_open(tcp_connect($port), '/jwt0', bearer(rs(sub => 'frank', exp => $exp)));
    like($head, qr{\AHTTP/1\.1 101 }, 'WebSocket until exp: 101');
    my $c = close_frame($s, 8);
    my $ended = Time::HiRes::time();
    ok($c, 'WebSocket at exp: a close frame');
    is($c && unpack('n', $c->{payload}), 1008, 'WebSocket at exp: close 1008');
    is($c && substr($c->{payload}, 2), 'Token expired', 'WebSocket at exp: reason "Token expired"');
    ok($ended >= $exp - 0.01 && $ended <= $exp + 2,
       sprintf('WebSocket: closed at exp (%+.3f s), not before', $ended - $exp));
    ws_bye($s);
    like(wait_access(qr{sub=frank reason="(?!-")}) // 'none', qr{^/jwt0 101 plan=jwt app=app-1 sub=frank reason="credential expired"$},
         'WebSocket expired: the end record says credential expired');
}

{
    # a token without exp keeps its stream
    my $s = sse_open(tcp_connect($port), '/jwt0', bearer(rs(sub => 'gina', exp => undef)));
    my $got = read_until($s, qr/id: 5\n/, 4);
    like($got, qr/id: 5\n/, 'SSE, no exp: the stream goes on');
    unlike($got, qr/event: error/, 'SSE, no exp: no error');
    close $s;
}

# --- mTLS ---------------------------------------------------------------------------

my %one = (cert => $p->{client1_crt}, key => $p->{client1_key}, ca => $p->{ca_crt});
my %two = (cert => $p->{client2_crt}, key => $p->{client2_key}, ca => $p->{ca_crt});
my %other = (cert => $p->{other_crt}, key => $p->{other_key}, ca => $p->{ca_crt});
my %nocert = (ca => $p->{ca_crt});

sub tls_get {
    my ($port, $path, $opts, @h) = @_;
    return https_exchange($port, join("\r\n", "GET $path HTTP/1.0", 'Host: localhost', @h, '', ''),
                          %$opts, timeout => 3);
}

{
    my $r = tls_get($MTLS, '/mtls', \%one);
    like($r, qr{\AHTTP/1\.1 200 }, 'mTLS: app-one, in the list: 200');
    like($r, qr/mock message/, 'mTLS: app-one gets the message');
    like(wait_access(qr{^/mtls 200 plan=mtls}) // 'none',
         qr{^/mtls 200 plan=mtls app=CN=app-one,O=Test sub=CN=app-one,O=Test },
         'mTLS: application and subject are the DN');

    my $off = error_log_size($ngx);
    $r = tls_get($MTLS, '/mtls', \%two);
    like($r, qr{\AHTTP/1\.1 401 }, 'mTLS: app-two, verified but not in the list: 401');
    ok(refused_log($off, 'CLIENT_CERTIFICATE_INVALID'), 'mTLS: CLIENT_CERTIFICATE_INVALID');

    $r = tls_get($MTLS, '/mtls-any', \%two);
    like($r, qr{\AHTTP/1\.1 200 }, 'mTLS without a list: any verified certificate');
    like(wait_access(qr{^/mtls-any 200 }) // 'none', qr{app=CN=app-two,O=Test sub=CN=app-two,O=Test },
         'mTLS without a list: app-two\'s DN');

    $off = error_log_size($ngx);
    $r = tls_get($MTLS, '/mtls', \%nocert);
    like($r, qr{\AHTTP/1\.1 401 }, 'mTLS: no certificate: 401');
    ok(refused_log($off, 'CLIENT_CERTIFICATE_MISSING'), 'mTLS: CLIENT_CERTIFICATE_MISSING');

    $off = error_log_size($ngx);
    $r = tls_get($MTLS, '/mtls-any', \%other);
    like($r, qr{\AHTTP/1\.1 400 }, 'ssl_verify_client optional, another CA: NGINX\'s own 400');
    unlike($r, qr/mock message/, 'another CA: no message');

    # http-post: publishes for a listed certificate, not for another
    $r = https_exchange($MTLS, "POST /mtls HTTP/1.0\r\nHost: localhost\r\n"
                        . "Content-Length: 5\r\n\r\nhello", %one, timeout => 3);
    like($r, qr{\AHTTP/1\.1 20[0-2] }, 'mTLS POST, app-one: published');
    like(wait_access(qr{^/mtls 20[0-2] plan=mtls}) // 'none', qr{app=CN=app-one,O=Test },
         'mTLS POST: the identity in the access log');
    $off = error_log_size($ngx);
    $r = https_exchange($MTLS, "POST /mtls HTTP/1.0\r\nHost: localhost\r\n"
                        . "Content-Length: 5\r\n\r\nhello", %two, timeout => 3);
    like($r, qr{\AHTTP/1\.1 401 }, 'mTLS POST, app-two: 401');
    ok(refused_log($off, 'CLIENT_CERTIFICATE_INVALID'), 'mTLS POST, app-two: CLIENT_CERTIFICATE_INVALID');

    $r = tls_get($MTLS, '/mtls-kl', \%nocert);
    like($r, qr{\AHTTP/1\.1 200 }, 'mtls + keyless, no certificate: keyless');
    like(wait_access(qr{^/mtls-kl 200 plan=keyless}) // 'none', qr{app=- sub=- }, 'mtls + keyless: keyless identity');
    $r = tls_get($MTLS, '/mtls-kl', \%one);
    like($r, qr{\AHTTP/1\.1 200 }, 'mtls + keyless, app-one: 200');
    ok(wait_access(qr{^/mtls-kl 200 plan=mtls app=CN=app-one,O=Test }), 'mtls + keyless, app-one: mtls');
    $off = error_log_size($ngx);
    $r = tls_get($MTLS, '/mtls-kl', \%two);
    like($r, qr{\AHTTP/1\.1 401 }, 'mtls + keyless, app-two (not listed): 401, not keyless');
    ok(refused_log($off, 'CLIENT_CERTIFICATE_INVALID'), 'mtls + keyless, app-two: CLIENT_CERTIFICATE_INVALID');

    $r = tls_get($MTLS, '/mtls-ak', \%one);
    like($r, qr{\AHTTP/1\.1 200 }, 'mtls + api_key, a certificate and no key: 200');
    ok(wait_access(qr{^/mtls-ak 200 plan=mtls }), 'mtls + api_key, no key: mtls');
    $r = tls_get($MTLS, '/mtls-ak', \%one, 'X-Gravitee-Api-Key: key-one');
    like($r, qr{\AHTTP/1\.1 200 }, 'mtls + api_key, a certificate and a key: 200');
    ok(wait_access(qr{^/mtls-ak 200 plan=api_key app=app-one }), 'mtls + api_key: the API key decides first');
    $off = error_log_size($ngx);
    $r = tls_get($MTLS, '/mtls-ak', \%one, 'X-Gravitee-Api-Key: zz-unknown-813');
    like($r, qr{\AHTTP/1\.1 401 }, 'mtls + api_key, a good certificate and a bad key: 401');
    ok(refused_log($off, 'API_KEY_INVALID'), 'a bad key is not saved by the certificate');

    # optional_no_ca: NGINX lets an unverified certificate through to the access phase
    $off = error_log_size($ngx);
    $r = tls_get($NOCA, '/mtls-any', \%other);
    like($r, qr{\AHTTP/1\.1 401 }, 'optional_no_ca, another CA, no list: 401');
    ok(refused_log($off, 'CLIENT_CERTIFICATE_(?:INVALID|MISSING)'), 'optional_no_ca, another CA: a certificate refusal');
    $r = tls_get($NOCA, '/mtls', \%other);
    like($r, qr{\AHTTP/1\.1 401 }, 'optional_no_ca, another CA with app-one\'s DN: 401');
    $r = tls_get($NOCA, '/mtls', \%one);
    like($r, qr{\AHTTP/1\.1 200 }, 'optional_no_ca, app-one: 200');
}

{
    # a detached SSE stream over mutual TLS: the DN in its end record
    my $s = sse_open(https_connect($MTLS, %one), '/mtls');
    my $got = read_until($s, qr/\r\n0\r\n\r\n/, 3);
    like($got, qr/id: 1\nevent: message\n/, 'mTLS SSE: the events');
    like(wait_access(qr{^/mtls 200 .*endpoint ended}) // 'none',
         qr{^/mtls 200 plan=mtls app=CN=app-one,O=Test sub=CN=app-one,O=Test reason="endpoint ended"$},
         'mTLS SSE: the end record has the DN');
    close $s;

    my ($ws, $head) = ws_open(https_connect($MTLS, %two), '/mtls');
    like($head, qr{\AHTTP/1\.1 401 }, 'mTLS WebSocket, app-two not listed: 401 before the upgrade');
    ($ws, $head) = ws_open(https_connect($MTLS, %one), '/mtls');
    like($head, qr{\AHTTP/1\.1 101 }, 'mTLS WebSocket, app-one: 101');
    close_frame($ws);
    ws_bye($ws);
    like(wait_access(qr{^/mtls 101 .*endpoint ended}) // 'none',
         qr{plan=mtls app=CN=app-one,O=Test sub=CN=app-one,O=Test reason="endpoint ended"$},
         'mTLS WebSocket: the end record has the DN');
}

# --- the keys file is read at start and at reload only -----------------------------------

{
    api_keys_write("$d/keys.txt", [['key-one', 'app-one'], ['key-two'], ['key-new', 'app-new']]);
    like(get('/ak', 'X-Gravitee-Api-Key: key-new'), qr{\AHTTP/1\.1 401 },
         'a key added to the file: refused until reload');
    my @old = worker_pids($ngx);
    ok(scalar reload_nginx($ngx), 'reload');
    # the old worker answers until it has closed its listening socket
    my $deadline = CORE::time() + 5;
    sleep 0.05 while grep({ kill 0, $_ } @old) && CORE::time() < $deadline;
    like(get('/ak', 'X-Gravitee-Api-Key: key-new'), qr{\AHTTP/1\.1 200 }, 'after reload: the new key is in');
    ok(wait_access(qr{^/ak 200 plan=api_key app=app-new }), 'after reload: with its application');
}

# --- no credential anywhere in the error log ------------------------------------------------

{
    my $log = error_log_text($ngx);
    my @found = grep { index($log, $_) >= 0 } @secrets;
    is_deeply(\@found, [], 'no token, key or signature in the error log (level info)');
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert, crit or emerg');
}

stop_nginx($ngx);
done_testing;
