#!/usr/bin/env bash
# bench/kafka.sh: the Kafka endpoint's benchmark (see README.md, "kafka.sh").
#
#   bench/kafka.sh [--quick] [--tests "read get post idle storm"] ...
#
# Runs build/kafka-mock-broker (the test suite's Kafka-protocol broker) and
# one nginx worker with the module, pinned as bench/run.sh does (nginx and
# the reference client kcat on core 0, load generators and the broker on
# core 1), and measures: records/s from a prefilled topic to 1, 100, 1000
# SSE and WebSocket subscribers and to an HTTP GET pager next to kcat -C
# reading the same topic; POSTs/s next to kcat -P producing as many
# records; ΔPSS per idle subscriber on a Kafka location next to the Mock;
# the reconnect storm (N SSE clients with their Last-Event-ID after
# nginx -s reload). Prints a Markdown table; raw output goes to --out.
set -u -o pipefail

ARGS="$*"
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH/lib.sh"
REPO=$(cd "$BENCH/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$REPO/build/ngx_gravitee_module.so}
BROKER=${BROKER:-$REPO/build/kafka-mock-broker}
KCAT=${KCAT:-kcat}
LOADGEN=$BENCH/loadgen
STORM=$BENCH/kafka-storm
PRODUCER=$BENCH/kafka-producer
GETTER=$BENCH/kafka-get.py

# ---------------------------------------------------------------- options
TESTS="read get post idle storm"
PORT=18500
CTL_PORT=18590
PARTS=10                # partitions of each read topic
READ_PER_PART=30000     # records per partition for 1 subscriber (300k)
READ_N="1 100 1000"
MODES="sse ws"
KCAT_REPS=3
GET_LIMIT=10000
POST_COUNT=40000
POST_CONC=200
IDLE_N="1000 10000"
STORM_N=10000
STORM_RATE=20           # records/s produced during the storm (x N deliveries/s)
STORM_PARTS=4
STORM_JITTER=1
STORM_TIMEOUT=60        # s from the reload to all_live
CONN_RATE=2000
SETTLE=2
OUT=""
QUICK=0

usage() {
    cat >&2 <<EOF
usage: $0 [options]
  --tests LIST       "read get post idle storm" (default: all)
  --quick            smoke test: 10x fewer records, N=1,100 subscribers,
                     idle N=100,500, storm of 500 clients, 1 kcat rep
  --read-n LIST      subscriber counts of the read test (default "$READ_N")
  --modes LIST       "sse ws" (default)
  --parts P          partitions of the read topics (default $PARTS)
  --per-part R       records per partition of the 1-subscriber topic
                     (default $READ_PER_PART; the N-subscriber topic has
                     10R/N per partition, at most R; the mock keeps at
                     most 5 MiB per partition: R <= 40000)
  --kcat-reps K      kcat runs per topic, median (default $KCAT_REPS)
  --get-limit L      GET ?limit= (default $GET_LIMIT)
  --post-count C     records produced, by POST and by kcat -P (default $POST_COUNT)
  --post-conc K      concurrent POST connections (default $POST_CONC)
  --idle-n LIST      idle subscriber counts (default "$IDLE_N")
  --storm-n N        reconnect storm clients (default $STORM_N)
  --storm-rate R     records/s during the storm (default $STORM_RATE)
  --port P           nginx port (default $PORT; 18500-18599 for this bench)
  --ctl-port P       the broker's control port (default $CTL_PORT)
  --out DIR          raw output (default bench/results/<date>-kafka)
Needs root (smaps_rollup of the workers, ss -p), kcat, taskset, curl, ss,
python3, and build/ngx_gravitee_module.so, build/kafka-mock-broker
(make all build/kafka-mock-broker). Every wait is bounded.
EOF
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --tests)      TESTS=$2; shift 2 ;;
    --quick)      QUICK=1; shift ;;
    --read-n)     READ_N=$2; shift 2 ;;
    --modes)      MODES=$2; shift 2 ;;
    --parts)      PARTS=$2; shift 2 ;;
    --per-part)   READ_PER_PART=$2; shift 2 ;;
    --kcat-reps)  KCAT_REPS=$2; shift 2 ;;
    --get-limit)  GET_LIMIT=$2; shift 2 ;;
    --post-count) POST_COUNT=$2; shift 2 ;;
    --post-conc)  POST_CONC=$2; shift 2 ;;
    --idle-n)     IDLE_N=$2; shift 2 ;;
    --storm-n)    STORM_N=$2; shift 2 ;;
    --storm-rate) STORM_RATE=$2; shift 2 ;;
    --port)       PORT=$2; shift 2 ;;
    --ctl-port)   CTL_PORT=$2; shift 2 ;;
    --out)        OUT=$2; shift 2 ;;
    -h|--help)    usage ;;
    *)            echo "unknown option: $1" >&2; usage ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    READ_PER_PART=$((READ_PER_PART / 10)); READ_N="1 100"; KCAT_REPS=1
    POST_COUNT=2000; POST_CONC=50; IDLE_N="100 500"; STORM_N=500
    STORM_TIMEOUT=30; SETTLE=1
fi

for f in "$MODULE" "$BROKER"; do
    [ -f "$f" ] || die "missing $f (make all build/kafka-mock-broker)"
done
command -v "$KCAT" >/dev/null || die "no kcat (Debian package kcat)"
make -s -C "$BENCH" >&2 || die "build of bench tools failed"

# a copy: a rebuild of build/ during the run changes nothing measured (and
# perf still finds the module's symbols)
mkdir -p "$BENCH/run"
cp "$MODULE" "$BENCH/run/kafka-module.so" || die "cannot copy $MODULE"
MODULE_SRC=$MODULE; MODULE=$BENCH/run/kafka-module.so

[ -n "$OUT" ] || OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)-kafka
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
echo -e "test\tmode\tn\trecords\tok\tseconds\trate_per_sub\trate_total\tref\tref_rate\tratio\textra" > "$RAW"
PRE=$BENCH/run/kafka

# pinning as run.sh: nginx (and kcat, the consumer it is compared with) on
# core 0; load generators, the broker and this script on core 1
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
    SRV=(taskset -c 0); LGC=(taskset -c 1); CPU_MASK=01; PIN=(--pin-cpu 1)
    taskset -p -c 1 $$ >/dev/null
else
    SRV=(); LGC=(); CPU_MASK=auto; PIN=()
fi

if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 65536 ]; then
    ulimit -Hn 65536 2>/dev/null || log "cannot raise the hard RLIMIT_NOFILE, using $(ulimit -Hn)"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536
WORKER_CONNECTIONS=$NOFILE

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: bench/kafka.sh $ARGS"
    echo "host: $(uname -srm), $NCPU cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "nginx: $($NGINX -v 2>&1)"
    echo "librdkafka: $(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null) kcat: $(dpkg-query -W -f='${Version}' kcat 2>/dev/null)"
    echo "module: $MODULE_SRC ($(stat -c %y "$MODULE_SRC" | cut -c1-19), md5 $(md5sum < "$MODULE" | cut -c1-12)), git $(cd "$REPO" && git describe --always --dirty 2>/dev/null)"
    echo "nofile: $NOFILE"
    echo "other load at start: $(pgrep -fa 'prove|fuzz/run.sh|clang' | grep -v pgrep | wc -l) processes (prove|fuzz/run.sh|clang)"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

# ---------------------------------------------------------------- helpers
BROKER_PID=""; MASTER=""; BG_PIDS=""; BOOT=""

pss_total() { pss_of "$1" $(children "$1"); }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

stop_pid() {   # stop_pid PID [SIG]: signal, wait 5 s, KILL
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -"${2:-TERM}" "$p" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}

ctl() {   # ctl LINE -> the broker's reply line
    timeout 25 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$CTL_PORT"' || exit 1
        echo "$1" >&3; read -r -t 20 l <&3; echo "$l"' _ "$1" 2>/dev/null
}

start_broker() {
    ss -Hltn "sport = :$CTL_PORT" | grep -q . && die "control port $CTL_PORT is busy"
    "${LGC[@]}" "$BROKER" -b 1 -c "$CTL_PORT" > "$OUT/broker.out" 2> "$OUT/broker.err" &
    BROKER_PID=$!
    wait_line "$OUT/broker.out" '^ready' 10 "$BROKER_PID" || die "broker did not start"
    BOOT=$(sed -n 's/^bootstrap //p' "$OUT/broker.out")
    BPORT=${BOOT##*:}
    log "broker $BROKER_PID at $BOOT, control $CTL_PORT"
}

topic() {   # topic NAME PARTITIONS
    local r
    r=$(ctl "topic $1 $2")
    [[ "$r" == ok* ]] || die "topic $1: $r"
}

high_sum() {   # high_sum TOPIC PARTS: sum of the high watermarks
    local t=$1 n=$2 p args=()
    for ((p = 0; p < n; p++)); do args+=(-t "$t:$p:-1"); done
    timeout 20 "$KCAT" -Q -b "$BOOT" "${args[@]}" 2>/dev/null |
        awk '{s += $NF} END {print s + 0}'
}

# ~100-byte record values: "p=<partition> s=<seq> " then x padding
value_file() {   # value_file FILE PARTITION COUNT
    awk -v p="$2" -v n="$3" 'BEGIN {
        pad = sprintf("%100s", ""); gsub(/ /, "x", pad)
        for (i = 0; i < n; i++) { v = sprintf("p=%d s=%08d ", p, i); print v substr(pad, 1, 100 - length(v)) } }' > "$1"
}

prefill() {   # prefill TOPIC PARTS PER_PART: big batches, one kcat per partition
    local t=$1 n=$2 r=$3 p got
    topic "$t" "$n"
    for ((p = 0; p < n; p++)); do
        value_file "$OUT/tmp-values" "$p" "$r"
        timeout 60 "$KCAT" -P -b "$BOOT" -t "$t" -p "$p" -X acks=all \
            -X linger.ms=100 -X batch.num.messages=10000 -l "$OUT/tmp-values" \
            2>>"$OUT/kcat.err" || die "prefill of $t [$p] failed"
    done
    rm -f "$OUT/tmp-values"
    got=$(high_sum "$t" "$n")
    [ "$got" = $((n * r)) ] || die "prefill of $t: $got records, not $((n * r))"
    log "topic $t: $n partitions x $r records"
}

READ_LOCS=""
read_location() {   # read_location TOPIC RECORDS
    READ_LOCS="$READ_LOCS
        location = /read/$1 {
            message_proxy_entrypoint websocket ping_interval=0 max_queued_messages=$(( $2 + 1024 )) max_queued_size=1024m;
            message_proxy_entrypoint sse heartbeat_interval=3600s max_queued_messages=$(( $2 + 1024 )) max_queued_size=1024m;
            message_proxy_entrypoint http-get messages_limit_count=$GET_LIMIT messages_limit_duration=0;
            message_proxy_endpoint kafka bootstrap_servers=$BOOT topics=$1
                auto_offset_reset=earliest producer=off;
            message_proxy_kafka_property fetch.wait.max.ms 10;
        }"
}

start_server() {   # start_server LOGLEVEL -> MASTER, WORKER
    local lvl=${1:-warn} i
    stop_server
    ss -Hltn "sport = :$PORT" | grep -q . && { log "port $PORT is busy"; return 1; }
    rm -rf "$PRE"; mkdir -p "$PRE"
    READ_LOCS=$READ_LOCS python3 - "$BENCH/kafka-nginx.conf.in" "$PRE/nginx.conf" <<EOF || return 1
import os, sys
t = open(sys.argv[1]).read().replace('@READ_LOCATIONS@', os.environ['READ_LOCS'])
for k, v in {'@PREFIX@': '$PRE', '@PORT@': '$PORT', '@BOOTSTRAP@': '$BOOT',
             '@WORKER_CONNECTIONS@': '$WORKER_CONNECTIONS', '@NOFILE@': '$NOFILE',
             '@CPU_MASK@': '$CPU_MASK', '@LOGLEVEL@': '$lvl',
             '@MODULE@': '$MODULE'}.items():
    t = t.replace(k, v)
open(sys.argv[2], 'w').write(t)
EOF
    "${SRV[@]}" "$NGINX" -p "$PRE" -c "$PRE/nginx.conf" -e "$PRE/error.log" \
        2>>"$OUT/nginx-start.log" || { log "nginx failed to start"; return 1; }
    for i in $(seq 1 50); do
        [ -s "$PRE/nginx.pid" ] && curl -s -m 1 -o /dev/null "http://127.0.0.1:$PORT/stub_status" && break
        sleep 0.1
    done
    MASTER=$(cat "$PRE/nginx.pid" 2>/dev/null)
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
        ss -Hltn "sport = :$PORT" | grep -q . || break
        sleep 0.1
    done
    if [ -f "$PRE/error.log" ]; then
        cp "$PRE/error.log" "$OUT/error-$CELL.log" 2>/dev/null
        # the storm's (info: a line per stream) is several MB
        [ "$(stat -c %s "$OUT/error-$CELL.log" 2>/dev/null || echo 0)" -gt 1000000 ] && gzip -f "$OUT/error-$CELL.log"
    fi
    MASTER=""
}

cleanup() {
    local p
    for p in $BG_PIDS; do stop_pid "$p"; done
    stop_server
    stop_pid "$BROKER_PID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

kcat_read() {   # kcat_read TOPIC RECORDS -> median seconds of KCAT_REPS runs
    local t=$1 r=$2 i s secs="" got
    # its records go to a pipe read on the load generators' core, as ours
    # go to a socket read there.  -o 0, not -o beginning: the logical
    # offset costs a ListOffsets per partition, and with the mock broker
    # one of them now and then is answered only at librdkafka's retry,
    # 500 ms later (a third of the runs, seen with -d fetch,protocol);
    # the module's readers start at offsets they know
    for ((i = 1; i <= KCAT_REPS; i++)); do
        s=$(now)
        got=$("${SRV[@]}" timeout 120 "$KCAT" -C -b "$BOOT" -t "$t" -o 0 \
            -e -q -X fetch.wait.max.ms=10 2>>"$OUT/kcat.err" | "${LGC[@]}" wc -l)
        secs="$secs $(since "$s")"
        [ "$got" = "$r" ] || log "kcat -C $t: $got records, not $r"
    done
    echo "$secs" >> "$OUT/kcat-read-$t.txt"
    echo "$secs" | median
}

# ------------------------------------------------------------------- tests
CELL=setup
start_broker

# read topics: the N-subscriber topic has PER_PART*10/N records per
# partition (at most PER_PART): every cell with N >= 10 delivers about the
# same total, 10 x what kcat reads from the 1-subscriber topic
declare -A RTOPIC RREC KREF
if [[ " $TESTS " == *" read "* || " $TESTS " == *" get "* ]]; then
    for n in $READ_N; do
        pp=$((READ_PER_PART * 10 / n)); [ "$pp" -gt "$READ_PER_PART" ] && pp=$READ_PER_PART
        [ "$pp" -ge 1 ] || pp=1
        RTOPIC[$n]=bench-read-$n; RREC[$n]=$((pp * PARTS))
        prefill "bench-read-$n" "$PARTS" "$pp"
        read_location "bench-read-$n" "${RREC[$n]}"
    done
    for n in $READ_N; do
        s=$(kcat_read "${RTOPIC[$n]}" "${RREC[$n]}")
        KREF[$n]=$(calc %.0f "${RREC[$n]} / $s")
        log "kcat -C ${RTOPIC[$n]}: ${RREC[$n]} records in $s s (median of $KCAT_REPS): ${KREF[$n]} records/s"
        record kcat-read - 1 "${RREC[$n]}" 1 "$s" "${KREF[$n]}" "${KREF[$n]}" - - - "topic=${RTOPIC[$n]} runs_s=$(tail -1 "$OUT/kcat-read-${RTOPIC[$n]}.txt" | tr ' ' ',' | sed 's/^,//')"
    done
    # kcat's rate on the largest topic (its startup matters least there)
    KBIG=${KREF[$(echo $READ_N | awk '{print $1}')]}
fi

# kcat again just before a cell: this VM's speed drifts over seconds (the
# same kcat read took 0.14 s in one run and 0.20 s in the next), and a
# reference taken at the start would be a minute older than the last cell
kcat_ref() {   # kcat_ref N -> KREF[N], KRUNS
    local s
    s=$(kcat_read "${RTOPIC[$1]}" "${RREC[$1]}")
    KREF[$1]=$(calc %.0f "${RREC[$1]} / $s")
    KRUNS=$(tail -1 "$OUT/kcat-read-${RTOPIC[$1]}.txt" | tr ' ' ',' | sed 's/^,//')
}

if [[ " $TESTS " == *" read "* ]]; then
    for mode in $MODES; do
        for n in $READ_N; do
            CELL=read-$mode-$n; r=${RREC[$n]}; f=$OUT/lg-$CELL.txt
            [ $mode = ws ] && url=ws://127.0.0.1:$PORT/read/${RTOPIC[$n]} || url=http://127.0.0.1:$PORT/read/${RTOPIC[$n]}
            start_server warn || { record read "$mode" "$n" "$r" 0 - - - - - - start; continue; }
            kcat_ref "$n"
            c0=$(cpu_ticks "$WORKER"); m0=$(minor_faults "$WORKER")
            tmo=$((60 + n / 100))
            "${LGC[@]}" "$LOADGEN" --mode "$mode" --url "$url" -n "$n" --expect "$r" \
                --duration "$tmo" --max-pending 200 --quiet "${PIN[@]}" > "$f" 2>&1 &
            lg=$!; BG_PIDS="$BG_PIDS $lg"
            # is the worker still serving other requests meanwhile? one
            # stub_status 1 s in (3 s at most), then sample the worker's
            # PSS while loadgen runs (bounded by tmo)
            sleep 1; probe=timeout; s=$(now)
            if kill -0 "$lg" 2>/dev/null && curl -s -m 3 -o /dev/null "http://127.0.0.1:$PORT/stub_status"; then
                probe=$(calc %.0f "$(since "$s") * 1000")ms
            fi
            kill -0 "$lg" 2>/dev/null || probe=done
            peak=0
            while kill -0 "$lg" 2>/dev/null; do
                v=$(pss_of "$WORKER"); [ "$v" -gt "$peak" ] && peak=$v
                sleep 0.2
            done
            wait "$lg" 2>/dev/null
            c1=$(cpu_ticks "$WORKER"); m1=$(minor_faults "$WORKER")
            el=$(kv "$f" summary elapsed_s); mn=$(kv "$f" summary min); lost=$(kv "$f" summary lost)
            ok=0; [ "${mn:-0}" = "$r" ] && ok=1
            fl=$(kv "$f" summary first_ns); ll=$(kv "$f" summary last_ns)
            ps=$(calc %.0f "$r / ${el:-1}"); pt=$(calc %.0f "$n * $r / ${el:-1}")
            ratio=$(calc %.2f "$ps / ${KREF[$n]}"); rbig=$(calc %.3f "$ps / $KBIG")
            stream=$(calc %.0f "$r / ((${ll:-1} - ${fl:-0}) / 1e9 + 1e-9)")
            cpu=$(calc %.2f "($c1 - $c0) / $(getconf CLK_TCK)")
            slow=$(grep -c 'slow client' "$PRE/error.log")
            log "read $mode N=$n: $r records each in $el s: $ps/s per subscriber ($pt/s total), kcat ${KREF[$n]}/s, ratio $ratio; first->last $stream/s; lost=$lost worker_cpu=${cpu}s pss_peak=${peak}KiB slow_closed=$slow stub_status_1s_in=$probe"
            record read "$mode" "$n" "$r" "$ok" "$el" "$ps" "$pt" kcat-C "${KREF[$n]}" "$ratio" \
                "kcat_runs_s=$KRUNS ratio_vs_kcat_largest_topic=$rbig first_to_last_rate=$stream lost=$lost worker_cpu_s=$cpu worker_minflt=$((m1 - m0)) worker_pss_peak_kib=$peak slow_closed=$slow stub_status_1s_in=$probe"
            stop_server
        done
    done
fi

if [[ " $TESTS " == *" get "* ]]; then
    n=$(echo $READ_N | awk '{print $1}'); r=${RREC[$n]}; CELL=get; f=$OUT/get.txt
    if start_server warn; then
        kcat_ref "$n"
        c0=$(cpu_ticks "$WORKER"); m0=$(minor_faults "$WORKER")
        "${LGC[@]}" timeout 200 python3 "$GETTER" "http://127.0.0.1:$PORT/read/${RTOPIC[$n]}" "$r" \
            --limit "$GET_LIMIT" --timeout 180 > "$f" 2>&1
        c1=$(cpu_ticks "$WORKER"); m1=$(minor_faults "$WORKER")
        el=$(kv "$f" get elapsed_s); got=$(kv "$f" get records)
        ok=0; [ "${got:-0}" -ge "$r" ] && [ "$(kv "$f" get unique)" = "$r" ] \
            && [ "$(kv "$f" get repeated)" = 0 ] && ok=1
        ps=$(calc %.0f "${got:-0} / ${el:-1}"); ratio=$(calc %.2f "$ps / ${KREF[$n]}")
        log "get: $(cat "$f" | tail -1); kcat ${KREF[$n]}/s, ratio $ratio"
        record get - 1 "$r" "$ok" "$el" "$ps" "$ps" kcat-C "${KREF[$n]}" "$ratio" \
            "kcat_runs_s=$KRUNS limit=$GET_LIMIT pages=$(kv "$f" get pages) page_p50_ms=$(kv "$f" get page_p50_ms) page_max_ms=$(kv "$f" get page_max_ms) unique=$(kv "$f" get unique) repeated=$(kv "$f" get repeated) worker_cpu_s=$(calc %.2f "($c1 - $c0) / $(getconf CLK_TCK)") worker_minflt=$((m1 - m0))"
        stop_server
    else
        record get - 1 "$r" 0 - - - - - - start
    fi
fi

# POST_CONC loadgen processes, each with one keep-alive connection and
# PER POSTs of 100 bytes to PATH, one in flight: sets EL (wall time, s)
# and OKN (POSTs answered 2xx); their output is in $OUT/NAME.txt.
post_burst() {
    local path=$1 name=$2 per=$3 i p pids="" s
    s=$(now)
    for ((i = 1; i <= POST_CONC; i++)); do
        "${LGC[@]}" "$LOADGEN" --publish "http://127.0.0.1:$PORT$path" --rate 1000000000 \
            --count "$per" --size 100 --duration 120 --quiet > "$OUT/$name-$i.txt" 2>&1 &
        pids="$pids $!"
    done
    BG_PIDS="$BG_PIDS $pids"
    for p in $pids; do wait "$p" 2>/dev/null; done
    EL=$(since "$s")
    cat "$OUT/$name"-[0-9]*.txt > "$OUT/$name.txt"; rm -f "$OUT/$name"-[0-9]*.txt
    OKN=$(awk '/^publish/ {for (i = 1; i <= NF; i++) {split($i, a, "="); if (a[1] == "ok") s += a[2]}} END {print s + 0}' "$OUT/$name.txt")
}

# The POST cell's loads against NGINX's own "return 202" (/pub-bare, no
# module): what one HTTP request per record costs before any gateway
# work, so the /pub figure can be read against a ceiling, not only kcat.
post_bare() {
    local per=$1 kr=$2 c0 c1 pr tot
    tot=$((per * POST_CONC)); c0=$(cpu_ticks "$WORKER")
    post_burst /pub-bare post-bare "$per"
    c1=$(cpu_ticks "$WORKER"); pr=$(calc %.0f "$OKN / $EL")
    log "post-bare: $OKN of $tot POSTs answered 202 by NGINX alone in $EL s: $pr/s, ratio to kcat -P $(calc %.2f "$pr / $kr")"
    record post-bare - "$POST_CONC" "$tot" "$([ "$OKN" = "$tot" ] && echo 1 || echo 0)" \
        "$EL" "$pr" "$pr" kcat-P "$kr" "$(calc %.2f "$pr / $kr")" \
        "worker_cpu_s=$(calc %.2f "($c1 - $c0) / $(getconf CLK_TCK)")"
}

if [[ " $TESTS " == *" post "* ]]; then
    CELL=post; c=$POST_COUNT
    topic bench-pub 4
    value_file "$OUT/post-values" 0 "$c"
    secs=""
    for ((i = 1; i <= KCAT_REPS; i++)); do
        h0=$(high_sum bench-pub 4); s=$(now)
        "${SRV[@]}" timeout 120 "$KCAT" -P -b "$BOOT" -t bench-pub -X acks=all \
            -l "$OUT/post-values" 2>>"$OUT/kcat.err" || log "kcat -P failed"
        secs="$secs $(since "$s")"; h1=$(high_sum bench-pub 4)
        [ $((h1 - h0)) = "$c" ] || log "kcat -P: $((h1 - h0)) records, not $c"
    done
    echo "$secs" > "$OUT/kcat-produce.txt"
    ks=$(echo "$secs" | median); kr=$(calc %.0f "$c / $ks")
    log "kcat -P: $c records in $ks s (median of $KCAT_REPS): $kr records/s"
    record kcat-produce - 1 "$c" 1 "$ks" "$kr" "$kr" - - - "acks=all"
    rm -f "$OUT/post-values"
    if start_server warn; then
        # warm-up: the worker's producer starts with the first publication
        "${LGC[@]}" "$LOADGEN" --publish "http://127.0.0.1:$PORT/pub" --count 1 --quiet > /dev/null 2>&1
        h0=$(high_sum bench-pub 4); c0=$(cpu_ticks "$WORKER")
        per=$((c / POST_CONC))
        post_burst /pub post "$per"
        el=$EL; okn=$OKN; c1=$(cpu_ticks "$WORKER"); h1=$(high_sum bench-pub 4)
        p50=$(awk '/^publish/ {for (i = 1; i <= NF; i++) {split($i, a, "="); if (a[1] == "resp_p50_ms") print a[2]}}' "$OUT/post.txt" | median)
        tot=$((per * POST_CONC)); ok=0; [ "$okn" = "$tot" ] && [ $((h1 - h0)) = "$tot" ] && ok=1
        pr=$(calc %.0f "$okn / $el"); ratio=$(calc %.2f "$pr / $kr")
        log "post: $okn of $tot POSTs answered 202 in $el s over $POST_CONC connections: $pr/s, $((h1 - h0)) records on the topic; kcat -P $kr/s, ratio $ratio; resp p50 ${p50}ms"
        record post - "$POST_CONC" "$tot" "$ok" "$el" "$pr" "$pr" kcat-P "$kr" "$ratio" \
            "records_on_topic=$((h1 - h0)) resp_p50_ms=$p50 worker_cpu_s=$(calc %.2f "($c1 - $c0) / $(getconf CLK_TCK)")"
        post_bare "$per" "$kr"
        stop_server
    else
        record post - "$POST_CONC" "$c" 0 - - - - - - start
    fi
fi

if [[ " $TESTS " == *" idle "* ]]; then
    topic bench-idle 4
    for n in $IDLE_N; do
        for mode in $MODES; do
            for loc in kafka mock; do
                CELL=idle-$loc-$mode-$n; f=$OUT/lg-$CELL.txt; p=/idle-$loc
                [ $mode = ws ] && url=ws://127.0.0.1:$PORT$p || url=http://127.0.0.1:$PORT$p
                start_server warn || { record idle "$mode" "$n" - 0 - - - - - - "loc=$loc start"; continue; }
                # warm-up as run.sh: one subscriber of each kind (on Kafka it
                # starts the worker's consumer, which then lingers 30 s)
                "${LGC[@]}" "$LOADGEN" --mode ws --url "ws://127.0.0.1:$PORT$p" -n 1 --idle --duration 0.5 --quiet >/dev/null 2>&1
                "${LGC[@]}" "$LOADGEN" --mode sse --url "http://127.0.0.1:$PORT$p" -n 1 --idle --duration 0.5 --quiet >/dev/null 2>&1
                sleep 0.5
                b=$(pss_total "$MASTER")
                "${LGC[@]}" "$LOADGEN" --mode "$mode" --url "$url" -n "$n" --idle --rate "$CONN_RATE" \
                    --duration $((n / CONN_RATE + 60)) --quiet "${PIN[@]}" > "$f" 2>&1 &
                lg=$!; BG_PIDS="$BG_PIDS $lg"; ok=0; dpss=-
                if wait_line "$f" '^setup_done' $((n / CONN_RATE + 30)) "$lg"; then
                    for i in $(seq 1 50); do
                        act=$(stub_active); [ "${act:-0}" -gt "$n" ] && break; sleep 0.1
                    done
                    sleep "$SETTLE"
                    a=$(pss_total "$MASTER")
                    [ "$(kv "$f" setup_done established)" = "$n" ] && ok=1
                    dpss=$(calc %.3f "($a - $b) / $n")
                    echo "pss_before_kib=$b pss_after_kib=$a stub_active=$act" >> "$f"
                fi
                log "idle $loc $mode N=$n: dPSS/N=$dpss KiB (ok=$ok)"
                record idle "$mode" "$n" - "$ok" - - - "$loc" - - "dpss_kib=$dpss"
                stop_pid "$lg"
                stop_server
            done
        done
    done
fi

if [[ " $TESTS " == *" storm "* ]]; then
    CELL=storm; n=$STORM_N; f=$OUT/storm.txt; pf=$OUT/storm-producer.txt
    topic bench-storm "$STORM_PARTS"
    if start_server info; then
        "${LGC[@]}" "$PRODUCER" "$BOOT" bench-storm "$STORM_PARTS" "$STORM_RATE" > "$pf" 2>&1 &
        prod=$!; BG_PIDS="$BG_PIDS $prod"
        "$STORM" --url "http://127.0.0.1:$PORT/storm" -n "$n" --rate "$CONN_RATE" \
            --jitter "$STORM_JITTER" --parts "$STORM_PARTS" --duration $((n / CONN_RATE + STORM_TIMEOUT + 90)) \
            --src-ips 4 "${PIN[@]}" --dump "$OUT/storm-clients.txt" > "$f" 2> "$OUT/storm.err" &
        st=$!; BG_PIDS="$BG_PIDS $st"
        if wait_line "$f" '^all_seen' $((n / CONN_RATE + 40)) "$st"; then
            sleep 2
            old=$WORKER
            pss0=$(pss_total "$MASTER")
            lines0=$(wc -l < "$PRE/error.log")
            kill -USR2 "$st"; wait_line "$f" '^mark' 5 "$st"
            s=$(now)
            kill -HUP "$MASTER"
            log "storm: $n clients live, mark, nginx -s reload (old worker $old)"
            peak=$pss0; peakc=0; newc=0; t_live=""
            while [ "$(awk -v a="$s" -v b="$(now)" 'BEGIN {print (b - a < '"$STORM_TIMEOUT"')}')" = 1 ]; do
                v=$(pss_total "$MASTER"); [ "$v" -gt "$peak" ] && peak=$v
                # the workers' connections to the broker
                c=$(ss -Htnp state established "( dport = :$BPORT )" 2>/dev/null | grep -c '"nginx"')
                [ "$c" -gt "$peakc" ] && peakc=$c
                if grep -q '^all_live' "$f"; then t_live=$(since "$s"); break; fi
                kill -0 "$st" 2>/dev/null || break
                sleep 0.2
            done
            sleep 3
            v=$(pss_total "$MASTER"); [ "$v" -gt "$peak" ] && peak=$v
            stop_pid "$prod" TERM; sleep 2
            stop_pid "$st" TERM
            new=$(children "$MASTER" | awk '{print $1}')
            readers=$(tail -n +"$((lines0 + 1))" "$PRE/error.log" | grep -c 'started to catch clients up')
            consumers=$(tail -n +"$((lines0 + 1))" "$PRE/error.log" | grep -c 'kafka consumer .* started')
            live_ms=$(kv "$f" all_live ms)
            missed=$(kv "$f" summary missed); rep=$(kv "$f" summary repeated)
            notlive=$(kv "$f" summary not_live); lmin=$(kv "$f" summary last_min); lmax=$(kv "$f" summary last_max)
            plast=$(kv "$pf" produced last); pn=$(kv "$pf" produced n)
            ok=0; [ "${missed:-x}" = 0 ] && [ "${rep:-x}" = 0 ] && [ -n "$live_ms" ] && [ "$lmin" = "$plast" ] && [ "$lmax" = "$plast" ] && ok=1
            log "storm: all_live after ${live_ms:-never} ms (script saw it at ${t_live:-never} s); readers started $readers, consumers $consumers, peak broker connections of nginx $peakc; PSS master+workers before $pss0 KiB, peak $peak KiB; missed=$missed repeated=$rep not_live=$notlive; last per partition min=$lmin max=$lmax producer=$plast ($pn records)"
            record storm sse "$n" "$pn" "$ok" "$(calc %.3f "${live_ms:-0} / 1000")" - - - - - \
                "readers=$readers consumers=$consumers broker_conns_peak=$peakc pss_before_kib=$pss0 pss_peak_kib=$peak missed=$missed repeated=$rep not_live=$notlive last_min=$lmin last_max=$lmax producer_last=$plast $(grep '^summary' "$f" | cut -d' ' -f2- | tr ' ' '\n' | grep -E '^(live_p50_ms|live_p99_ms|live_max_ms|handshake_p99_ms|streams_after_mark|http_err|conn_fail)=' | tr '\n' ' ')"
        else
            log "storm: clients not all seen in time"
            record storm sse "$n" - 0 - - - - - - "not all seen: $(tail -2 "$f" | tr '\n' ' ')"
        fi
        stop_server
    else
        record storm sse "$n" - 0 - - - - - - start
    fi
fi

# ------------------------------------------------------------------ table
{
    echo "| test | mode | N | records | ok | s | records/s per subscriber | total/s | reference | ref/s | ratio | more |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    tail -n +2 "$RAW" | awk -F'\t' '{printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; print ""}'
} | tee "$OUT/table.md"
log "raw output in $OUT"
