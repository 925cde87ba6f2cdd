#!/usr/bin/env bash
# benches/experiments/rate-saturation.sh: how busy both cores are during the
# comparison's fan-out at 50 events/s (10,000 subscribers, 200 events of
# 64 B), for herald (memory log) and the floor, alternating. Server on core
# 0, `herald bench` on core 1, as in scripts/compare; /proc/stat is read 1.5
# s into the run and 3 s later, inside the deliver phase. One line per run:
#   <run> <server> p99 <ms> server_cpu <s> server_busy <%> generator_cpu <s> | cpu0 busy <%> cpu1 busy <%>
# Knobs: RUNS=2. Needs this checkout's release build and the floor's, as
# scripts/compare makes them (`cargo build --release -p herald`, then
# `cd benches/peers/floor && CARGO_TARGET_DIR=../../../target/peers cargo
# build --release`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
floor=$root/target/peers/release/floor
herald=$root/target/release/herald
for binary in "$floor" "$herald"; do
    [[ -x $binary ]] || { echo "rate-saturation: build $binary first" >&2; exit 1; }
done
herald_config "$work/herald.toml"
# busy = user + nice + system + irq + softirq; idle = idle + iowait.
cores() { awk '/^cpu[01] /{print $1, $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
for run in $(seq "${RUNS:-2}"); do
    for server in herald floor; do
        if [[ $server == herald ]]; then
            start_herald "$herald" "$work/herald.toml" 8092 --log-kind memory
            target=(--hub http://127.0.0.1:8092/.well-known/mercure
                --publisher-token "$pub_token" --subscriber-token "$sub_token")
        else
            taskset -c 0 "$floor" 127.0.0.1:8082 >/dev/null 2>&1 &
            pid=$!
            sleep 0.5
            target=(--hub http://127.0.0.1:8082/.well-known/mercure --match-param topic)
        fi
        (
            sleep 1.5
            cores >"$work/before"
            sleep 3
            cores >"$work/after"
            paste "$work/before" "$work/after" |
                awk '{busy = $5 - $2; idle = $6 - $3; printf "%s busy %.0f%% ", $1, 100 * busy / (busy + idle)}'
        ) >"$work/cores" &
        sampler=$!
        taskset -c 1 "$herald" bench fanout "${target[@]}" --json --subscribers 10000 --events 200 \
            --size 64 --rate 50 --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
        wait "$sampler" || true
        python3 - "$work/report.json" "$run $server" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
deliver = [p for p in d["phases"] if p["name"] == "deliver"][0]
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "p99", d["delivery"]["latency"]["p99_ms"],
      "server_cpu", d["server"]["cpu_s"], "server_busy", round(d["server"].get("cpu_percent") or -1),
      "generator_cpu", deliver["tool_cpu_s"], end=" | ")
PY
        cat "$work/cores"
        echo
        stop_server
    done
done
