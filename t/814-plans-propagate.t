# Plans: what reaches the broker.  The Mock logs only a publication's
# content, so the message headers that http-post request_headers_to_message=on
# makes are read where they arrive: MQTT 5 user properties on the suite's own
# mosquitto (t/lib/MqttTest.pm).  propagate=off (the default) removes the API
# key header from the message, propagate=on keeps it; other headers stay.
# mosquitto is one of the project's packages (make deps): without it the
# suite fails, as the MQTT suites do.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use GraviteeTest;
use PlanTest;

use MqttTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_814") : ();
my $dir = ($where{servroot} // 't/servroot_814_plans_propagate') . '_files';
my $p = make_keys($dir);
api_keys_write("$p->{dir}/keys.txt", [['key-one', 'app-one']]);
my $tok = jwt_sign(alg => 'HS256', secret => $p->{hmac}, claims => { sub => 'alice' });

my $m = start_mqtt();

my $conf = <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location /off {
            message_proxy_plan api_key keys=$p->{dir}/keys.txt;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint mqtt server=127.0.0.1:$m->{port} topic=plans/off qos=1;
        }
        location /on {
            message_proxy_plan api_key keys=$p->{dir}/keys.txt propagate=on;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint mqtt server=127.0.0.1:$m->{port} topic=plans/on qos=1;
        }
        location /custom {
            message_proxy_plan api_key keys=$p->{dir}/keys.txt header=X-Key;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint mqtt server=127.0.0.1:$m->{port} topic=plans/custom qos=1;
        }
        location /jwt {
            message_proxy_plan jwt secret_file=$p->{hmac_file};
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint mqtt server=127.0.0.1:$m->{port} topic=plans/jwt qos=1;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where, log_level => 'info');
wait_for_error_log($ngx, 'mqtt: connected', 10);

sub post {
    my ($path, $body, @h) = @_;
    return http_exchange($ngx->{port}, "POST $path HTTP/1.0\r\nHost: localhost\r\n"
        . join('', map { "$_\r\n" } @h)
        . "Content-Length: " . length($body) . "\r\n\r\n$body", 10);
}

# the user properties of the one message published on $topic by the POST
sub published {
    my ($topic, $path, $body, @h) = @_;
    my $s = mqtt_sub_start($m, topic => $topic, count => 1, qos => 1, timeout => 5);
    my $r = post($path, $body, @h);
    like($r, qr{\AHTTP/1\.1 202 }, "$path: 202");
    my @got = mqtt_sub_collect($s);
    is($got[0] && $got[0]{payload}, $body, "$path: published");
    return { map { (lc $_->[0] => $_->[1]) } @{ ($got[0] // {})->{user_properties} // [] } };
}

{
    my $h = published('plans/off', '/off', 'off body', 'X-Gravitee-Api-Key: key-one', 'X-Order: 42');
    ok(!exists $h->{'x-gravitee-api-key'}, 'propagate=off: no X-Gravitee-Api-Key in the message')
        or diag explain $h;
    is($h->{'x-order'}, '42', 'propagate=off: the other headers are there');
}

{
    my $h = published('plans/on', '/on', 'on body', 'X-Gravitee-Api-Key: key-one', 'X-Order: 43');
    is($h->{'x-gravitee-api-key'}, 'key-one', 'propagate=on: the key header is in the message');
    is($h->{'x-order'}, '43', 'propagate=on: and the others');
}

{
    my $h = published('plans/custom', '/custom', 'custom body', 'X-Key: key-one', 'X-Order: 44');
    ok(!exists $h->{'x-key'}, 'header=X-Key, propagate=off: X-Key is removed');
    is($h->{'x-order'}, '44', 'header=X-Key: the others stay');
}

{
    my $h = published('plans/off', '/off?api-key=key-one', 'query body', 'X-Order: 45');
    is($h->{'x-order'}, '45', 'a key in the query: published with the headers');
}

# a jwt plan: the POST of a good token is published (202 and the payload
# checked in published())
published('plans/jwt', '/jwt', 'jwt body', "Authorization: Bearer $tok");

{
    my $s = mqtt_sub_start($m, topic => 'plans/off', count => 1, qos => 1, timeout => 2,
                           may_fail => 1);
    my $r = post('/off', 'refused body', 'X-Gravitee-Api-Key: zz-unknown');
    like($r, qr{\AHTTP/1\.1 401 }, 'an unknown key: 401');
    my @got = mqtt_sub_collect($s);
    is(scalar @got, 0, 'an unknown key: nothing reaches the broker');
}

stop_nginx($ngx);
stop_mqtt($m);
done_testing;
