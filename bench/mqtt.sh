#!/usr/bin/env bash
# bench/mqtt.sh: the MQTT endpoint's benchmark (see README.md, "mqtt.sh").
#
#   bench/mqtt.sh [--quick] [--reps 3] [--n "100 1000"] [--idle-n "1000 10000"]
#
# One run starts mosquitto (Debian's 2.0.11, a generated config: a plain
# listener and a websockets listener, 127.0.0.1 only) and nginx with the
# module (one worker, location /ws: the MQTT endpoint on topic bench/t,
# QoS 0), and compares, for the same N clients in the same run:
#   side A  N WebSocket subscribers of nginx's /ws (publisher -> mosquitto
#           -> the worker's one MQTT connection -> N WebSocket clients)
#   side B  the same N subscribers speaking MQTT 3.1.1 over WebSocket to
#           mosquitto's websockets listener, subscribed to bench/t
# fed by one publisher (loadgen --publish mqtt://..., QoS 0 on the
# plain listener, R messages/s of S bytes stamped "t=<ns> "): CPU per
# delivered message (nginx worker vs mosquitto, utime+stime from
# /proc/PID/stat), latency p50/p99 from the publish stamp to receipt, and
# ΔPSS per idle subscriber (nginx master+worker vs mosquitto). Pinning as
# run.sh: nginx and mosquitto on core 0; the load generator, the publisher
# and this script on core 1. Prints a Markdown table; raw output in --out.
set -u -o pipefail

ARGS="$*"
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH/lib.sh"
REPO=$(cd "$BENCH/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
MODULE=${MODULE:-$REPO/build/ngx_gravitee_module.so}
BIN=$BENCH/run/mqtt-bin
LOADGEN=$BENCH/loadgen
PRE=$BENCH/run/mqtt

# ---------------------------------------------------------------- options
TESTS="cpu idle"
REPS=3
N_LIST="100 1000"
IDLE_N="1000 10000"
RATE=50                 # messages/s published
SPIN=()
MSGS=500                # messages per CPU window, at least
MIN_DELIV=100000        # ... and at least this many deliveries (N x msgs)
SIZE=100
CONN_RATE=2000
SETTLE=2
PORT=18610              # nginx
MQTT_PORT=18600         # mosquitto plain; websockets on MQTT_PORT + 1
QUIET_WAIT=900          # s to wait for no prove / kafka.sh (0: do not wait)
OUT=""
QUICK=0

usage() {
    cat >&2 <<EOF
usage: $0 [options]
  --tests LIST     "cpu idle" (default)
  --reps R         interleaved repetitions (default $REPS)
  --n LIST         subscribers in the CPU/latency test (default "$N_LIST")
  --idle-n LIST    idle subscribers in the memory test (default "$IDLE_N")
  --rate R         messages/s published (default $RATE)
  --msgs M         messages per CPU window, at least (default $MSGS; raised
                   so that N x M >= $MIN_DELIV deliveries)
  --min-deliveries D  that floor (default $MIN_DELIV; 0 for small N)
  --client-spin    the CPU test's subscribers poll without sleeping
                   (loadgen --spin): on loopback a send also wakes its
                   receiver, and that wake-up is charged to the sender
  --size B         message size (default $SIZE)
  --conn-rate R    subscriber connections per second (default $CONN_RATE)
  --settle S       s after all idle subscribers are up (default $SETTLE)
  --port P         nginx (default $PORT)
  --mqtt-port P    mosquitto's plain listener; its websockets listener is
                   P + 1 (default $MQTT_PORT; 18600-18699 for this bench)
  --quiet-wait S   before starting, wait up to S s until no prove or
                   kafka.sh runs (default $QUIET_WAIT; 0: do not wait)
  --out DIR        raw output (default bench/results/<date>-mqtt)
  --quick          smoke test: 1 rep, N=100, idle N=100,500, 200 msgs
Needs root (smaps_rollup, mosquitto's "user root"), mosquitto 2.0 with
websockets, taskset, curl, ss, cc, and build/ngx_gravitee_module.so.
Every wait is bounded; the trap stops every process the script started.
EOF
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --tests)      TESTS=$2; shift 2 ;;
    --reps)       REPS=$2; shift 2 ;;
    --n)          N_LIST=$2; shift 2 ;;
    --idle-n)     IDLE_N=$2; shift 2 ;;
    --rate)       RATE=$2; shift 2 ;;
    --msgs)       MSGS=$2; shift 2 ;;
    --min-deliveries) MIN_DELIV=$2; shift 2 ;;
    --client-spin) SPIN=(--spin); shift ;;
    --size)       SIZE=$2; shift 2 ;;
    --conn-rate)  CONN_RATE=$2; shift 2 ;;
    --settle)     SETTLE=$2; shift 2 ;;
    --port)       PORT=$2; shift 2 ;;
    --mqtt-port)  MQTT_PORT=$2; shift 2 ;;
    --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
    --out)        OUT=$2; shift 2 ;;
    --quick)      QUICK=1; shift ;;
    -h|--help)    usage ;;
    *)            echo "unknown option: $1" >&2; usage ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    REPS=1; N_LIST="100"; IDLE_N="100 500"; MSGS=200; MIN_DELIV=0; SETTLE=1
fi
WS_PORT=$((MQTT_PORT + 1))

for p in "$PORT" "$MQTT_PORT" "$WS_PORT"; do
    [ "$p" -ge 18600 ] && [ "$p" -le 18699 ] || die "port $p: this bench uses 18600-18699 only"
done
[ -f "$MODULE" ] || die "missing $MODULE (make all)"
[ -x "$MOSQUITTO" ] || die "missing $MOSQUITTO (Debian package mosquitto)"

# the load generator (its mqtt-ws mode and MQTT publisher), as make -C bench
mkdir -p "$BIN"
make -s -C "$BENCH" loadgen || die "build of bench/loadgen failed"


# a copy: a rebuild of build/ during the run changes nothing measured
cp "$MODULE" "$BENCH/run/mqtt-module.so" || die "cannot copy $MODULE"
MODULE_SRC=$MODULE; MODULE=$BENCH/run/mqtt-module.so

[ -n "$OUT" ] || OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)-mqtt
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
echo -e "rep\ttest\tside\tn\tok\tcpu_us_msg\tcpu_us_msg_sched\tlat_p50_ms\tlat_p99_ms\tlost\tdelivered\tdpss_kib\textra" > "$RAW"

# pinning as run.sh: the servers on core 0; loadgen, the publisher and
# this script (its polling, curl, ss) on core 1
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
    SRV=(taskset -c 0); CPU_MASK=01; PIN=(--pin-cpu 1)
    taskset -p -c 1 $$ >/dev/null
else
    SRV=(); CPU_MASK=auto; PIN=()
fi

if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 65536 ]; then
    ulimit -Hn 65536 2>/dev/null || log "cannot raise the hard RLIMIT_NOFILE, using $(ulimit -Hn)"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536
MAXN=0
for n in $N_LIST $IDLE_N; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
[ $((MAXN + 200)) -le "$NOFILE" ] || die "N=$MAXN needs more than RLIMIT_NOFILE $NOFILE"
WORKER_CONNECTIONS=$((MAXN + 1024))

# ---------------------------------------------------------------- helpers
MOSQ_PID=""; PUB_PID=""; MASTER=""; WORKER=""; CUR_LG=""; CELL=setup

# ns on CPU: every thread of PID (/proc/PID/stat's utime+stime count them
# all too: the worker has paho.mqtt.c's threads besides its own), and the
# main thread alone
sched_ns() {
    local t=0 a f
    for f in /proc/$1/task/*/schedstat; do
        read -r a _ < "$f" 2>/dev/null || a=0
        t=$((t + ${a:-0}))
    done
    echo $t
}
sched_main() { local a; read -r a _ < "/proc/$1/schedstat" 2>/dev/null || a=0; echo "${a:-0}"; }

# core 0's steal time (the hypervisor ran something else on it), jiffies:
# a window with much of it measures the host, not the servers
steal0() { awk '$1 == "cpu0" {print $9}' /proc/stat; }

stop_pid() {   # stop_pid PID: TERM, wait 5 s, KILL
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# ------------------------------------------------------------- mosquitto
start_mosquitto() {
    local i bad
    stop_mosquitto
    for p in "$MQTT_PORT" "$WS_PORT"; do
        port_busy "$p" && { log "port $p is busy"; return 1; }
    done
    mkdir -p "$PRE"
    # log only errors and warnings: log_type all would write a line per
    # message; set_tcp_nodelay as nginx's (tcp_nodelay is on by default)
    cat > "$PRE/mosquitto.conf" <<EOF
# generated by bench/mqtt.sh
user root
per_listener_settings true
persistence false
log_dest file $PRE/mosquitto.log
log_type error
log_type warning
connection_messages false
set_tcp_nodelay true

listener $MQTT_PORT 127.0.0.1
allow_anonymous true

listener $WS_PORT 127.0.0.1
socket_domain ipv4
protocol websockets
allow_anonymous true
EOF
    "${SRV[@]}" "$MOSQUITTO" -c "$PRE/mosquitto.conf" >> "$OUT/mosquitto.out" 2>&1 &
    MOSQ_PID=$!
    for i in $(seq 1 50); do
        port_busy "$MQTT_PORT" && port_busy "$WS_PORT" && break
        kill -0 "$MOSQ_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! port_busy "$MQTT_PORT" || ! port_busy "$WS_PORT"; then
        log "mosquitto did not start (see $OUT/mosquitto.out)"
        stop_mosquitto
        return 1
    fi
    # 2.0.11 binds a websockets listener to every address unless
    # socket_domain ipv4 is set: check that both listen on 127.0.0.1 only
    bad=$(ss -Hltn "( sport = :$MQTT_PORT or sport = :$WS_PORT )" | awk '$4 !~ /^127\.0\.0\.1:/')
    if [ -n "$bad" ]; then
        log "mosquitto listens beyond 127.0.0.1: $bad"
        stop_mosquitto
        return 1
    fi
    LISTEN_INFO=$(ss -Hltn "( sport = :$MQTT_PORT or sport = :$WS_PORT )" | awk '{print $4}' | sort | tr '\n' ' ')
    return 0
}

stop_mosquitto() {
    [ -n "$MOSQ_PID" ] || return 0
    stop_pid "$MOSQ_PID"
    [ -f "$PRE/mosquitto.log" ] && cat "$PRE/mosquitto.log" >> "$OUT/mosquitto.log" && rm -f "$PRE/mosquitto.log"
    MOSQ_PID=""
}

start_publisher() {   # continuous: RATE/s until stopped
    stop_publisher
    "$LOADGEN" --publish "mqtt://127.0.0.1:$MQTT_PORT/bench/t" --rate "$RATE" \
        --count 0 --size "$SIZE" --duration 3600 "${PIN[@]}" \
        > "$OUT/publisher-$CELL.txt" 2>&1 &
    PUB_PID=$!
    wait_line "$OUT/publisher-$CELL.txt" '^publish_ready' 10 "$PUB_PID" ||
        { log "publisher did not connect"; return 1; }
}

stop_publisher() {
    [ -n "$PUB_PID" ] || return 0
    stop_pid "$PUB_PID"
    PUB_PID=""
}

# ----------------------------------------------------------------- nginx

start_server() {   # -> MASTER, WORKER
    local i
    stop_server
    port_busy "$PORT" && { log "port $PORT is busy"; return 1; }
    mkdir -p "$PRE/nginx"
    rm -f "$PRE/nginx/error.log" "$PRE/nginx/nginx.pid"
    sed -e "s#@PREFIX@#$PRE/nginx#g" -e "s#@PORT@#$PORT#g" \
        -e "s#@MQTT_PORT@#$MQTT_PORT#g" -e "s#@MODULE@#$MODULE#g" \
        -e "s#@WORKER_CONNECTIONS@#$WORKER_CONNECTIONS#g" \
        -e "s#@CPU_MASK@#$CPU_MASK#g" -e "s#@NOFILE@#$NOFILE#g" \
        "$BENCH/mqtt-nginx.conf.in" > "$PRE/nginx/nginx.conf"
    "${SRV[@]}" "$NGINX" -p "$PRE/nginx" -c "$PRE/nginx/nginx.conf" \
        -e "$PRE/nginx/error.log" 2>>"$OUT/nginx-start.log" ||
        { log "nginx failed to start"; return 1; }
    for i in $(seq 1 50); do
        [ -s "$PRE/nginx/nginx.pid" ] && [ -n "$(stub_active)" ] && break
        sleep 0.1
    done
    MASTER=$(cat "$PRE/nginx/nginx.pid" 2>/dev/null)
    WORKER=$(children "$MASTER" | awk '{print $1}')
    [ -n "$MASTER" ] && [ -n "$WORKER" ] || { log "no nginx master/worker"; stop_server; return 1; }
}

stop_server() {
    local m=$MASTER w i
    [ -n "$m" ] || return 0
    w=$(children "$m")
    kill -TERM "$m" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$m" 2>/dev/null && { log "nginx $m did not stop, killing"; kill -KILL "$m" $w 2>/dev/null; }
    for i in $(seq 1 30); do
        port_busy "$PORT" || break
        sleep 0.1
    done
    [ -s "$PRE/nginx/error.log" ] && cp "$PRE/nginx/error.log" "$OUT/error-$CELL.log"
    MASTER=""; WORKER=""
}

stop_loadgen() {
    [ -n "$CUR_LG" ] || return 0
    stop_pid "$CUR_LG"
    CUR_LG=""
}

cleanup() { stop_loadgen; stop_publisher; stop_server; stop_mosquitto; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# mqtt-ws subscribers mosquitto holds (established on its websockets port)
ws_clients() { ss -Htn state established "( sport = :$WS_PORT )" 2>/dev/null | wc -l; }

url_of() {   # url_of SIDE
    [ "$1" = A ] && echo "ws://127.0.0.1:$PORT/ws" || echo "ws://127.0.0.1:$WS_PORT/mqtt"
}
mode_of() { [ "$1" = A ] && echo ws || echo mqtt-ws; }

# one subscriber for 0.5 s, so that first-use allocations (nginx: the MQTT
# subscription, which then lingers topic_linger 5 s; mosquitto: the topic's
# subscription tree, the websockets context) are outside the measured delta
warm_up() {
    "$LOADGEN" --mode "$(mode_of "$1")" --url "$(url_of "$1")" -n 1 --idle \
        --duration 0.5 --quiet "${PIN[@]}" >/dev/null 2>&1
    sleep 0.5
}

open_window() {   # SIGUSR2 to loadgen, wait for window_open
    local i
    kill -USR2 "$CUR_LG"
    for ((i = 0; i < 300; i++)); do
        grep -q '^window_open' "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    log "loadgen did not report window_open"
    return 1
}

# ------------------------------------------------------------------ cells
# CPU / latency, side A (nginx) or B (mosquitto direct). mosquitto and the
# publisher run for the whole rep; nginx runs only in side A's cells (so in
# side B mosquitto has exactly the N subscribers and the publisher).
cell_cpu() {   # cell_cpu REP SIDE N
    local rep=$1 side=$2 n=$3 f msgs m tmo pid c0 c1 q0 q1 o0 o1 oq0 oq1
    local est lost p50 p99 us uss ous ok=0 hz r0 r1 rus nth s0 s1 t0 t1 steal
    CELL=cpu-$side-$n-$rep; f=$OUT/lg-$CELL.txt
    m=$MSGS; [ $((n * m)) -lt "$MIN_DELIV" ] && m=$(( (MIN_DELIV + n - 1) / n ))
    if [ "$side" = A ]; then
        start_server || { record "$rep" cpu A "$n" 0 - - - - - - - start; return; }
        pid=$WORKER
    else
        stop_server
        pid=$MOSQ_PID
    fi
    warm_up "$side"
    tmo=$((n / CONN_RATE + m / RATE + 60))
    "$LOADGEN" --mode "$(mode_of "$side")" --url "$(url_of "$side")" -n "$n" \
        --expect "$m" --latency --window --hold --rate "$CONN_RATE" \
        --duration "$tmo" --quiet "${SPIN[@]}" "${PIN[@]}" > "$f" 2>&1 &
    CUR_LG=$!
    if ! wait_line "$f" '^setup_done' $((n / CONN_RATE + 30)) "$CUR_LG"; then
        log "cpu $side N=$n: subscribers not set up in time"
        record "$rep" cpu "$side" "$n" 0 - - - - - - - setup
        stop_loadgen; [ "$side" = A ] && stop_server
        return
    fi
    sleep 0.5
    # the window: from the SIGUSR2 to the last subscriber's m-th message
    # stamped after it (the publisher runs all along: messages stamped
    # before the window are neither counted nor paid for). The other
    # server's figures (mosquitto's in side A) are for information.
    o0=$(cpu_ticks "$MOSQ_PID"); oq0=$(sched_ns "$MOSQ_PID")
    r0=$(sched_main "$pid"); c0=$(cpu_ticks "$pid"); q0=$(sched_ns "$pid")
    s0=$(steal0); t0=$(date +%s%N)
    open_window "$f"
    # poll every 20 ms: at 50 msgs/s the window ends within a message
    wait_line "$f" '^summary' $((m / RATE + 30)) "$CUR_LG" 0.02
    c1=$(cpu_ticks "$pid"); q1=$(sched_ns "$pid"); r1=$(sched_main "$pid")
    o1=$(cpu_ticks "$MOSQ_PID"); oq1=$(sched_ns "$MOSQ_PID")
    s1=$(steal0); t1=$(date +%s%N)
    steal=$(awk -v a="$s1" -v b="$s0" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {if (t > 0) printf "%.1f", (a - b) * 1e11 / hz / t; else print "-"}')
    nth=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
    stop_loadgen
    hz=$(getconf CLK_TCK)
    est=$(kv "$f" summary connected); msgs=$(kv "$f" summary msgs_window)
    lost=$(kv "$f" summary lost); p50=$(kv "$f" summary lat_p50_ms); p99=$(kv "$f" summary lat_p99_ms)
    us=$(awk -v a="$c1" -v b="$c0" -v m="${msgs:-0}" -v hz="$hz" 'BEGIN {if (m > 0) printf "%.3f", (a - b) * 1e6 / hz / m; else print "-"}')
    uss=$(awk -v a="$q1" -v b="$q0" -v m="${msgs:-0}" 'BEGIN {if (m > 0) printf "%.3f", (a - b) / 1e3 / m; else print "-"}')
    ous=$(awk -v a="$oq1" -v b="$oq0" -v m="${msgs:-0}" 'BEGIN {if (m > 0) printf "%.3f", (a - b) / 1e3 / m; else print "-"}')
    rus=$(awk -v a="$r1" -v b="$r0" -v m="${msgs:-0}" 'BEGIN {if (m > 0) printf "%.3f", (a - b) / 1e3 / m; else print "-"}')
    echo "cpu_pid=$pid threads=$nth main_thread_sched_ns=$r0..$r1 ticks_before=$c0 ticks_after=$c1 sched_ns_before=$q0 sched_ns_after=$q1 clk_tck=$hz mosquitto_ticks=$o0..$o1 mosquitto_sched_ns=$oq0..$oq1 msgs_per_sub=$m core0_steal_pct=$steal" >> "$f"
    [ "$est" = "$n" ] && [ "${msgs:-0}" -gt 0 ] && [ "${lost:-1}" = 0 ] && ok=1
    local who=mosquitto; [ "$side" = A ] && who="nginx worker"
    log "cpu $side N=$n: $who ${us} us/msg (schedstat ${uss}, main thread ${rus}, $nth threads), delivered $msgs ($m each), lost $lost, p50 ${p50} ms, p99 ${p99} ms, core 0 steal ${steal}%$([ "$side" = A ] && echo "; mosquitto meanwhile ${ous} us per delivered msg")"
    record "$rep" cpu "$side" "$n" "$ok" "$us" "$uss" "${p50:--}" "${p99:--}" "${lost:--}" "${msgs:--}" - \
        "msgs_per_sub=$m threads=$nth main_thread_us_per_msg=$rus mosquitto_sched_us_per_msg=$ous core0_steal_pct=$steal"
    [ "$side" = A ] && stop_server
}

# idle memory: a fresh mosquitto (and nginx, side A) per cell
cell_idle() {   # cell_idle REP SIDE N
    local rep=$1 side=$2 n=$3 f b a mb ma i act est dpss mdpss ok=0 pids
    CELL=idle-$side-$n-$rep; f=$OUT/lg-$CELL.txt
    start_mosquitto || { record "$rep" idle "$side" "$n" 0 - - - - - - - mosquitto; return; }
    if [ "$side" = A ]; then
        start_server || { record "$rep" idle A "$n" 0 - - - - - - - start; stop_mosquitto; return; }
        pids="$MASTER $WORKER"
    else
        pids=$MOSQ_PID
    fi
    warm_up "$side"
    b=$(pss_of $pids); mb=$(pss_of "$MOSQ_PID")
    "$LOADGEN" --mode "$(mode_of "$side")" --url "$(url_of "$side")" -n "$n" --idle \
        --rate "$CONN_RATE" --duration $((n / CONN_RATE + 60)) --quiet "${PIN[@]}" > "$f" 2>&1 &
    CUR_LG=$!
    if wait_line "$f" '^setup_done' $((n / CONN_RATE + 30)) "$CUR_LG"; then
        est=$(kv "$f" setup_done established)
        # the server must hold them all (nginx: stub_status counts itself)
        for i in $(seq 1 50); do
            if [ "$side" = A ]; then act=$(stub_active); [ "${act:-0}" -gt "$n" ] && break
            else act=$(ws_clients); [ "${act:-0}" -ge "$n" ] && break; fi
            sleep 0.1
        done
        sleep "$SETTLE"
        a=$(pss_of $pids); ma=$(pss_of "$MOSQ_PID")
        [ "$est" = "$n" ] && ok=1
        dpss=$(calc %.3f "($a - $b) / $n"); mdpss=$(calc %.3f "($ma - $mb) / $n")
        echo "pids=$pids pss_before_kib=$b pss_after_kib=$a mosquitto_pss_before_kib=$mb mosquitto_pss_after_kib=$ma server_sees=$act" >> "$f"
        log "idle $side N=$n: dPSS/N=$dpss KiB ($([ "$side" = A ] && echo "nginx master+worker; mosquitto meanwhile $mdpss" || echo mosquitto)), established $est"
        record "$rep" idle "$side" "$n" "$ok" - - - - - - "$dpss" "pss_before_kib=$b pss_after_kib=$a mosquitto_dpss_kib=$mdpss server_sees=$act"
    else
        log "idle $side N=$n: subscribers not set up in time"
        record "$rep" idle "$side" "$n" 0 - - - - - - - setup
    fi
    stop_loadgen
    [ "$side" = A ] && stop_server
    stop_mosquitto
}

# --------------------------------------------------- wait for a quiet machine
others() { pgrep -f 'prove|kafka.sh' | grep -vx "$$" | wc -l; }
QUIET_INFO="not waited (--quiet-wait 0)"
if [ "$QUIET_WAIT" -gt 0 ]; then
    w0=$(date +%s)
    while [ "$(others)" -gt 0 ] && [ $(( $(date +%s) - w0 )) -lt "$QUIET_WAIT" ]; do
        log "prove or kafka.sh running ($(pgrep -fa 'prove|kafka.sh' | head -3 | tr '\n' ';')), waiting"
        sleep 20
    done
    if [ "$(others)" -gt 0 ]; then
        QUIET_INFO="NOT quiet: still running after ${QUIET_WAIT}s: $(pgrep -fa 'prove|kafka.sh' | head -3 | tr '\n' ';')"
        log "$QUIET_INFO; running anyway"
    else
        QUIET_INFO="quiet (no prove, no kafka.sh) after $(( $(date +%s) - w0 ))s of waiting"
    fi
fi

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: bench/mqtt.sh $ARGS"
    echo "host: $(uname -srm), $NCPU cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "nginx: $($NGINX -v 2>&1)"
    echo "mosquitto: $($MOSQUITTO -h 2>&1 | sed -n 's/^mosquitto version //p' | head -1) (dpkg $(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null)), websockets: $(ldd "$MOSQUITTO" | grep -q libwebsockets && echo "libwebsockets $(ldd "$MOSQUITTO" | awk '/libwebsockets/ {print $1}')" || echo "libwebsockets linked in ($(strings "$MOSQUITTO" 2>/dev/null | grep -c '^lws_') lws_ symbols)"), paho $(dpkg-query -W -f='${Version}' libpaho-mqtt1.3 2>/dev/null)"
    echo "module: $MODULE_SRC ($(stat -c %y "$MODULE_SRC" | cut -c1-19), md5 $(md5sum < "$MODULE" | cut -c1-12)), git $(cd "$REPO" && git describe --always --dirty 2>/dev/null)"
    echo "settings: reps=$REPS n=\"$N_LIST\" idle_n=\"$IDLE_N\" rate=$RATE/s msgs>=$MSGS (N x msgs >= $MIN_DELIV) size=$SIZE conn_rate=$CONN_RATE settle=$SETTLE ports nginx=$PORT mqtt=$MQTT_PORT ws=$WS_PORT nofile=$NOFILE"
    echo "other load at start: $QUIET_INFO; $(pgrep -fa 'prove|fuzz/run.sh|clang|kafka.sh' | grep -v pgrep | wc -l) processes (prove|fuzz/run.sh|clang|kafka.sh)"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

# ------------------------------------------------------------------- main
T0=$(date +%s)
for ((rep = 1; rep <= REPS; rep++)); do
    if [[ " $TESTS " == *" cpu "* ]]; then
        CELL=cpu-$rep
        if start_mosquitto && start_publisher; then
            [ "$rep" = 1 ] && echo "listening: $LISTEN_INFO" >> "$OUT/meta.txt" && log "mosquitto listens on: $LISTEN_INFO"
            for n in $N_LIST; do
                cell_cpu "$rep" A "$n"
                cell_cpu "$rep" B "$n"
            done
        else
            for n in $N_LIST; do
                record "$rep" cpu A "$n" 0 - - - - - - - mosquitto
                record "$rep" cpu B "$n" 0 - - - - - - - mosquitto
            done
        fi
        CELL=cpu-$rep
        stop_publisher
        stop_mosquitto
    fi
    if [[ " $TESTS " == *" idle "* ]]; then
        for n in $IDLE_N; do
            cell_idle "$rep" A "$n"
            cell_idle "$rep" B "$n"
        done
    fi
done

# ------------------------------------------------------------------ table
AWK_CELL='
function sortn(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
}
function med(s,   a, n) {
    n = split(s, a, " "); if (n == 0) return ""
    sortn(a, n)
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(s, fmt,   a, n, m) {
    n = split(s, a, " ")
    if (n == 0) return "-"
    sortn(a, n); m = med(s)
    if (n == 1 || a[1] == a[n]) return sprintf(fmt, m)
    return sprintf(fmt " [" fmt "–" fmt "]", m, a[1], a[n])
}
'
awk -F'\t' "$AWK_CELL"'
NR == 1 { next }
{
    key = $2 SUBSEP $4
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    runs[key, $3]++
    if ($5 != 1) next
    good[key, $3]++
    for (c = 6; c <= 12; c++) if ($c != "-" && $c != "") v[key, $3, c] = v[key, $3, c] " " $c
    if (match($13, /main_thread_us_per_msg=[0-9.]+/)) v[key, $3, 14] = v[key, $3, 14] " " substr($13, RSTART + 23, RLENGTH - 23)
}
END {
    print "| test | N | figure | module (nginx, side A) | mosquitto direct (side B) | A / B or A − B | ok runs A, B |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, f, SUBSEP); t = f[1]; n = f[2]
        ok = sprintf("%d/%d, %d/%d", good[k, "A"], runs[k, "A"], good[k, "B"], runs[k, "B"])
        if (t == "cpu") {
            a = med(v[k, "A", 6]); b = med(v[k, "B", 6])
            printf "| cpu | %s | CPU µs per delivered msg (/proc/PID/stat) | %s | %s | %s | %s |\n", n,
                cell(v[k, "A", 6], "%.2f"), cell(v[k, "B", 6], "%.2f"), (a != "" && b > 0) ? sprintf("%.2f", a / b) : "-", ok
            a = med(v[k, "A", 7]); b = med(v[k, "B", 7])
            printf "| cpu | %s | CPU µs per delivered msg (schedstat, all threads) | %s | %s | %s | |\n", n,
                cell(v[k, "A", 7], "%.2f"), cell(v[k, "B", 7], "%.2f"), (a != "" && b > 0) ? sprintf("%.2f", a / b) : "-"
            printf "| cpu | %s | … of which the main thread (schedstat) | %s | %s | | |\n", n,
                cell(v[k, "A", 14], "%.2f"), cell(v[k, "B", 14], "%.2f")
            a = med(v[k, "A", 8]); b = med(v[k, "B", 8])
            printf "| cpu | %s | latency p50 ms | %s | %s | %s | |\n", n,
                cell(v[k, "A", 8], "%.2f"), cell(v[k, "B", 8], "%.2f"), (a != "" && b != "") ? sprintf("%+.2f", a - b) : "-"
            a = med(v[k, "A", 9]); b = med(v[k, "B", 9])
            printf "| cpu | %s | latency p99 ms | %s | %s | %s | |\n", n,
                cell(v[k, "A", 9], "%.2f"), cell(v[k, "B", 9], "%.2f"), (a != "" && b != "") ? sprintf("%+.2f", a - b) : "-"
            printf "| cpu | %s | delivered (lost) | %s (%s) | %s (%s) | | |\n", n,
                cell(v[k, "A", 11], "%d"), cell(v[k, "A", 10], "%d"), cell(v[k, "B", 11], "%d"), cell(v[k, "B", 10], "%d")
        } else {
            a = med(v[k, "A", 12]); b = med(v[k, "B", 12])
            printf "| idle | %s | ΔPSS/N KiB (nginx master+worker / mosquitto) | %s | %s | %s | %s |\n", n,
                cell(v[k, "A", 12], "%.3f"), cell(v[k, "B", 12], "%.3f"), (a != "" && b > 0) ? sprintf("%.2f", a / b) : "-", ok
        }
    }
}' "$RAW" > "$OUT/table.md"
cat "$OUT/table.md"
log "done in $(( $(date +%s) - T0 )) s; raw output in $OUT"
