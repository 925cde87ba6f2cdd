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
