import sys, statistics, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 5 or not f[0].startswith("run"):
        continue
    key = (f[1], f[2], f[3])
    if f[3] == "burst":
        d = dict(zip(f[5::2], f[6::2]))
        for k in ("p50", "p99", "dps", "gen%", "srv%"):
            rows[key][k].append(float(d[k]))
    else:
        rows[key]["pps"].append(float(f[5]))
        rows[key]["p99"].append(float(f[7]))
for key, vals in rows.items():
    print(" ".join(key), {k: (statistics.median(v), min(v), max(v)) for k, v in vals.items()})
