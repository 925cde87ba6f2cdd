#!/usr/bin/env bash
# benches/experiments/slow-h2.sh: what HTTP/2 subscribers that stop reading
# cost herald (browsers on a stalled network: Chrome's windows, 5 streams per
# connection), two herald builds alternating (A/B). Each measurement is a
# fresh herald over TLS on core 0 (the comparison's limits, memory log) and
# benches/experiments/slow-h2.py on core 1, one line each:
#   run<N> <A|B> stalled <KiB per stalled subscriber> <RSS before> <RSS after> <acknowledged>
#   run<N> <A|B> reading <KiB per subscriber> <RSS before> <RSS after> <acknowledged> <seconds to deliver all>
# stalled: 1,000 subscribers stop reading, then 3,000 events of 1 KiB are
# published; reading: 50 subscribers read 200 events of 64 KiB as fast as
# Python can. Needs openssl and python3 with h2 (pip install h2).
# Knobs: SLOW_H2_A (required), SLOW_H2_B (default: this checkout's release
# build), RUNS=3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries slow-h2.sh SLOW_H2_A SLOW_H2_B
python3 -c 'import h2' 2>/dev/null || { echo "slow-h2.sh: python3 lacks h2: pip install h2" >&2; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
herald_config "$work/herald.toml"
path="/.well-known/mercure?match=https%3A%2F%2Fherald.bench%2Ftopics%2Fslow"
for run in $(seq "${RUNS:-3}"); do
    for variant in A B; do
        binary=$a
        [[ $variant == B ]] && binary=$b
        for mode in stalled reading; do
            start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory \
                --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
            if [[ $mode == stalled ]]; then
                result=$(SLOW_H2_PER_CONNECTION=5 taskset -c 1 python3 benches/experiments/slow-h2.py \
                    8092 "$pid" 1000 3000 1024 "$path" "$pub_token") || result=failed
            else
                result=$(SLOW_H2_READ=1 SLOW_H2_PER_CONNECTION=5 taskset -c 1 python3 benches/experiments/slow-h2.py \
                    8092 "$pid" 50 200 65536 "$path" "$pub_token") || result=failed
            fi
            stop_server
            echo "run$run $variant $mode $result"
        done
    done
done
