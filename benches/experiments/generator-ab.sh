#!/usr/bin/env bash
# benches/experiments/generator-ab.sh: two builds of `herald bench`,
# alternating, as the load generator against one herald server (the memory
# log), on the comparison's fan-out scenarios (10,000 subscribers on one
# topic, 200 events of 64 bytes, at 50/s and as fast as possible), to tell a
# change to the generator from the guest's drift. Server on core 0, the
# generator on core 1, as in scripts/compare; one line per run:
#   <run> <A|B> <rate|burst> ok p50 <ms> p99 <ms> dps <deliveries/s> gen% <generator CPU in the deliver phase> srv% <server core busy>
# Used for docs/benchmarks.md, change 27.
# Knobs: GENERATOR_AB_A, GENERATOR_AB_B (the two herald binaries whose
# `bench` is compared; B defaults to this checkout's release build, which
# also serves), RUNS=4, SCENS="rate burst".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries generator-ab GENERATOR_AB_A GENERATOR_AB_B
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-4}"); do
    for which in A B; do
        generator=$a
        [[ $which == B ]] && generator=$b
        for scenario in ${SCENS:-rate burst}; do
            start_herald "$root/target/release/herald" "$work/herald.toml" 8092 --log-kind memory
            rate=()
            [[ $scenario == rate ]] && rate=(--rate 50)
            taskset -c 1 "$generator" bench fanout --hub http://127.0.0.1:8092/.well-known/mercure --json \
                --publisher-token "$pub_token" --subscriber-token "$sub_token" --subscribers 10000 --events 200 \
                --size 64 "${rate[@]}" --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
            python3 - "$work/report.json" "$run $which $scenario" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["delivery"]["latency"]
deliver = next(p for p in d["phases"] if p["name"] == "deliver")
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "p50", l["p50_ms"], "p99", l["p99_ms"],
      "dps", round(d["delivery"]["per_second"]), "gen%", round(deliver["tool_cpu_percent"]),
      "srv%", round(d["server"]["cpu_percent"] or 0))
PY
            stop_server
        done
    done
done
