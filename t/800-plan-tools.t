# Self-test of t/lib/PlanTest.pm, the tools of the plan suites: what it
# makes is checked on its own, with the openssl command line (and a DER
# encoder written here, not PlanTest's parser), so that a plan suite that
# fails points at the module, not at its tokens.  Needs no module, no nginx.

use strict;
use warnings;
use Test::More;
use File::Temp ();
use File::Path qw(remove_tree);
use JSON::PP ();
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use PlanTest;

my $dir = ($ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}_800"
                                     : 't/servroot_800_plan_tools') . '_files';
remove_tree($dir);
my $p = make_plan_files($dir);
my $json = JSON::PP->new;
our $S_SERVER;

sub sh {
    my $cmd = shift;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

sub tmp {
    my $f = File::Temp->new;
    binmode $f;
    print $f shift;
    close $f;
    return $f;
}

sub parts { return split /\./, shift, -1 }

sub hexstr { return unpack 'H*', shift }

# the hex bytes of "openssl ... -text" after a label, colons and spaces gone
sub text_hex {
    my ($text, $label) = @_;
    $text =~ /^\Q$label\E:?\s*\n((?:\s+[0-9a-f:]+\n)+)/m or return '';
    (my $h = $1) =~ s/[\s:]//g;
    return $h;
}

# DER of an ECDSA signature from JWS r||s, written independently of PlanTest
sub der_int {
    my $v = shift;
    $v =~ s/\A\x00+//;
    $v = "\x00$v" if $v eq '' || ord($v) & 0x80;
    return "\x02" . chr(length $v) . $v;
}

sub raw_to_der {
    my $raw = shift;
    my $n = length($raw) / 2;
    my $body = der_int(substr $raw, 0, $n) . der_int(substr $raw, $n);
    my $len = length $body;
    return "\x30" . ($len < 128 ? chr $len : "\x81" . chr $len) . $body;
}

# --- base64url --------------------------------------------------------------

is(b64url(''), '', 'b64url of nothing');
is(b64url('f'), 'Zg', 'b64url: no padding (1 byte)');
is(b64url('fo'), 'Zm8', 'b64url: no padding (2 bytes)');
is(b64url('foo'), 'Zm9v', 'b64url: 3 bytes');
is(b64url("\xfb\xff\xbf"), '-_-_', 'b64url: the URL-safe alphabet');
is(b64url_decode('-_-_'), "\xfb\xff\xbf", 'b64url_decode');
is(b64url_decode('Zm8'), 'fo', 'b64url_decode without padding');

# --- keys --------------------------------------------------------------------

{
    my %want = (rsa => qr/Public-Key: \(2048 bit\)/, rsa2 => qr/Public-Key: \(2048 bit\)/,
                ec256 => qr/NIST CURVE: P-256/, ec384 => qr/NIST CURVE: P-384/,
                ed => qr/ED25519 Public-Key/);
    for my $k (sort keys %want) {
        my ($rc, $text) = sh("openssl pkey -pubin -in $p->{\"${k}_pub\"} -text -noout");
        is($rc, 0, "$k: the public key is a PEM public key");
        like($text, $want{$k}, "$k: of the right kind");
        my ($rc2, $pub) = sh("openssl pkey -in $p->{\"${k}_key\"} -pubout");
        is($pub, slurp($p->{"${k}_pub"}), "$k: the public key is the private key's");
        like(slurp($p->{"${k}_pub"}), qr/\A-----BEGIN PUBLIC KEY-----\n/,
             "$k: SubjectPublicKeyInfo PEM (openssl pkey -pubout)");
    }
    isnt(slurp($p->{rsa_pub}), slurp($p->{rsa2_pub}), 'two different RSA keys');
    is(slurp($p->{hmac_file}), "$p->{hmac}\n", 'HMAC secret file: the secret and one newline');
    ok(length $p->{hmac} >= 32, 'HMAC secret of at least 32 bytes');
}

# --- a published example: RFC 7515 appendix A.1 (HS256) -----------------------

{
    my $key = b64url_decode('AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow');
    my $t = jwt_sign(alg => 'HS256', secret => $key,
                     header_json => qq({"typ":"JWT",\r\n "alg":"HS256"}),
                     payload_json => qq({"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}));
    is($t, 'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9'
         . '.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ'
         . '.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
       'RFC 7515 A.1 token, byte for byte');
}

# --- every algorithm, verified by openssl ------------------------------------

my %key_of = (RS256 => 'rsa', RS384 => 'rsa', RS512 => 'rsa', PS256 => 'rsa',
              ES256 => 'ec256', ES384 => 'ec384', EdDSA => 'ed');
my %bits = (HS256 => 256, HS384 => 384, HS512 => 512, RS256 => 256,
            RS384 => 384, RS512 => 512, PS256 => 256, ES256 => 256, ES384 => 384);

sub openssl_verify {
    my ($alg, $input, $sig, $pub) = @_;
    my ($in, $sf) = (tmp($input), undef);
    if ($alg eq 'EdDSA') {
        $sf = tmp($sig);
        my ($rc, $out) = sh("openssl pkeyutl -verify -pubin -inkey $pub -rawin -in $in -sigfile $sf");
        return $rc == 0 && $out =~ /Signature Verified Successfully/;
    }
    my $der = $alg =~ /^ES/ ? raw_to_der($sig) : $sig;
    $sf = tmp($der);
    my $pss = $alg =~ /^PS/ ? '-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32' : '';
    my ($rc, $out) = sh("openssl dgst -sha$bits{$alg} -verify $pub $pss -signature $sf $in");
    return $rc == 0 && $out =~ /Verified OK/;
}

sub openssl_hmac {
    my ($alg, $input, $secret) = @_;
    my $in = tmp($input);
    my $hex = hexstr($secret);
    my ($rc, $out) = sh("openssl dgst -sha$bits{$alg} -mac HMAC -macopt hexkey:$hex -r $in");
    return $out =~ /^([0-9a-f]+)/ ? $1 : "openssl failed: $out";
}

my $claims = { sub => 'alice', azp => 'app-1', aud => ['orders', 'other'],
               exp => int(time) + 60, iat => int(time), n => '123' };

for my $alg (qw(HS256 HS384 HS512 RS256 RS384 RS512 PS256 ES256 ES384 EdDSA)) {
    my %k = $alg =~ /^HS/ ? (secret => $p->{hmac}) : (key => $p->{"$key_of{$alg}_key"});
    my $t = jwt_sign(alg => $alg, %k, claims => $claims, kid => "kid-$alg");
    my @seg = parts($t);
    is(scalar @seg, 3, "$alg: three segments");
    ok(!grep({ !/\A[A-Za-z0-9_-]+\z/ } @seg), "$alg: base64url, no padding");
    my $h = $json->decode(b64url_decode($seg[0]));
    is_deeply($h, { alg => $alg, typ => 'JWT', kid => "kid-$alg" }, "$alg: header");
    my $c = $json->decode(b64url_decode($seg[1]));
    is_deeply($c, $claims, "$alg: payload");
    like(b64url_decode($seg[1]), qr/"exp":\d+[,}].*"n":"123"/, "$alg: numbers are numbers, strings strings");
    my $input = "$seg[0].$seg[1]";
    my $sig = b64url_decode($seg[2]);
    if ($alg =~ /^HS/) {
        is(hexstr($sig), openssl_hmac($alg, $input, $p->{hmac}), "$alg: HMAC as openssl computes it");
        isnt(hexstr($sig), openssl_hmac($alg, $input, "$p->{hmac}\n"),
             "$alg: the newline of the file is not part of the secret");
        next;
    }
    is(length $sig, { ES256 => 64, ES384 => 96, EdDSA => 64 }->{$alg} // 256,
       "$alg: signature length");
    ok(openssl_verify($alg, $input, $sig, $p->{"$key_of{$alg}_pub"}),
       "$alg: openssl verifies the signature with the public key");
    my $other = $alg =~ /^(RS|PS)/ ? $p->{rsa2_pub} : $alg eq 'ES256' ? $p->{ec384_pub}
              : $alg eq 'ES384' ? $p->{ec256_pub} : undef;
    if ($other) {
        ok(!openssl_verify($alg, $input, $sig, $other), "$alg: not with another key");
    }
    ok(!openssl_verify($alg, "$input.", $sig, $p->{"$key_of{$alg}_pub"}),
       "$alg: not over another input");
}

{
    # PS256 is PSS, RS256 is PKCS#1 v1.5: neither verifies as the other
    my $ps = jwt_sign(alg => 'PS256', key => $p->{rsa_key}, claims => $claims);
    my @s = parts($ps);
    ok(!openssl_verify('RS256', "$s[0].$s[1]", b64url_decode($s[2]), $p->{rsa_pub}),
       'PS256 is not RS256');
    my $ps2 = jwt_sign(alg => 'PS256', key => $p->{rsa_key}, claims => $claims);
    isnt($ps, $ps2, 'PS256 signatures are salted: two differ');
}

{
    # ES256: r or s with their high bit set (a 33-byte DER INTEGER) half the
    # time, so a few tokens go through both forms
    my $ok = 0;
    for my $i (1 .. 8) {
        my $t = jwt_sign(alg => 'ES256', key => $p->{ec256_key}, claims => { i => $i });
        my @s = parts($t);
        $ok++ if openssl_verify('ES256', "$s[0].$s[1]", b64url_decode($s[2]), $p->{ec256_pub});
    }
    is($ok, 8, 'eight ES256 tokens verify');
}

{
    # the DER parser alone: leading zero, short integers, long form
    my $r = "\x80" . ("\x11" x 31);
    my $s = "\x00\x00" . ("\x22" x 30);
    my $der = "\x30\x43" . "\x02\x21\x00$r" . "\x02\x1e" . ("\x22" x 30);
    is(hexstr(ecdsa_der_to_raw($der, 32)), hexstr($r . $s),
       'ecdsa_der_to_raw: strips the sign byte, pads a short s to 32 bytes');
    my $r48 = "\xff" x 48;
    my $der48 = "\x30\x81\x66" . "\x02\x31\x00$r48" . "\x02\x31\x00$r48";
    is(hexstr(ecdsa_der_to_raw($der48, 48)), hexstr($r48 x 2),
       'ecdsa_der_to_raw: long-form length (ES384)');
    ok(!eval { ecdsa_der_to_raw("\x31\x06\x02\x01\x01\x02\x01\x01", 32); 1 },
       'ecdsa_der_to_raw: not a SEQUENCE dies');
    is(raw_to_der(ecdsa_der_to_raw($der, 32)), $der, 'and back to the same DER');
}

{
    my $t = jwt_sign(alg => 'none', claims => { sub => 'x' });
    my @s = parts($t);
    is(scalar @s, 3, 'none: three segments');
    is($s[2], '', 'none: empty signature, the token ends with "."');
    is($json->decode(b64url_decode($s[0]))->{alg}, 'none', 'none: alg none');
}

{
    my $t = jwt_sign(alg => 'HS256', secret => 'k', header => { typ => undef, crit => ['x'] });
    is_deeply($json->decode(b64url_decode((parts($t))[0])), { alg => 'HS256', crit => ['x'] },
              'header members: added, removed with undef');
    my $lie = jwt_sign(alg => 'HS256', sign_alg => 'RS256', key => $p->{rsa_key});
    my @s = parts($lie);
    is($json->decode(b64url_decode($s[0]))->{alg}, 'HS256', 'sign_alg: the header says HS256');
    ok(openssl_verify('RS256', "$s[0].$s[1]", b64url_decode($s[2]), $p->{rsa_pub}),
       'sign_alg: signed RS256');
    my $conf = jwt_sign(alg => 'HS256', secret => slurp($p->{rsa_pub}));
    my @c = parts($conf);
    is(hexstr(b64url_decode($c[2])), openssl_hmac('HS256', "$c[0].$c[1]", slurp($p->{rsa_pub})),
       'an HS256 token keyed with the RSA public key PEM (algorithm confusion)');
}

# --- broken tokens ----------------------------------------------------------

{
    my $good = jwt_sign(alg => 'RS256', key => $p->{rsa_key}, claims => { sub => 'alice' });
    my @g = parts($good);

    my $tam = jwt_tamper($good, claims => { sub => 'mallory' });
    my @t = parts($tam);
    is($t[0], $g[0], 'tamper: same header');
    is($t[2], $g[2], 'tamper: same signature');
    is($json->decode(b64url_decode($t[1]))->{sub}, 'mallory', 'tamper: another payload');
    ok(!openssl_verify('RS256', "$t[0].$t[1]", b64url_decode($t[2]), $p->{rsa_pub}),
       'tamper: the signature no longer verifies');

    is(jwt_truncate($good), "$g[0].$g[1]", 'truncate: two segments');
    my @ts = parts(jwt_truncate($good, how => 'signature'));
    ok(length($ts[2]) < length($g[2]) && length $ts[2], 'truncate: half a signature');
    my @tp = parts(jwt_truncate($good, how => 'payload'));
    ok(!eval { $json->decode(b64url_decode($tp[1])); 1 }, 'truncate: payload JSON cut');

    my $pad = jwt_padded(alg => 'HS256', secret => $p->{hmac}, claims => { sub => 'a' });
    my @pd = parts($pad);
    ok((grep { /=\z/ } @pd) == 3, 'padded: every segment ends with "="');
    (my $h0 = $pd[0]) =~ s/=+\z//;
    is($json->decode(b64url_decode($h0))->{alg}, 'HS256', 'padded: the header is a JWS header');
    (my $sig = $pd[2]) =~ tr{-_}{+/};
    is(hexstr(decode_base64($sig)), openssl_hmac('HS256', "$pd[0].$pd[1]", $p->{hmac}),
       'padded: signed over the padded text');

    my $nb = jwt_not_base64url(alg => 'HS256', secret => $p->{hmac}, claims => { sub => 'a' });
    my @nb = parts($nb);
    like($nb[1], qr{\+}, 'not base64url: a "+"');
    like($nb[1], qr{/}, 'not base64url: a "/"');
    is($json->decode(decode_base64($nb[1]))->{sub}, 'a', 'not base64url: standard base64 of the claims');
    is(hexstr(b64url_decode($nb[2])), openssl_hmac('HS256', "$nb[0].$nb[1]", $p->{hmac}),
       'not base64url: signed over that text');

    for my $n (16384, 16385) {
        my $big = jwt_sized($n, alg => 'HS256', secret => $p->{hmac}, claims => { sub => 'a' });
        is(length $big, $n, "sized: exactly $n bytes");
        my @b = parts($big);
        is(hexstr(b64url_decode($b[2])), openssl_hmac('HS256', "$b[0].$b[1]", $p->{hmac}),
           "sized: $n bytes, correctly signed");
        is($json->decode(b64url_decode($b[1]))->{sub}, 'a', "sized: $n bytes, the claims kept");
    }
    my $bigrs = jwt_sized(16385, alg => 'RS256', key => $p->{rsa_key}, claims => { sub => 'a' });
    my @br = parts($bigrs);
    is(length $bigrs, 16385, 'sized RS256: 16385 bytes');
    ok(openssl_verify('RS256', "$br[0].$br[1]", b64url_decode($br[2]), $p->{rsa_pub}),
       'sized RS256: verifies');
}

# --- JWKS ---------------------------------------------------------------------

{
    my $path = "$dir/jwks.json";
    my $text = jwks_write($path, [
        { pub => $p->{rsa_pub}, kid => 'rsa-1', alg => 'RS256', use => 'sig' },
        { pub => $p->{ec256_pub}, kid => 'ec-1' },
        { pub => $p->{ec384_key}, kid => 'ec-2' },
        { pub => slurp($p->{ed_pub}), kid => 'ed-1' },
        { secret => $p->{hmac}, kid => 'hs-1', alg => 'HS256' },
        { pub => $p->{rsa2_pub}, extra => { x5t => 'abc' } },
    ]);
    is(slurp($path), $text, 'jwks_write writes what it returns');
    my $j = $json->decode($text);
    my @k = @{ $j->{keys} };
    is(scalar @k, 6, 'six keys');

    my ($rc, $mod) = sh("openssl rsa -pubin -in $p->{rsa_pub} -noout -modulus");
    $mod =~ /Modulus=([0-9A-F]+)/;
    is(uc hexstr(b64url_decode($k[0]{n})), $1, 'RSA n is the modulus');
    my (undef, $rtext) = sh("openssl pkey -pubin -in $p->{rsa_pub} -text -noout");
    my ($e) = $rtext =~ /Exponent: (\d+)/;
    is(hex(hexstr(b64url_decode($k[0]{e}))), $e, "RSA e is the exponent ($e)");
    is_deeply([@{ $k[0] }{qw(kty kid alg use)}], [qw(RSA rsa-1 RS256 sig)], 'RSA members');
    unlike($k[0]{n}, qr/\A(?:AA)/, 'RSA n without a leading zero byte');

    for my $c ([1, 'ec256_pub', 'P-256', 32], [2, 'ec384_pub', 'P-384', 48]) {
        my ($i, $pub, $crv, $len) = @$c;
        my (undef, $t) = sh("openssl pkey -pubin -in $p->{$pub} -text -noout");
        my $point = text_hex($t, 'pub');
        is($k[$i]{kty}, 'EC', "$crv: kty EC");
        is($k[$i]{crv}, $crv, "$crv: crv");
        is(length b64url_decode($k[$i]{x}), $len, "$crv: x of $len bytes");
        is('04' . hexstr(b64url_decode($k[$i]{x})) . hexstr(b64url_decode($k[$i]{y})), $point,
           "$crv: 04 || x || y is the public point");
    }
    ok(!exists $k[1]{alg}, 'no alg member unless asked');

    my (undef, $et) = sh("openssl pkey -pubin -in $p->{ed_pub} -text -noout");
    is_deeply([@{ $k[3] }{qw(kty crv)}], [qw(OKP Ed25519)], 'Ed25519: OKP');
    is(hexstr(b64url_decode($k[3]{x})), text_hex($et, 'pub'), 'Ed25519: x is the public key');

    is($k[4]{kty}, 'oct', 'oct key');
    is(b64url_decode($k[4]{k}), $p->{hmac}, 'oct k is the secret');
    is($k[5]{x5t}, 'abc', 'extra members');
    ok(!exists $k[5]{kid}, 'a key without kid');
}

# --- API keys ------------------------------------------------------------------

{
    my $path = api_keys_write("$dir/keys.txt", [['key-one', 'app-one'], '# comment', '',
                                                ['key-two'], "key-three\tapp three"]);
    is(slurp($path), "key-one app-one\n# comment\n\nkey-two\nkey-three\tapp three\n",
       'api_keys_write');
}

# --- certificates -----------------------------------------------------------------

{
    my ($rc, $out) = sh("openssl verify -CAfile $p->{ca_crt} $p->{server_crt} $p->{client1_crt} $p->{client2_crt}");
    is($rc, 0, 'server and client certificates verify against the CA') or diag $out;
    ($rc, $out) = sh("openssl verify -CAfile $p->{ca_crt} $p->{other_crt}");
    isnt($rc, 0, 'the other client certificate does not verify against the CA');
    ($rc, $out) = sh("openssl verify -CAfile $p->{other_ca_crt} $p->{other_crt}");
    is($rc, 0, 'it verifies against the other CA');
    ($rc, $out) = sh("openssl verify -CAfile $p->{ca_crt} -purpose sslclient $p->{client1_crt}");
    is($rc, 0, 'client certificate: for TLS clients');
    ($rc, $out) = sh("openssl verify -CAfile $p->{ca_crt} -purpose sslserver $p->{server_crt}");
    is($rc, 0, 'server certificate: for TLS servers');

    for my $c (['client1_crt', 'CN=app-one,O=Test'], ['client2_crt', 'CN=app-two,O=Test'],
               ['other_crt', 'CN=app-one,O=Test']) {
        my (undef, $s) = sh("openssl x509 -in $p->{$c->[0]} -noout -subject -nameopt RFC2253");
        is($s, "subject=$c->[1]\n", "$c->[0]: subject $c->[1] (RFC 2253)");
    }
    my (undef, $san) = sh("openssl x509 -in $p->{server_crt} -noout -ext subjectAltName");
    like($san, qr/IP Address:127\.0\.0\.1/, 'server certificate: IP 127.0.0.1');
    like($san, qr/DNS:localhost/, 'server certificate: DNS localhost');

    my $fp = fingerprint($p->{client1_crt});
    like($fp, qr/\A(?:[0-9A-F]{2}:){31}[0-9A-F]{2}\z/, 'fingerprint: AB:CD:... form');
    my (undef, $der) = sh("openssl x509 -in $p->{client1_crt} -outform DER");
    (my $plain = $fp) =~ s/://g;
    is(lc $plain, sha256_hex($der), 'fingerprint: SHA-256 of the DER');
    isnt(fingerprint($p->{other_crt}), $fp, 'same subject, another fingerprint');
    my $path = fingerprints_write("$dir/fp.txt", [$p->{client1_crt}, lc $plain]);
    is(slurp($path), "$fp\n" . lc($plain) . "\n", 'fingerprints_write');
}

# --- the HTTPS client, against openssl s_server -------------------------------------

{
    my $port = 2985;
    my $log = "$dir/s_server.log";
    my $pid = fork // die "fork: $!";
    $S_SERVER = $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log;
        open STDERR, '>&', \*STDOUT;
        exec 'openssl', 's_server', '-accept', "127.0.0.1:$port", '-naccept', 3,
             '-cert', $p->{server_crt}, '-key', $p->{server_key},
             '-CAfile', $p->{ca_crt}, '-verify', 1, '-www';
        exit 127;
    }
    my $deadline = time + 5;
    sleep 0.05 until (-e $log && slurp($log) =~ /ACCEPT/) || time > $deadline;

    my $r = https_exchange($port, "GET / HTTP/1.0\r\n\r\n",
                           cert => $p->{client1_crt}, key => $p->{client1_key},
                           ca => $p->{ca_crt});
    like($r, qr{\AHTTP/1\.0 200 ok}, 'https_exchange: an answer over TLS');
    like($r, qr{Client certificate}, 'https_exchange: the server got the client certificate');
    like($r, qr/CN\s*=\s*app-one/, 'https_exchange: app-one\'s');

    $r = https_exchange($port, "GET / HTTP/1.0\r\n\r\n", ca => $p->{ca_crt});
    like($r, qr{no client certificate available}, 'https_exchange without a certificate');

    ok(!eval { https_connect($port, ca => $p->{other_ca_crt}); 1 },
       'https_connect refuses a server its CA did not sign');
    like($@, qr/TLS connection .* failed/, 'and says so');

    kill 'TERM', $pid;
    waitpid $pid, 0;
    $S_SERVER = undef;
}

# a test that dies does not leave s_server on its port
END { kill 'TERM', $S_SERVER if $S_SERVER }

done_testing;
