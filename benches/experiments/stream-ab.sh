#!/usr/bin/env bash
# benches/experiments/stream-ab.sh: two herald builds, alternating, on the
# comparison's fan-out scenarios (10,000 subscribers on one topic, 200
# events of 64 bytes, at 50/s and as fast as possible), to tell a change's
# effect on delivery latency from the guest's drift. Server on core 0,
# `herald bench` on core 1, as in scripts/compare; one line per run:
#   <run> <A|B> <rate|burst> ok p50 <ms> p99 <ms> dps <deliveries/s> gen% <%> srv% <%>
# (lib.sh's fanout_line).
# Used for hand-written-stream.patch (docs/benchmarks.md, change 20), and
# with AB=generator for change 27.
# Knobs: STREAM_AB_A, STREAM_AB_B (the two herald binaries; B defaults to
# this checkout's release build, which also runs the bench), RUNS=5,
# SCENS="rate burst", KIND=memory|durable, AB=server|generator (generator:
# B serves every run, and A's and B's `herald bench` alternate as the load
# generator, to measure a change to the generator).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries stream-ab STREAM_AB_A STREAM_AB_B
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-5}"); do
    for which in A B; do
        binary=$a
        [[ $which == B ]] && binary=$b
        server=$binary
        generator=$b
        if [[ ${AB:-server} == generator ]]; then
            server=$b
            generator=$binary
        fi
        for scenario in ${SCENS:-rate burst}; do
            rm -rf "$work/data"
            extra=()
            [[ ${KIND:-memory} == durable ]] && extra=(--data-dir "$work/data")
            start_herald "$server" "$work/herald.toml" 8092 --log-kind "${KIND:-memory}" "${extra[@]}"
            run_fanout "$generator" "$scenario" "$work/report.json"
            fanout_line "$work/report.json" "$run $which $scenario"
            stop_server
        done
    done
done
