import json,glob,re,statistics as S,sys
def load(d,prefix):
    rows={}
    for j in glob.glob(f'{d}/{prefix}-*.json'):
        n=j.split('/')[-1][:-5]
        m=re.match(rf'{prefix}-(\w+)-(before|after)-(\d+)',n)
        kind,b,r=m.groups()
        dj=json.load(open(j))
        st={}
        try:
            for l in open(j[:-5]+'.stat'):
                p=l.strip().split(',')
                if len(p)>3 and not l.startswith('#'): st[p[2]]=float(p[0])
        except FileNotFoundError: pass
        rows[(kind,b,int(r))]=(dj,st)
    return rows
def med(x): return S.median(x)
for d,prefix in [(a.split(':')[0],a.split(':')[1]) for a in sys.argv[1:]]:
    rows=load(d,prefix)
    kinds=sorted({k for k,_,_ in rows})
    reps=sorted({r for _,_,r in rows})
    print(f'## {prefix} ({d}), reps {reps}')
    for kind in kinds:
        for b in ['before','after']:
            rs=[rows[(kind,b,r)] for r in reps if (kind,b,r) in rows]
            dps=[x[0]['delivery']['per_second'] for x in rs]
            pps=[x[0]['publish']['per_second'] for x in rs]
            p50=[x[0]['publish']['request_latency']['p50_ms'] for x in rs]
            cpu=[x[0]['server']['cpu_s'] for x in rs]
            deliv=[x[0]['delivery']['delivered'] for x in rs]
            wv=[x[1].get('syscalls:sys_enter_writev',0)/x[0]['delivery']['delivered'] for x in rs]
            cpu_per=[x[0]['server']['cpu_s']*1e6/x[0]['delivery']['delivered'] for x in rs]
            ok=all(x[0]['ok'] for x in rs)
            print(f"{kind:8} {b:6} deliveries/s {[round(v) for v in dps]} med {med(dps):.0f} | publish/s med {med(pps):.1f} | pub p50 med {med(p50):.2f} ms | server CPU med {med(cpu):.2f} s ({med(cpu_per):.2f} us/delivery) | writev/delivery med {med(wv):.3f} | ok {ok}")
    # paired ratios
    def val(kind,b,r,key): 
        dj=rows[(kind,b,r)][0]; return dj['delivery']['per_second'] if key=='d' else dj['publish']['per_second']
    for kind in kinds:
        if kind=='memory': continue
        key='d'
        print(f"  {kind} after/before per rep: {[round(val(kind,'after',r,key)/val(kind,'before',r,key),2) for r in reps]}  median of medians ratio {med([val(kind,'after',r,key) for r in reps])/med([val(kind,'before',r,key) for r in reps]):.2f}")
        for b in ['before','after']:
            print(f"  {kind}/memory ({b}) per rep: {[round(val(kind,b,r,key)/val('memory',b,r,key),2) for r in reps]}  ratio of medians {med([val(kind,b,r,key) for r in reps])/med([val('memory',b,r,key) for r in reps]):.2f}")
