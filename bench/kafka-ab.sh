#!/bin/bash
# bench/kafka-ab.sh: two builds of the module, alternated, through the same
# bench/kafka.sh cells, so that this VM's drift falls on both alike.
#
#   bench/kafka-ab.sh REPS "TESTS" OUT NAME1 MODULE1 NAME2 MODULE2 [-- KAFKA.SH ARGS]
#
# Runs REPS times: NAME1, then NAME2, each as
#   MODULE=... bench/kafka.sh --tests "TESTS" --read-n 1 --kcat-reps 3 \
#       --out OUT/NAME-REP [KAFKA.SH ARGS]
# and prints one line per read and get cell:
#   NAME REP TEST MODE RECORDS/S KCAT/S RATIO worker_cpu_s=S
# (also in OUT/summary.txt), then the median ratio of each build and cell.
set -euo pipefail

[ $# -ge 7 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
reps=$1 tests=$2 out=$3
names=("$4" "$6") mods=("$5" "$7")
shift 7
[ "${1:-}" = "--" ] && shift
bench=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
: > "$out/summary.txt"
for ((i = 1; i <= reps; i++)); do
    for j in 0 1; do
        o=$out/${names[j]}-$i
        MODULE=${mods[j]} "$bench/kafka.sh" --tests "$tests" --read-n 1 \
            --kcat-reps 3 --out "$o" "$@" > "$o.log" 2>&1 \
            || echo "${names[j]} $i: kafka.sh failed, see $o.log" >&2
        awk -F'\t' -v n="${names[j]}" -v i="$i" '
            $1 == "read" || $1 == "get" {
                c = ""; split($12, a, " ")
                for (k in a) if (a[k] ~ /^worker_cpu_s=/) c = a[k]
                print n, i, $1, $2, $7, $10, $11, c
            }' "$o/raw.tsv" | tee -a "$out/summary.txt"
    done
done

echo "median ratio per build and cell:" | tee -a "$out/summary.txt"
for k in $(awk '$1 != "median" && NF >= 7 { print $1 "/" $3 "/" $4 }' \
               "$out/summary.txt" | sort -u); do
    v=$(awk -v k="$k" '$1 "/" $3 "/" $4 == k { print $7 }' "$out/summary.txt")
    m=$(echo "$v" | sort -n | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2];
              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    echo "  $k: $m (per rep: $(echo $v))" | tee -a "$out/summary.txt"
done
