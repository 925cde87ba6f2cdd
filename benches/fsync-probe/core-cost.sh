#!/usr/bin/env bash
# benches/fsync-probe/core-cost.sh [DIR] [RUNS]: what durable writes cost the
# core they are made from, apart from their CPU time. A spinner on core 0
# counts the rounds it gets in 5 s, alone and beside about 300 durable
# writes per second (what the strict durable log commits in the fan-out
# burst) made from core 0 (as herald's committer, pinned with the server)
# or from core 1, as a buffered `pwrite` + `fdatasync` (herald's journal)
# or a 4 KiB `O_DIRECT` + `O_DSYNC` write. One line per variant and run:
#   <run> <variant> spinner <rounds> (<share of alone>) writes <count>
# DIR (default: the checkout's target/) holds the written file; it must be
# on the disk to measure, not a tmpfs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../target}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
gcc -O1 -o "$bin/spin" "$here/spin.c"
gcc -O2 -o "$bin/syncer" "$here/syncer.c"
for run in $(seq "${2:-2}"); do
    alone=$(taskset -c 0 "$bin/spin" 5)
    echo "$run alone spinner $alone"
    for variant in buffered@core0 buffered@core1 direct@core0; do
        mode=0
        [[ $variant == direct* ]] && mode=1
        core=${variant#*@core}
        taskset -c "$core" "$bin/syncer" 5 "$mode" 300 "$dir/core-cost-probe.$$" >"$bin/writes" &
        writer=$!
        rounds=$(taskset -c 0 "$bin/spin" 5)
        wait "$writer"
        python3 -c "import sys; print(sys.argv[1], sys.argv[2], 'spinner', sys.argv[3], '(%.3f of alone)' % (int(sys.argv[3]) / int(sys.argv[4])), 'writes', sys.argv[5])" \
            "$run" "$variant" "$rounds" "$alone" "$(cat "$bin/writes")"
    done
done
