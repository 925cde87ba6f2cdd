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
        run_throughput "$gen" "run$run hub=$1 gen=$2 throughput"
        stop_server
    done
done
