#!/usr/bin/env bash
# benches/experiments/stalled.sh: what subscribers that stop reading cost
# herald, by transport (HTTP/2 over TLS as browsers on a stalled network:
# Chrome's windows, 5 streams per connection; HTTP/1.1 over TLS; plain
# HTTP/1.1), two herald builds alternating (A/B). Each measurement is a
# fresh herald (over TLS but for plain HTTP/1.1) on core 0 (the
# comparison's limits, memory log) and benches/experiments/stalled.py on
# core 1, one line each:
#   run<N> <A|B> stalled-<h2|h1-tls|h1> <KiB per stalled subscriber> <RSS before> <RSS after> <acknowledged>
#   run<N> <A|B> reading-h2 <KiB per subscriber> <RSS before> <RSS after> <acknowledged> <seconds to deliver all>
# stalled: 1,000 subscribers stop reading, then 3,000 events of 1 KiB are
# published; reading: 50 subscribers read 200 events of 64 KiB as fast as
# Python can. Needs openssl and python3 with h2 (pip install h2).
# Knobs: STALLED_A (required), STALLED_B (default: this checkout's release
# build), RUNS=3, STALLED_MODES (default: every mode above).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries stalled.sh STALLED_A STALLED_B
python3 -c 'import h2' 2>/dev/null || { echo "stalled.sh: python3 lacks h2: pip install h2" >&2; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
herald_config "$work/herald.toml"
path="/.well-known/mercure?match=https%3A%2F%2Fherald.bench%2Ftopics%2Fslow"
for run in $(seq "${RUNS:-3}"); do
    for variant in A B; do
        binary=$a
        [[ $variant == B ]] && binary=$b
        for mode in ${STALLED_MODES:-stalled-h2 stalled-h1-tls stalled-h1 reading-h2}; do
            transport=${mode#*-}
            tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
            [[ $transport == h1 ]] && tls=()
            start_herald "$binary" "$work/herald.toml" 8092 --log-kind memory "${tls[@]}"
            case $mode in
                stalled-*) result=$(STALLED_TRANSPORT=$transport STALLED_PER_CONNECTION=5 taskset -c 1 \
                    python3 benches/experiments/stalled.py 8092 "$pid" 1000 3000 1024 "$path" "$pub_token") || result=failed ;;
                reading-h2) result=$(STALLED_READ=1 STALLED_PER_CONNECTION=5 taskset -c 1 \
                    python3 benches/experiments/stalled.py 8092 "$pid" 50 200 65536 "$path" "$pub_token") || result=failed ;;
                *) echo "stalled.sh: unknown mode $mode" >&2; exit 1 ;;
            esac
            stop_server
            echo "run$run $variant $mode $result"
        done
    done
done
