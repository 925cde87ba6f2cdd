#!/usr/bin/env bash
# fsync-tp.sh BIN OUT : strict throughput 5 s, recording fdatasync enter/exit
bin=$1 out=$2
work=$(mktemp -d /tmp/hd-fs.XXXXXX); port=$((9800 + RANDOM % 100))
printf '[limits]\nmax_connections_per_subject = 100000\n' > $work/h.toml
HERALD_LOG=warn taskset -c 0 $bin serve --dev --dev-secret bench-secret-0123456789-not-for-prod --config $work/h.toml --log-kind durable --data-dir $work/data --listen 127.0.0.1:$port > $work/log 2>&1 &
pid=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
sleep 0.3
pub=$(grep -a 'publisher token:' $work/log | tail -1 | awk '{print $NF}'); sub=$(grep -a 'subscriber token:' $work/log | tail -1 | awk '{print $NF}')
perf record -e syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync -p $pid -o $out.data 2>/dev/null & spid=$!; sleep 0.3
taskset -c 1 ./herald-before bench throughput --hub http://127.0.0.1:$port/.well-known/mercure --json --publisher-token $pub --subscriber-token $sub --publishers 4 --topics 100 --subscribers-per-topic 1 --duration 5s --size 64 > $out.json 2>/dev/null
kill -INT $spid; wait $spid; kill $pid; wait $pid 2>/dev/null; rm -rf $work
perf script -i $out.data -F time,event 2>/dev/null | python3 -c "
import sys,json,statistics as S
ts=[];st=None
for l in sys.stdin:
    t=float(l.split()[0].rstrip(':'))
    if 'enter' in l: st=t
    elif st is not None: ts.append((t-st)*1000); st=None
d=json.load(open('$out.json'))
print('publish/s %.0f  fsyncs %d  fsync ms median %.3f mean %.3f  publishes/commit %.2f' % (d['publish']['per_second'], len(ts), S.median(ts), S.mean(ts), d['publish']['acknowledged']/len(ts)))
"
