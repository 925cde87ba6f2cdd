#!/usr/bin/env bash
# one.sh BINARY KIND SCENARIO OUTJSON [extra bench args...]
# Starts BINARY serve (pinned to core 0), runs BINARY-independent bench (pinned to core 1), stops server.
set -uo pipefail
bin=$1 kind=$2 scenario=$3 outjson=$4; shift 4
bench=/work/wt-dispatch/target/bench-bin/herald-before   # same load generator for every variant
work=$(mktemp -d /tmp/hd-bench.XXXXXX)
port=$((9100 + RANDOM % 500))
cat >"$work/herald.toml" <<EOT
[limits]
max_connections_per_subject = 100000
max_connections = 19500
max_connections_per_address = 19500
${EXTRA_TOML:-}
EOT
HERALD_LOG=warn taskset -c 0 "$bin" serve --dev --dev-secret "bench-secret-0123456789-not-for-prod" \
  --config "$work/herald.toml" --log-kind "$kind" --data-dir "$work/data" \
  --listen "127.0.0.1:$port" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 100); do
  pub=$(grep -a 'publisher token:' "$work/log" | tail -1 | awk '{print $NF}')
  sub=$(grep -a 'subscriber token:' "$work/log" | tail -1 | awk '{print $NF}')
  [[ -n "$pub" && -n "$sub" ]] && break; sleep 0.05
done
if [[ -n "${PERF_OUT:-}" ]]; then
  perf record -F 999 -g -p $pid -o "$PERF_OUT" 2>/dev/null &
  perfpid=$!
  sleep 0.3
fi
if [[ -n "${PERF_STAT:-}" ]]; then
  perf stat -x, -e task-clock,context-switches,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex -p $pid -o "$PERF_STAT" 2>/dev/null &
  perfpid=$!
  sleep 0.3
fi
taskset -c 1 "$bench" bench "$scenario" --hub "http://127.0.0.1:$port/.well-known/mercure" --json --drain-timeout 120s \
  --publisher-token "$pub" --subscriber-token "$sub" --server-pid $pid "$@" >"$outjson" 2>"$work/bench.err"
rc=$?
if [[ -n "${PERF_OUT:-}${PERF_STAT:-}" ]]; then kill -INT $perfpid; wait $perfpid; fi
kill -TERM $pid; wait $pid 2>/dev/null
[[ $rc -ne 0 ]] && { echo "bench rc=$rc"; tail -5 "$work/bench.err"; tail -5 "$work/log"; }
rm -rf "$work"
python3 /work/wt-dispatch/target/bench-bin/summ.py "$outjson"
