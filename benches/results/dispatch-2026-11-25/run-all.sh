#!/usr/bin/env bash
# run-all.sh OUTDIR REPS : before/after x memory/durable, alternating, same run.
set -u
out=$1 reps=$2
cd /work/wt-dispatch/target/bench-bin
mkdir -p $out
log=$out/commands.txt
run() { # name bin kind scenario args...
  local name=$1 bin=$2 kind=$3 scen=$4; shift 4
  echo "$(date -u +%T) $name: taskset -c 0 $bin serve --dev --log-kind $kind --data-dir <tmp> ; taskset -c 1 herald bench $scen --json --drain-timeout 120s --server-pid PID $*" >> $log
  printf '%s ' "$name"
  PERF_STAT=$out/$name.stat ./one.sh ./$bin $kind $scen $out/$name.json "$@"
}
variants=("before memory" "after memory" "before durable" "after durable")
for r in $(seq $reps); do
  # rotate the order each repetition
  for k in 0 1 2 3; do
    v=${variants[$(( (k + r) % 4 ))]}; set -- $v; b=$1 kind=$2
    run fanout5k-$kind-$b-$r herald-$b $kind fanout --subscribers 5000 --events 200 --size 64
  done
  for k in 0 1 2 3; do
    v=${variants[$(( (k + r) % 4 ))]}; set -- $v; b=$1 kind=$2
    run throughput-$kind-$b-$r herald-$b $kind throughput --publishers 4 --topics 100 --subscribers-per-topic 1 --duration 10s --size 64
  done
done
