#!/usr/bin/env bash
# benches/experiments/logs-ab.sh: herald's three logs, alternating, on one
# of the comparison's fan-out scenarios (10,000 subscribers on one topic,
# 200 events of 64 bytes, at 50/s or as fast as possible), to tell whether
# a log's figure in a comparison is its own or the guest's drift. One
# binary (this checkout's release build), server on core 0, `herald bench`
# on core 1, as in scripts/compare; one line per run (lib.sh's
# fanout_line):
#   <run> <memory|strict|relaxed> <rate|burst> ok p50 <ms> p99 <ms> dps <deliveries/s> gen% <%> srv% <%>
# Used for item 3 of the targets in docs/benchmarks.md.
# Knobs: RUNS=7, SCEN=rate|burst, LOGS="memory strict relaxed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
herald="$root/target/release/herald"
herald_config "$work/herald.toml"
herald_config "$work/relaxed.toml" 40 sequence relaxed
for run in $(seq "${RUNS:-7}"); do
    for log in ${LOGS:-memory strict relaxed}; do
        rm -rf "$work/data"
        case $log in
            memory) start_herald "$herald" "$work/herald.toml" 8092 --log-kind memory ;;
            strict) start_herald "$herald" "$work/herald.toml" 8092 --log-kind durable --data-dir "$work/data" ;;
            relaxed) start_herald "$herald" "$work/relaxed.toml" 8092 --log-kind durable --data-dir "$work/data" ;;
            *) echo "unknown log: $log (memory, strict or relaxed)" >&2; exit 2 ;;
        esac
        run_fanout "$herald" "${SCEN:-rate}" "$work/report.json"
        fanout_line "$work/report.json" "$run $log ${SCEN:-rate}"
        stop_server
    done
done
