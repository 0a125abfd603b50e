# Every configuration in conf-examples/ is accepted by `nginx -t` with the
# built module, as a user would load it (modules/ngx_gravitee_module.so).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Basename qw(dirname);

my ($module) = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');
BAIL_OUT('TEST_NGINX_LOAD_MODULES must name the built module') unless $module;

my $nginx = $ENV{TEST_NGINX_BINARY} // 'nginx';
my @confs = glob 'conf-examples/*.conf';
ok(@confs >= 2, 'conf-examples/ holds the examples');

for my $conf (@confs) {
    my $prefix = tempdir(CLEANUP => 1);
    mkdir "$prefix/logs";
    symlink dirname($module), "$prefix/modules" or die "symlink: $!";

    my $out = `'$nginx' -t -p '$prefix/' -e '$prefix/logs/error.log' -c '$ENV{PWD}/$conf' 2>&1`;
    is($?, 0, "$conf passes nginx -t") or diag $out;
    like($out, qr/test is successful/, "$conf: nginx says so");
}

done_testing();
