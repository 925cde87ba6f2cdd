#!/usr/bin/env bash
# benches/experiments/publish-ab.sh: two herald builds, alternating, on the
# comparison's publish scenario (4 publishers over 100 topics, one
# subscriber each, 64-byte events, memory log by default), to tell a change to the
# publish path from the guest's drift. Server on core 0, `herald bench` on
# core 1, as in scripts/compare; one line per run:
#   <run> <A|B> ok|FAIL publishes/s <n> cpu_us_per_publish <µs> tool_cpu <%>
# then the medians of each build.
# Used for changes 21 and 23 of docs/benchmarks.md.
# Knobs: PUBLISH_AB_A, PUBLISH_AB_B (the two herald binaries; B defaults to
# this checkout's release build, which also runs the bench), RUNS=6,
# DURATION=10s, PUBLISH_AB_LOG=memory (or strict, or relaxed: the durable
# log in a fresh data directory each run, with that log.durability).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries publish-ab PUBLISH_AB_A PUBLISH_AB_B
log=${PUBLISH_AB_LOG:-memory}
case $log in
    memory) herald_config "$work/herald.toml" ;;
    strict | relaxed) herald_config "$work/herald.toml" 40 sequence "$log" ;;
    *) echo "publish-ab: PUBLISH_AB_LOG is memory, strict or relaxed, not $log" >&2; exit 1 ;;
esac
for run in $(seq "${RUNS:-6}"); do
    for which in A B; do
        server=$a
        [[ $which == B ]] && server=$b
        log_args=(--log-kind memory)
        if [[ $log != memory ]]; then
            rm -rf "$work/data"
            log_args=(--log-kind durable --data-dir "$work/data")
        fi
        start_herald "$server" "$work/herald.toml" 8092 "${log_args[@]}"
        taskset -c 1 "$b" bench throughput --hub http://127.0.0.1:8092/.well-known/mercure --json \
            --publisher-token "$pub_token" --subscriber-token "$sub_token" --publishers 4 --topics 100 \
            --subscribers-per-topic 1 --duration "${DURATION:-10s}" --size 64 \
            --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
        python3 - "$work/report.json" "$run $which" <<'PY' | tee -a "$work/lines"
import json, sys
d = json.load(open(sys.argv[1]))
rate = d["publish"]["per_second"]
acked = d["publish"]["acknowledged"] or 1
cpu = d["server"]["cpu_s"] / acked * 1e6
tool = [p for p in d["phases"] if p["name"] == "deliver"][0]["tool_cpu_percent"]
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "publishes/s", round(rate),
      "cpu_us_per_publish", round(cpu, 2), "tool_cpu", round(tool))
PY
        stop_server
    done
done
python3 - "$work/lines" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for which in "AB":
    mine = [r for r in rows if r[1] == which]
    rates = [float(r[4]) for r in mine]
    cpus = [float(r[6]) for r in mine]
    print(which, "median publishes/s", round(statistics.median(rates)),
          f"(min {round(min(rates))}, max {round(max(rates))})",
          "median cpu_us_per_publish", round(statistics.median(cpus), 2))
pairs = [(float(a[4]), float(b[4])) for a, b in zip(
    [r for r in rows if r[1] == "A"], [r for r in rows if r[1] == "B"])]
print("B faster in", sum(1 for a, b in pairs if b > a), "of", len(pairs), "pairs")
PY
