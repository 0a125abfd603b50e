#!/usr/bin/env bash
# bench/mqtt-substorm.sh: what N WebSocket clients joining one MQTT topic
# cost the worker, with retained_on_subscribe=on (the default: every
# newcomer is to get the topic's retained messages, so the worker sends the
# broker another SUBSCRIBE for those that came since the last SUBACK, and
# walks the topic's subscriber list at each SUBSCRIBE and SUBACK) and off.
#
#   bench/mqtt-substorm.sh [--n "1000 10000"] [--conn-rate 2000] [--reps 1]
#
# Fresh mosquitto (log_type subscribe: one log line per SUBSCRIBE it gets)
# and nginx (mqtt-nginx.conf.in, one worker on core 0) per cell; loadgen on
# core 1 opens N idle WebSocket clients of /ws at --conn-rate. Figures: the
# SUBSCRIBEs mosquitto logged for bench/t, and the worker's CPU (utime +
# stime, every thread) from before the first client to 1 s after the last
# is established. Ports 18660 (mosquitto) and 18661 (nginx).
set -u -o pipefail

ARGS="$*"
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH/lib.sh"
REPO=$(cd "$BENCH/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
MODULE=${MODULE:-$REPO/build/ngx_gravitee_module.so}
LOADGEN=$BENCH/loadgen
PRE=$BENCH/run/mqtt-substorm
N_LIST="1000 10000"
CONN_RATE=2000
REPS=1
MQTT_PORT=18660
PORT=18661
OUT=""

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "options: --n LIST --conn-rate R --reps K --out DIR" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --n)         N_LIST=$2; shift 2 ;;
    --conn-rate) CONN_RATE=$2; shift 2 ;;
    --reps)      REPS=$2; shift 2 ;;
    --out)       OUT=$2; shift 2 ;;
    -h|--help)   usage ;;
    *)           echo "unknown option: $1" >&2; usage ;;
    esac
done

[ -f "$MODULE" ] || die "missing $MODULE"
[ -x "$LOADGEN" ] || die "missing $LOADGEN (bench/mqtt.sh builds it)"
mkdir -p "$PRE"
cp "$MODULE" "$PRE/module.so" || die "cannot copy $MODULE"
[ -n "$OUT" ] || OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)-mqtt-substorm
mkdir -p "$OUT"
[ "$(nproc)" -ge 2 ] && taskset -p -c 1 $$ >/dev/null
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=65536

MOSQ=""; MASTER=""; LG=""
stop_pid() {
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}
stop_nginx() {
    local i
    [ -n "$MASTER" ] || return 0
    kill -TERM "$MASTER" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MASTER" 2>/dev/null && kill -KILL "$MASTER" 2>/dev/null
    MASTER=""
}
cleanup() { stop_pid "$LG"; LG=""; stop_nginx; stop_pid "$MOSQ"; MOSQ=""; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ticks() { local l f; read -r l < "/proc/$1/stat" || { echo 0; return; }; read -r -a f <<< "${l##*) }"; echo $((f[11] + f[12])); }
busy() { ss -Hltn "sport = :$1" | grep -q .; }

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: bench/mqtt-substorm.sh $ARGS"
    echo "module: $MODULE (md5 $(md5sum < "$MODULE" | cut -c1-12))"
    echo "other load at start: $(pgrep -fa 'prove|kafka.sh|mqtt.sh' | grep -v pgrep | wc -l) processes (prove|kafka.sh|mqtt.sh)"
} > "$OUT/meta.txt"
echo -e "rep\tn\tretained_on_subscribe\testablished\tsubscribes\tworker_cpu_s\tsetup_s" > "$OUT/raw.tsv"

for ((rep = 1; rep <= REPS; rep++)); do
for n in $N_LIST; do
for ros in on off; do
    cell=$rep-$n-$ros; f=$OUT/lg-$cell.txt
    busy "$MQTT_PORT" || busy "$PORT" && die "port $MQTT_PORT or $PORT busy"
    cat > "$PRE/mosquitto.conf" <<EOF
user root
persistence false
log_dest file $PRE/mosquitto.log
log_type subscribe
log_type error
connection_messages false
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
EOF
    rm -f "$PRE/mosquitto.log"
    taskset -c 0 "$MOSQUITTO" -c "$PRE/mosquitto.conf" > /dev/null 2>&1 &
    MOSQ=$!
    for i in $(seq 1 50); do busy "$MQTT_PORT" && break; sleep 0.1; done
    mkdir -p "$PRE/nginx"; rm -f "$PRE/nginx/nginx.pid"
    sed -e "s#@PREFIX@#$PRE/nginx#g" -e "s#@PORT@#$PORT#g" -e "s#@MQTT_PORT@#$MQTT_PORT#g" \
        -e "s#@MODULE@#$PRE/module.so#g" -e "s#@WORKER_CONNECTIONS@#$((n + 1024))#g" \
        -e "s#@CPU_MASK@#01#g" -e "s#@NOFILE@#$NOFILE#g" \
        -e "s#qos=0;#qos=0 retained_on_subscribe=$ros;#" \
        "$BENCH/mqtt-nginx.conf.in" > "$PRE/nginx/nginx.conf"
    taskset -c 0 "$NGINX" -p "$PRE/nginx" -c "$PRE/nginx/nginx.conf" -e "$PRE/nginx/error.log" || die "nginx"
    for i in $(seq 1 50); do [ -s "$PRE/nginx/nginx.pid" ] && busy "$PORT" && break; sleep 0.1; done
    MASTER=$(cat "$PRE/nginx/nginx.pid")
    W=$(awk '{print $1}' "/proc/$MASTER/task/$MASTER/children")
    sleep 0.5
    c0=$(ticks "$W")
    "$LOADGEN" --mode ws --url "ws://127.0.0.1:$PORT/ws" -n "$n" --rate "$CONN_RATE" --idle \
        --duration $((n / CONN_RATE + 30)) --pin-cpu 1 --quiet > "$f" 2>&1 &
    LG=$!
    for ((i = 0; i < (n / CONN_RATE + 20) * 10; i++)); do
        grep -q '^setup_done' "$f" && break; sleep 0.1
    done
    sleep 1
    c1=$(ticks "$W")
    est=$(sed -n 's/^setup_done established=\([0-9]*\).*/\1/p' "$f")
    st=$(sed -n 's/^setup_done .* secs=\([0-9.]*\).*/\1/p' "$f")
    subs=$(grep -c ' bench/t$' "$PRE/mosquitto.log" 2>/dev/null)
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz}')
    log "N=$n retained_on_subscribe=$ros: established ${est:-0} in ${st:-?} s, SUBSCRIBEs to the broker $subs, worker CPU $cpu s"
    echo -e "$rep\t$n\t$ros\t${est:-0}\t$subs\t$cpu\t${st:--}" >> "$OUT/raw.tsv"
    cp "$PRE/mosquitto.log" "$OUT/mosquitto-$cell.log" 2>/dev/null
    cleanup
done
done
done
column -t "$OUT/raw.tsv"
log "raw output in $OUT"
