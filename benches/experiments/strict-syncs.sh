#!/usr/bin/env bash
# benches/experiments/strict-syncs.sh: what the journal's syncs take while
# herald publishes with strict durability. The comparison's publish scenario
# (`herald bench throughput`, 4 publishers over 100 topics, one subscriber
# each, 10 s, 64 B; server on core 0, bench on core 1, as in
# scripts/compare) against this checkout's release build with the durable
# log, while `perf trace -e fdatasync` records every sync the server makes.
# One line per run:
#   <run> publishes/s <n> updates/commit <n> server_cpu_s <s> tool_cpu <%>
#   sync p50 <µs> p90 <µs> p99 <µs> mean <µs>
# Compare with `taskset -c 0 python3 benches/fsync-probe/gaps.py`: the same
# disk's syncs back to back and with gaps between them.
# Knobs: RUNS=2, DURABILITY=strict (or relaxed: its flushes), PUBLISHERS=4.
# Needs perf (Debian: linux-perf).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
b="$root/target/release/herald"
cargo build --release --locked -q -p herald
herald_config "$work/herald.toml" 40 sequence "${DURABILITY:-strict}"
for run in $(seq "${RUNS:-2}"); do
    rm -rf "$work/data"
    start_herald "$b" "$work/herald.toml" 8092 --log-kind durable --data-dir "$work/data"
    perf trace -e fdatasync -p "$pid" -o "$work/syncs.txt" -- sleep 11 &
    tracer=$!
    taskset -c 1 "$b" bench throughput --hub http://127.0.0.1:8092/.well-known/mercure --json \
        --publisher-token "$pub_token" --subscriber-token "$sub_token" --publishers "${PUBLISHERS:-4}" \
        --topics 100 --subscribers-per-topic 1 --duration 10s --size 64 --drain-timeout 60s \
        --server-pid "$pid" >"$work/report.json" || true
    wait "$tracer" || true
    stop_server
    python3 - "$work/report.json" "$work/syncs.txt" "$run" <<'PY'
import json, re, statistics, sys
d = json.load(open(sys.argv[1]))
took = sorted(float(m.group(1)) * 1000 for line in open(sys.argv[2])
              if (m := re.search(r"\(\s*([0-9.]+) ms\): .*fdatasync", line)))
if not took:
    sys.exit("strict-syncs: perf trace recorded no fdatasync")
n = len(took)
q = lambda p: round(took[min(n - 1, int(p * n))])
acked = d["publish"]["acknowledged"]
tool = [p for p in d["phases"] if p["name"] == "deliver"][0]["tool_cpu_percent"]
# The trace spans the whole run (connect and drain too): updates per sync
# is acknowledged publishes over every sync traced.
print(sys.argv[3], "publishes/s", round(d["publish"]["per_second"]),
      "updates/commit", round(acked / n, 2), "server_cpu_s", d["server"]["cpu_s"],
      "tool_cpu", round(tool))
print("  sync p50", q(0.5), "p90", q(0.9), "p99", q(0.99), "mean", round(statistics.mean(took)))
PY
done
