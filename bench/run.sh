#!/usr/bin/env bash
# bench/run.sh: memory per idle subscriber and CPU per delivered message for
# each fan-out server config bench/<server>.conf (see README.md).
#
#   bench/run.sh [--servers nchan,gravitee] [--reps 3] [--quick] [--net lo|veth]
#
# Prints one Markdown table on stdout; raw data and logs go to --out.
set -u -o pipefail

ARGS="$*"
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH/lib.sh"
NGINX=${NGINX:-/usr/sbin/nginx}
LOADGEN=$BENCH/loadgen

# ---------------------------------------------------------------- options
SERVERS=""
REPS=3
N_LIST="1000 10000"
MODES="ws sse"
CPU_SUBS=1000
CPU_MSGS=200
CPU_SIZE=100
CPU_RATE=50
CONN_RATE=2000
SETTLE=2
PORT=18480
MAX_TIME=900
OUT=""
QUICK=0
TESTS="idle cpu"
SLOW_N=1000
SLOW_K=10
SLOW_MSGS=600
SLOW_SIZE=1000
NET=lo
# --net veth: nginx listens on the root end of a veth pair, every load
# generator process runs in network namespace $NS behind the other end
NS=gvbench
VETH_HOST=gvb0          # root namespace, server address
VETH_NS=gvb1            # in $NS, load generator address
VETH_HOST_ADDR=10.231.0.1
VETH_NS_ADDR=10.231.0.2

usage() {
    cat >&2 <<EOF
usage: $0 [options]
  --servers LIST   comma list of bench/<name>.conf (default: every *.conf)
  --reps R         interleaved repetitions (default $REPS)
  --n LIST         idle subscriber counts (default "$N_LIST")
  --modes LIST     "ws sse" (default)
  --tests LIST     "idle cpu" (default); "slow": slow-client test
  --slow-n N       readers in the slow test (default $SLOW_N)
  --slow-k K       clients that never read (default $SLOW_K)
  --slow-msgs M    messages in the slow test, 50/s (default $SLOW_MSGS)
  --cpu-subs N     subscribers in the CPU test (default $CPU_SUBS)
  --cpu-msgs M     messages published (default $CPU_MSGS)
  --cpu-size B     message size in bytes (default $CPU_SIZE)
  --cpu-rate R     messages per second (default $CPU_RATE)
  --conn-rate R    subscriber connections per second (default $CONN_RATE)
  --settle S       seconds to wait after all subscribers are up (default $SETTLE)
  --port P         listen port (default $PORT)
  --net lo|veth    lo (default): everything on 127.0.0.1; veth: load generator
                   in netns $NS behind a veth pair, server on $VETH_HOST_ADDR
  --max-time S     stop starting new cells after S seconds (default $MAX_TIME)
  --out DIR        raw output directory (default bench/results/<date>)
  --quick          smoke test: N=100,500, 100 CPU subscribers, 50 msgs, 1 rep
EOF
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --servers)   SERVERS=${2//,/ }; shift 2 ;;
    --reps)      REPS=$2; shift 2 ;;
    --n)         N_LIST=$2; shift 2 ;;
    --modes)     MODES=$2; shift 2 ;;
    --tests)     TESTS=$2; shift 2 ;;
    --cpu-subs)  CPU_SUBS=$2; shift 2 ;;
    --slow-n)    SLOW_N=$2; shift 2 ;;
    --slow-k)    SLOW_K=$2; shift 2 ;;
    --slow-msgs) SLOW_MSGS=$2; shift 2 ;;
    --cpu-msgs)  CPU_MSGS=$2; shift 2 ;;
    --cpu-size)  CPU_SIZE=$2; shift 2 ;;
    --cpu-rate)  CPU_RATE=$2; shift 2 ;;
    --conn-rate) CONN_RATE=$2; shift 2 ;;
    --settle)    SETTLE=$2; shift 2 ;;
    --port)      PORT=$2; shift 2 ;;
    --max-time)  MAX_TIME=$2; shift 2 ;;
    --out)       OUT=$2; shift 2 ;;
    --net)       NET=$2; shift 2 ;;
    --quick)     QUICK=1; shift ;;
    -h|--help)   usage ;;
    *)           echo "unknown option: $1" >&2; usage ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    REPS=1; N_LIST="100 500"; CPU_SUBS=100; CPU_MSGS=50; SETTLE=1
    SLOW_N=100; SLOW_K=2; SLOW_MSGS=500
fi

case "$NET" in
lo)   ADDR=127.0.0.1 ;;
veth) ADDR=$VETH_HOST_ADDR ;;
*)    echo "--net: lo or veth" >&2; usage ;;
esac

make -s -C "$BENCH" >&2 || { echo "build of loadgen failed" >&2; exit 1; }

if [ -z "$SERVERS" ]; then
    for f in "$BENCH"/*.conf; do
        SERVERS="$SERVERS $(basename "$f" .conf)"
    done
fi

[ -n "$OUT" ] || OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
SLOWRAW=$OUT/slow.tsv
echo -e "rep\tserver\tmode\treaders\tslow\tok\tpss_before_kib\tpss_peak_kib\tpss_after_kib\tlat_p50_ms\tlat_p99_ms\tlost\tdelivered\tslow_closed\twarn_lines\tinfo_lines" > "$SLOWRAW"
echo -e "rep\tserver\ttest\tmode\tn\tok\tdpss_kib\tslab_kib_sock\tcpu_us_msg\tcpu_us_msg_sched\tlat_p50_ms\tlat_p99_ms\tlost\tdelivered\tfailed\tcore_us_msg" > "$RAW"

# pinning: server on core 0, load generator on core 1 (when there are 2+).
# This script (its polling, curl) also goes to core 1, so that the busy time
# of core 0 (core_us_msg) is the server's and the kernel's, not ours.
NCPU=$(nproc)
SRV_CORE=0
LG_CORE=1
if [ "$NCPU" -ge 2 ]; then
    SRV_TASKSET=(taskset -c $SRV_CORE); CPU_MASK=01; LG_PIN=(--pin-cpu $LG_CORE)
    taskset -p -c $LG_CORE $$ >/dev/null
else
    SRV_TASKSET=(); CPU_MASK=auto; LG_PIN=()
    [ "$NET" = veth ] && { log "--net veth needs 2+ cores"; exit 1; }
fi

# every load generator process (subscribers, publisher, warm-up) runs this;
# ip netns exec execs it, so $! is loadgen's own pid (signals reach it)
if [ "$NET" = veth ]; then
    LG=(ip netns exec "$NS" "$LOADGEN" --any-dest)
else
    LG=("$LOADGEN")
fi

# nginx workers (user nobody) cannot raise RLIMIT_NOFILE past the master's
# hard limit: raise it here for worker_rlimit_nofile (needs root)
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 65536 ]; then
    ulimit -Hn 65536 2>/dev/null || log "cannot raise the hard RLIMIT_NOFILE, using $(ulimit -Hn)"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536

T_START=$(date +%s)
LOGLEVEL=warn
CUR_MASTER=""
CUR_LG=""

# ---------------------------------------------------------------- helpers
meta() {   # meta CONF KEY -> value of "# bench-KEY: value"
    sed -n "s/^# bench-$2:[[:space:]]*//p" "$1" | head -1 | sed 's/[[:space:]]*$//'
}

server_missing() {   # prints the first missing load_module file, if any
    local conf=$1 f
    for f in $(sed -n 's/^[[:space:]]*load_module[[:space:]]\+\([^;]*\);.*/\1/p' "$conf"); do
        [ -f "$f" ] || { echo "$f"; return 0; }
    done
    return 1
}

pss_total() {   # KiB, master + its children
    local m=$1 t=0 p v
    for p in $m $(children "$m"); do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}

slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }

cpu_ticks() {   # utime + stime of PID, in clock ticks (no fork: fast)
    # fields after the ")" : state is $1, utime is $12, stime is $13
    local l f
    read -r l < "/proc/$1/stat" || { echo 0; return; }
    read -r -a f <<< "${l##*) }"
    echo $((f[11] + f[12]))
}

sched_ns() { local a; read -r a _ < "/proc/$1/schedstat" || a=0; echo "${a:-0}"; }

core_stat() {   # core_stat CPU -> "now user nice system idle iowait irq softirq steal"
    local k u n s i w q sq st rest
    while read -r k u n s i w q sq st rest; do
        [ "$k" = "cpu$1" ] && { echo "$EPOCHREALTIME $u $n $s $i $w $q $sq $st"; return; }
    done < /proc/stat
    echo "$EPOCHREALTIME 0 0 0 0 0 0 0 0"
}

# Busy ticks of a core between two core_stat snapshots: elapsed time minus
# idle and iowait. Not the sum of the other fields: those are sampled at the
# 250 Hz tick, and a load at a fixed 50/s (Nchan's publisher) stays in phase
# with it (seen: up to 13% below the worker's own CPU time), while idle and
# iowait come from the nohz idle clock, which is exact (10 ms units here).
core_busy() {   # core_busy STAT_BEFORE STAT_AFTER HZ
    awk -v a="$1" -v b="$2" -v hz="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%.1f", (y[1] - x[1]) * hz - (y[5] - x[5]) - (y[6] - x[6]) }'
}

core_delta() {   # core_delta STAT_BEFORE STAT_AFTER -> field:ticks,...,sampled_busy:
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = 0
        split("user nice system idle iowait irq softirq steal", k, " ")
        for (i = 1; i <= 8; i++) {
            printf "%s:%d,", k[i], y[i + 1] - x[i + 1]
            if (i != 4 && i != 5) t += y[i + 1] - x[i + 1]
        }
        printf "sampled_busy:%d\n", t }'
}

# Where the kernel processed received packets, per CPU, to check that RPS
# works (--net veth): /proc/net/softnet_stat column 1 (packets processed),
# column 10 (RPS: packets steered here by another CPU), column 13 (cpu);
# and NET_RX of /proc/softirqs. Snapshots, for net_delta.
net_snap() {
    local f line="" k r
    while read -r -a f; do
        line="$line $((16#${f[12]})):$((16#${f[0]})):$((16#${f[9]}))"
    done < /proc/net/softnet_stat
    while read -r k r; do
        [ "$k" = NET_RX: ] && line="$line|$r"
    done < /proc/softirqs
    echo "$line"
}

net_delta() {   # net_delta SNAP_BEFORE SNAP_AFTER -> cpuN:pkts=,rps=,net_rx= ...
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, A, "|"); split(b, B, "|")
        n = split(A[1], x, " "); split(B[1], y, " ")
        split(A[2], ra, " "); split(B[2], rb, " ")
        for (i = 1; i <= n; i++) {
            split(x[i], p, ":"); split(y[i], q, ":")
            printf "%scpu%d:pkts=%d,rps=%d,net_rx=%d", (i > 1 ? " " : ""),
                p[1], q[2] - p[2], q[3] - p[3], rb[i] - ra[i]
        }
        print "" }'
}

# ------------------------------------------------------ network namespace
net_teardown() {   # deleting one end of the pair deletes both
    [ "$NET" = veth ] || return 0
    ip link del "$VETH_HOST" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    return 0
}

rps_mask() { printf '%x' $((1 << $1)); }

net_setup() {
    [ "$NET" = veth ] || return 0
    net_teardown    # leftovers of a run that was killed
    ip netns add "$NS" &&
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS" &&
    ip link set "$VETH_NS" netns "$NS" &&
    ip addr add "$VETH_HOST_ADDR/24" dev "$VETH_HOST" &&
    ip link set "$VETH_HOST" up &&
    ip -n "$NS" addr add "$VETH_NS_ADDR/24" dev "$VETH_NS" &&
    ip -n "$NS" link set "$VETH_NS" up &&
    ip -n "$NS" link set lo up || { log "veth setup failed"; return 1; }
    # A veth hands a sent packet to the peer's receive path on the sending
    # CPU. RPS moves that work where a NIC's would be: server->loadgen
    # packets are received on the load generator's core, loadgen->server
    # packets (requests, ACKs) on the server's core. The namespace end's
    # sysfs is only visible inside the namespace.
    ip netns exec "$NS" sh -c "echo $(rps_mask $LG_CORE) > /sys/class/net/$VETH_NS/queues/rx-0/rps_cpus" &&
    echo "$(rps_mask $SRV_CORE)" > "/sys/class/net/$VETH_HOST/queues/rx-0/rps_cpus" ||
        { log "cannot set rps_cpus"; return 1; }
    # the namespace has its own port range; 10000+ connections to one
    # address and port need more than a few thousand ports
    ip netns exec "$NS" sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" ||
        { log "cannot widen ip_local_port_range in $NS"; return 1; }
    RPS_INFO="rps_cpus $NS/$VETH_NS=$(ip netns exec "$NS" cat "/sys/class/net/$VETH_NS/queues/rx-0/rps_cpus")"
    RPS_INFO="$RPS_INFO $VETH_HOST=$(cat "/sys/class/net/$VETH_HOST/queues/rx-0/rps_cpus")"
    log "veth: nginx on $VETH_HOST_ADDR ($VETH_HOST), load generator in netns $NS ($VETH_NS_ADDR); $RPS_INFO"
    rps_check
}

processed() {   # processed CPU: softnet_stat packets processed on CPU so far
    local f
    while read -r -a f; do
        [ $((16#${f[12]})) = "$1" ] && { echo $((16#${f[0]})); return; }
    done < /proc/net/softnet_stat
    echo 0
}

udp_burst() {   # udp_burst CORE DEST [ip netns exec NS]: 5000 datagrams from CORE
    # bash's /dev/udp: no receiver is needed, the packets are counted where
    # the kernel processes them (the few ICMP errors go the other way)
    "${@:3}" taskset -c "$1" bash -c \
        "exec 3>/dev/udp/$2/9; for ((i = 0; i < 5000; i++)); do echo x >&3; done" 2>/dev/null
}

rps_check() {   # one-way UDP each way: is it received on the expected core?
    local dir a0 a1 d0 d1 want other out=""
    for dir in down up; do
        a0=$(processed $SRV_CORE); a1=$(processed $LG_CORE)
        if [ $dir = down ]; then   # server core -> namespace
            udp_burst $SRV_CORE "$VETH_NS_ADDR"
        else                       # namespace, load generator core -> root
            udp_burst $LG_CORE "$VETH_HOST_ADDR" ip netns exec "$NS"
        fi
        d0=$(( $(processed $SRV_CORE) - a0 )); d1=$(( $(processed $LG_CORE) - a1 ))
        out="$out $dir:cpu$SRV_CORE=$d0,cpu$LG_CORE=$d1"
        # want: on the receiver's core; other: on the sender's (no RPS)
        if [ $dir = down ]; then want=$d1; other=$d0; else want=$d0; other=$d1; fi
        if [ "$want" -lt 4500 ] || [ "$other" -gt 500 ]; then
            log "RPS check failed: 5000 UDP packets each way, processed per core:$out"
            RPS_INFO="$RPS_INFO rps_check=FAILED$out"
            return 1
        fi
    done
    log "RPS check: 5000 UDP packets each way, processed per core:$out"
    RPS_INFO="$RPS_INFO rps_check=ok$out"
}

stub_active() {
    curl -s --max-time 2 "http://$ADDR:$PORT/stub_status" 2>/dev/null |
        awk '/^Active connections/ {print $3}'
}

port_busy() { ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

stop_server() {
    local m=$CUR_MASTER w i
    [ -n "$m" ] || return 0
    w=$(children "$m")
    kill -TERM "$m" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$m" 2>/dev/null; then
        log "nginx $m did not stop, killing"
        kill -KILL "$m" $w 2>/dev/null
    fi
    for i in $(seq 1 20); do
        port_busy || break
        sleep 0.1
    done
    CUR_MASTER=""
}

stop_loadgen() {
    local p=$CUR_LG i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    CUR_LG=""
}

cleanup() { stop_loadgen; stop_server; net_teardown; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() {   # start_server NAME -> sets CUR_MASTER, CUR_WORKER
    local name=$1 conf=$BENCH/$1.conf pre=$BENCH/run/$1 i
    if port_busy; then
        log "port $PORT is busy"
        return 1
    fi
    rm -rf "$pre"
    mkdir -p "$pre"
    sed -e "s#@PREFIX@#$pre#g" -e "s#@PORT@#$PORT#g" -e "s#@ADDR@#$ADDR#g" \
        -e "s#@SLOWPORT@#$((PORT + 1))#g" \
        -e "s#error\.log warn;#error.log $LOGLEVEL;#" \
        -e "s#@WORKER_CONNECTIONS@#$WORKER_CONNECTIONS#g" \
        -e "s#@CPU_MASK@#$CPU_MASK#g" -e "s#@NOFILE@#$NOFILE#g" \
        "$conf" > "$pre/nginx.conf"
    if ! "${SRV_TASKSET[@]}" "$NGINX" -p "$pre" -c "$pre/nginx.conf" \
            -e "$pre/error.log" 2>>"$OUT/nginx-start.log"; then
        log "$name: nginx failed to start (see $OUT/nginx-start.log)"
        return 1
    fi
    for i in $(seq 1 50); do
        [ -s "$pre/nginx.pid" ] && [ -n "$(stub_active)" ] && break
        sleep 0.1
    done
    CUR_MASTER=$(cat "$pre/nginx.pid" 2>/dev/null)
    CUR_WORKER=$(children "$CUR_MASTER" | awk '{print $1}')
    if [ -z "$CUR_MASTER" ] || [ -z "$CUR_WORKER" ]; then
        log "$name: no master/worker found"
        stop_server
        return 1
    fi
    # warm-up: one subscriber of each kind, so that first-use allocations
    # (channel, buffers, lazy init) are outside the measured delta; only one,
    # because the heap holes a closed subscriber leaves are reused by the next
    "${LG[@]}" --mode ws --url "ws://$ADDR:$PORT$WARM_PATH" -n 1 --idle \
        --duration 0.5 --quiet "${LG_PIN[@]}" >/dev/null 2>&1
    "${LG[@]}" --mode sse --url "http://$ADDR:$PORT$WARM_PATH" -n 1 \
        --idle --duration 0.5 --quiet "${LG_PIN[@]}" >/dev/null 2>&1
    sleep 0.5
    return 0
}

wait_line() {   # wait_line FILE PATTERN TIMEOUT_S
    local i lim
    lim=$(awk -v t="$3" 'BEGIN {print int(t * 10)}')
    for ((i = 0; i < lim; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        [ -n "$CUR_LG" ] && ! kill -0 "$CUR_LG" 2>/dev/null && \
            { grep -q "$2" "$1" 2>/dev/null; return $?; }
        sleep 0.1
    done
    return 1
}

open_window() {   # open_window FILE: SIGUSR2 to loadgen, wait for window_open
    # A publisher started before loadgen has handled the signal can stamp
    # its first message before the window start (seen once this script
    # shares core 1 with loadgen: 1 message lost per subscriber).
    local i
    kill -USR2 "$CUR_LG"
    for ((i = 0; i < 300; i++)); do
        grep -q '^window_open' "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    log "loadgen did not report window_open"
    return 1
}

kv() {   # kv FILE LINE_TAG KEY
    grep "^$2 " "$1" 2>/dev/null | tail -1 | tr ' ' '\n' |
        sed -n "s/^$3=//p" | head -1
}

record_slow() { local IFS=$'\t'; echo "$*" >> "$SLOWRAW"; }

# ------------------------------------------------------------------ cells
cell_idle() {   # cell_idle REP SERVER MODE N
    local rep=$1 srv=$2 mode=$3 n=$4 conf=$BENCH/$2.conf p url f
    local b a s0 s1 est fail act i dpss slab ok=0
    p=$(meta "$conf" "idle-$mode")
    [ "$mode" = ws ] && url="ws://$ADDR:$PORT$p" || url="http://$ADDR:$PORT$p"
    WARM_PATH=$p
    f=$OUT/lg-$rep-$srv-idle-$mode-$n.txt
    if ! start_server "$srv"; then
        record "$rep" "$srv" idle "$mode" "$n" 0 - - - - - - - - - -
        return
    fi
    b=$(pss_total "$CUR_MASTER")
    s0=$(slab_kib)
    "${LG[@]}" --mode "$mode" --url "$url" -n "$n" --idle --rate "$CONN_RATE" \
        --duration $((n / CONN_RATE + 60)) --quiet "${LG_PIN[@]}" \
        > "$f" 2>&1 &
    CUR_LG=$!
    if wait_line "$f" '^setup_done' $((n / CONN_RATE + 30)); then
        est=$(kv "$f" setup_done established)
        fail=$(kv "$f" setup_done failed)
        # the server must see them all too (stub_status counts itself)
        for i in $(seq 1 50); do
            act=$(stub_active)
            [ "${act:-0}" -gt "$n" ] && break
            sleep 0.1
        done
        sleep "$SETTLE"
        a=$(pss_total "$CUR_MASTER")
        s1=$(slab_kib)
        [ "$est" = "$n" ] && ok=1
        dpss=$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN {printf "%.3f", (a - b) / n}')
        slab=$(awk -v a="$s1" -v b="$s0" -v n="$n" 'BEGIN {printf "%.3f", (a - b) / (2 * n)}')
        echo "pss_before_kib=$b pss_after_kib=$a slab_before_kib=$s0 slab_after_kib=$s1 stub_active=$act" >> "$f"
        log "$srv idle $mode N=$n: dPSS/N=${dpss} KiB slab/socket=${slab} KiB (established $est, failed $fail)"
        record "$rep" "$srv" idle "$mode" "$n" "$ok" "$dpss" "$slab" - - - - - - "$fail" -
    else
        log "$srv idle $mode N=$n: subscribers not set up in time"
        record "$rep" "$srv" idle "$mode" "$n" 0 - - - - - - - - - -
    fi
    stop_loadgen
    stop_server
}

cell_cpu() {   # cell_cpu REP SERVER MODE
    local rep=$1 srv=$2 mode=$3 n=$CPU_SUBS conf=$BENCH/$2.conf p pub url f
    local c0 c1 q0 q1 k0 k1 l0 l1 n0 n1 est fail msgs lost p50 p99 us uss cus
    local ok=0 tmo hz busy nd
    p=$(meta "$conf" "cpu-$mode")
    pub=$(meta "$conf" publish)
    [ "$mode" = ws ] && url="ws://$ADDR:$PORT$p" || url="http://$ADDR:$PORT$p"
    WARM_PATH=$p
    f=$OUT/lg-$rep-$srv-cpu-$mode-$n.txt
    if ! start_server "$srv"; then
        record "$rep" "$srv" cpu "$mode" "$n" 0 - - - - - - - - - -
        return
    fi
    tmo=$((n / CONN_RATE + CPU_MSGS / CPU_RATE + 40))
    # --window: only messages stamped after the SIGUSR2 below count, so a
    # source that already runs (our shared mock starts with the first
    # subscriber) is measured like a publisher that starts in the window
    "${LG[@]}" --mode "$mode" --url "$url" -n "$n" --expect "$CPU_MSGS" \
        --latency --window --hold --rate "$CONN_RATE" --duration "$tmo" --quiet \
        "${LG_PIN[@]}" > "$f" 2>&1 &
    CUR_LG=$!
    if ! wait_line "$f" '^setup_done' $((n / CONN_RATE + 30)); then
        log "$srv cpu $mode: subscribers not set up in time"
        record "$rep" "$srv" cpu "$mode" "$n" 0 - - - - - - - - - -
        stop_loadgen; stop_server
        return
    fi
    sleep 0.5
    # window start: the slow snapshot first, the two CPU figures last,
    # just before the signal (the core's is the whole core 0: the worker,
    # softirqs wherever they land, anything else that ran there)
    n0=$(net_snap)
    k0=$(core_stat $SRV_CORE); l0=$(core_stat $LG_CORE)
    c0=$(cpu_ticks "$CUR_WORKER"); q0=$(sched_ns "$CUR_WORKER")
    open_window "$f"
    if [ -n "$pub" ]; then
        "${LG[@]}" --publish "http://$ADDR:$PORT$pub" --rate "$CPU_RATE" \
            --count "$CPU_MSGS" --size "$CPU_SIZE" \
            --duration $((CPU_MSGS / CPU_RATE + 20)) "${LG_PIN[@]}" \
            > "$f.pub" 2>&1
    fi
    # all subscribers done (summary printed, connections still held) or timeout
    wait_line "$f" '^summary' $((CPU_MSGS / CPU_RATE + 20))
    c1=$(cpu_ticks "$CUR_WORKER"); q1=$(sched_ns "$CUR_WORKER")
    k1=$(core_stat $SRV_CORE); l1=$(core_stat $LG_CORE)
    n1=$(net_snap)
    stop_loadgen
    est=$(kv "$f" summary connected)
    fail=$(kv "$f" summary failed)
    msgs=$(kv "$f" summary msgs_window)
    lost=$(kv "$f" summary lost)
    p50=$(kv "$f" summary lat_p50_ms)
    p99=$(kv "$f" summary lat_p99_ms)
    hz=$(getconf CLK_TCK)
    us=$(awk -v a="$c1" -v b="$c0" -v m="${msgs:-0}" -v hz="$hz" \
        'BEGIN {if (m > 0) printf "%.3f", (a - b) * 1e6 / hz / m; else print "-"}')
    uss=$(awk -v a="$q1" -v b="$q0" -v m="${msgs:-0}" \
        'BEGIN {if (m > 0) printf "%.3f", (a - b) / 1e3 / m; else print "-"}')
    # /proc/stat is in USER_HZ ticks too; meaningless when nothing is pinned
    busy=$(core_busy "$k0" "$k1" "$hz")
    cus=$(awk -v t="$busy" -v m="${msgs:-0}" -v hz="$hz" -v p="${#SRV_TASKSET[@]}" \
        'BEGIN {if (m > 0 && p > 0) printf "%.3f", t * 1e6 / hz / m; else print "-"}')
    nd=$(net_delta "$n0" "$n1")
    echo "worker_ticks_before=$c0 worker_ticks_after=$c1 clk_tck=$hz sched_ns_before=$q0 sched_ns_after=$q1" >> "$f"
    echo "net=$NET window_s=$(awk -v a="${k0%% *}" -v b="${k1%% *}" 'BEGIN {printf "%.3f", b - a}') core${SRV_CORE}_busy_ticks=$busy core${SRV_CORE}_delta=$(core_delta "$k0" "$k1") core${LG_CORE}_delta=$(core_delta "$l0" "$l1")" >> "$f"
    echo "net_rx $nd" >> "$f"
    [ "$est" = "$n" ] && [ "${msgs:-0}" -gt 0 ] && ok=1
    log "$srv cpu $mode N=$n: ${us} us/msg (schedstat ${uss}), core $SRV_CORE ${cus} us/msg, delivered $msgs, lost $lost, p50 ${p50} ms, p99 ${p99} ms; received $nd"
    record "$rep" "$srv" cpu "$mode" "$n" "$ok" - - "$us" "$uss" "${p50:--}" "${p99:--}" "${lost:--}" "${msgs:--}" "${fail:--}" "$cus"
    stop_server
}


cell_slow() {   # cell_slow REP SERVER MODE: readers + clients that never read
    local rep=$1 srv=$2 mode=$3 n=$SLOW_N k=$SLOW_K conf=$BENCH/$2.conf
    local p pub url f sp=$((PORT + 1)) b a v peak tmo pubpid="" i act
    local est msgs lost p50 p99 open closed warns infos ok=0 log
    p=$(meta "$conf" slow)
    pub=$(meta "$conf" slow-publish)
    [ "$mode" = ws ] && url="ws://$ADDR:$sp$p" || url="http://$ADDR:$sp$p"
    WARM_PATH=$(meta "$conf" "cpu-$mode")
    f=$OUT/lg-$rep-$srv-slow-$mode-$n.txt
    log=$BENCH/run/$srv/error.log
    LOGLEVEL=info
    if ! start_server "$srv"; then
        LOGLEVEL=warn
        record_slow "$rep" "$srv" "$mode" "$n" "$k" 0 - - - - - - - - - -
        return
    fi
    LOGLEVEL=warn
    b=$(pss_total "$CUR_MASTER"); peak=$b
    tmo=$(((n + k) / CONN_RATE + SLOW_MSGS / CPU_RATE + 40))
    "${LG[@]}" --mode "$mode" --url "$url" -n "$n" --slow "$k" \
        --expect "$SLOW_MSGS" --latency --window --hold --rate "$CONN_RATE" \
        --duration "$tmo" --quiet "${LG_PIN[@]}" > "$f" 2>&1 &
    CUR_LG=$!
    if ! wait_line "$f" '^setup_done' $(((n + k) / CONN_RATE + 30)); then
        log "$srv slow $mode: subscribers not set up in time"
        record_slow "$rep" "$srv" "$mode" "$n" "$k" 0 - - - - - - - - - -
        stop_loadgen; stop_server
        return
    fi
    sleep 0.5
    open_window "$f"
    if [ -n "$pub" ]; then
        "${LG[@]}" --publish "http://$ADDR:$sp$pub" --rate "$CPU_RATE" \
            --count "$SLOW_MSGS" --size "$SLOW_SIZE" \
            --duration $((SLOW_MSGS / CPU_RATE + 20)) "${LG_PIN[@]}" \
            > "$f.pub" 2>&1 &
        pubpid=$!
    fi
    # PSS of master + worker every 0.5 s while the messages flow
    for ((i = 0; i < (SLOW_MSGS / CPU_RATE + 20) * 2; i++)); do
        grep -q '^summary' "$f" && break
        kill -0 "$CUR_LG" 2>/dev/null || break
        v=$(pss_total "$CUR_MASTER")
        [ "$v" -gt "$peak" ] && peak=$v
        sleep 0.5
    done
    [ -n "$pubpid" ] && wait "$pubpid"
    # slow clients the server still holds: stub_status counts the readers,
    # the slow ones still open and itself
    act=$(stub_active)
    open=$(( ${act:-0} - 1 - n )); [ "$open" -lt 0 ] && open=0
    closed=$((k - open))
    stop_loadgen
    sleep 1
    a=$(pss_total "$CUR_MASTER")
    warns=$(grep -c 'slow client on' "$log" 2>/dev/null)
    infos=$(grep -c 'reason="slow client"' "$log" 2>/dev/null)
    est=$(kv "$f" summary connected)
    msgs=$(kv "$f" summary msgs_window)
    lost=$(kv "$f" summary lost)
    p50=$(kv "$f" summary lat_p50_ms)
    p99=$(kv "$f" summary lat_p99_ms)
    echo "pss_before_kib=$b pss_peak_kib=$peak pss_after_kib=$a stub_active_end=$act slow_closed=$closed warn_lines=$warns info_lines=$infos" >> "$f"
    grep -E 'slow client' "$log" > "$f.errlog" 2>/dev/null
    [ "$est" = "$n" ] && [ "${msgs:-0}" -gt 0 ] && ok=1
    log "$srv slow $mode: $n readers + $k slow: lost $lost, p50 ${p50} ms, p99 ${p99} ms, PSS $b/$peak/$a KiB, slow closed $closed, log warn $warns info $infos"
    record_slow "$rep" "$srv" "$mode" "$n" "$k" "$ok" "$b" "$peak" "$a" "${p50:--}" "${p99:--}" "${lost:--}" "${msgs:--}" "$closed" "$warns" "$infos"
    stop_server
}

# ------------------------------------------------------------------- main
MAXN=$CPU_SUBS
[ $((SLOW_N + SLOW_K)) -gt "$MAXN" ] && MAXN=$((SLOW_N + SLOW_K))
for n in $N_LIST; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
WORKER_CONNECTIONS=$((MAXN + 1024))
if [ "$WORKER_CONNECTIONS" -gt "$NOFILE" ]; then
    log "N=$MAXN needs more than RLIMIT_NOFILE $NOFILE"
    exit 1
fi

ACTIVE=""
for s in $SERVERS; do
    conf=$BENCH/$s.conf
    if [ ! -f "$conf" ]; then
        log "$s: no $conf, skipped"
        echo "$s: skipped, no config" >> "$OUT/skipped.txt"
        continue
    fi
    if miss=$(server_missing "$conf"); then
        log "$s: skipped, module file $miss does not exist"
        echo "$s: skipped, $miss does not exist" >> "$OUT/skipped.txt"
        continue
    fi
    ACTIVE="$ACTIVE $s"
done
[ -n "$ACTIVE" ] || { log "no server to run"; exit 1; }

RPS_INFO=""
net_setup || exit 1
if [ "$NET" = veth ]; then
    NET_INFO="veth: nginx on $VETH_HOST_ADDR ($VETH_HOST), every loadgen in netns $NS ($VETH_NS_ADDR), $RPS_INFO"
else
    NET_INFO="lo: everything on 127.0.0.1"
fi

{
    echo "date: $(date)"
    echo "host: nproc=$NCPU kernel=$(uname -r)"
    echo "nginx: $("$NGINX" -V 2>&1 | head -1)"
    echo "command: $0 $ARGS"
    echo "net: $NET_INFO"
    echo "servers:$ACTIVE reps=$REPS n=\"$N_LIST\" modes=\"$MODES\" tests=\"$TESTS\" cpu=$CPU_SUBS subs x $CPU_MSGS msgs x $CPU_SIZE B at $CPU_RATE/s conn_rate=$CONN_RATE settle=$SETTLE"
} > "$OUT/meta.txt"
log "servers:$ACTIVE, reps $REPS, output in $OUT"

STOPPED=0
for ((rep = 1; rep <= REPS && !STOPPED; rep++)); do
    for s in $ACTIVE; do
        for t in $TESTS; do
            for m in $MODES; do
                if [ $(( $(date +%s) - T_START )) -ge "$MAX_TIME" ]; then
                    log "--max-time $MAX_TIME s reached, stopping"
                    STOPPED=1
                    break 3
                fi
                if [ "$t" = idle ]; then
                    for n in $N_LIST; do
                        cell_idle "$rep" "$s" "$m" "$n"
                    done
                elif [ "$t" = slow ]; then
                    cell_slow "$rep" "$s" "$m"
                else
                    cell_cpu "$rep" "$s" "$m"
                fi
            done
        done
    done
done

# ------------------------------------------------------------------ table
# median [min-max] of the space-separated numbers in s (POSIX awk: no asort)
AWK_CELL='
function sortn(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
}
function cell(s, fmt,   a, n, m) {
    n = split(s, a, " ")
    if (n == 0) return "-"
    sortn(a, n)
    if (n % 2) m = a[(n + 1) / 2]; else m = (a[n / 2] + a[n / 2 + 1]) / 2
    if (n == 1 || a[1] == a[n]) return sprintf(fmt, m)
    return sprintf(fmt " [" fmt "–" fmt "]", m, a[1], a[n])
}
'

# median [min-max] over the successful repetitions of each cell
awk -F'\t' -v reps="$REPS" "$AWK_CELL"'
NR == 1 { next }
{
    key = $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    runs[key]++
    if ($6 != 1) { bad[key]++; next }
    good[key]++
    for (c = 7; c <= 16; c++) if ($c != "-" && $c != "") v[key, c] = v[key, c] " " $c
}
END {
    print "| server | test | mode | N | ΔPSS/N KiB | kernel slab/socket KiB | CPU µs/msg | core µs/msg | latency p50 ms | latency p99 ms | lost | delivered | ok runs |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, f, SUBSEP)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |\n",
            f[1], f[2], f[3], f[4],
            cell(v[k, 7], "%.2f"), cell(v[k, 8], "%.2f"), cell(v[k, 9], "%.2f"),
            cell(v[k, 16], "%.2f"),
            cell(v[k, 11], "%.2f"), cell(v[k, 12], "%.2f"), cell(v[k, 13], "%d"),
            cell(v[k, 14], "%d"), good[k] + 0, runs[k]
    }
}' "$RAW" > "$OUT/table.md"
[ "$(wc -l < "$RAW")" -gt 1 ] || : > "$OUT/table.md"

# slow-client test: one row per server and mode
if [ "$(wc -l < "$SLOWRAW")" -gt 1 ]; then
    [ -s "$OUT/table.md" ] && echo >> "$OUT/table.md"
    awk -F'\t' "$AWK_CELL"'
NR == 1 { next }
{
    key = $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    runs[key]++
    if ($6 != 1) next
    good[key]++
    for (c = 7; c <= 16; c++) if ($c != "-" && $c != "") v[key, c] = v[key, c] " " $c
}
END {
    print "| server | slow test | mode | readers + never-read | worker+master PSS KiB before / peak / after | latency p50 ms | latency p99 ms | lost (readers) | delivered | never-read closed | log: `slow client on` warn / `reason=\"slow client\"` info | ok runs |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, f, SUBSEP)
        printf "| %s | slow | %s | %s + %s | %s / %s / %s | %s | %s | %s | %s | %s | %s / %s | %d/%d |\n",
            f[1], f[2], f[3], f[4],
            cell(v[k, 7], "%d"), cell(v[k, 8], "%d"), cell(v[k, 9], "%d"),
            cell(v[k, 10], "%.2f"), cell(v[k, 11], "%.2f"), cell(v[k, 12], "%d"),
            cell(v[k, 13], "%d"), cell(v[k, 14], "%d"), cell(v[k, 15], "%d"),
            cell(v[k, 16], "%d"), good[k] + 0, runs[k]
    }
}' "$SLOWRAW" >> "$OUT/table.md"
fi
[ -s "$OUT/table.md" ] && printf '\nnet: %s\n' "$NET_INFO" >> "$OUT/table.md"
cat "$OUT/table.md"

if [ -s "$OUT/skipped.txt" ]; then
    echo
    sed 's/^/skipped: /' "$OUT/skipped.txt"
fi
log "done in $(( $(date +%s) - T_START )) s; raw data in $OUT"
