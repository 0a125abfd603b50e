# Plans: API key, keyless, several plans in one location and the order
# that decides (JWT, API key, mTLS, keyless), inheritance from the server
# level, composition with allow/deny and satisfy, a static file behind a
# plan, and the key header kept or removed from the request (propagate=).
# The identity variables are sent back with add_header ... always.

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
                                  . '_811_files');
    $P = PlanTest::make_keys($dir);
    $ENV{TEST_NGINX_PLANS} = $dir;

    PlanTest::api_keys_write("$dir/keys.txt", [
        '# the applications of the plan tests',
        ['key-one', 'app-one'],
        '',
        "key-two\t\tapp-two",
        ['key-noapp'],
        '#key-commented app-c',
    ]);

    my %c = (sub => 'alice', azp => 'app-jwt', exp => time + 3600);
    %tok = (
        good => PlanTest::jwt_sign(alg => 'HS256', secret => $P->{hmac}, claims => \%c),
        bad  => PlanTest::jwt_sign(alg => 'HS256', secret => 'another secret', claims => \%c),
    );

    my $api = <<'_EOC_';
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_entrypoint http-post request_headers_to_message=on;
        message_proxy_endpoint mock interval=10ms count=1;
_EOC_
    my $keys = 'api_key keys=$TEST_NGINX_PLANS/keys.txt';
    my $jwt = 'jwt secret_file=$TEST_NGINX_PLANS/hmac.secret';
    my @loc = (
        '/ak'        => [$keys],
        '/ak-custom' => ["$keys header=X-Key query=k"],
        '/ak-on'     => ["$keys propagate=on"],
        '/ak-off'    => ["$keys propagate=off"],
        '/kl'        => ['keyless'],
        '/none'      => [],
        '/mix'       => [$jwt, $keys, 'keyless'],
        '/mix-rev'   => ['keyless', $keys, $jwt],
        '/ak-kl'     => [$keys, 'keyless'],
        '/jwt-kl'    => [$jwt, 'keyless'],
        '/jwt-ak'    => [$jwt, $keys],
        '/mtls'      => ['mtls'],
        '/jwt-mtls'  => [$jwt, 'mtls'],
    );
    $CONF = <<'_EOC_';
    add_header X-Plan $message_proxy_plan always;
    add_header X-App $message_proxy_application always;
    add_header X-Sub $message_proxy_subject always;
    add_header X-Seen $http_x_gravitee_api_key always;
_EOC_
    while (my ($path, $plans) = splice @loc, 0, 2) {
        $CONF .= "    location $path {\n"
               . join('', map { "        message_proxy_plan $_;\n" } @$plans)
               . "$api    }\n";
    }
}

sub refusal {
    my ($key, $reason) = @_;
    my $r = defined $reason ? qr/(?=.*\breason="\Q$reason\E")/ : qr//;
    return qr/\[info\] (?=.*\bkey=\Q$key\E\b)$r/;
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

=== TEST 1: a key in X-Gravitee-Api-Key: in, as its application
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 200
--- response_body_like: content: mock message
--- response_headers
X-Plan: api_key
X-App: app-one
X-Sub:
--- no_error_log
key=
[error]



=== TEST 2: a key in the api-key query arg (tabs between key and application)
--- request
GET /ak?api-key=key-two
--- error_code: 200
--- response_headers
X-Plan: api_key
X-App: app-two



=== TEST 3: a key without application: empty application
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: key-noapp
--- error_code: 200
--- response_headers
X-Plan: api_key
X-App:



=== TEST 4: an unknown key: API_KEY_INVALID, the key never in the log
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: zz-unknown-key-4711
Accept: application/json
--- error_code: 401
--- response_body chomp
{"message":"Unauthorized","http_status_code":401}
--- error_log eval
::refusal('API_KEY_INVALID')
--- no_error_log
zz-unknown-key-4711
[error]



=== TEST 5: an unknown key in the query: not in the log either
--- request
GET /ak?api-key=zz-unknown-key-4712
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')
--- no_error_log
zz-unknown-key-4712



=== TEST 6: a good key is not logged either
--- request
GET /ak?api-key=key-two
--- error_code: 200
--- no_error_log
key-two



=== TEST 7: a commented line is no key
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: #key-commented
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 8: a key is the whole value: a prefix of a key is refused
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: key-on
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 9: the key and more is refused too
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: key-one2
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 10: the application is not a key
--- request
GET /ak
--- more_headers
X-Gravitee-Api-Key: app-one
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 11: the header first: a bad header key with a good query key is refused
--- request
GET /ak?api-key=key-two
--- more_headers
X-Gravitee-Api-Key: zz-unknown
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 12: no key: API_KEY_MISSING
--- request
GET /ak
--- error_code: 401
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 13: a refused POST publishes nothing
--- request
POST /ak
not for you
--- more_headers
X-Gravitee-Api-Key: zz-unknown
--- error_code: 401
--- no_error_log
Received message



=== TEST 14: a POST with a good key publishes
--- request
POST /ak
for you
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 202
--- error_log
Received message: for you



=== TEST 15: header=X-Key: the key in X-Key
--- request
GET /ak-custom
--- more_headers
X-Key: key-one
--- error_code: 200
--- response_headers
X-Plan: api_key
X-App: app-one



=== TEST 16: query=k: the key in ?k=
--- request
GET /ak-custom?k=key-two
--- error_code: 200
--- response_headers
X-App: app-two



=== TEST 17: header=X-Key: X-Gravitee-Api-Key is not read (API_KEY_MISSING)
--- request
GET /ak-custom?api-key=key-one
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 401
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 18: propagate=off (the default): the key header is gone from the request
--- request
POST /ak
published
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 202
--- response_headers
X-Seen:
--- error_log
Received message: published



=== TEST 19: propagate=off said explicitly: the same
--- request
POST /ak-off
published
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 202
--- response_headers
X-Seen:



=== TEST 20: propagate=on: the key header stays
--- request
POST /ak-on
published
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 202
--- response_headers
X-Seen: key-one
X-Plan: api_key



=== TEST 21: keyless: in, with no application nor subject
--- request
GET /kl
--- error_code: 200
--- response_headers
X-Plan: keyless
X-App:
X-Sub:
--- no_error_log
key=



=== TEST 22: keyless with a stray Bearer token: GATEWAY_PLAN_UNRESOLVABLE
--- request
GET /kl
--- more_headers eval
::bearer('good')
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 23: keyless with a stray access_token
--- request eval
"GET /kl?access_token=$::tok{good}"
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 24: keyless with a stray X-Gravitee-Api-Key
--- request
GET /kl
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 25: keyless with a stray api-key query arg
--- request
GET /kl?api-key=key-one
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 26: no plan declared: everybody passes, whatever they carry
--- request
GET /none?api-key=whatever
--- more_headers
Authorization: Bearer not-a-token
--- error_code: 200
--- response_body_like: content: mock message
--- no_error_log
key=



=== TEST 27: jwt + api_key + keyless, a good token and a good key: jwt decides
--- request
GET /mix
--- more_headers eval
::bearer('good', "X-Gravitee-Api-Key: key-one")
--- error_code: 200
--- response_headers
X-Plan: jwt
X-App: app-jwt
X-Sub: alice



=== TEST 28: the same plans declared the other way round: jwt still decides
--- request
GET /mix-rev
--- more_headers eval
::bearer('good', "X-Gravitee-Api-Key: key-one")
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 29: a bad token with a good key: JWT_INVALID_TOKEN, no fall through
--- request
GET /mix
--- more_headers eval
::bearer('bad', "X-Gravitee-Api-Key: key-one")
--- error_code: 401
--- error_log eval
::refusal('JWT_INVALID_TOKEN', 'bad signature')
--- no_error_log
API_KEY



=== TEST 30: no token, a good key: api_key
--- request
GET /mix
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 200
--- response_headers
X-Plan: api_key
X-App: app-one



=== TEST 31: no token, a bad key: API_KEY_INVALID, not keyless
--- request
GET /mix
--- more_headers
X-Gravitee-Api-Key: zz-unknown
--- error_code: 401
--- error_log eval
::refusal('API_KEY_INVALID')



=== TEST 32: nothing: keyless
--- request
GET /mix
--- error_code: 200
--- response_headers
X-Plan: keyless



=== TEST 33: declared the other way round, a key in the query: api_key
--- request
GET /mix-rev?api-key=key-two
--- error_code: 200
--- response_headers
X-Plan: api_key
X-App: app-two



=== TEST 34: api_key + keyless with a Bearer token: GATEWAY_PLAN_UNRESOLVABLE
--- request
GET /ak-kl
--- more_headers eval
::bearer('good')
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 35: api_key + keyless, nothing: keyless
--- request
GET /ak-kl
--- error_code: 200
--- response_headers
X-Plan: keyless



=== TEST 36: jwt + keyless with an API key: GATEWAY_PLAN_UNRESOLVABLE
--- request
GET /jwt-kl
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 37: jwt + keyless with a good token: jwt
--- request
GET /jwt-kl
--- more_headers eval
::bearer('good')
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 38: jwt + api_key, nothing: GATEWAY_PLAN_UNRESOLVABLE
--- request
GET /jwt-ak
--- more_headers
Accept: application/json
--- error_code: 401
--- response_body chomp
{"message":"Unauthorized","http_status_code":401}
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 39: mtls only, plain HTTP: CLIENT_CERTIFICATE_MISSING
--- request
GET /mtls
--- error_code: 401
--- error_log eval
::refusal('CLIENT_CERTIFICATE_MISSING')



=== TEST 40: jwt + mtls, nothing: GATEWAY_PLAN_UNRESOLVABLE
--- request
GET /jwt-mtls
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 41: jwt + mtls, a good token: jwt
--- request
GET /jwt-mtls
--- more_headers eval
::bearer('good')
--- error_code: 200
--- response_headers
X-Plan: jwt



=== TEST 42: a server-level plan is inherited by a location without one
--- config
    message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    location /inherit {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /inherit
--- error_code: 401
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 43: inherited, with a key
--- config
    message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    add_header X-Plan $message_proxy_plan always;
    location /inherit {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /inherit?api-key=key-one
--- error_code: 200
--- response_headers
X-Plan: api_key



=== TEST 44: a location's own plans replace the server's
--- config
    message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    add_header X-Plan $message_proxy_plan always;
    location /own {
        message_proxy_plan keyless;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /own
--- error_code: 200
--- response_headers
X-Plan: keyless



=== TEST 45: replaced: the server's api_key does not take a key there
--- config
    message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    location /own {
        message_proxy_plan keyless;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /own?api-key=key-one
--- error_code: 401
--- error_log eval
::refusal('GATEWAY_PLAN_UNRESOLVABLE')



=== TEST 46: an http-level plan reaches the location
--- http_config
    message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
--- config
    location /inherit {
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /inherit
--- error_code: 401
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 47: satisfy any + allow 127.0.0.1: let in without a key
--- config
    location /sat {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /sat
--- error_code: 200
--- response_body_like: content: mock message



=== TEST 48: satisfy any + deny all, no key: NGINX's own 401 page
--- config
    location /sat {
        satisfy any;
        deny all;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /sat
--- more_headers
Accept: application/json
--- error_code: 401
--- response_body_like: 401 Authorization Required
--- response_body_unlike: http_status_code
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 49: satisfy any + deny all, a good key: in
--- config
    location /sat {
        satisfy any;
        deny all;
        add_header X-Plan $message_proxy_plan always;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /sat?api-key=key-one
--- error_code: 200
--- response_headers
X-Plan: api_key



=== TEST 50: satisfy all (the default) + deny all: a good key is not enough
--- config
    location /deny {
        deny all;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
        message_proxy_entrypoint http-get messages_limit_count=1;
        message_proxy_endpoint mock interval=10ms count=1;
    }
--- request
GET /deny?api-key=key-one
--- error_code: 403



=== TEST 51: a static file behind an api_key plan: refused without a key
--- config
    location /files/ {
        root html;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    }
--- user_files
>>> files/a.txt
hello file
--- request
GET /files/a.txt
--- error_code: 401
--- response_body_unlike: hello file
--- error_log eval
::refusal('API_KEY_MISSING')



=== TEST 52: the static file with a key
--- config
    location /files/ {
        root html;
        message_proxy_plan api_key keys=$TEST_NGINX_PLANS/keys.txt;
    }
--- user_files
>>> files/a.txt
hello file
--- request
GET /files/a.txt
--- more_headers
X-Gravitee-Api-Key: key-one
--- error_code: 200
--- response_body
hello file
