#!/usr/bin/perl
# fuzz/seeds-jwt.pl: the keys and seeds of the jwt and jwks fuzz targets.
#
# Makes new key pairs with the openssl CLI in a temporary directory (RSA
# 2048, EC P-256 and P-384, Ed25519; RSA 1024 for a JWKS seed that must be
# refused), signs a token of every algorithm with them, and writes
#
#   fuzz/ngx_gravitee_fuzz_jwt_keys.h   the HMAC secret, the PUBLIC keys
#                                       (PEM and the JWKS of the same keys)
#                                       and one valid token per algorithm
#   fuzz/corpus/jwt/seed-*             tokens, in the jwt target's format
#   fuzz/corpus/jwks/seed-*            JWKS documents
#
# The private keys are deleted at exit: running this again makes new keys,
# a new header, and new seeds (the module is rebuilt by make fuzz-build).
# A kept reproducer (regress-*) of the jwt target that holds a token signed
# with an RSA, EC or Ed25519 key is then no longer validly signed: prefer
# HMAC tokens (the secret does not change) for reproducers.
#
#   perl fuzz/seeds-jwt.pl [corpus directory]   (default: fuzz/corpus)
#
# Needs openssl (3.x: pkeyutl -rawin for Ed25519) and Perl's core modules.

use strict;
use warnings;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use FindBin;
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);

my $dir = shift // "$FindBin::Bin/corpus";
my $header = "$FindBin::Bin/ngx_gravitee_fuzz_jwt_keys.h";
my $tmp = tempdir('gravitee-jwt-seeds-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my %n;

# the secret: fixed, so that HMAC reproducers stay valid across runs
my $SECRET = 'gravitee fuzz secret: 32 bytes!!';

sub seed {
    my ($target, $name, $bytes) = @_;
    make_path("$dir/$target");
    my $file = sprintf("%s/%s/seed-%02d-%s", $dir, $target,
                       ++$n{$target}, $name);
    open(my $fh, '>:raw', $file) or die "$file: $!";
    print $fh $bytes;
    close($fh);
}

for my $t (qw(jwt jwks)) {
    unlink glob("$dir/$t/seed-*");
}

sub run {
    my (@cmd) = @_;
    system(@cmd) == 0 or die "@cmd: failed\n";
}

sub slurp {
    my ($file) = @_;
    open(my $fh, '<:raw', $file) or die "$file: $!";
    local $/;
    my $s = <$fh>;
    close($fh);
    return $s;
}

sub spew {
    my ($file, $s) = @_;
    open(my $fh, '>:raw', $file) or die "$file: $!";
    print $fh $s;
    close($fh);
}

sub b64u {
    my ($s) = @_;
    my $b = encode_base64($s, '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+$//;
    return $b;
}


# keys

my %key = (
    rsa    => ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
    rsa1k  => ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
    ec256  => ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ec384  => ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    ed     => ['-algorithm', 'ed25519'],
);
my (%pub, %der);

for my $k (sort keys %key) {
    run('openssl', 'genpkey', '-quiet', @{ $key{$k} }, '-out', "$tmp/$k.key");
    run('openssl', 'pkey', '-in', "$tmp/$k.key", '-pubout',
        '-out', "$tmp/$k.pub");
    run('openssl', 'pkey', '-in', "$tmp/$k.key", '-pubout', '-outform', 'DER',
        '-out', "$tmp/$k.der");
    $pub{$k} = slurp("$tmp/$k.pub");
    $der{$k} = slurp("$tmp/$k.der");
}

sub rsa_jwk_ne {
    my ($k) = @_;
    my $mod = `openssl pkey -pubin -in '$tmp/$k.pub' -noout -text 2>/dev/null`;
    # Modulus: hex lines; Exponent: 65537 (0x10001)
    my ($hex) = $mod =~ /Modulus:\s*\n((?:\s+[0-9a-f:]+\n)+)/;
    die "no modulus of $k" unless $hex;
    $hex =~ s/[\s:]//g;
    $hex =~ s/^(00)+//;
    my ($e) = $mod =~ /Exponent: (\d+)/;
    my $eb = '';
    while ($e) { $eb = chr($e & 0xff) . $eb; $e >>= 8; }
    return (b64u(pack('H*', $hex)), b64u($eb));
}

# the uncompressed point (04 || x || y) ends the SubjectPublicKeyInfo
sub ec_jwk_xy {
    my ($k, $size) = @_;
    my $point = substr($der{$k}, -(1 + 2 * $size));
    die "not an uncompressed point" unless substr($point, 0, 1) eq "\x04";
    return (b64u(substr($point, 1, $size)), b64u(substr($point, 1 + $size)));
}

my ($rsa_n, $rsa_e) = rsa_jwk_ne('rsa');
my ($rsa1k_n, $rsa1k_e) = rsa_jwk_ne('rsa1k');
my ($p256_x, $p256_y) = ec_jwk_xy('ec256', 32);
my ($p384_x, $p384_y) = ec_jwk_xy('ec384', 48);
my $ed_x = b64u(substr($der{ed}, -32));

my %jwk = (
    rsa    => qq({"kty":"RSA","kid":"rsa","use":"sig","n":"$rsa_n","e":"$rsa_e"}),
    rsa_ps => qq({"kty":"RSA","kid":"rsa-ps","alg":"PS256","n":"$rsa_n","e":"$rsa_e"}),
    ec256  => qq({"kty":"EC","kid":"p256","crv":"P-256","x":"$p256_x","y":"$p256_y"}),
    ec384  => qq({"kty":"EC","kid":"p384","crv":"P-384","x":"$p384_x","y":"$p384_y"}),
    ed     => qq({"kty":"OKP","kid":"ed","crv":"Ed25519","x":"$ed_x"}),
    oct    => qq({"kty":"oct","kid":"hs","k":") . b64u($SECRET) . qq("}),
);

# the jwt target's JWKS key set: every key with a kid
my $JWKS = '{"keys":[' . join(',', map { $jwk{$_} }
                              qw(rsa rsa_ps ec256 ec384 ed oct)) . ']}';


# signing

my %alg = (
    HS256 => ['hmac', \&hmac_sha256],
    HS384 => ['hmac', \&hmac_sha384],
    HS512 => ['hmac', \&hmac_sha512],
    RS256 => ['rsa', 'sha256'],
    RS384 => ['rsa', 'sha384'],
    RS512 => ['rsa', 'sha512'],
    PS256 => ['pss', 'sha256'],
    ES256 => ['ec', 'sha256', 'ec256', 32],
    ES384 => ['ec', 'sha384', 'ec384', 48],
    EdDSA => ['ed'],
);
my @ALGS = qw(HS256 HS384 HS512 RS256 RS384 RS512 PS256 ES256 ES384 EdDSA);
my %kid = (HS256 => 'hs', HS384 => 'hs', HS512 => 'hs', RS256 => 'rsa',
           RS384 => 'rsa', RS512 => 'rsa', PS256 => 'rsa-ps', ES256 => 'p256',
           ES384 => 'p384', EdDSA => 'ed');

# ECDSA-Sig-Value (DER) to r || s, each of the curve's size
sub der_to_raw {
    my ($der, $size) = @_;
    my @b = unpack('C*', $der);
    my $i = 0;
    die "not a SEQUENCE" unless $b[$i++] == 0x30;
    $i += ($b[$i] & 0x80) ? 1 + ($b[$i] & 0x7f) : 1;
    my $out = '';
    for (1 .. 2) {
        die "not an INTEGER" unless $b[$i++] == 0x02;
        my $len = $b[$i++];
        my $int = pack('C*', @b[$i .. $i + $len - 1]);
        $i += $len;
        $int =~ s/^\x00+//;
        $out .= ("\x00" x ($size - length $int)) . $int;
    }
    return $out;
}

sub sign {
    my ($alg, $input, $secret) = @_;
    my ($type, $md, $k, $size) = @{ $alg{$alg} };

    if ($type eq 'hmac') {
        return $md->($input, $secret // $SECRET);
    }

    spew("$tmp/in", $input);

    if ($type eq 'rsa') {
        run('openssl', 'dgst', "-$md", '-sign', "$tmp/rsa.key",
            '-out', "$tmp/sig", "$tmp/in");
    } elsif ($type eq 'pss') {
        run('openssl', 'dgst', "-$md", '-sign', "$tmp/rsa.key",
            '-sigopt', 'rsa_padding_mode:pss',
            '-sigopt', 'rsa_pss_saltlen:digest',
            '-out', "$tmp/sig", "$tmp/in");
    } elsif ($type eq 'ec') {
        run('openssl', 'dgst', "-$md", '-sign', "$tmp/$k.key",
            '-out', "$tmp/sig", "$tmp/in");
        return der_to_raw(slurp("$tmp/sig"), $size);
    } else {
        run('openssl', 'pkeyutl', '-sign', '-inkey', "$tmp/ed.key", '-rawin',
            '-in', "$tmp/in", '-out', "$tmp/sig");
    }

    return slurp("$tmp/sig");
}

my $PAYLOAD = '{"sub":"alice","azp":"web","aud":["orders"],"iat":1700000000,'
              . '"exp":4102444800}';

sub token {
    my ($alg, %o) = @_;
    my $h = $o{header} // ('{"alg":"' . $alg . '","typ":"JWT"'
                           . (defined $o{kid} ? ',"kid":"' . $o{kid} . '"' : '')
                           . '}');
    my $input = b64u($h) . '.' . b64u($o{payload} // $PAYLOAD);
    return $input . '.' . b64u(sign($alg, $input, $o{secret}));
}


# the jwt target: a flags byte (bits 0-1 the mode: 0 and 3 the token as
# it is, 1 the driver signs it with HMAC, 2 the driver encodes a header
# and a payload and signs; 2 the JWKS key set; 3 each key its own
# algorithm only; 4-5 the driver's HMAC: HS256, HS384, HS512, HS256; 6 the
# token padded to 16381-16388 bytes, by a second byte), then the token

sub jwt { seed('jwt', $_[0], $_[1]) }

sub str {
    my ($s) = @_;
    my $n = length($s);
    return $n < 0xf0 ? chr($n) . $s : chr(0xf0 + ($n >> 8)) . chr($n & 0xff) . $s;
}

my (@valid, @valid_kid);

for my $a (@ALGS) {
    my $t = token($a);
    push @valid, $t;
    jwt(lc($a), "\x00" . $t);
}

for my $a (@ALGS) {
    my $t = token($a, kid => $kid{$a});
    push @valid_kid, $t;
    jwt(lc($a) . '-jwks', "\x04" . $t);
}

# restricted: each key its own algorithm (HS256, RS256, ES256, ES384, EdDSA)
jwt('hs256-own', "\x08" . $valid[0]);
jwt('rs384-not-own', "\x08" . $valid[4]);
jwt('ps256-jwks-own', "\x0c" . $valid_kid[6]);

# refused: alg none, confusion, headers, segments, kids
my $none_input = b64u('{"alg":"none"}') . '.' . b64u($PAYLOAD);
jwt('none-unsigned', "\x00" . $none_input . '.');
jwt('none-signed', "\x00" . $none_input . '.' . b64u('x'));
jwt('none-hmac', "\x02" . str('{"alg":"none"}') . $PAYLOAD);
jwt('confusion-rsa-pem', "\x00" . token('HS256', secret => $pub{rsa}));
jwt('confusion-rsa-der', "\x00" . token('HS256', secret => $der{rsa}));
jwt('confusion-ec-pem', "\x04" . token('HS256', secret => $pub{ec256},
                                       kid => 'p256'));
jwt('crit', "\x00" . token('HS256',
                           header => '{"alg":"HS256","crit":["exp"]}'));
jwt('kid-number', "\x04" . token('HS256', header => '{"alg":"HS256","kid":1}'));
jwt('kid-unknown', "\x04" . token('HS256', kid => 'nope'));
jwt('kid-other-key', "\x04" . token('HS256', kid => 'rsa'));
jwt('kid-in-pem-set', "\x00" . token('ES256', kid => 'whatever'));
jwt('header-dup', "\x00" . token('HS256',
                                 header => '{"alg":"HS256","alg":"HS256"}'));
jwt('header-array', "\x00" . token('HS256', header => '["alg","HS256"]'));
jwt('alg-case', "\x00" . token('HS256', header => '{"alg":"hs256"}'));
jwt('payload-array', "\x00" . token('HS256', payload => '[1,2]'));
jwt('payload-dup', "\x00" . token('HS256', payload => '{"a":1,"a":2}'));
jwt('payload-not-json', "\x00" . token('HS256', payload => 'not json'));
jwt('five-segments', "\x00" . $valid[0] . '.' . b64u('iv') . '.' . b64u('t'));
jwt('padding', "\x00" . ($valid[0] =~ s/\.([^.]*)$/.$1==/r));
jwt('std-alphabet', "\x00" . ($valid[3] =~ tr{-_}{+/}r));
jwt('blank', "\x00 " . $valid[0]);
jwt('empty-header', "\x00." . b64u($PAYLOAD) . '.' . b64u('sig'));
jwt('empty-payload', "\x00" . b64u('{"alg":"HS256"}') . '..' . b64u('sig'));
jwt('es256-der-sig', "\x00" . b64u('{"alg":"ES256"}') . '.' . b64u($PAYLOAD)
                     . '.' . b64u("\x30\x06\x02\x01\x01\x02\x01\x01"));
jwt('es256-zero-sig', "\x00" . b64u('{"alg":"ES256"}') . '.' . b64u($PAYLOAD)
                      . '.' . b64u("\x00" x 64));
jwt('sig-len-1-mod-4', "\x00" . ($valid[0] . 'A'));

# the same signature with the unused low bits of its last character set
sub non_canonical {
    my ($t) = @_;
    my $a = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';
    my $i = index($a, substr($t, -1));
    return substr($t, 0, -1) . substr($a, $i ^ 1, 1);
}
jwt('sig-non-canonical', "\x00" . non_canonical($valid[0]));

# signed by the driver: its HMAC over the input's bytes (mode 1) or over
# the header and payload it encodes (mode 2)
jwt('signed-input', "\x01" . b64u('{"alg":"HS256"}') . '.' . b64u($PAYLOAD));
jwt('signed-input-384', "\x11" . b64u('{"alg":"HS384"}') . '.'
                        . b64u('{"sub":"x"}'));
jwt('signed-json', "\x02" . str('{"alg":"HS256","typ":"JWT"}') . $PAYLOAD);
jwt('signed-json-512', "\x22" . str('{"alg":"HS512"}') . '{}');
jwt('signed-json-kid', "\x06" . str('{"alg":"HS256","kid":"hs"}') . $PAYLOAD);
jwt('signed-json-wrong-alg', "\x12" . str('{"alg":"HS256"}') . $PAYLOAD);
jwt('signed-json-own', "\x0a" . str('{"alg":"HS256"}') . $PAYLOAD);
jwt('signed-json-own-384', "\x1a" . str('{"alg":"HS384"}') . $PAYLOAD);
jwt('signed-json-unicode', "\x02" . str('{"alg":"HS256","x":"\\u00e9\\ud83d\\ude00"}')
                           . '{"sub":"\\u0000","n":1e400,"d":-0.0}');
jwt('signed-json-nul', "\x02" . str("{\"alg\":\"HS256\"}\x00") . '{}');
jwt('signed-json-deep', "\x02" . str('{"alg":"HS256"}')
                        . '{"a":' . ('[' x 300) . (']' x 300) . '}');

# 16 KiB: at the limit, and over it
jwt('pad-limit', "\x40\x03" . $valid[0] . '.');
jwt('pad-over', "\x40\x07" . $valid[3]);


# the jwks target: the document as it is

sub jwks { seed('jwks', $_[0], $_[1]) }

jwks('all', $JWKS);
jwks("one-$_", '{"keys":[' . $jwk{$_} . ']}') for sort keys %jwk;
jwks('alg', '{"keys":[{"kty":"oct","alg":"HS512","k":"' . b64u('k' x 64)
            . '"},{"kty":"EC","alg":"ES256","crv":"P-256","x":"' . $p256_x
            . '","y":"' . $p256_y . '"}]}');
jwks('alg-mismatch', '{"keys":[{"kty":"EC","alg":"ES384","crv":"P-256","x":"'
                     . $p256_x . '","y":"' . $p256_y . '"}]}');
jwks('alg-hs-on-rsa', '{"keys":[{"kty":"RSA","alg":"HS256","n":"' . $rsa_n
                      . '","e":"' . $rsa_e . '"}]}');
jwks('alg-unknown', '{"keys":[{"kty":"oct","alg":"none","k":"AAAA"}]}');
jwks('use-enc', '{"keys":[{"kty":"RSA","use":"enc","n":"' . $rsa_n
                . '","e":"' . $rsa_e . '"},' . $jwk{ed} . ']}');
jwks('only-enc', '{"keys":[{"kty":"EC","use":"enc","crv":"P-256"}]}');
jwks('rsa-1024', '{"keys":[{"kty":"RSA","n":"' . $rsa1k_n . '","e":"'
                 . $rsa1k_e . '"}]}');
jwks('rsa-e-1', '{"keys":[{"kty":"RSA","n":"' . $rsa_n . '","e":"AQ"}]}');
jwks('rsa-e-huge', '{"keys":[{"kty":"RSA","n":"' . $rsa_n . '","e":"'
                   . b64u("\xff" x 300) . '"}]}');
jwks('rsa-n-zero', '{"keys":[{"kty":"RSA","n":"' . b64u("\x00" x 300)
                   . '","e":"AQAB"}]}');
jwks('ec-off-curve', '{"keys":[{"kty":"EC","crv":"P-256","x":"' . $p256_x
                     . '","y":"' . b64u("\x01" x 32) . '"}]}');
jwks('ec-short-x', '{"keys":[{"kty":"EC","crv":"P-384","x":"' . $p256_x
                   . '","y":"' . $p256_y . '"}]}');
jwks('ec-curve', '{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}');
jwks('okp-x448', '{"keys":[{"kty":"OKP","crv":"X25519","x":"' . $ed_x . '"}]}');
jwks('okp-short', '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}');
jwks('oct-empty', '{"keys":[{"kty":"oct","k":""}]}');
jwks('oct-padded', '{"keys":[{"kty":"oct","k":"' . b64u('abcd') . '=="}]}');
jwks('oct-std-alphabet', '{"keys":[{"kty":"oct","k":"a+b/"}]}');
jwks('kid-number', '{"keys":[{"kty":"oct","kid":7,"k":"AAAA"}]}');
jwks('kid-nul', '{"keys":[{"kty":"oct","kid":"a\\u0000b","k":"AAAA"}]}');
jwks('kid-empty', '{"keys":[{"kty":"oct","kid":"","k":"AAAA"}]}');
jwks('kty-unknown', '{"keys":[{"kty":"DSA"}]}');
jwks('kty-missing', '{"keys":[{"k":"AAAA"}]}');
jwks('not-object-key', '{"keys":[1,"a",null]}');
jwks('empty', '{"keys":[]}');
jwks('not-array', '{"keys":{"kty":"oct"}}');
jwks('array', '[{"keys":[]}]');
jwks('dup', '{"keys":[],"keys":[' . $jwk{oct} . ']}');
jwks('later-bad', '{"keys":[' . $jwk{oct} . ',' . $jwk{ec256}
                  . ',{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}');
jwks('x5c', '{"keys":[{"kty":"RSA","n":"' . $rsa_n . '","e":"' . $rsa_e
            . '","x5c":["MIIB"],"x5t#S256":"abc","key_ops":["verify"]}]}');
jwks('nul', "{\"keys\":[$jwk{oct}]}\x00junk");


# the header the target compiles

sub c_string {
    my ($s) = @_;
    my @lines = split /(?<=\n)/, $s;
    return join("\n", map {
        my $l = $_;
        $l =~ s/(["\\])/\\$1/g;
        $l =~ s/\n/\\n/g;
        "    \"$l\"";
    } @lines);
}

sub c_long_string {
    my ($s) = @_;
    my @parts = unpack('(A72)*', $s);
    return join("\n", map { "    \"$_\"" } map { s/(["\\])/\\$1/gr } @parts);
}

my $h = <<"EOF";

/*
 * ngx_gravitee_module: the keys of the jwt and jwks fuzz targets.
 *
 * Written by fuzz/seeds-jwt.pl (do not edit): PUBLIC keys only, made with
 * the openssl CLI; the private keys that signed the tokens below and the
 * seeds were deleted.  The HMAC secret is fixed.
 */


#ifndef _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_
#define _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_


#define NGX_GRAVITEE_FUZZ_JWT_SECRET  "$SECRET"


/* RSA 2048, EC P-256, EC P-384, Ed25519 */

static const char *ngx_gravitee_fuzz_jwt_pems[] = {
EOF

$h .= join(",\n\n", map { c_string($pub{$_}) } qw(rsa ec256 ec384 ed));
$h .= ",\n\n    NULL\n};\n\n\n";
$h .= "/* the same keys as a JWKS, each with a kid (RSA twice: PS256) */\n\n";
$h .= "static const char  ngx_gravitee_fuzz_jwt_jwks_doc[] =\n";
$h .= c_long_string($JWKS) . ";\n\n\n";
$h .= "/* a valid token per algorithm, in ngx_gravitee_jwt_algs[] order: "
      . "without kid, then with */\n\n";
$h .= "static const char *ngx_gravitee_fuzz_jwt_tokens[] = {\n";
$h .= join(",\n\n", map { c_long_string($_) } @valid, @valid_kid);
$h .= ",\n\n    NULL\n};\n\n\n#endif /* _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_ */\n";

spew($header, $h);

printf "%s: %d jwt and %d jwks seeds, %s\n", $dir, $n{jwt}, $n{jwks}, $header;
