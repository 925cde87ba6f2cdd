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
ulimit -n 20000
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
a=${STREAM_AB_A:?set STREAM_AB_A to the herald binary to compare against}
b=${STREAM_AB_B:-$root/target/release/herald}
[[ -x $a && -x $b ]] || { echo "stream-ab: $a or $b is not an executable" >&2; exit 1; }
work=$(mktemp -d /tmp/herald-stream-ab.XXXXXX)
pid=""
trap 'if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
cat >"$work/herald.toml" <<EOT
[limits]
max_connections_per_subject = 100000
max_connections = 19500
max_connections_per_address = 19500
EOT
for run in $(seq "${RUNS:-5}"); do
    for which in A B; do
        server=$a
        [[ $which == B ]] && server=$b
        for scenario in ${SCENS:-rate burst}; do
            rm -rf "$work/data"
            extra=()
            [[ ${KIND:-memory} == durable ]] && extra=(--data-dir "$work/data")
            HERALD_LOG=warn taskset -c 0 "$server" serve --dev --config "$work/herald.toml" \
                --log-kind "${KIND:-memory}" "${extra[@]}" --listen 127.0.0.1:8092 >"$work/log" 2>&1 &
            pid=$!
            for _ in $(seq 100); do
                grep -qa 'subscriber token:' "$work/log" && break
                sleep 0.1
            done
            sub=$(grep -a 'subscriber token:' "$work/log" | awk '{print $NF}')
            pub=$(grep -a 'publisher token:' "$work/log" | awk '{print $NF}')
            rate=()
            [[ $scenario == rate ]] && rate=(--rate 50)
            taskset -c 1 "$b" bench fanout --hub http://127.0.0.1:8092/.well-known/mercure --json \
                --publisher-token "$pub" --subscriber-token "$sub" --subscribers 10000 --events 200 \
                --size 64 "${rate[@]}" --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
            python3 - "$work/report.json" "$run $which $scenario" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["delivery"]["latency"]
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "p50", l["p50_ms"], "p99", l["p99_ms"],
      "dps", round(d["delivery"]["per_second"]))
PY
            kill "$pid"
            wait "$pid" 2>/dev/null || true
            pid=""
        done
    done
done
