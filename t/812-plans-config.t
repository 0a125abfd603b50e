# Plans: configuration errors.  Each bad message_proxy_plan makes
# "nginx -t" fail with an [emerg] naming nginx.conf and the very line of
# the directive (and, for a bad line of a keys file, that file), as the
# end of the plans spec lists them.  A good configuration of every kind
# passes.  Scripted with GraviteeTest::nginx_check_config, so it runs the
# same under either Test::Nginx.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use GraviteeTest;
use PlanTest;

my $root = $ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}_812"
                                     : 't/servroot_812_plans_config';
my $p = make_plan_files("${root}_files");
my $d = $p->{dir};

api_keys_write("$d/keys.txt", [['key-one', 'app-one'], ['key-two']]);
api_keys_write("$d/keys-dup.txt", ['# keys', ['key-one', 'app-one'], ['key-one', 'app-again'],
                                   ['key-three']]);
jwks_write("$d/jwks.json", [{ pub => $p->{rsa_pub}, kid => 'r' },
                            { pub => $p->{ec256_pub}, kid => 'e' },
                            { secret => $p->{hmac}, kid => 'h' }]);
spew("$d/jwks-bad.json", '{"keys":[{"kty":"RSA","n":"AQAB"');
spew("$d/jwks-kty.json", '{"keys":[{"kty":"XYZ","kid":"x","k":"AQAB"}]}');
spew("$d/not-pem.txt", "just some text\n");
(my $fp = fingerprint($p->{client1_crt})) =~ s/://g;
spew("$d/fp.txt", fingerprint($p->{client2_crt}) . "\n# a comment\n\n" . lc($fp) . "\n");
spew("$d/fp-short.txt", fingerprint($p->{client1_crt}) . "\n" . substr($fp, 0, 63) . "\n");
spew("$d/fp-nothex.txt", substr($fp, 0, 63) . "G\n");
spew("$d/fp-colons.txt", "AB:CD:EF\n");

sub conf {
    my $plan = shift;
    return <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /api {
            message_proxy_entrypoint http-get;
            $plan  # the plan under test
            message_proxy_endpoint mock;
        }
    }
_EOC_
}

# nginx -t of the plan line: (exit code, output, the conf file, its line)
sub check {
    my $plan = shift;
    my ($rc, $out) = nginx_check_config(conf($plan), servroot => $root);
    my $file = File::Spec->rel2abs("$root/conf/nginx.conf");
    open my $in, '<', $file or die "$file: $!";
    my $line = 0;
    while (<$in>) {
        $line++;
        last if /# the plan under test/;
    }
    return ($rc, $out, $file, $line);
}

sub fails {
    my ($name, $plan, $what, $extra) = @_;
    my ($rc, $out, $file, $line) = check($plan);
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\] [^\n]*\Q in $file:$line\E$/m,
         "$name: [emerg] naming nginx.conf line $line") or diag $out;
    like($out, $what, "$name: says what is wrong") if $what;
    like($out, $extra, "$name: and where") if $extra;
    unlike($out, qr/\[alert\]|\[crit\]|segmentation|core dumped/i, "$name: no crash");
}

sub passes {
    my ($name, @plans) = @_;
    my ($rc, $out) = check(join "\n            ", @plans);
    is($rc, 0, "$name: nginx -t passes") or diag $out;
}

# --- good configurations: the checks below fail for their own reason -------

passes('keyless', 'message_proxy_plan keyless;');
passes('api_key', "message_proxy_plan api_key keys=$d/keys.txt header=X-Key query=k propagate=on;");
passes('jwt secret_file', "message_proxy_plan jwt secret_file=$p->{hmac_file} alg=HS256,HS512 leeway=5s require=aud:orders require=iss:me client_id_claim=cid;");
passes('jwt RSA', "message_proxy_plan jwt public_key=$p->{rsa_pub} alg=RS256,RS384,RS512,PS256;");
passes('jwt EC P-256', "message_proxy_plan jwt public_key=$p->{ec256_pub} alg=ES256;");
passes('jwt EC P-384', "message_proxy_plan jwt public_key=$p->{ec384_pub};");
passes('jwt Ed25519', "message_proxy_plan jwt public_key=$p->{ed_pub} alg=EdDSA;");
passes('jwt JWKS', "message_proxy_plan jwt jwks_file=$d/jwks.json;");
passes('mtls', "message_proxy_plan mtls fingerprints=$d/fp.txt;");
passes('mtls without a list', 'message_proxy_plan mtls;');
passes('every kind at once', 'message_proxy_plan keyless;',
       "message_proxy_plan api_key keys=$d/keys.txt;",
       "message_proxy_plan jwt public_key=$p->{rsa_pub};", 'message_proxy_plan mtls;');

# --- the spec's list ------------------------------------------------------------

fails('unknown plan type', 'message_proxy_plan oauth2;', qr/oauth2/);
fails('unknown parameter of api_key', "message_proxy_plan api_key keys=$d/keys.txt heder=X-Key;",
      qr/heder/);
fails('unknown parameter of jwt', "message_proxy_plan jwt public_key=$p->{rsa_pub} algs=RS256;",
      qr/algs/);
fails('a parameter of keyless', 'message_proxy_plan keyless propagate=on;', qr/propagate/);
fails('unknown parameter of mtls', "message_proxy_plan mtls fingerprint=$d/fp.txt;",
      qr/fingerprint\b/);
fails('jwt without a key', 'message_proxy_plan jwt alg=RS256;',
      qr/secret_file|public_key|jwks_file/);
fails('jwt with two keys', "message_proxy_plan jwt secret_file=$p->{hmac_file} public_key=$p->{rsa_pub};",
      qr/secret_file|public_key|jwks_file/);
fails('jwt with public_key and jwks_file', "message_proxy_plan jwt public_key=$p->{rsa_pub} jwks_file=$d/jwks.json;",
      qr/public_key|jwks_file/);
fails('api_key without keys=', 'message_proxy_plan api_key;', qr/keys/);

fails('unreadable public_key', "message_proxy_plan jwt public_key=$d/missing.pub;", qr/\Q$d\E\/missing\.pub/);
fails('unreadable secret_file', "message_proxy_plan jwt secret_file=$d/missing.secret;", qr/missing\.secret/);
fails('unreadable jwks_file', "message_proxy_plan jwt jwks_file=$d/missing.json;", qr/missing\.json/);
fails('unreadable keys file', "message_proxy_plan api_key keys=$d/missing.txt;", qr/missing\.txt/);
fails('unreadable fingerprints file', "message_proxy_plan mtls fingerprints=$d/missing-fp.txt;", qr/missing-fp\.txt/);

fails('a private key is not a public key', "message_proxy_plan jwt public_key=$p->{rsa_key};");
# the README: an issuer's certificate is taken for its public key
passes('a certificate gives its public key', "message_proxy_plan jwt public_key=$p->{ca_crt};");
fails('text is not a public key', "message_proxy_plan jwt public_key=$d/not-pem.txt;");
fails('a JWKS that is not JSON', "message_proxy_plan jwt jwks_file=$d/jwks-bad.json;", qr/jwks-bad\.json|JSON/i);
fails('a JWKS key of an unknown kty', "message_proxy_plan jwt jwks_file=$d/jwks-kty.json;", qr/XYZ|kty/);

fails('alg=RS256 with an EC key', "message_proxy_plan jwt public_key=$p->{ec256_pub} alg=RS256;", qr/RS256/);
fails('alg=ES384 with a P-256 key', "message_proxy_plan jwt public_key=$p->{ec256_pub} alg=ES384;", qr/ES384/);
fails('alg=HS256 with a public key', "message_proxy_plan jwt public_key=$p->{rsa_pub} alg=HS256;", qr/HS256/);
fails('alg=RS256 with a secret', "message_proxy_plan jwt secret_file=$p->{hmac_file} alg=RS256;", qr/RS256/);
fails('alg=EdDSA with an RSA key', "message_proxy_plan jwt public_key=$p->{rsa_pub} alg=EdDSA;", qr/EdDSA/);
fails('alg=none', "message_proxy_plan jwt secret_file=$p->{hmac_file} alg=none;", qr/none/);
fails('alg=none among others', "message_proxy_plan jwt public_key=$p->{rsa_pub} alg=RS256,none;", qr/none/);
fails('an unknown algorithm', "message_proxy_plan jwt public_key=$p->{rsa_pub} alg=RS257;", qr/RS257/);

fails('a keys file with a duplicate key', "message_proxy_plan api_key keys=$d/keys-dup.txt;",
      qr/duplicate/i, qr/keys-dup\.txt\D{0,12}3\b/);
{
    my ($rc, $out) = check("message_proxy_plan api_key keys=$d/keys-dup.txt;");
    unlike($out, qr/app-again/, 'a duplicate key: the line\'s application is not printed');
}
fails('a fingerprint of 63 hex digits', "message_proxy_plan mtls fingerprints=$d/fp-short.txt;",
      qr/fingerprint/i, qr/fp-short\.txt\D{0,12}2\b/);
fails('a fingerprint with a non-hex digit', "message_proxy_plan mtls fingerprints=$d/fp-nothex.txt;",
      qr/fingerprint/i, qr/fp-nothex\.txt/);
fails('a short fingerprint with colons', "message_proxy_plan mtls fingerprints=$d/fp-colons.txt;",
      qr/fingerprint/i);

fails('a bad leeway', "message_proxy_plan jwt public_key=$p->{rsa_pub} leeway=soon;", qr/leeway/);
fails('require= without a value', "message_proxy_plan jwt public_key=$p->{rsa_pub} require=aud;", qr/require|aud/);
fails('propagate=maybe', "message_proxy_plan api_key keys=$d/keys.txt propagate=maybe;", qr/propagate/);

done_testing;
