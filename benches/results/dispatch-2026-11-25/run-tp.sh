#!/usr/bin/env bash
set -u
out=$1 reps=$2
cd /work/wt-dispatch/target/bench-bin
mkdir -p $out; log=$out/commands.txt
run() { local name=$1 bin=$2 kind=$3 scen=$4; shift 4
  echo "$(date -u +%T) $name: EXTRA_TOML='${EXTRA_TOML:-}' taskset -c 0 $bin serve --dev --log-kind $kind --data-dir <tmp> ; taskset -c 1 herald bench $scen --json --drain-timeout 120s --server-pid PID $*" >> $log
  printf '%s ' "$name"; PERF_STAT=$out/$name.stat ./one.sh ./$bin $kind $scen $out/$name.json "$@"; }
args="--publishers 4 --topics 100 --subscribers-per-topic 1 --duration 5s --size 64"
for r in $(seq $reps); do
  order=(before after); [[ $((r % 2)) -eq 0 ]] && order=(after before)
  for b in "${order[@]}"; do EXTRA_TOML= run tp-memory-$b-$r herald-$b memory throughput $args; done
  for b in "${order[@]}"; do EXTRA_TOML= run tp-strict-$b-$r herald-$b durable throughput $args; done
  for b in "${order[@]}"; do EXTRA_TOML=$'[log]\ndurability = "relaxed"' run tp-relaxed-$b-$r herald-$b durable throughput $args; done
done
