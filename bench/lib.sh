# bench/lib.sh: the shell helpers the benchmark scripts share, sourced by
# kafka.sh, mqtt.sh, run.sh, jwt.sh and mqtt-substorm.sh after they set
# BENCH.  record() appends a row to $RAW; stub_active() asks nginx on
# 127.0.0.1:$PORT.  A script's own variants (run.sh's kv and stub_active)
# stay in that script.

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

record() { local IFS=$'\t'; echo "$*" >> "$RAW"; }

children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }

pss_of() {   # KiB, the listed pids
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}

cpu_ticks() {   # utime + stime of PID, every thread, clock ticks (no fork)
    local l f
    read -r l < "/proc/$1/stat" 2>/dev/null || { echo 0; return; }
    read -r -a f <<< "${l##*) }"
    echo $((f[11] + f[12]))
}

minor_faults() {   # minor page faults of PID, every thread (no fork): fresh
    local l f      # pages the kernel had to zero, i.e. memory given back
    read -r l < "/proc/$1/stat" 2>/dev/null || { echo 0; return; }
    read -r -a f <<< "${l##*) }"
    echo $((f[7]))
}

calc() { awk "BEGIN {printf \"$1\", $2}"; }

kv() {   # kv FILE LINE_TAG KEY
    grep "^$2 " "$1" 2>/dev/null | tail -1 | tr ' ' '\n' | sed -n "s/^$3=//p" | head -1
}

# until PATTERN is in FILE (0), TIMEOUT_S runs out (1), or PID is gone
# (whether PATTERN came after all)
wait_line() {   # wait_line FILE PATTERN TIMEOUT_S [PID] [STEP_S]
    local i lim step=${5:-0.1}
    lim=$(awk -v t="$3" -v s="$step" 'BEGIN {print int(t / s + 0.5)}')
    for ((i = 0; i < lim; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && \
            { grep -q "$2" "$1" 2>/dev/null; return $?; }
        sleep "$step"
    done
    return 1
}

stub_active() {
    curl -s -m 2 "http://127.0.0.1:$PORT/stub_status" 2>/dev/null | awk '/^Active/ {print $3}'
}
