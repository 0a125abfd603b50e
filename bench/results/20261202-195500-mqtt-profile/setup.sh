#!/bin/bash
# manual profiling rig: mosquitto 18620/18621, nginx 18622
set -u
W=/work/wt-mqtt
P=/tmp/prof
MOD=${MOD:-$W/build/ngx_gravitee_module.so}
cp "$MOD" $P/module.so
cat > $P/mosquitto.conf <<EOC
user root
per_listener_settings true
persistence false
log_dest file $P/mosquitto.log
log_type error
log_type warning
connection_messages false
set_tcp_nodelay true
listener 18620 127.0.0.1
allow_anonymous true
listener 18621 127.0.0.1
socket_domain ipv4
protocol websockets
allow_anonymous true
EOC
mkdir -p $P/nginx
sed -e "s#@PREFIX@#$P/nginx#g" -e "s#@PORT@#18622#g" \
    -e "s#@MQTT_PORT@#18620#g" -e "s#@MODULE@#$P/module.so#g" \
    -e "s#@WORKER_CONNECTIONS@#4096#g" \
    -e "s#@CPU_MASK@#01#g" -e "s#@NOFILE@#65536#g" \
    $W/bench/mqtt-nginx.conf.in > $P/nginx/nginx.conf
taskset -c 0 /usr/sbin/mosquitto -c $P/mosquitto.conf > $P/mosq.out 2>&1 &
echo $! > $P/mosq.pid
sleep 0.5
taskset -c 0 /usr/sbin/nginx -p $P/nginx -c $P/nginx/nginx.conf -e $P/nginx/error.log
sleep 0.5
