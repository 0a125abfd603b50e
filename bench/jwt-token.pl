#!/usr/bin/perl
# bench/jwt-token.pl ALG KEY [CLAIMS-JSON]: prints a JWS compact token of
# CLAIMS (default: sub, azp, iat = now - 60, exp = now + 1 day) signed with
# KEY: a secret file for HS256/384/512 (its bytes, one trailing newline
# removed, as the plan reads secret_file=), a PEM private key for RS*,
# PS256, ES256/384 (raw r || s, RFC 7518 3.4), EdDSA. Uses the openssl CLI
# for the public-key algorithms. For bench/jwt.sh.

use strict;
use warnings;
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);

my ($alg, $key, $claims) = @ARGV;
die "usage: $0 ALG KEY [CLAIMS-JSON]\n" unless defined $key;
my $now = time;
$claims //= qq({"sub":"bench","azp":"bench-app","iat":) . ($now - 60)
            . qq(,"exp":) . ($now + 86400) . '}';

sub b64u { my $b = encode_base64($_[0], ''); $b =~ tr{+/}{-_}; $b =~ s/=+$//; $b }

sub slurp {
    open(my $fh, '<:raw', $_[0]) or die "$_[0]: $!";
    local $/;
    my $s = <$fh>;
    return $s;
}

my $input = b64u(qq({"alg":"$alg","typ":"JWT"})) . '.' . b64u($claims);
my $sig;
my %hmac = (HS256 => \&hmac_sha256, HS384 => \&hmac_sha384,
            HS512 => \&hmac_sha512);

if ($hmac{$alg}) {
    my $secret = slurp($key);
    $secret =~ s/\n$//;
    $sig = $hmac{$alg}->($input, $secret);
} else {
    my $tmp = tempdir(CLEANUP => 1);
    open(my $fh, '>:raw', "$tmp/in") or die;
    print $fh $input;
    close($fh);
    my ($md) = $alg =~ /(\d+)$/;
    my @cmd;
    if ($alg =~ /^RS/) {
        @cmd = ('openssl', 'dgst', "-sha$md", '-sign', $key);
    } elsif ($alg eq 'PS256') {
        @cmd = ('openssl', 'dgst', '-sha256', '-sign', $key,
                '-sigopt', 'rsa_padding_mode:pss',
                '-sigopt', 'rsa_pss_saltlen:digest');
    } elsif ($alg =~ /^ES/) {
        @cmd = ('openssl', 'dgst', "-sha$md", '-sign', $key);
    } elsif ($alg eq 'EdDSA') {
        @cmd = ('openssl', 'pkeyutl', '-sign', '-inkey', $key, '-rawin');
    } else {
        die "unknown alg $alg\n";
    }
    push @cmd, '-out', "$tmp/sig";
    push @cmd, $alg eq 'EdDSA' ? ('-in', "$tmp/in") : "$tmp/in";
    system(@cmd) == 0 or die "@cmd: failed\n";
    $sig = slurp("$tmp/sig");

    if ($alg =~ /^ES/) {
        # ECDSA-Sig-Value (DER) to r || s
        my $size = $md == 256 ? 32 : 48;
        my @b = unpack('C*', $sig);
        my $i = 2 + (($b[1] & 0x80) ? ($b[1] & 0x7f) : 0);
        my $out = '';
        for (1 .. 2) {
            die "bad DER" unless $b[$i++] == 2;
            my $len = $b[$i++];
            my $int = pack('C*', @b[$i .. $i + $len - 1]);
            $i += $len;
            $int =~ s/^\x00+//;
            $out .= ("\x00" x ($size - length $int)) . $int;
        }
        $sig = $out;
    }
}

print $input, '.', b64u($sig), "\n";
