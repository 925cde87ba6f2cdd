# benches/experiments/lib.sh: what the experiment scripts share, sourced by
# them after `set -euo pipefail`. It moves to the checkout's root, makes
# the scratch directory $work (removed at exit, with the server still
# running, if any), and raises the open-file limit for 10,000 subscribers.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
ulimit -n 20000
work=$(mktemp -d /tmp/herald-experiment.XXXXXX)
pid=""
trap 'if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

# start_herald BINARY CONFIG PORT [SERVE ARGS...]: `herald serve --dev` on
# 127.0.0.1:PORT, pinned to core 0 as in scripts/compare, its output in
# $work/log; sets pid and the tokens it prints, pub_token and sub_token.
start_herald() {
    local binary=$1 config=$2 port=$3
    shift 3
    HERALD_LOG=warn taskset -c 0 "$binary" serve --dev --config "$config" \
        --listen "127.0.0.1:$port" "$@" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -qa 'subscriber token:' "$work/log" && break
        sleep 0.1
    done
    pub_token=$(grep -a 'publisher token:' "$work/log" | awk '{print $NF}')
    sub_token=$(grep -a 'subscriber token:' "$work/log" | awk '{print $NF}')
    if [[ -z $pub_token || -z $sub_token ]]; then
        echo "herald did not start: $(tail -3 "$work/log")" >&2
        return 1
    fi
}

# stop_server: stops the server start_herald (or the script) started as $pid.
stop_server() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

# nchan_with_tls: $work/nchan, holding the comparison's nginx + nchan
# configuration plus a TLS port, 127.0.0.1:8443 (HTTP/2 and HTTP/1.1 by
# ALPN), serving $work/cert.pem and $work/key.pem.
nchan_with_tls() {
    [[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]] ||
        { echo "nchan is missing: apt-get install -y nginx-light libnginx-mod-nchan" >&2; exit 1; }
    mkdir -p "$work/nchan/logs" "$work/nchan/tmp"
    cp "$work/cert.pem" "$work/key.pem" "$work/nchan/"
    sed -e 's#^\(\s*\)listen 127.0.0.1:8083 backlog=4096;#&\n\1listen 127.0.0.1:8443 ssl http2 backlog=4096;\n\1ssl_certificate cert.pem;\n\1ssl_certificate_key key.pem;#' \
        benches/peers/nchan/nginx.conf >"$work/nchan/nginx.conf"
    grep -q 'listen 127.0.0.1:8443 ssl http2' "$work/nchan/nginx.conf" ||
        { echo "benches/peers/nchan/nginx.conf no longer has the listen line nchan_with_tls extends" >&2; exit 1; }
}

# start_nchan: nginx on $work/nchan's configuration, pinned to core 0; sets
# pid (the master, which stop_server stops) and target (its one worker,
# whose memory and CPU are the server's).
start_nchan() {
    rm -f "$work/nchan/nginx.pid"
    taskset -c 0 nginx -p "$work/nchan" -c "$work/nchan/nginx.conf" >>"$work/nchan/logs/out" 2>&1 &
    pid=$!
    target=""
    for _ in $(seq 100); do
        target=$(pgrep -P "$pid" nginx | head -1 || true)
        [[ -n $target ]] && break
        sleep 0.1
    done
    [[ -n $target ]] || { echo "nginx did not start: $(tail -3 "$work/nchan/logs/error.log")" >&2; exit 1; }
}

# herald_config FILE [PACE [IDS [DURABILITY]]]: the comparison's limits
# (one token subject and one address for every subscriber), and
# `subscribers.publish_pace`, `log.ids` and `log.durability` if given.
herald_config() {
    printf '[limits]\nmax_connections_per_subject = 100000\nmax_connections = 19500\nmax_connections_per_address = 19500\n' >"$1"
    if [[ $# -gt 1 ]]; then
        printf '[subscribers]\npublish_pace = %s\n' "$2" >>"$1"
    fi
    if [[ $# -gt 2 ]]; then
        printf '[log]\nids = "%s"\n' "$3" >>"$1"
    fi
    if [[ $# -gt 3 ]]; then
        printf 'durability = "%s"\n' "$4" >>"$1"
    fi
}

# ab_binaries SCRIPT A_VARIABLE B_VARIABLE: sets a and b, the two herald
# binaries an A/B script alternates, from the environment variables named
# (b defaults to this checkout's release build, which also runs the bench).
ab_binaries() {
    a=${!2:-}
    b=${!3:-$root/target/release/herald}
    if [[ -z $a ]]; then
        echo "$1: set $2 to the herald binary to compare against" >&2
        exit 1
    fi
    if [[ ! -x $a || ! -x $b ]]; then
        echo "$1: $a or $b is not an executable" >&2
        exit 1
    fi
}

# run_fanout GENERATOR SCENARIO REPORT: `GENERATOR bench fanout` on core 1
# against the herald start_herald started on port 8092, with the
# comparison's sizes (10,000 subscribers on one topic, 200 events of 64
# bytes; at 50/s when SCENARIO is `rate`, as fast as possible when it is
# `burst`); the JSON report goes to REPORT.
run_fanout() {
    local generator=$1 scenario=$2 report=$3
    local rate=()
    [[ $scenario == rate ]] && rate=(--rate 50)
    taskset -c 1 "$generator" bench fanout --hub http://127.0.0.1:8092/.well-known/mercure --json \
        --publisher-token "$pub_token" --subscriber-token "$sub_token" --subscribers 10000 --events 200 \
        --size 64 "${rate[@]}" --drain-timeout 60s --server-pid "$pid" >"$report" || true
}

# fanout_line REPORT LABEL: one line for a run_fanout report:
#   LABEL ok|FAIL p50 <ms> p99 <ms> dps <deliveries/s> gen% <the generator's CPU in the deliver phase> srv% <the server's core busy>
fanout_line() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["delivery"]["latency"]
deliver = next(p for p in d["phases"] if p["name"] == "deliver")
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "p50", l["p50_ms"], "p99", l["p99_ms"],
      "dps", round(d["delivery"]["per_second"]), "gen%", round(deliver["tool_cpu_percent"]),
      "srv%", round(d["server"].get("cpu_percent") or 0))
PY
}

# run_throughput GENERATOR LABEL: a 5 s `GENERATOR bench throughput` on
# core 1 (4 publishers over 100 topics, one subscriber each, 64 bytes)
# against the herald start_herald started on port 8092, then one line:
#   LABEL ok|FAIL <publishes/s> p99 <publish request p99, ms>
run_throughput() {
    taskset -c 1 "$1" bench throughput --hub http://127.0.0.1:8092/.well-known/mercure --json \
        --publisher-token "$pub_token" --subscriber-token "$sub_token" --publishers 4 --topics 100 \
        --subscribers-per-topic 1 --duration 5s --size 64 --drain-timeout 60s \
        --server-pid "$pid" >"$work/throughput.json" || true
    python3 - "$work/throughput.json" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "ok" if d["ok"] else "FAIL", round(d["publish"]["per_second"]),
      "p99", d["publish"]["request_latency"]["p99_ms"])
PY
}
