# Plans in front of real brokers: the caller's identity reaches them
# through the endpoints' NGINX variables (an MQTT topic per application, a
# Kafka record key), an API key is not published with the message's
# headers, and a refused caller costs the broker nothing.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use GraviteeTest;
use MqttTest;
use KafkaTest;

my %where = $ENV{TEST_NGINX_SERVROOT}
            ? (servroot => "$ENV{TEST_NGINX_SERVROOT}_820") : ();

my $m = start_mqtt();
my $k = start_kafka(brokers => 1);
create_topic($k, 'plans', 1);

my $dir = tempdir(CLEANUP => 1);
open my $fh, '>', "$dir/keys" or die "$dir/keys: $!";
print $fh "# key application\nkey-acme acme\nkey-globex globex\nkey-bad a/b\n";
close $fh;

$ENV{TEST_NGINX_MQTT} = "127.0.0.1:$m->{port}";
$ENV{TEST_NGINX_KAFKA} = $k->{bootstrap};
$ENV{TEST_NGINX_KEYS} = "$dir/keys";

my $conf = <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /tenant {
            message_proxy_plan api_key keys=\$TEST_NGINX_KEYS;
            message_proxy_entrypoint sse retry=1s;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint mqtt server=\$TEST_NGINX_MQTT
                topic=tenants/\$message_proxy_application/events qos=1
                publish_timeout=2s topic_linger=200ms;
        }

        location /orders {
            message_proxy_plan api_key keys=\$TEST_NGINX_KEYS;
            message_proxy_entrypoint http-post request_headers_to_message=on;
            message_proxy_endpoint kafka bootstrap_servers=\$TEST_NGINX_KAFKA
                topics=plans key=\$message_proxy_application;
        }
    }
_EOC_

my $ngx = start_nginx($conf, %where);
my $port = $ngx->{port};

# the worker connects to mosquitto at its start: publish once it has
wait_for_mqtt_log($m, qr/New client connected/, timeout => 5)
    or die "the worker did not connect to mosquitto";

sub post {
    my ($path, $body, @h) = @_;
    return http_exchange($port, "POST $path HTTP/1.0\r\nHost: localhost\r\n"
                         . "Accept: application/json\r\n"
                         . join('', map { "$_\r\n" } @h)
                         . "Content-Length: " . length($body)
                         . "\r\n\r\n$body");
}

# --- MQTT: a topic per application -----------------------------------------

{
    my $s = mqtt_sub_start($m, topic => 'tenants/+/events', count => 1,
                           timeout => 5);
    my $r = post('/tenant', 'hello', 'X-Gravitee-Api-Key: key-acme',
                 'X-Order: 7');
    like($r, qr{^HTTP/1.1 202}, 'MQTT: POST with a key: 202');
    my @got = mqtt_sub_collect($s);
    is($got[0]{topic} // '', 'tenants/acme/events',
       "MQTT: published on the key's application's topic");
    is($got[0]{payload} // '', 'hello', 'MQTT: the message');
    my @props = @{ $got[0]{user_properties} // [] };
    ok((grep { $_->[0] eq 'X-Order' && $_->[1] eq '7' } @props),
       'MQTT: other headers are user properties');
    ok(!(grep { lc $_->[0] eq 'x-gravitee-api-key' } @props),
       'MQTT: the API key is not among them');
    unlike(join(' ', map { @$_ } @props), qr/key-acme/,
           'MQTT: nor is its value anywhere');
}

{
    # a subscriber sees its own application's topic only
    my $c = { sock => tcp_connect($port) };
    print { $c->{sock} } "GET /tenant HTTP/1.0\r\nHost: localhost\r\n"
        . "Accept: text/event-stream\r\nX-Gravitee-Api-Key: key-globex\r\n\r\n";
    my $head = read_until($c->{sock}, qr/\r\n\r\n/, 3);
    like($head, qr{^HTTP/1.1 200}, 'MQTT: SSE with a key: 200');
    sleep 0.5;
    system('mosquitto_pub', '-h', '127.0.0.1', '-p', $m->{port},
           '-t', 'tenants/acme/events', '-m', 'for-acme') == 0
        or die "mosquitto_pub failed";
    system('mosquitto_pub', '-h', '127.0.0.1', '-p', $m->{port},
           '-t', 'tenants/globex/events', '-m', 'for-globex') == 0
        or die "mosquitto_pub failed";
    my $got = read_until($c->{sock}, qr/for-globex/, 3);
    like($got, qr/data: for-globex/, "MQTT: SSE gets its application's topic");
    unlike($got, qr/for-acme/, "MQTT: and not another application's");
    close $c->{sock};
}

{
    # an application name that is not a topic level is refused, not used
    my $r = post('/tenant', 'x', 'X-Gravitee-Api-Key: key-bad');
    like($r, qr{^HTTP/1.1 400}, 'MQTT: an application with a "/": 400');
}

{
    my $before = mqtt_log_count($m, qr/Received PUBLISH/);
    my $r = post('/tenant', 'nope', 'X-Gravitee-Api-Key: wrong');
    like($r, qr{^HTTP/1.1 401}, 'MQTT: a wrong key: 401');
    sleep 0.3;
    is(mqtt_log_count($m, qr/Received PUBLISH/), $before,
       'MQTT: nothing was published for it');
}

# --- Kafka: the application is the record key ------------------------------

{
    my $r = post('/orders', 'order-1', 'X-Gravitee-Api-Key: key-globex',
                 'X-Order: 9');
    like($r, qr{^HTTP/1.1 20[0-2]}, 'Kafka: POST with a key: accepted');
    my @recs = kcat_consume($k, 'plans');
    is(scalar @recs, 1, 'Kafka: one record');
    is($recs[0]{key} // '', 'globex', "Kafka: its key is the application");
    is($recs[0]{value} // '', 'order-1', 'Kafka: its value');
    my %h = @{ $recs[0]{headers} // [] };
    is($h{'X-Order'} // '', '9', 'Kafka: other headers are record headers');
    ok(!(grep { lc $_ eq 'x-gravitee-api-key' } keys %h),
       'Kafka: the API key is not a record header');

    $r = post('/orders', 'order-2');
    like($r, qr{^HTTP/1.1 401}, 'Kafka: no key: 401');
    my @after = kcat_consume($k, 'plans');
    is(scalar @after, 1, 'Kafka: and no record');
}

stop_nginx($ngx);
stop_mqtt($m);
stop_kafka($k);

done_testing();
