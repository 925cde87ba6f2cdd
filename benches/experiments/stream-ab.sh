#!/usr/bin/env bash
# benches/experiments/stream-ab.sh: two herald builds, alternating, on the
# comparison's fan-out scenarios (10,000 subscribers on one topic, 200
# events of 64 bytes, at 50/s and as fast as possible), to tell a change's
# effect on delivery latency from the guest's drift. Server on core 0,
# `herald bench` on core 1, as in scripts/compare; one line per run:
#   <run> <A|B> <rate|burst> ok p50 <ms> p99 <ms> dps <deliveries/s>
# Used for hand-written-stream.patch (docs/benchmarks.md, change 20).
# Knobs: STREAM_AB_A, STREAM_AB_B (the two herald binaries; B defaults to
# this checkout's release build, which also runs the bench), RUNS=5,
# SCENS="rate burst", KIND=memory|durable.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries stream-ab STREAM_AB_A STREAM_AB_B
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-5}"); do
    for which in A B; do
        server=$a
        [[ $which == B ]] && server=$b
        for scenario in ${SCENS:-rate burst}; do
            rm -rf "$work/data"
            extra=()
            [[ ${KIND:-memory} == durable ]] && extra=(--data-dir "$work/data")
            start_herald "$server" "$work/herald.toml" 8092 --log-kind "${KIND:-memory}" "${extra[@]}"
            rate=()
            [[ $scenario == rate ]] && rate=(--rate 50)
            taskset -c 1 "$b" bench fanout --hub http://127.0.0.1:8092/.well-known/mercure --json \
                --publisher-token "$pub_token" --subscriber-token "$sub_token" --subscribers 10000 --events 200 \
                --size 64 "${rate[@]}" --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
            python3 - "$work/report.json" "$run $which $scenario" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["delivery"]["latency"]
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "p50", l["p50_ms"], "p99", l["p99_ms"],
      "dps", round(d["delivery"]["per_second"]))
PY
            stop_server
        done
    done
done
