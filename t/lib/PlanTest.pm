package PlanTest;

=head1 NAME

PlanTest - what the plan suites (t/80*-plan*.t, t/81*-plans*.t) need,
made with Perl core modules and Debian 12's openssl command (OpenSSL 3.0):
signing keys, JSON Web Tokens (JWS compact form) good and broken, JWKS
files, API key files, and the certificates of mutual TLS with an HTTPS
client that presents one.  Independent of which Test::Nginx::Socket is
loaded, and of the module (t/800-plan-tools.t checks it alone).

=head1 SYNOPSIS

    use lib 't/lib';
    use PlanTest;

    my $p = make_plan_files('t/servroot_plans_keys');   # keys and certs
    my $t = jwt_sign(alg => 'RS256', key => $p->{rsa_key},
                     claims => { sub => 'alice', azp => 'app-1',
                                 exp => time + 60 });
    my $h = jwt_sign(alg => 'HS256', secret => $p->{hmac},
                     kid => 'hs-1', header => { typ => undef });
    jwks_write("$p->{dir}/jwks.json", [
        { pub => $p->{rsa_pub}, kid => 'rsa-1', alg => 'RS256' },
        { pub => $p->{ec256_pub}, kid => 'ec-1' },
        { secret => $p->{hmac}, kid => 'hs-1', alg => 'HS256' } ]);
    api_keys_write("$p->{dir}/keys.txt", [ ['key-one', 'app-one'],
                                            '# a comment', ['key-two'] ]);
    fingerprints_write("$p->{dir}/fp.txt", [ $p->{client1_crt} ]);
    my $fp = fingerprint($p->{client1_crt});            # "AB:CD:..."
    my $answer = https_exchange($port, "GET / HTTP/1.0\r\n\r\n",
                                cert => $p->{client1_crt},
                                key => $p->{client1_key},
                                ca => $p->{ca_crt});

=head1 API (all exported by default)

  make_keys($dir) -> $p, a hash of absolute paths (files made anew):
        rsa_key rsa_pub          RSA 2048 (private PKCS#8 PEM, public PEM
                                 from "openssl pkey -pubout")
        rsa2_key rsa2_pub        another RSA 2048 (a "bad signature")
        ec256_key ec256_pub      EC P-256
        ec384_key ec384_pub      EC P-384
        ed_key ed_pub            Ed25519
        hmac_file                the HMAC secret followed by a newline
                                 (the plan removes one trailing newline)
        hmac                     the secret's bytes (no newline)
        dir                      $dir, absolute
  make_certs($dir) -> $p: mutual TLS, EC P-256 keys, 30 days:
        ca_crt ca_key            the CA ("CN=Plan Test CA,O=Test")
        server_crt server_key    CN=localhost, subjectAltName IP:127.0.0.1,
                                 DNS:localhost, signed by the CA
        client1_crt client1_key  "CN=app-one,O=Test", signed by the CA
        client2_crt client2_key  "CN=app-two,O=Test", signed by the CA
        other_ca_crt other_ca_key   another CA
        other_crt other_key      "CN=app-one,O=Test" too, signed by the
                                 other CA (same subject, not trusted)
  make_plan_files($dir) -> both in one hash.

  b64url($bytes) -> base64url without padding;  b64url_decode($text)
  jwt_sign(%o) -> compact JWS "header.payload.signature":
        alg      HS256 HS384 HS512 RS256 RS384 RS512 PS256 ES256 ES384
                 EdDSA or none (empty signature); also the "alg" header
                 member unless header => { alg => ... } says otherwise
        key      path of the private key PEM (RS*, PS256, ES*, EdDSA)
        secret   the HMAC secret bytes (HS*)
        claims   hash of the payload (JSON, canonical key order); numbers
                 stay numbers (time + 60), strings stay strings ("123")
        header   extra header members; one with an undef value is removed
                 (typ => undef); the default header is {alg, typ: "JWT"}
        kid      the "kid" header member
        header_json / payload_json   the exact JSON text instead
        sign_alg the algorithm actually used to sign (default alg): e.g.
                 alg => 'RS256', sign_alg => 'HS256' for a lying header
  jws_signature($alg, $signing_input, key => ..., secret => ...) -> raw
        signature bytes (JWS form: ES* are r||s, 32 or 48 bytes each)
  ecdsa_der_to_raw($der, $half_len) -> r||s (the DER parsed in Perl)
  Broken tokens:
  jwt_tamper($token, claims => {...}) -> the same header and signature,
        another payload
  jwt_truncate($token, how => 'segment' | 'signature' | 'payload') ->
        'segment': "header.payload" (no third part); 'signature': the
        signature cut in half; 'payload': the payload cut to half
        (its JSON no longer parses)
  jwt_padded(%sign_opts) -> a token signed over segments that keep
        their base64 "=" padding
  jwt_not_base64url(%sign_opts) -> a token whose segments are standard
        base64 with "+" and "/" (signed over that text)
  jwt_sized($length, %sign_opts) -> a valid token of exactly $length
        bytes (a "pad" claim and a "pad" header member fill it);
        jwt_sized(16385, ...) is just over the 16 KiB limit
  jwks_write($path, [ {pub => PEM_PATH_OR_TEXT, kid, alg, use,
        extra => {..}}, {secret => BYTES, kid, alg}, ... ]) -> the JWKS
        text, also written to $path: RSA n/e, EC crv/x/y (P-256, P-384),
        OKP crv Ed25519 x, oct k; members in canonical order
  jwk_of($pem) -> the hash of one public key (no kid/alg)
  pubkey_info($pem) -> {kty => RSA, n, e} | {kty => EC, crv, x, y} |
        {kty => OKP, crv, x} with the raw big-endian bytes
  api_keys_write($path, [ [KEY, APP], [KEY], 'raw line', ... ])
  fingerprint($cert_path) -> "AB:CD:..." (openssl x509 -fingerprint
        -sha256, the part after "=")
  fingerprints_write($path, [CERT_PATH | 'AB:CD...' | 'raw line', ...])
  https_connect($port, cert => , key => , ca => , host => '127.0.0.1',
        timeout => 5) -> IO::Socket::SSL socket (a client certificate
        when cert/key are given; the server's verified against ca when
        given, for "localhost"); dies with the TLS error otherwise
  https_exchange($port, $request, %opts of https_connect) -> the whole
        answer (until the server closes, or timeout, 5 s)
  slurp($path), spew($path, $bytes)
  openssl(@args) -> stdout of "openssl @args"; dies with its stderr

IO::Socket::SSL is Debian's libio-socket-ssl-perl (in the Makefile's
DEB_PACKAGES).  Nothing here reaches the network.

=cut

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use File::Spec ();
use File::Temp ();
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);
use JSON::PP ();
use IO::Select ();
use Time::HiRes qw(time);

our @EXPORT = qw(make_keys make_certs make_plan_files b64url b64url_decode
                 jwt_sign jws_signature ecdsa_der_to_raw jwt_tamper
                 jwt_truncate jwt_padded jwt_not_base64url jwt_sized
                 jwks_write jwk_of pubkey_info api_keys_write fingerprint
                 fingerprints_write https_connect https_exchange slurp
                 spew openssl);

my $JSON = JSON::PP->new->canonical(1);

# --- files and openssl ------------------------------------------------------

sub slurp {
    my $path = shift;
    open my $in, '<:raw', $path or die "PlanTest: $path: $!\n";
    local $/;
    my $t = <$in>;
    return $t // '';
}

sub spew {
    my ($path, $bytes) = @_;
    open my $out, '>:raw', $path or die "PlanTest: $path: $!\n";
    print $out $bytes;
    close $out or die "PlanTest: $path: $!\n";
    return $path;
}

sub _q {
    my $s = shift;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

sub openssl {
    my @args = @_;
    my $err = File::Temp->new;
    my $cmd = join ' ', 'openssl', map({ _q($_) } @args), '2>' . _q("$err");
    my $out = qx{$cmd};
    if ($? != 0) {
        my $msg = slurp("$err");
        die "PlanTest: openssl @args failed: $msg\n";
    }
    return $out;
}

sub _tmpfile {
    my $bytes = shift;
    my $f = File::Temp->new;
    binmode $f;
    print $f $bytes;
    close $f;
    return $f;
}

# --- keys ------------------------------------------------------------------

sub make_keys {
    my $dir = File::Spec->rel2abs(shift);
    make_path($dir);
    my %p = (dir => $dir);
    my %gen = (
        rsa   => [qw(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)],
        rsa2  => [qw(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)],
        ec256 => [qw(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)],
        ec384 => [qw(-algorithm EC -pkeyopt ec_paramgen_curve:P-384)],
        ed    => [qw(-algorithm ED25519)],
    );
    for my $name (sort keys %gen) {
        my ($key, $pub) = ("$dir/$name.key", "$dir/$name.pub");
        unlink $key, $pub;
        openssl('genpkey', @{ $gen{$name} }, '-out', $key);
        openssl('pkey', '-in', $key, '-pubout', '-out', $pub);
        @p{"${name}_key", "${name}_pub"} = ($key, $pub);
    }
    # printable, so that a test may also pass it on a command line
    my $secret = 'plan-test-' . unpack('H*', join '', map { chr int rand 256 } 1 .. 24);
    $p{hmac} = $secret;
    $p{hmac_file} = spew("$dir/hmac.secret", "$secret\n");
    return \%p;
}

my $EXT = <<'_EOC_';
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
_EOC_

sub _serial { return join '', 1 + int rand 9, map { int rand 10 } 1 .. 15 }

sub _ec_key {
    my $path = shift;
    unlink $path;
    openssl(qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out), $path);
    return $path;
}

sub _ca {
    my ($dir, $name, $subj, $cnf) = @_;
    my ($crt, $key) = ("$dir/$name.crt", _ec_key("$dir/$name.key"));
    openssl('req', '-config', $cnf, '-new', '-x509', '-key', $key,
            '-subj', $subj, '-days', 30, '-sha256', '-extensions', 'ca',
            '-set_serial', _serial(), '-out', $crt);
    return ($crt, $key);
}

sub _signed {
    my ($dir, $name, $subj, $ext, $ca_crt, $ca_key, $cnf) = @_;
    my ($crt, $key, $csr) = ("$dir/$name.crt", _ec_key("$dir/$name.key"),
                             "$dir/$name.csr");
    openssl('req', '-config', $cnf, '-new', '-key', $key, '-subj', $subj,
            '-out', $csr);
    openssl('x509', '-req', '-in', $csr, '-CA', $ca_crt, '-CAkey', $ca_key,
            '-set_serial', _serial(), '-days', 30, '-sha256',
            '-extfile', $cnf, '-extensions', $ext, '-out', $crt);
    unlink $csr;
    return ($crt, $key);
}

sub make_certs {
    my $dir = File::Spec->rel2abs(shift);
    make_path($dir);
    my $cnf = spew("$dir/openssl-plan.cnf", $EXT);
    my %p = (dir => $dir);
    @p{qw(ca_crt ca_key)} = _ca($dir, 'ca', '/O=Test/CN=Plan Test CA', $cnf);
    @p{qw(other_ca_crt other_ca_key)} =
        _ca($dir, 'other-ca', '/O=Other/CN=Other Test CA', $cnf);
    @p{qw(server_crt server_key)} =
        _signed($dir, 'server', '/CN=localhost', 'server', @p{qw(ca_crt ca_key)}, $cnf);
    # "/O=Test/CN=app-one" is "CN=app-one,O=Test" in RFC 2253 order
    @p{qw(client1_crt client1_key)} =
        _signed($dir, 'app-one', '/O=Test/CN=app-one', 'client', @p{qw(ca_crt ca_key)}, $cnf);
    @p{qw(client2_crt client2_key)} =
        _signed($dir, 'app-two', '/O=Test/CN=app-two', 'client', @p{qw(ca_crt ca_key)}, $cnf);
    @p{qw(other_crt other_key)} =
        _signed($dir, 'other-app-one', '/O=Test/CN=app-one', 'client',
                @p{qw(other_ca_crt other_ca_key)}, $cnf);
    return \%p;
}

sub make_plan_files {
    my $dir = shift;
    return { %{ make_keys($dir) }, %{ make_certs($dir) } };
}

# --- base64url and JWS -------------------------------------------------------

sub b64url {
    my $b = encode_base64(shift // '', '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+\z//;
    return $b;
}

sub b64url_decode {
    my $t = shift;
    $t =~ tr{-_}{+/};
    $t .= '=' x ((4 - length($t) % 4) % 4);
    return decode_base64($t);
}

my %HASH = (256 => 'sha256', 384 => 'sha384', 512 => 'sha512');

sub jws_signature {
    my ($alg, $input, %o) = @_;
    return '' if $alg eq 'none';
    if ($alg =~ /^HS(256|384|512)\z/) {
        defined $o{secret} or die "PlanTest: $alg needs secret =>\n";
        my $f = { 256 => \&hmac_sha256, 384 => \&hmac_sha384,
                  512 => \&hmac_sha512 }->{$1};
        return $f->($input, $o{secret});
    }
    my $key = $o{key} or die "PlanTest: $alg needs key => (a private key PEM)\n";
    my $in = _tmpfile($input);
    my $sig = File::Temp->new;
    close $sig;
    if ($alg =~ /^(RS|PS|ES)(256|384|512)\z/) {
        my ($kind, $bits) = ($1, $2);
        my @pss = $kind eq 'PS'
            ? ('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest')
            : ();
        openssl('dgst', "-$HASH{$bits}", '-sign', $key, @pss, '-out', "$sig", "$in");
        my $s = slurp("$sig");
        return $s unless $kind eq 'ES';
        return ecdsa_der_to_raw($s, { 256 => 32, 384 => 48, 512 => 66 }->{$bits});
    }
    if ($alg eq 'EdDSA') {
        openssl('pkeyutl', '-sign', '-inkey', $key, '-rawin', '-in', "$in",
                '-out', "$sig");
        return slurp("$sig");
    }
    die "PlanTest: unknown algorithm $alg\n";
}

# DER: tag, length (short or long form), value
sub _der_tlv {
    my ($der, $pos) = @_;
    my $tag = ord substr $der, $pos++, 1;
    my $len = ord substr $der, $pos++, 1;
    if ($len & 0x80) {
        my $n = $len & 0x7f;
        die "PlanTest: bad DER length\n" if $n < 1 || $n > 4;
        $len = 0;
        $len = $len * 256 + ord substr $der, $pos++, 1 for 1 .. $n;
    }
    die "PlanTest: truncated DER\n" if $pos + $len > length $der;
    return ($tag, substr($der, $pos, $len), $pos + $len);
}

sub ecdsa_der_to_raw {
    my ($der, $n) = @_;
    my ($tag, $seq, $end) = _der_tlv($der, 0);
    die "PlanTest: ECDSA signature is not a DER SEQUENCE\n" unless $tag == 0x30;
    die "PlanTest: bytes after the ECDSA SEQUENCE\n" if $end != length $der;
    my ($out, $pos) = ('', 0);
    for my $which (qw(r s)) {
        my ($t, $int, $next) = _der_tlv($seq, $pos);
        die "PlanTest: ECDSA $which is not an INTEGER\n" unless $t == 0x02;
        $int =~ s/\A\x00+//;
        die "PlanTest: ECDSA $which longer than $n bytes\n" if length $int > $n;
        $out .= ("\x00" x ($n - length $int)) . $int;
        $pos = $next;
    }
    die "PlanTest: bytes after s\n" if $pos != length $seq;
    return $out;
}

sub _header {
    my %o = @_;
    my %h = (alg => $o{alg}, typ => 'JWT');
    $h{kid} = $o{kid} if defined $o{kid};
    if ($o{header}) {
        while (my ($k, $v) = each %{ $o{header} }) { $h{$k} = $v }
    }
    delete @h{ grep { !defined $h{$_} } keys %h };
    return \%h;
}

sub _sign_input {
    my ($input, %o) = @_;
    my $alg = $o{sign_alg} // $o{alg};
    return "$input." . b64url(jws_signature($alg, $input, %o));
}

sub jwt_sign {
    my %o = @_;
    defined $o{alg} or die "PlanTest: jwt_sign needs alg =>\n";
    my $hj = $o{header_json} // $JSON->encode(_header(%o));
    my $pj = $o{payload_json} // $JSON->encode($o{claims} // {});
    return _sign_input(b64url($hj) . '.' . b64url($pj), %o);
}

sub jwt_tamper {
    my ($token, %o) = @_;
    my ($h, undef, $s) = split /\./, $token, 3;
    my $pj = $o{payload_json} // $JSON->encode($o{claims} // { sub => 'mallory' });
    return join '.', $h, b64url($pj), $s;
}

sub jwt_truncate {
    my ($token, %o) = @_;
    my $how = $o{how} // 'segment';
    my ($h, $p, $s) = split /\./, $token, 3;
    return "$h.$p" if $how eq 'segment';
    return "$h.$p." . substr($s, 0, int(length($s) / 2)) if $how eq 'signature';
    return "$h." . substr($p, 0, int(length($p) / 2)) . ".$s" if $how eq 'payload';
    die "PlanTest: jwt_truncate how => segment | signature | payload\n";
}

# the same token whose signature's last character has a non-zero unused
# bit: a lax decoder reads the same bytes (RFC 4648, 3.5)
sub jwt_non_canonical {
    my ($token) = @_;
    my ($h, $p, $s) = split /\./, $token, 3;
    my $abc = join '', 'A' .. 'Z', 'a' .. 'z', 0 .. 9, '-', '_';
    my $unused = { 2 => 4, 3 => 2 }->{ length($s) % 4 }
        or die "PlanTest: a signature without unused bits\n";
    my $v = index $abc, substr($s, -1);
    substr($s, -1) = substr $abc, $v | 1, 1;
    return "$h.$p.$s";
}

sub _b64 { return encode_base64(shift, '') }

sub jwt_padded {
    my %o = @_;
    my $h = _header(%o);
    my $claims = { %{ $o{claims} // {} } };
    # a payload and a header whose lengths are not multiples of 3
    my $input;
    for my $pad ('', 'x', 'xx') {
        $claims->{pad} = $pad;
        my ($hj, $pj) = ($JSON->encode($h), $JSON->encode($claims));
        next if length($pj) % 3 == 0;
        $h->{pad} = 'x' if length($hj) % 3 == 0;
        $hj = $JSON->encode($h);
        $input = _b64($hj) . '.' . _b64($pj);
        $input =~ tr{+/}{-_};
        last;
    }
    my $t = _sign_input($input, %o);
    my ($a, $b, $c) = split /\./, $t;
    $c .= '=' x ((4 - length($c) % 4) % 4);
    return "$a.$b.$c";
}

sub jwt_not_base64url {
    my %o = @_;
    my $claims = { %{ $o{claims} // {} } };
    # "?>?" encodes to "Pz4/", "~~~" to "fn5+"
    for my $n (0 .. 2) {
        $claims->{note} = ('a' x $n) . '?>?~~~ ' x 3;
        my $pj = $JSON->encode($claims);
        my $b = _b64($pj);
        $b =~ s/=+\z//;
        next unless $b =~ m{\+} && $b =~ m{/};
        my $hj = $JSON->encode(_header(%o));
        my $hb = _b64($hj);
        $hb =~ s/=+\z//;
        $hb =~ tr{+/}{-_};
        my $t = _sign_input("$hb.$b", %o);
        return $t;
    }
    die "PlanTest: no standard base64 payload with + and /\n";
}

sub jwt_sized {
    my ($want, %o) = @_;
    my $claims = { %{ $o{claims} // {} } };
    my $sig = b64url(jws_signature($o{sign_alg} // $o{alg}, 'x', %o));
    for my $hpad (0 .. 3) {
        my $h = _header(%o);
        $h->{pad} = 'h' x $hpad if $hpad;
        my $hb = b64url($JSON->encode($h));
        $claims->{pad} = '';
        my $base = length($hb) + 1 + length(b64url($JSON->encode($claims))) + 1
                   + length($sig);
        my $guess = int(($want - $base) * 3 / 4) - 3;
        $guess = 0 if $guess < 0;
        for my $n ($guess .. $guess + 8) {
            $claims->{pad} = 'p' x $n;
            my $len = length($hb) + 1 + length(b64url($JSON->encode($claims)))
                      + 1 + length($sig);
            next unless $len == $want;
            my $t = _sign_input("$hb." . b64url($JSON->encode($claims)), %o);
            return $t if length $t == $want;
        }
    }
    die "PlanTest: cannot make a token of exactly $want bytes\n";
}

# --- public keys and JWKS ---------------------------------------------------

my %OID = (
    "\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" => 'RSA',
    "\x2a\x86\x48\xce\x3d\x02\x01"         => 'EC',
    "\x2b\x65\x70"                         => 'Ed25519',
    "\x2a\x86\x48\xce\x3d\x03\x01\x07"     => 'P-256',
    "\x2b\x81\x04\x00\x22"                 => 'P-384',
    "\x2b\x81\x04\x00\x23"                 => 'P-521',
);

sub _pem_file {
    my $pem = shift;
    return ($pem, undef) unless $pem =~ /-----BEGIN/;
    my $f = _tmpfile($pem);
    return ("$f", $f);
}

sub pubkey_info {
    my ($file, $keep) = _pem_file(shift);
    my $text = slurp($file);
    my @in = $text =~ /PRIVATE KEY/ ? ('-in', $file, '-pubout')
                                    : ('-pubin', '-in', $file);
    my $der = openssl('pkey', @in, '-outform', 'DER');
    # SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID, params }, BIT STRING }
    my ($t, $spki) = _der_tlv($der, 0);
    die "PlanTest: not a SubjectPublicKeyInfo\n" unless $t == 0x30;
    my ($t2, $algid, $pos) = _der_tlv($spki, 0);
    my ($t3, $oid, $p2) = _der_tlv($algid, 0);
    my $kind = $OID{$oid} // die "PlanTest: unknown key algorithm\n";
    my ($t4, $bits) = _der_tlv($spki, $pos);
    die "PlanTest: no BIT STRING\n" unless $t4 == 0x03;
    $bits = substr $bits, 1;    # unused bits count, 0
    if ($kind eq 'RSA') {
        my ($t5, $rsa) = _der_tlv($bits, 0);
        my ($tn, $n, $q) = _der_tlv($rsa, 0);
        my ($te, $e) = _der_tlv($rsa, $q);
        s/\A\x00+// for $n, $e;
        return { kty => 'RSA', n => $n, e => $e };
    }
    if ($kind eq 'EC') {
        my ($tc, $curve) = _der_tlv($algid, $p2);
        my $crv = $OID{$curve} // die "PlanTest: unknown curve\n";
        die "PlanTest: compressed EC point\n" unless substr($bits, 0, 1) eq "\x04";
        my $n = (length($bits) - 1) / 2;
        return { kty => 'EC', crv => $crv, x => substr($bits, 1, $n),
                 y => substr($bits, 1 + $n, $n) };
    }
    return { kty => 'OKP', crv => 'Ed25519', x => $bits };
}

sub jwk_of {
    my $i = pubkey_info(shift);
    return { kty => 'RSA', n => b64url($i->{n}), e => b64url($i->{e}) }
        if $i->{kty} eq 'RSA';
    return { kty => 'EC', crv => $i->{crv}, x => b64url($i->{x}),
             y => b64url($i->{y}) }
        if $i->{kty} eq 'EC';
    return { kty => 'OKP', crv => 'Ed25519', x => b64url($i->{x}) };
}

sub jwks_write {
    my ($path, $keys) = @_;
    my @out;
    for my $k (@$keys) {
        my $j = defined $k->{secret} ? { kty => 'oct', k => b64url($k->{secret}) }
                                     : jwk_of($k->{pub});
        for my $m (qw(kid alg use)) {
            $j->{$m} = $k->{$m} if defined $k->{$m};
        }
        $j = { %$j, %{ $k->{extra} } } if $k->{extra};
        push @out, $j;
    }
    my $text = $JSON->encode({ keys => \@out }) . "\n";
    spew($path, $text) if defined $path;
    return $text;
}

# --- API keys ---------------------------------------------------------------

sub api_keys_write {
    my ($path, $lines) = @_;
    my $text = join '', map { ref $_ ? join(' ', grep { defined } @$_) . "\n"
                                     : "$_\n" } @$lines;
    spew($path, $text);
    return $path;
}

# --- mutual TLS -------------------------------------------------------------

sub fingerprint {
    my $cert = shift;
    my $out = openssl('x509', '-in', $cert, '-noout', '-fingerprint', '-sha256');
    $out =~ /Fingerprint=([0-9A-Fa-f:]+)/ or die "PlanTest: no fingerprint: $out\n";
    return uc $1;
}

sub fingerprints_write {
    my ($path, $list) = @_;
    my $text = join '', map { (-f $_ ? fingerprint($_) : $_) . "\n" } @$list;
    spew($path, $text);
    return $path;
}

sub https_connect {
    my ($port, %o) = @_;
    require IO::Socket::SSL;
    my $sock = IO::Socket::SSL->new(
        PeerHost => $o{host} // '127.0.0.1',
        PeerPort => $port,
        Timeout  => $o{timeout} // 5,
        SSL_hostname => 'localhost',
        ($o{ca} ? (SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
                   SSL_ca_file => $o{ca},
                   SSL_verifycn_scheme => 'http',
                   SSL_verifycn_name => 'localhost')
                : (SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE())),
        ($o{cert} ? (SSL_cert_file => $o{cert}, SSL_key_file => $o{key}) : ()),
        ($o{ssl_opts} ? %{ $o{ssl_opts} } : ()),
    ) or die "PlanTest: TLS connection to 127.0.0.1:$port failed: "
             . IO::Socket::SSL::errstr() . "\n";
    $sock->autoflush(1);
    binmode $sock;
    return $sock;
}

sub https_exchange {
    my ($port, $req, %o) = @_;
    my $s = https_connect($port, %o);
    print $s $req;
    my $buf = '';
    my $deadline = time + ($o{timeout} // 5);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        next unless $s->pending || $sel->can_read($deadline - time);
        my $n = sysread($s, my $chunk, 65536);
        if (!defined $n) {
            next if $IO::Socket::SSL::SSL_ERROR
                    == IO::Socket::SSL::SSL_WANT_READ();
            last;
        }
        last if $n == 0;
        $buf .= $chunk;
    }
    close $s;
    return $buf;
}

1;
