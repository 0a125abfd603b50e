# Plans, JWT (/work plans spec, "JWT"): every algorithm, the token in the
# Authorization header or the access_token query arg, the reasons a token
# is refused (each one a line at info with its key and reason, never the
# token), alg= lists, JWKS with kid, require=, client_id_claim=, on the
# http-get and http-post entrypoints of the Mock.  The identity variables
# are sent back with add_header ... always.  Streams: t/813-plans-streams.t.

use strict;
use warnings;
use File::Spec ();
use lib 't/lib';
use GraviteeTest ();
use PlanTest ();

our (%tok, $CONF, $P);

BEGIN {
    GraviteeTest::use_startup_error_log();

    my $dir = File::Spec->rel2abs(($ENV{TEST_NGINX_SERVROOT} || 't/servroot')
                                  . '_810_files');
    $P = PlanTest::make_keys($dir);
    $ENV{TEST_NGINX_PLANS} = $dir;

    PlanTest::jwks_write("$dir/jwks.json", [
        { pub => $P->{rsa_pub}, kid => 'rsa-1', alg => 'RS256' },
        { pub => $P->{rsa2_pub}, kid => 'rsa-2' },
        { pub => $P->{ec256_pub}, kid => 'ec-1' },
        { pub => $P->{ed_pub}, kid => 'ed-1' },
        { secret => $P->{hmac}, kid => 'hs-1', alg => 'HS256' },
    ]);

    my $now = time;
    my %c = (sub => 'alice', azp => 'app-1', iat => $now - 60, exp => $now + 3600);
    my $hs = sub { PlanTest::jwt_sign(alg => 'HS256', secret => $P->{hmac}, @_) };
    my $rs = sub { PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa_key}, @_) };
    my %with = (claims => \%c);

    %tok = (
        hs        => $hs->(%with),
        hs_nl     => PlanTest::jwt_sign(alg => 'HS256', secret => "$P->{hmac}\n", %with),
        hs384     => PlanTest::jwt_sign(alg => 'HS384', secret => $P->{hmac}, %with),
        hs512     => PlanTest::jwt_sign(alg => 'HS512', secret => $P->{hmac}, %with),
        rs        => $rs->(%with),
        rs384     => PlanTest::jwt_sign(alg => 'RS384', key => $P->{rsa_key}, %with),
        rs512     => PlanTest::jwt_sign(alg => 'RS512', key => $P->{rsa_key}, %with),
        ps256     => PlanTest::jwt_sign(alg => 'PS256', key => $P->{rsa_key}, %with),
        es256     => PlanTest::jwt_sign(alg => 'ES256', key => $P->{ec256_key}, %with),
        es384     => PlanTest::jwt_sign(alg => 'ES384', key => $P->{ec384_key}, %with),
        ed        => PlanTest::jwt_sign(alg => 'EdDSA', key => $P->{ed_key}, %with),
        rs_bad    => PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa2_key}, %with),
        es_bad    => PlanTest::jwt_sign(alg => 'ES256', key => $P->{ec384_key} , %with,
                                        sign_alg => 'ES384'),
        expired   => $rs->(claims => { %c, exp => $now - 3600 }),
        nbf       => $rs->(claims => { %c, nbf => $now + 3600 }),
        nbf_past  => $rs->(claims => { %c, nbf => $now - 3600 }),
        iat       => $rs->(claims => { %c, iat => $now + 3600 }),
        no_exp    => $rs->(claims => { sub => 'bob' }),
        exp_text  => $rs->(claims => { %c, exp => '' . ($now + 3600) }),
        nbf_text  => $rs->(claims => { %c, nbf => 'yesterday' }),
        exp5      => $rs->(claims => { %c, exp => $now - 5 }),
        aud       => $rs->(claims => { %c, aud => 'orders' }),
        aud_list  => $rs->(claims => { %c, aud => ['billing', 'orders'] }),
        aud_other => $rs->(claims => { %c, aud => 'orders-eu' }),
        aud_iss   => $rs->(claims => { %c, aud => 'orders', iss => 'https://issuer.test' }),
        cid       => $rs->(claims => { %c, client_id => 'cid-9' }),
        none      => PlanTest::jwt_sign(alg => 'none', %with),
        none_sig  => PlanTest::jwt_sign(alg => 'none', sign_alg => 'HS256', secret => $P->{hmac},
                                        %with),
        confusion => PlanTest::jwt_sign(alg => 'HS256', secret => PlanTest::slurp($P->{rsa_pub}),
                                        %with),
        crit      => $rs->(%with, header => { crit => ['exp'] }),
        huge      => PlanTest::jwt_sized(16385, alg => 'RS256', key => $P->{rsa_key}, %with),
        max       => PlanTest::jwt_sized(16384, alg => 'RS256', key => $P->{rsa_key}, %with),
        not_b64   => PlanTest::jwt_not_base64url(alg => 'RS256', key => $P->{rsa_key}, %with),
        padded    => PlanTest::jwt_padded(alg => 'RS256', key => $P->{rsa_key}, %with),
        array     => $rs->(payload_json => '["alice"]'),
        bad_json  => $rs->(payload_json => '{"sub":"alice","exp":'),
        bad_header => $rs->(header_json => '{"alg":"RS256",'),
        # JWKS
        k_rsa1    => $rs->(%with, kid => 'rsa-1'),
        k_rsa2    => PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa2_key}, %with, kid => 'rsa-2'),
        k_rsa1_by2 => PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa2_key}, %with, kid => 'rsa-1'),
        k_unknown => $rs->(%with, kid => 'rsa-9'),
        k_nokid2  => PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa2_key}, %with),
        k_ec      => PlanTest::jwt_sign(alg => 'ES256', key => $P->{ec256_key}, %with, kid => 'ec-1'),
        k_ec_nokid => PlanTest::jwt_sign(alg => 'ES256', key => $P->{ec256_key}, %with),
        k_ed      => PlanTest::jwt_sign(alg => 'EdDSA', key => $P->{ed_key}, %with, kid => 'ed-1'),
        k_hs      => $hs->(%with, kid => 'hs-1'),
        k_hs_as_rsa => PlanTest::jwt_sign(alg => 'HS256', secret => PlanTest::slurp($P->{rsa_pub}),
                                          %with, kid => 'rsa-1'),
        k_wrong_alg => PlanTest::jwt_sign(alg => 'RS384', key => $P->{rsa_key}, %with, kid => 'rsa-1'),
        k_ec_as_rs => PlanTest::jwt_sign(alg => 'RS256', key => $P->{rsa_key}, %with, kid => 'ec-1'),
    );
    $tok{tampered}    = PlanTest::jwt_tamper($tok{rs}, claims => { %c, sub => 'mallory' });
    $tok{trunc_seg}   = PlanTest::jwt_truncate($tok{rs});
    $tok{trunc_sig}   = PlanTest::jwt_truncate($tok{rs}, how => 'signature');
    $tok{trunc_pay}   = PlanTest::jwt_truncate($tok{rs}, how => 'payload');
    $tok{hs_odd_bits} = PlanTest::jwt_non_canonical($tok{hs});

    my $api = <<'_EOC_';
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_entrypoint http-post;
        message_proxy_endpoint mock interval=10ms count=1;
_EOC_
    my @loc = (
        '/hs'       => 'jwt secret_file=$TEST_NGINX_PLANS/hmac.secret',
        '/hs384'    => 'jwt secret_file=$TEST_NGINX_PLANS/hmac.secret alg=HS384',
        '/hs512'    => 'jwt secret_file=$TEST_NGINX_PLANS/hmac.secret alg=HS512,HS256',
        '/rs'       => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub',
        '/rs-all'   => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub alg=RS256,RS384,RS512,PS256',
        '/rs384'    => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub alg=RS384',
        '/es256'    => 'jwt public_key=$TEST_NGINX_PLANS/ec256.pub',
        '/es384'    => 'jwt public_key=$TEST_NGINX_PLANS/ec384.pub',
        '/ed'       => 'jwt public_key=$TEST_NGINX_PLANS/ed.pub',
        '/jwks'     => 'jwt jwks_file=$TEST_NGINX_PLANS/jwks.json',
        '/aud'      => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub require=aud:orders',
        '/aud-iss'  => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub require=aud:orders'
                       . ' require=iss:https://issuer.test',
        '/strict'   => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub leeway=0s',
        '/cid'      => 'jwt public_key=$TEST_NGINX_PLANS/rsa.pub client_id_claim=client_id',
    );
    $CONF = <<'_EOC_';
    large_client_header_buffers 4 32k;
    add_header X-Plan $message_proxy_plan always;
    add_header X-App $message_proxy_application always;
    add_header X-Sub $message_proxy_subject always;
_EOC_
    while (my ($path, $plan) = splice @loc, 0, 2) {
        $CONF .= "    location $path {\n        message_proxy_plan $plan;\n$api    }\n";
    }
    $CONF .= <<"_EOC_";
    location /two {
        message_proxy_plan jwt secret_file=\$TEST_NGINX_PLANS/hmac.secret;
        message_proxy_plan jwt public_key=\$TEST_NGINX_PLANS/ec256.pub;
$api    }
_EOC_
}

# a refusal line: at info, with the key, and the reason when given
sub refusal {
    my ($key, $reason) = @_;
    my $r = defined $reason ? qr/(?=.*\breason="\Q$reason\E")/ : qr//;
    return qr/\[info\] (?=.*\bkey=\Q$key\E\b)$r/;
}

# what must never be in the log: the token, its payload and its signature
sub never {
    my @p = grep { length > 8 } split /\./, shift;
    return @p;
}

sub bearer { return "Authorization: Bearer $tok{$_[0]}\n" . ($_[1] // '') }

use Test::Nginx::Socket 'no_plan';

log_level('info');
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => $CONF) unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: HS256 in the Authorization header: in, identity from azp and sub
--- request
GET /hs
--- more_headers eval
::bearer('hs')
--- error_code: 200
--- response_body_like: content: mock message
--- response_headers
X-Plan: jwt
X-App: app-1
X-Sub: alice
--- no_error_log
key=
[error]



=== TEST 2: the same token as the access_token query arg
--- request eval
"GET /hs?access_token=$::tok{hs}"
--- error_code: 200
--- response_body_like: content: mock message
--- response_headers
X-Plan: jwt
X-Sub: alice
--- no_error_log
key=



=== TEST 3: http-post with a good token publishes
--- request
POST /hs
hello plans
--- more_headers eval
::bearer('hs')
--- error_code: 202
--- error_log
Received message: hello plans
--- no_error_log
key=



=== TEST 4: no token: 401 JWT_MISSING_TOKEN, JSON for application/json
--- request
GET /hs
--- more_headers
Accept: application/json
--- error_code: 401
--- response_body chomp
{"message":"Unauthorized","http_status_code":401}
--- response_headers
Content-Type: application/json
--- error_log eval
::refusal('JWT_MISSING_TOKEN')



=== TEST 5: the rejection is JSON for */* too
--- request
GET /hs
--- more_headers
Accept: */*
--- error_code: 401
--- response_body chomp
{"message":"Unauthorized","http_status_code":401}
--- response_headers
Content-Type: application/json



=== TEST 6: and text/plain "Unauthorized" for Accept: text/plain
--- request
GET /hs
--- more_headers
Accept: text/plain
--- error_code: 401
--- response_body chomp
Unauthorized
--- response_headers
Content-Type: text/plain



=== TEST 7: no Accept header at all: text, as every error of the module
--- request
GET /hs
--- error_code: 401
--- response_body chomp
Unauthorized
--- response_headers
Content-Type: text/plain



=== TEST 8: a refused POST publishes nothing
--- request
POST /hs
not for you
--- error_code: 401
--- error_log eval
::refusal('JWT_MISSING_TOKEN')
--- no_error_log
Received message



=== TEST 9: the secret file's trailing newline is not part of the secret
--- request
GET /hs
--- more_headers eval
::bearer('hs_nl')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')
--- no_error_log eval
[::never($::tok{hs_nl}), '[error]']



=== TEST 10: HS384 where alg=HS384
--- request
GET /hs384
--- more_headers eval
::bearer('hs384')
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 11: HS256 where alg=HS384 only: algorithm not allowed
--- request
GET /hs384
--- more_headers eval
::bearer('hs')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'algorithm not allowed')
--- no_error_log eval
[::never($::tok{hs})]



=== TEST 12: HS512 in alg=HS512,HS256
--- request
GET /hs512
--- more_headers eval
::bearer('hs512')
--- error_code: 200



=== TEST 13: HS256 in alg=HS512,HS256
--- request
GET /hs512
--- more_headers eval
::bearer('hs')
--- error_code: 200



=== TEST 14: a secret_file plan defaults to HS256 only: HS384 refused
--- request
GET /hs
--- more_headers eval
::bearer('hs384')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'algorithm not allowed')



=== TEST 15: RS256 against an RSA public key
--- request
GET /rs
--- more_headers eval
::bearer('rs')
--- error_code: 200
--- response_headers
X-Plan: jwt
X-App: app-1
X-Sub: alice



=== TEST 16: an RSA key defaults to RS256 only: RS384 refused
--- request
GET /rs
--- more_headers eval
::bearer('rs384')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'algorithm not allowed')



=== TEST 17: RS384 in alg=RS256,RS384,RS512,PS256
--- request
GET /rs-all
--- more_headers eval
::bearer('rs384')
--- error_code: 200



=== TEST 18: RS512 in the list
--- request
GET /rs-all
--- more_headers eval
::bearer('rs512')
--- error_code: 200



=== TEST 19: PS256 in the list
--- request
GET /rs-all
--- more_headers eval
::bearer('ps256')
--- error_code: 200



=== TEST 20: PS256 is not RS256: refused where only RS256 is allowed
--- request
GET /rs
--- more_headers eval
::bearer('ps256')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'algorithm not allowed')



=== TEST 21: alg=RS384 only: RS256 refused
--- request
GET /rs384
--- more_headers eval
::bearer('rs')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'algorithm not allowed')



=== TEST 22: ES256 against a P-256 key
--- request
GET /es256
--- more_headers eval
::bearer('es256')
--- error_code: 200
--- response_headers
X-Sub: alice



=== TEST 23: ES384 against a P-384 key
--- request
GET /es384
--- more_headers eval
::bearer('es384')
--- error_code: 200



=== TEST 24: ES384 against a P-256 key: refused
--- request
GET /es256
--- more_headers eval
::bearer('es384')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 25: a header that says ES256 over a P-384 signature: refused
--- request
GET /es256
--- more_headers eval
::bearer('es_bad')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 26: EdDSA against an Ed25519 key
--- request
GET /ed
--- more_headers eval
::bearer('ed')
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 27: signed by another RSA key: bad signature
--- request
GET /rs
--- more_headers eval
::bearer('rs_bad')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')
--- no_error_log eval
[::never($::tok{rs_bad}), '[error]']



=== TEST 28: a tampered payload: bad signature, nothing published
--- request
POST /rs
tampered
--- more_headers eval
::bearer('tampered')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')
--- no_error_log eval
[::never($::tok{tampered}), 'Received message']



=== TEST 29: expired an hour ago: token expired, never logged
--- request
GET /rs
--- more_headers eval
::bearer('expired')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'token expired')
--- no_error_log eval
[::never($::tok{expired}), '[error]']



=== TEST 30: expired, through access_token: not in the log either
--- request eval
"GET /rs?access_token=$::tok{expired}"
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'token expired')
--- no_error_log eval
[::never($::tok{expired})]



=== TEST 31: leeway=0s: five seconds past exp is expired
--- request
GET /strict
--- more_headers eval
::bearer('exp5')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'token expired')



=== TEST 32: nbf an hour ahead: not yet valid
--- request
GET /rs
--- more_headers eval
::bearer('nbf')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'not yet valid')



=== TEST 33: nbf in the past: in
--- request
GET /rs
--- more_headers eval
::bearer('nbf_past')
--- error_code: 200



=== TEST 34: iat an hour ahead: issued in the future
--- request
GET /rs
--- more_headers eval
::bearer('iat')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'issued in the future')



=== TEST 35: no exp: no expiry, and no azp: no application
--- request
GET /rs
--- more_headers eval
::bearer('no_exp')
--- error_code: 200
--- response_headers
X-Plan: jwt
X-Sub: bob
X-App:



=== TEST 36: exp as a string: refused
--- request
GET /rs
--- more_headers eval
::bearer('exp_text')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 37: nbf not a number: refused
--- request
GET /rs
--- more_headers eval
::bearer('nbf_text')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 38: require=aud:orders, aud "orders": in
--- request
GET /aud
--- more_headers eval
::bearer('aud')
--- error_code: 200



=== TEST 39: require=aud:orders, aud an array holding "orders": in
--- request
GET /aud
--- more_headers eval
::bearer('aud_list')
--- error_code: 200



=== TEST 40: require=aud:orders, aud "orders-eu": claim aud
--- request
GET /aud
--- more_headers eval
::bearer('aud_other')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'claim aud')



=== TEST 41: require=aud:orders, no aud: claim aud
--- request
GET /aud
--- more_headers eval
::bearer('rs')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'claim aud')



=== TEST 42: two require=: both must hold (iss missing)
--- request
GET /aud-iss
--- more_headers eval
::bearer('aud')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 43: two require=, both hold
--- request
GET /aud-iss
--- more_headers eval
::bearer('aud_iss')
--- error_code: 200



=== TEST 44: client_id_claim=client_id: the application is that claim
--- request
GET /cid
--- more_headers eval
::bearer('cid')
--- error_code: 200
--- response_headers
X-App: cid-9
X-Sub: alice



=== TEST 45: two segments only: malformed
--- request
GET /rs
--- more_headers eval
::bearer('trunc_seg')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')
--- no_error_log eval
[::never($::tok{trunc_seg})]



=== TEST 46: half a signature: refused
--- request
GET /rs
--- more_headers eval
::bearer('trunc_sig')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 47: half a payload: refused
--- request
GET /rs
--- more_headers eval
::bearer('trunc_pay')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 47b: a correctly signed payload that is not JSON: malformed
--- request
GET /rs
--- more_headers eval
::bearer('bad_json')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 47c: a correctly signed header that is not JSON: malformed
--- request
GET /rs
--- more_headers eval
::bearer('bad_header')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 48: standard base64 ("+", "/") instead of base64url: malformed
--- request
GET /rs
--- more_headers eval
::bearer('not_b64')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 49: segments padded with "=": malformed
--- request
GET /rs
--- more_headers eval
::bearer('padded')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 49b: the last character's unused bits not zero: malformed
A lax decoder reads the same signature: one token would have four spellings.
--- request
GET /hs
--- more_headers eval
::bearer('hs_odd_bits')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 50: a payload that is a JSON array, not an object: refused
--- request
GET /rs
--- more_headers eval
::bearer('array')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 51: 16385 bytes, correctly signed: too large
--- request
GET /rs
--- more_headers eval
::bearer('huge')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'too large')
--- no_error_log eval
[::never($::tok{huge})]



=== TEST 52: exactly 16384 bytes: in
--- request
GET /rs
--- more_headers eval
::bearer('max')
--- error_code: 200



=== TEST 53: alg none, empty signature: refused
--- request
GET /rs
--- more_headers eval
::bearer('none')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 54: alg none where the plan is HMAC: refused too
--- request
GET /hs
--- more_headers eval
::bearer('none')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 55: alg none with an HMAC signature attached: refused
--- request
GET /hs
--- more_headers eval
::bearer('none_sig')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 56: HS256 keyed with the RSA public key's PEM (confusion): refused
--- request
GET /rs
--- more_headers eval
::bearer('confusion')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 57: the same confusion where alg= lists every RSA algorithm
--- request
GET /rs-all
--- more_headers eval
::bearer('confusion')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 58: a crit header member: refused
--- request
GET /rs
--- more_headers eval
::bearer('crit')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 59: the header wins: a bad Bearer with a good access_token is refused
--- request eval
"GET /rs?access_token=$::tok{rs}"
--- more_headers eval
::bearer('rs_bad')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')



=== TEST 60: not a token at all
--- request
GET /rs
--- more_headers
Authorization: Bearer hello
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'malformed')



=== TEST 61: two jwt plans: an HS256 token verifies under the first
--- request
GET /two
--- more_headers eval
::bearer('hs')
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 62: two jwt plans: an ES256 token under the second
--- request
GET /two
--- more_headers eval
::bearer('es256')
--- error_code: 200



=== TEST 63: two jwt plans: a token neither verifies
--- request
GET /two
--- more_headers eval
::bearer('rs')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 64: JWKS, kid rsa-1 (alg RS256)
--- request
GET /jwks
--- more_headers eval
::bearer('k_rsa1')
--- error_code: 200
--- response_headers
X-Plan: jwt
X-Sub: alice



=== TEST 65: JWKS, kid rsa-2 (no alg member: RS256 for RSA)
--- request
GET /jwks
--- more_headers eval
::bearer('k_rsa2')
--- error_code: 200



=== TEST 66: JWKS, kid rsa-1 but signed by rsa-2's key: bad signature
--- request
GET /jwks
--- more_headers eval
::bearer('k_rsa1_by2')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')



=== TEST 67: JWKS, a kid no key has: unknown key
--- request
GET /jwks
--- more_headers eval
::bearer('k_unknown')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'unknown key')



=== TEST 68: JWKS, no kid: tried against every RS256 key (rsa-2's verifies)
--- request
GET /jwks
--- more_headers eval
::bearer('k_nokid2')
--- error_code: 200



=== TEST 69: JWKS, EC key ec-1 (ES256 by its curve)
--- request
GET /jwks
--- more_headers eval
::bearer('k_ec')
--- error_code: 200



=== TEST 70: JWKS, ES256 without kid
--- request
GET /jwks
--- more_headers eval
::bearer('k_ec_nokid')
--- error_code: 200



=== TEST 71: JWKS, OKP ed-1 (EdDSA)
--- request
GET /jwks
--- more_headers eval
::bearer('k_ed')
--- error_code: 200



=== TEST 72: JWKS, oct hs-1 (HS256)
--- request
GET /jwks
--- more_headers eval
::bearer('k_hs')
--- error_code: 200



=== TEST 73: JWKS, an HS256 token naming the RSA key rsa-1 (confusion)
--- request
GET /jwks
--- more_headers eval
::bearer('k_hs_as_rsa')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 74: JWKS, RS384 naming rsa-1 whose alg is RS256: refused
--- request
GET /jwks
--- more_headers eval
::bearer('k_wrong_alg')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 75: JWKS, RS256 naming the EC key ec-1: refused
--- request
GET /jwks
--- more_headers eval
::bearer('k_ec_as_rs')
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN')



=== TEST 76: error_page 401 of the location replaces the module's answer
--- config
    location /rs {
        message_proxy_plan jwt public_key=$TEST_NGINX_PLANS/rsa.pub;
        error_page 401 /denied.txt;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
    location = /denied.txt {
        return 200 "see the login page\n";
    }
--- request
GET /rs
--- more_headers
Accept: application/json
--- error_code: 401
--- response_body
see the login page
--- error_log eval
::refusal('JWT_MISSING_TOKEN')
