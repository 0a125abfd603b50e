#!/bin/bash
# ab.sh "mods" "ns" secs: per-thread us per published msg, mosquitto and
# the publisher kept running
P=/tmp/prof; L=/work/wt-mqtt/bench/loadgen
MODS=$1; NS=$2; D=${3:-10}
for n in $NS; do for m in $MODS; do
  mm=${m%%:*}; lib=""; [ "$mm" != "$m" ] && lib=${m#*:}
  cp $P/$mm.so $P/module.so
  LD_LIBRARY_PATH=$lib taskset -c 0 /usr/sbin/nginx -p $P/nginx -c $P/nginx/nginx.conf -e $P/nginx/error.log
  sleep 0.5
  W=$(pgrep -P $(cat $P/nginx/nginx.pid))
  taskset -c 1 $L --mode ws --url ws://127.0.0.1:18622/ws -n $n --idle --rate 2000 --duration 3600 --pin-cpu 1 --quiet > $P/lg.txt 2>&1 &
  LG=$!
  sleep 2
  M=$(cat $P/mosq.pid); m0=$(awk '{print $1}' /proc/$M/schedstat)
  echo "$m N=$n $(./ctx.sh $W $D | awk '{printf "%s %s | ", $1, $2}') mosq(relay) us/msg=$(awk -v a=$m0 -v b=$(awk '{print $1}' /proc/$M/schedstat) -v n=$((D*50)) 'BEGIN{printf "%.1f", (b-a)/1e3/n}') load=$(cut -d' ' -f1 /proc/loadavg)"
  kill $LG; wait $LG 2>/dev/null
  kill -QUIT $(cat $P/nginx/nginx.pid); sleep 1
done; done
