#!/usr/bin/env bash
# benches/experiments/idle-ab.sh: server memory per idle subscriber of two
# herald builds, alternating, on the comparison's idle scenario (10,000
# subscribers on one topic with the subscriber token, memory read 3 s after
# they connected), memory log. Server on core 0, `herald bench` (build B)
# on core 1, as in scripts/compare; one line per run:
#   run<N> <A|B> <KiB per subscriber>
# Knobs: IDLE_AB_A, IDLE_AB_B (B defaults to this checkout's release
# build), RUNS=3, IDLE_AB_SUBSCRIBERS=10000.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries idle-ab IDLE_AB_A IDLE_AB_B
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-3}"); do
    for side in A B; do
        if [[ $side == A ]]; then server=$a; else server=$b; fi
        start_herald "$server" "$work/herald.toml" 8092 --log-kind memory
        taskset -c 1 "$b" bench idle --hub http://127.0.0.1:8092/.well-known/mercure --json \
            --publisher-token "$pub_token" --subscriber-token "$sub_token" \
            --subscribers "${IDLE_AB_SUBSCRIBERS:-10000}" --settle 3s --drain-timeout 60s \
            --server-pid "$pid" >"$work/idle.json" || true
        stop_server
        python3 - "$work/idle.json" "run$run $side" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
    print(sys.argv[2], report["idle"]["server_kib_per_subscriber"], "" if report["ok"] else "FAIL")
except (OSError, ValueError, KeyError, TypeError) as error:
    print(sys.argv[2], "no report:", error)
PY
    done
done
