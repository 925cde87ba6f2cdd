#!/usr/bin/env bash
# benches/experiments/allocators.sh: herald builds that differ only in their
# global allocator, alternating, on what an allocator changes: idle memory
# per subscriber (10,000, auth, strict durable log, as in scripts/compare),
# the burst fan-out (10,000 subscribers, 200 events of 64 bytes, as fast as
# possible, memory log) with the hub's resident memory before it, 5 s and
# 30 s after its subscribers left, and a 5 s publish run (4 publishers over
# 100 topics, memory log). Server on core 0, `herald bench` on core 1, the
# same generator for every build; one line per measure:
#   run<N> <label> idle kib/sub <n>
#   run<N> <label> fanout ok p50 <ms> p99 <ms> dps <n> gen% <%> srv% <%>
#   run<N> <label> rss-kib before <n> after5s <n> after30s <n>
#   run<N> <label> throughput ok <publishes/s> p99 <ms>
# Builds: ALLOCATOR_BUILDS="glibc=/tmp/herald-glibc jemalloc=/tmp/herald-jemalloc ...",
# from `cargo build --release -p herald` (jemalloc, the default) and the same
# with `--no-default-features` (the system allocator), each copied out of
# target/release; another allocator is a `#[global_allocator]` line in
# crates/herald/src/main.rs. ALLOCATOR_GEN, the generator (default: the
# first build); RUNS=3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
read -r -a builds <<<"${ALLOCATOR_BUILDS:?set ALLOCATOR_BUILDS to label=binary pairs}"
gen=${ALLOCATOR_GEN:-${builds[0]#*=}}
hub=http://127.0.0.1:8092/.well-known/mercure

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

for run in $(seq "${RUNS:-3}"); do
    # Rotate the order from run to run, as scripts/compare does.
    shift_by=$(((run - 1) % ${#builds[@]}))
    order=("${builds[@]:$shift_by}" "${builds[@]:0:$shift_by}")
    for build in "${order[@]}"; do
        label=${build%%=*}
        binary=${build#*=}

        herald_config "$work/herald.toml"
        start_herald "$binary" "$work/herald.toml" 8092 --log-kind durable --data-dir "$work/data-$run-$label"
        taskset -c 1 "$gen" bench idle --hub "$hub" --json --publisher-token "$pub_token" \
            --subscriber-token "$sub_token" --subscribers 10000 --settle 3s \
            --server-pid "$pid" >"$work/idle.json" || true
        stop_server
        python3 - "$work/idle.json" "run$run $label idle" <<'PY'
import json, sys
def find(node):
    if isinstance(node, dict):
        if "server_kib_per_subscriber" in node:
            return node["server_kib_per_subscriber"]
        for value in node.values():
            found = find(value)
            if found is not None:
                return found
    return None
print(sys.argv[2], "kib/sub", find(json.load(open(sys.argv[1]))))
PY

        start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory
        before=$(rss_kib "$pid")
        run_fanout "$gen" burst "$work/fanout.json"
        sleep 5
        after5=$(rss_kib "$pid")
        sleep 25
        after30=$(rss_kib "$pid")
        fanout_line "$work/fanout.json" "run$run $label fanout"
        echo "run$run $label rss-kib before $before after5s $after5 after30s $after30"
        stop_server

        start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory
        run_throughput "$gen" "run$run $label throughput"
        stop_server
    done
done
