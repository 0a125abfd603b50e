# Plans over HTTP/2, where an SSE stream keeps its request instead of
# detaching: the 401 comes before any SSE header, the identity reaches the
# stream's one access log record, and a stream ends when its JWT expires.

use strict;
use warnings;
use Test::More;
use File::Spec;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use GraviteeTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_821") : ();

my $dir = File::Spec->rel2abs(($where{servroot} // 't/servroot_821-plans-h2') . '_certs');
my ($crt, $key) = gen_self_signed_cert($dir);

my $secret = 'a-secret-of-thirty-two-bytes-!!!';
open my $fh, '>', "$dir/hs.secret" or die "$dir/hs.secret: $!";
print $fh "$secret\n";
close $fh;

my $conf = <<"_EOC_";
    log_format who '"\$request" \$status "\$message_proxy_close_reason" '
                   'plan=\$message_proxy_plan sub=\$message_proxy_subject';

    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1 ssl http2;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        request_pool_size 7k;
        access_log logs/who.log who;

        location /sse {
            message_proxy_plan jwt secret_file=$dir/hs.secret leeway=0s;
            message_proxy_entrypoint sse retry=1s heartbeat_interval=10s;
            message_proxy_endpoint mock interval=200ms;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where);
my $h2 = $ngx->{ports}{TEST_NGINX_RAND_PORT_1};

sub b64url {
    my $b = encode_base64(shift, '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+\z//;
    return $b;
}

sub hs256 {
    my ($claims) = @_;
    my $input = b64url('{"alg":"HS256","typ":"JWT"}') . '.' . b64url($claims);
    open my $p, '-|', 'sh', '-c',
         "printf '%s' '$input' | openssl dgst -sha256 -hmac '$secret' -binary"
        or die "openssl: $!";
    local $/;
    my $mac = <$p>;
    close $p;
    return "$input." . b64url($mac);
}

sub access_log_text {
    open my $fh, '<', "$ngx->{servroot}/logs/who.log" or return '';
    local $/;
    return <$fh>;
}

my @curl = ('curl', '-sS', '-k', '--http2', '-N',
            "-H 'Accept: text/event-stream'");

{
    my $out = `@curl -i --max-time 2 https://127.0.0.1:$h2/sse 2>&1`;
    like($out, qr{\AHTTP/2 401 \r\n}, 'HTTP/2 without a token: 401');
    unlike($out, qr{text/event-stream}, 'HTTP/2: no SSE header for it');
    unlike($out, qr{data:}, 'HTTP/2: no event either');
}

{
    my $exp = time + 3;
    my $token = hs256(sprintf '{"sub":"carol","exp":%d}', $exp);
    my $t0 = time;
    my $out = `@curl -H 'Authorization: Bearer $token' --max-time 8 https://127.0.0.1:$h2/sse 2>&1`;
    my $took = time - $t0;
    like($out, qr/data: mock message/, 'HTTP/2 with a token: events');
    like($out, qr/event: error\ndata: \{"message":"Token expired","http_status_code":401\}\n\n\z/,
         'HTTP/2: at exp the stream says the token expired, last');
    ok($took < 6, sprintf('HTTP/2: and ends then (%.1f s, exp in 3)', $took));
    ok($took > 1.5, 'HTTP/2: not before exp');
    ok(wait_for_error_log($ngx, qr/gravitee sse closed: .* reason="credential expired"/, 3),
       'HTTP/2: the close record says why');
    like(access_log_text(), qr{^"GET /sse HTTP/2.0" 200 "credential expired" plan=jwt sub=carol$}m,
         "HTTP/2: the stream's access log record has the identity");
}

stop_nginx($ngx);

done_testing();
