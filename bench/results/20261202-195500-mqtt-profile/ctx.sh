#!/bin/bash
W=$1; D=${2:-10}; R=${3:-50}
snap() { for t in /proc/$W/task/*; do echo "$(cat $t/comm) $(awk '{print $1}' $t/schedstat) $(awk '/^voluntary/ {v=$2} /^nonvoluntary/ {n=$2} END {print v, n}' $t/status)"; done; }
snap > /tmp/prof/c0; sleep $D; snap > /tmp/prof/c1
paste /tmp/prof/c0 /tmp/prof/c1 | awk -v n=$((D*R)) '{printf "%-16s us/msg=%.1f vol/msg=%.2f invol/msg=%.2f\n", $1, ($6-$2)/1e3/n, ($7-$3)/n, ($8-$4)/n}'
