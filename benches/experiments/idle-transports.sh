#!/usr/bin/env bash
# benches/experiments/idle-transports.sh: server memory per idle subscriber
# by transport, herald beside nginx + nchan. The comparison's idle scenario
# is plain HTTP/1.1, which herald serves by hand, as it does HTTP/1.1 over
# TLS since change 36; over HTTP/2 (what browsers negotiate with a hub that
# terminates TLS) its connections are hyper's. Each variant is a fresh server on
# core 0 (herald with the comparison's limits, memory log; nchan with
# benches/peers/nchan/nginx.conf's settings plus a TLS port offering h2)
# and N subscribers on one topic from core 1, one connection each, the
# server's RSS read before they connect and 3 s after; variants alternate,
# one line per measurement:
#   run<N> <server> <transport> <KiB per subscriber> <RSS before> <RSS after>
# Needs openssl, python3, node (20 or later) and nginx with nchan
# (apt-get install -y nginx-light libnginx-mod-nchan).
# Knobs: HERALD (default: this checkout's release build), HERALD_BEFORE
# (another herald build, served as `herald-before`, for a before/after:
# name its variants, e.g. herald-before:h1-tls), RUNS=3,
# IDLE_TRANSPORTS_SUBSCRIBERS=4000, IDLE_TRANSPORTS_VARIANTS (default: every
# "server:transport" pair below).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
herald=${HERALD:-$root/target/release/herald}
count=${IDLE_TRANSPORTS_SUBSCRIBERS:-4000}
variants=(${IDLE_TRANSPORTS_VARIANTS:-herald:h1 herald:h1-tls herald:h2-tls herald:h2c nchan:h1 nchan:h1-tls nchan:h2-tls})
for tool in openssl python3 node nginx; do
    command -v "$tool" >/dev/null || { echo "idle-transports: $tool is missing" >&2; exit 1; }
done
[[ -x $herald ]] || { echo "idle-transports: no herald at $herald (cargo build --release -p herald)" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
herald_config "$work/herald.toml"
nchan_with_tls

topic=https%3A%2F%2Fherald.bench%2Ftopics%2Fidle
for run in $(seq "${RUNS:-3}"); do
    for variant in "${variants[@]}"; do
        server=${variant%%:*} transport=${variant#*:}
        case $server in
            herald | herald-before)
                tls=()
                [[ $transport == *-tls ]] && tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
                binary=$herald
                [[ $server == herald-before ]] && binary=${HERALD_BEFORE:?set HERALD_BEFORE to a herald build}
                start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory "${tls[@]}"
                port=8092 target=$pid
                path="/.well-known/mercure?match=$topic"
                headers=("Authorization: Bearer $sub_token")
                ;;
            nchan)
                start_nchan
                port=8083
                [[ $transport == *-tls ]] && port=8443
                path="/.well-known/mercure?topic=$topic"
                headers=("Accept: text/event-stream")
                ;;
        esac
        sleep 1
        case $transport in
            h1) result=$(taskset -c 1 python3 benches/experiments/idle-client.py http "$port" "$target" "$count" 3 "$path" "${headers[@]}") ;;
            h1-tls) result=$(taskset -c 1 python3 benches/experiments/idle-client.py https "$port" "$target" "$count" 3 "$path" "${headers[@]}") ;;
            h2-tls) result=$(taskset -c 1 node benches/experiments/idle-h2.js https "$port" "$target" "$count" 3 "$path" "${headers[@]}") ;;
            h2c) result=$(taskset -c 1 node benches/experiments/idle-h2.js http "$port" "$target" "$count" 3 "$path" "${headers[@]}") ;;
            *) echo "idle-transports: unknown transport $transport" >&2; exit 1 ;;
        esac || result="failed"
        stop_server
        echo "run$run $server $transport $result"
    done
done
