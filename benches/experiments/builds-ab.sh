#!/usr/bin/env bash
# benches/experiments/builds-ab.sh: two herald builds, each serving and each
# generating load, in all four pairings, alternating, on the comparison's
# burst fan-out (10,000 subscribers, 200 events of 64 bytes, as fast as
# possible) and a 5 s publish run (4 publishers over 100 topics), memory
# log: to tell whether a comparison that came out lower than the one before
# is the code (the hub, or the load generator) or the guest. Server on core
# 0, `herald bench` on core 1, as in scripts/compare; one line per run:
#   run<N> hub=<A|B> gen=<A|B> fanout ok p50 <ms> p99 <ms> dps <n> gen% <%> srv% <%>
#   run<N> hub=<A|B> gen=<A|B> throughput ok <publishes/s> p99 <ms>
# Knobs: BUILDS_AB_A, BUILDS_AB_B (B defaults to this checkout's release
# build), RUNS=3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries builds-ab BUILDS_AB_A BUILDS_AB_B
A=$a
B=$b
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-3}"); do
    for pairing in "A A" "B B" "A B" "B A"; do
        set -- $pairing
        hub=${!1}
        gen=${!2}
        start_herald "$hub" "$work/herald.toml" 8092 --log-kind memory
        run_fanout "$gen" burst "$work/fanout.json"
        fanout_line "$work/fanout.json" "run$run hub=$1 gen=$2 fanout"
        stop_server
        start_herald "$hub" "$work/herald.toml" 8092 --log-kind memory
        taskset -c 1 "$gen" bench throughput --hub http://127.0.0.1:8092/.well-known/mercure --json \
            --publisher-token "$pub_token" --subscriber-token "$sub_token" --publishers 4 --topics 100 \
            --subscribers-per-topic 1 --duration 5s --size 64 --drain-timeout 60s \
            --server-pid "$pid" >"$work/throughput.json" || true
        python3 - "$work/throughput.json" "run$run hub=$1 gen=$2 throughput" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "ok" if d["ok"] else "FAIL", round(d["publish"]["per_second"]),
      "p99", d["publish"]["request_latency"]["p99_ms"])
PY
        stop_server
    done
done
