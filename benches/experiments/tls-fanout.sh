#!/usr/bin/env bash
# benches/experiments/tls-fanout.sh: the comparison's burst and publishing
# scenarios over TLS, herald beside nginx + nchan, each also in plain HTTP
# in the same run. `herald bench` speaks HTTP/1.1 over TLS to an https hub
# (ALPN http/1.1; transport `tls`), or HTTP/2 with --http2 (ALPN h2;
# transport `h2`), trusting the run's self-signed certificate with
# --ca-cert. Each variant is a fresh server on core 0 (herald with the
# comparison's limits and the memory log; nchan with
# benches/peers/nchan/nginx.conf's settings plus a TLS port), the load on
# core 1; variants alternate, one line per measurement:
# <transport> is plain, tls or h2:
#   run<N> <server> <transport> burst ok|FAIL p50 <ms> p99 <ms> dps <deliveries/s> gen% <..> srv% <..>
#   run<N> <server> <transport> publish ok|FAIL <publishes/s> p99 <ms>
# Needs openssl, python3 and nginx with nchan
# (apt-get install -y nginx-light libnginx-mod-nchan).
# Knobs: HERALD (default: this checkout's release build; it also runs the
# load), HERALD_BEFORE (another herald build, served as `herald-before`
# beside `herald` over TLS, for a before/after), RUNS=3,
# TLS_FANOUT_VARIANTS (default: every "server:transport" pair below),
# TLS_FANOUT_SCENARIOS (default: "burst publish").
set -euo pipefail
source "$(dirname "$0")/lib.sh"
herald=${HERALD:-$root/target/release/herald}
default_variants="herald:plain herald:tls herald:h2 nchan:plain nchan:tls nchan:h2"
[[ -n ${HERALD_BEFORE:-} ]] && default_variants="herald:plain herald:tls herald-before:tls herald:h2 nchan:plain nchan:tls nchan:h2"
variants=(${TLS_FANOUT_VARIANTS:-$default_variants})
for tool in openssl python3 nginx; do
    command -v "$tool" >/dev/null || { echo "tls-fanout: $tool is missing" >&2; exit 1; }
done
[[ -x $herald ]] || { echo "tls-fanout: no herald at $herald (cargo build --release -p herald)" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
herald_config "$work/herald.toml"
nchan_with_tls

# bench_line LABEL SCENARIO ARGS...: one `herald bench` on core 1, then its line.
bench_line() {
    local label=$1 scenario=$2
    shift 2
    taskset -c 1 "$herald" bench "$scenario" --json --drain-timeout 60s --server-pid "$target" "$@" \
        >"$work/report.json" 2>>"$work/bench.err" || true
    if [[ $scenario == fanout ]]; then
        fanout_line "$work/report.json" "$label burst"
    else
        python3 - "$work/report.json" "$label publish" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "ok" if d["ok"] else "FAIL", round(d["publish"]["per_second"]),
      "p99", d["publish"]["request_latency"]["p99_ms"])
PY
    fi
}

for run in $(seq "${RUNS:-3}"); do
    for variant in "${variants[@]}"; do
        server=${variant%%:*} transport=${variant#*:}
        case $transport in
            plain | tls | h2) ;;
            *) echo "tls-fanout: unknown transport $transport (plain, tls or h2)" >&2; exit 1 ;;
        esac
        scheme=http
        [[ $transport != plain ]] && scheme=https
        case $server in
            herald | herald-before)
                tls=()
                [[ $transport != plain ]] && tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
                binary=$herald
                [[ $server == herald-before ]] && binary=${HERALD_BEFORE:?set HERALD_BEFORE to a herald build}
                start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory "${tls[@]}"
                target=$pid
                hub=$scheme://127.0.0.1:8092/.well-known/mercure
                args=(--publisher-token "$pub_token" --subscriber-token "$sub_token")
                ;;
            nchan)
                start_nchan
                port=8083
                [[ $transport != plain ]] && port=8443
                hub=$scheme://127.0.0.1:$port/.well-known/mercure
                args=(--match-param topic --publish-format raw)
                ;;
        esac
        [[ $transport != plain ]] && args+=(--ca-cert "$work/cert.pem")
        [[ $transport == h2 ]] && args+=(--http2)
        sleep 1
        for scenario in ${TLS_FANOUT_SCENARIOS:-burst publish}; do
            case $scenario in
                burst) bench_line "run$run $server $transport" fanout --hub "$hub" "${args[@]}" \
                    --subscribers 10000 --events 200 --size 64 ;;
                publish) bench_line "run$run $server $transport" throughput --hub "$hub" "${args[@]}" \
                    --publishers 4 --topics 100 --subscribers-per-topic 1 --duration 5s --size 64 ;;
                *) echo "tls-fanout: unknown scenario $scenario" >&2; exit 1 ;;
            esac
        done
        stop_server
    done
done
if [[ -s $work/bench.err ]]; then
    echo "tls-fanout: herald bench said:" >&2
    sort "$work/bench.err" | uniq -c >&2
fi
