#!/usr/bin/env bash
# bench/jwt.sh: what a JWT plan's check costs per request, RS256, ES256 and
# HS256, next to the same request without a plan, in one run.
#
#   bench/jwt.sh [--reps 3] [--conns 64] [--get-count 20000]
#                [--static-count 30000] [--kinds "get static"]
#                [--plans "none hs256 rs256 es256"] [--quiet-wait 900]
#
# One nginx per rep (jwt-nginx.conf.in, one worker on core 0, a copy of
# build/ngx_gravitee_module.so), port --port (18700). Two kinds of
# location: /get/<plan>?limit=1, the HTTP GET entrypoint on a Mock that
# answers at its first message (--mock, "interval=1ms": a Mock has no
# interval 0), and /static/<plan>, a 2-byte file. <plan>: none (no plan),
# hs256 (secret_file=), rs256 (public_key= RSA 2048), es256 (public_key=
# EC P-256), each with its own key's algorithm. Keys are made per run with
# the openssl CLI, tokens by bench/jwt-token.pl (exp a day ahead). Every
# request carries "Authorization: Bearer <token>", the none cells the
# RS256 token (the longest), so the requests differ only by the token.
#
# Per cell: loadgen --get (bench/loadgen.c) on core 1, --conns keep-alive
# connections with one request in flight each, after a warm-up of 2000
# requests; worker CPU = its utime + stime (/proc/PID/stat, 10 ms ticks)
# and the sum of /proc/PID/task/*/schedstat (ns) over the cell, divided by
# the responses (every one a 200, or the cell fails). Cells in a rep go in
# a rotated order. Output: results/<date>-jwt/ (raw.tsv, table.md,
# meta.txt, one lg-*.txt per cell, nginx's error log). Ports 18700-18799.
set -u -o pipefail

ARGS="$*"
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH/lib.sh"
REPO=$(cd "$BENCH/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$REPO/build/ngx_gravitee_module.so}
LOADGEN=$BENCH/loadgen
PRE=$BENCH/run/jwt
REPS=3
CONNS=64
GET_COUNT=20000
STATIC_COUNT=30000
WARMUP=2000
KINDS="get static"
PLANS="none hs256 rs256 es256"
MOCK="interval=1ms"
GET_QUERY="?limit=1"
PORT=18700
QUIET_WAIT=900
REQUIRE_QUIET=0
TABLE=""
OUT=""

usage() {
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "options: --reps K --conns C --get-count N --static-count N --warmup N" >&2
    echo "         --kinds LIST --plans LIST --mock PARAMS --get-query Q" >&2
    echo "         --port P --quiet-wait S --require-quiet (stop, not run, when not" >&2
    echo "         quiet after --quiet-wait) --out DIR" >&2
    echo "         --table RAW.tsv: only print the table of a raw.tsv (e.g. some reps)" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --reps)         REPS=$2; shift 2 ;;
    --conns)        CONNS=$2; shift 2 ;;
    --get-count)    GET_COUNT=$2; shift 2 ;;
    --static-count) STATIC_COUNT=$2; shift 2 ;;
    --warmup)       WARMUP=$2; shift 2 ;;
    --kinds)        KINDS=$2; shift 2 ;;
    --plans)        PLANS=$2; shift 2 ;;
    --mock)         MOCK=$2; shift 2 ;;
    --get-query)    GET_QUERY=$2; shift 2 ;;
    --port)         PORT=$2; shift 2 ;;
    --quiet-wait)   QUIET_WAIT=$2; shift 2 ;;
    --require-quiet) REQUIRE_QUIET=1; shift ;;
    --table)        TABLE=$2; shift 2 ;;
    --out)          OUT=$2; shift 2 ;;
    -h|--help)      usage ;;
    *)              echo "unknown option: $1" >&2; usage ;;
    esac
done

# the table of a raw.tsv: median [min-max] over its reps, and the
# difference to none
table() {
    awk -F'\t' -v plans="$PLANS" -v kinds="$KINDS" '
        NR > 1 { k = $2 SUBSEP $3; n[k]++; rps[k, n[k]] = $8; us[k, n[k]] = $13; tk[k, n[k]] = $12 }
        function sort(a, m, i, j, v) { for (i = 2; i <= m; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v } }
        function med(src, k, m, i, a) { for (i = 1; i <= m; i++) a[i] = src[k, i]; sort(a, m); lo = a[1]; hi = a[m]; return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
        END {
            np = split(plans, P, " "); nk = split(kinds, KK, " ")
            print "| location | plan | requests/s | worker CPU µs/request (schedstat) | … (ticks) | Δ µs/request vs none | requests/s vs none | reps |"
            print "|---|---|---|---|---|---|---|---|"
            for (a = 1; a <= nk; a++) {
                base = KK[a] SUBSEP "none"
                bu = (base in n) ? med(us, base, n[base]) : ""
                br = (base in n) ? med(rps, base, n[base]) : ""
                for (b = 1; b <= np; b++) {
                    k = KK[a] SUBSEP P[b]
                    if (!(k in n)) continue
                    r = med(rps, k, n[k]); rl = lo; rh = hi
                    u = med(us, k, n[k]); ul = lo; uh = hi
                    t = med(tk, k, n[k])
                    d = (bu != "" && P[b] != "none") ? sprintf("%+.2f", u - bu) : "–"
                    q = (br != "" && P[b] != "none") ? sprintf("%.2f", r / br) : "–"
                    printf "| %s | %s | %.0f [%.0f–%.0f] | %.2f [%.2f–%.2f] | %.2f | %s | %s | %d |\n", \
                        (KK[a] == "get" ? "http-get, Mock" : "static file"), P[b], r, rl, rh, u, ul, uh, t, d, q, n[k]
                }
            }
        }' "$1"
}
[ -n "$TABLE" ] && { table "$TABLE"; exit 0; }

[ "$PORT" -ge 18700 ] && [ "$PORT" -le 18799 ] || die "--port: 18700-18799 only"
[ -f "$MODULE" ] || die "missing $MODULE (make all)"
make -s -C "$BENCH" loadgen || die "make -C bench loadgen"
command -v openssl > /dev/null || die "needs openssl"
command -v curl > /dev/null || die "needs curl"
mkdir -p "$PRE/nginx/tmp" "$PRE/nginx/html/static" "$PRE/keys"
cp "$MODULE" "$PRE/module.so" || die "cannot copy $MODULE"
PIN0=""; PIN1=""
if [ "$(nproc --all)" -ge 2 ]; then
    taskset -p -c 1 $$ > /dev/null
    PIN0="taskset -c 0"; PIN1="--pin-cpu 1"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=65536

MASTER=""; LG=""
stop_nginx() {
    local i
    [ -n "$MASTER" ] || return 0
    kill -TERM "$MASTER" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MASTER" 2>/dev/null && kill -KILL "$MASTER" 2>/dev/null
    MASTER=""
}
cleanup() {
    [ -n "$LG" ] && kill -TERM "$LG" 2>/dev/null && wait "$LG" 2>/dev/null
    LG=""
    stop_nginx
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ticks() { local l f; read -r l < "/proc/$1/stat" || { echo 0; return; }; read -r -a f <<< "${l##*) }"; echo $((f[11] + f[12])); }
# ns on the CPU, every thread of the process
sched_ns() { local t s n=0; for t in /proc/"$1"/task/*/schedstat; do read -r s _ < "$t" && n=$((n + s)); done; echo $n; }
busy() { ss -Hltn "sport = :$1" | grep -q .; }
others() {
    pgrep -fa 'prove|bench/|loadgen|kafka|mqtt|mosquitto|run\.sh|ab\.sh|cc1|clang|valgrind|make|perf |nginx: master' \
        | awk -v me=$$ '$1 != me' | grep -v -e pgrep -e jwt.sh
}

# a quiet machine: load1 < 1 and no test, build or other benchmark
waited=0
while :; do
    load1=$(cut -d' ' -f1 /proc/loadavg)
    busy_n=$(others | wc -l)
    awk -v l="$load1" 'BEGIN { exit !(l < 1.0) }' && [ "$busy_n" -eq 0 ] && break
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
        [ "$REQUIRE_QUIET" = 1 ] && { log "not quiet after $QUIET_WAIT s (load $load1, $busy_n processes): stopping (--require-quiet)"; exit 3; }
        log "not quiet after $QUIET_WAIT s (load $load1, $busy_n processes): running anyway"
        break
    fi
    [ "$waited" -eq 0 ] && log "waiting for a quiet machine (load $load1, $busy_n processes) ..."
    sleep 10; waited=$((waited + 10))
done

[ -n "$OUT" ] || OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)-jwt
mkdir -p "$OUT"

# keys and tokens, new for each run
K=$PRE/keys
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.key" || die openssl
openssl pkey -in "$K/rsa.key" -pubout -out "$K/rsa.pub" || die openssl
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec.key" || die openssl
openssl pkey -in "$K/ec.key" -pubout -out "$K/ec.pub" || die openssl
head -c 24 /dev/urandom | base64 > "$K/hs.secret"
declare -A TOKEN
TOKEN[hs256]=$("$BENCH/jwt-token.pl" HS256 "$K/hs.secret") || die jwt-token.pl
TOKEN[rs256]=$("$BENCH/jwt-token.pl" RS256 "$K/rsa.key") || die jwt-token.pl
TOKEN[es256]=$("$BENCH/jwt-token.pl" ES256 "$K/ec.key") || die jwt-token.pl
TOKEN[none]=${TOKEN[rs256]}
for p in none hs256 rs256 es256; do printf 'ok' > "$PRE/nginx/html/static/$p"; done

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC') (local $(date '+%F %T %Z'))"
    echo "command: bench/jwt.sh $ARGS"
    echo "host: $(uname -srm), $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "nginx: $($NGINX -v 2>&1 | sed 's/.*: //'), openssl $(openssl version | cut -d' ' -f2)"
    echo "module: $MODULE (md5 $(md5sum < "$MODULE" | cut -c1-12), $(date -r "$MODULE" '+%F %T')), run from $PRE/module.so"
    echo "repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
    echo "loadgen: bench/loadgen --get, $CONNS connections, get-count $GET_COUNT, static-count $STATIC_COUNT, warm-up $WARMUP"
    echo "mock: $MOCK, query $GET_QUERY; reps $REPS; kinds $KINDS; plans $PLANS"
    echo "token lengths: hs256 ${#TOKEN[hs256]}, rs256 ${#TOKEN[rs256]}, es256 ${#TOKEN[es256]} (none sends the rs256 one)"
    # the raw crypto on the worker's core, for scale (openssl speed -mr:
    # +F2 RSA bits:sign/s:verify/s, +F4 ECDSA, +F HMAC bytes/s at 16, 64,
    # 256, 1024, 8192, 16384-byte inputs)
    echo "openssl speed (core 0): $($PIN0 openssl speed -seconds 1 -mr rsa2048 ecdsap256 2>/dev/null | grep '^+F' | tr '\n' ' ')"
    echo "openssl speed (core 0): $($PIN0 openssl speed -seconds 1 -mr -hmac sha256 2>/dev/null | grep '^+F' | tr '\n' ' ')"
    echo "quiet wait: ${waited} s; load at start: $(cat /proc/loadavg); other processes: $(others | wc -l)"
    others | sed 's/^/  other: /' | cut -c1-160
} > "$OUT/meta.txt"
printf 'rep\tkind\tplan\tconns\trequests\tok\telapsed_s\trps\tlat_p50_ms\tlat_p99_ms\tworker_ticks\tworker_cpu_us_per_req\tworker_sched_us_per_req\tload1\tothers\n' > "$OUT/raw.tsv"

start_nginx() {
    busy "$PORT" && die "port $PORT busy"
    rm -f "$PRE/nginx/nginx.pid" "$PRE/nginx/error.log"
    sed -e "s#@PREFIX@#$PRE/nginx#g" -e "s#@PORT@#$PORT#g" -e "s#@MODULE@#$PRE/module.so#g" \
        -e "s#@KEYS@#$K#g" -e "s#@MOCK@#$MOCK#g" -e "s#@CPU_MASK@#01#g" -e "s#@NOFILE@#$NOFILE#g" \
        "$BENCH/jwt-nginx.conf.in" > "$PRE/nginx/nginx.conf"
    $PIN0 "$NGINX" -p "$PRE/nginx" -c "$PRE/nginx/nginx.conf" -e "$PRE/nginx/error.log" \
        || die "nginx did not start: $(tail -3 "$PRE/nginx/error.log")"
    for i in $(seq 1 50); do [ -s "$PRE/nginx/nginx.pid" ] && busy "$PORT" && break; sleep 0.1; done
    MASTER=$(cat "$PRE/nginx/nginx.pid")
    W=""
    for i in $(seq 1 50); do
        W=$(awk '{print $1}' "/proc/$MASTER/task/$MASTER/children" 2>/dev/null)
        [ -n "$W" ] && break; sleep 0.1
    done
    [ -n "$W" ] || die "no worker"
}

url() { if [ "$1" = get ]; then echo "http://127.0.0.1:$PORT/get/$2$GET_QUERY"; else echo "http://127.0.0.1:$PORT/static/$2"; fi; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

# rotated: rep r starts at cell r - 1
CELLS=()
for k in $KINDS; do for p in $PLANS; do CELLS+=("$k $p"); done; done
NC=${#CELLS[@]}

for ((rep = 1; rep <= REPS; rep++)); do
    start_nginx
    if [ "$rep" = 1 ]; then
        # the plans refuse what they should: no token, another key's, alg
        {
            for k in $KINDS; do
                echo "check $k: none without token $(code "$(url "$k" none)")," \
                     "rs256 without token $(code "$(url "$k" rs256)")," \
                     "rs256 with the es256 token $(code -H "Authorization: Bearer ${TOKEN[es256]}" "$(url "$k" rs256)")," \
                     "hs256 with the rs256 token $(code -H "Authorization: Bearer ${TOKEN[rs256]}" "$(url "$k" hs256)")," \
                     "es256 with its token $(code -H "Authorization: Bearer ${TOKEN[es256]}" "$(url "$k" es256)")"
            done
        } | tee -a "$OUT/meta.txt" >&2
    fi
    for ((c = 0; c < NC; c++)); do
        set -- ${CELLS[$(((c + rep - 1) % NC))]}
        kind=$1; plan=$2
        n=$GET_COUNT; [ "$kind" = static ] && n=$STATIC_COUNT
        f=$OUT/lg-$rep-$kind-$plan.txt
        hdr="Authorization: Bearer ${TOKEN[$plan]}"
        "$LOADGEN" --get "$(url "$kind" "$plan")" -n "$CONNS" --count "$WARMUP" \
            --header "$hdr" $PIN1 --duration 60 > "$f.warmup" 2>&1 \
            || die "warm-up of $kind $plan failed: $(tail -2 "$f.warmup")"
        load1=$(cut -d' ' -f1 /proc/loadavg)
        nothers=$(others | grep -v -e "^$MASTER " -e "$LOADGEN" | wc -l)
        t0=$(ticks "$W"); s0=$(sched_ns "$W")
        "$LOADGEN" --get "$(url "$kind" "$plan")" -n "$CONNS" --count "$n" \
            --header "$hdr" $PIN1 --duration 300 > "$f" 2>&1
        rc=$?
        t1=$(ticks "$W"); s1=$(sched_ns "$W")
        line=$(grep '^get ' "$f")
        [ "$rc" = 0 ] && [ -n "$line" ] || die "$kind $plan failed (rc $rc): $(tail -3 "$f")"
        val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$line"; }
        ok=$(val ok)
        read -r cpu sched <<< "$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v n="$ok" \
            -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f %.2f", (b - a) * 1e6 / hz / n, (e - s) / 1e3 / n }')"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$kind" "$plan" "$CONNS" "$n" "$ok" \
            "$(val elapsed_s)" "$(val rps)" "$(val lat_p50_ms)" "$(val lat_p99_ms)" $((t1 - t0)) "$cpu" "$sched" "$load1" "$nothers" \
            >> "$OUT/raw.tsv"
        log "rep $rep $kind $plan: $(val rps) req/s, worker $sched us/req (ticks: $cpu), p50 $(val lat_p50_ms) ms, load $load1, $nothers other processes"
    done
    cp "$PRE/nginx/error.log" "$OUT/error-$rep.log" 2>/dev/null
    stop_nginx
done
echo "load at end: $(cat /proc/loadavg); other processes: $(others | wc -l)" >> "$OUT/meta.txt"
others | sed 's/^/  other at end: /' | cut -c1-160 >> "$OUT/meta.txt"

table "$OUT/raw.tsv" > "$OUT/table.md"
cat "$OUT/table.md"
log "raw output in $OUT"
