#!/usr/bin/env python3
"""Turns a scripts/compare results directory into the "Comparison" section of
docs/benchmarks.md (between its `<!-- compare:begin -->` and
`<!-- compare:end -->` markers) and docs/comparison.png.

Usage: scripts/compare-report.py benches/results/<timestamp> [--no-write]
"""

import json
import os
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVERS = [
    "herald-memory",
    "herald-durable",
    "herald-relaxed",
    "nchan",
    "axum",
    "floor",
    "mercure-memory",
    "mercure-bolt",
]
# herald's configurations, in the order of the ratio columns.
HERALD = ["herald-memory", "herald-durable", "herald-relaxed"]
NAMES = {
    "herald-memory": "herald (memory log)",
    "herald-durable": "herald (durable log)",
    "herald-relaxed": "herald (durable log, relaxed)",
    "nchan": "nginx + nchan",
    "axum": "axum-broadcast",
    "floor": "floor",
    "mercure-memory": "Mercure reference hub (local transport)",
    "mercure-bolt": "Mercure reference hub (bolt transport)",
}
# What each server is, for the section's table of servers.
WHAT_RUNS = {
    "herald-memory": "`herald serve --dev --log-kind memory`, publisher and subscriber tokens (auth on), `limits.max_connections_per_subject = 100000`, `limits.max_connections` and `limits.max_connections_per_address` = 19,500 (`scripts/compare` before its 2026-11-25 run 3 left them at 18,000: see the notes below the section)",
    "herald-durable": "the same with `--log-kind durable --data-dir <fresh temp dir>` (strict durability, the default: a publish is answered once fsynced)",
    "herald-relaxed": "the same with `log.durability = \"relaxed\"`: a publish is answered once written to the journal (which a crash of the process does not lose), the journal fsynced every 100 ms (`log.flush_interval`; a crash of the machine can lose what was acknowledged since)",
    "nchan": "`benches/peers/nchan/nginx.conf`: one worker, `nchan_pubsub` location, `nchan_message_buffer_length 0`; bench with `--match-param topic --publish-format raw`",
    "axum": "`benches/peers/axum-broadcast`: axum SSE, one `tokio::sync::broadcast` (capacity 1024) per topic in a `DashMap`; no auth",
    "floor": "`benches/peers/floor`: one `mio` thread, one preformatted frame per publish, publishes acknowledged first, then subscribers written in FIFO slices of 256 sockets per loop turn, each socket everything it has pending in one write (frames coalesce while it waits); no auth",
    "mercure-memory": "`$MERCURE_HUB`: the Go reference hub's library (`github.com/dunglas/mercure`, the commit on the `mercure:` line above) behind Go's own `net/http` server, no Caddy (see \"The reference hub\" below the section); its defaults but one HS256 issuer, publisher and subscriber tokens from `herald token` (auth on); the local transport, no history",
    "mercure-bolt": "the same with its bolt transport on a fresh file (bbolt, a sync per committed publish; history unbounded, the Caddy module's default size)",
}


def load(out: Path):
    """{label: {server: [report, ...]}} in run order."""
    results = {}
    for label_dir in sorted(p for p in out.iterdir() if p.is_dir() and p.name != "logs"):
        for f in sorted(label_dir.glob("*.json")):
            m = re.fullmatch(r"(.+)-(\d+)\.json", f.name)
            if not m:
                continue
            try:
                report = json.loads(f.read_text())
            except (json.JSONDecodeError, OSError):
                report = None
            if isinstance(report, dict):
                report["derived"] = derived(report)
            results.setdefault(label_dir.name, {}).setdefault(m.group(1), []).append(
                (int(m.group(2)), report)
            )
    for servers in results.values():
        for runs in servers.values():
            runs.sort(key=lambda r: r[0])
    return results


def derived(report):
    """Figures computed from a report: the load generator's CPU in the
    measured phase, as a percentage of the one core it is pinned to (near
    100%, the generator rather than the server may have set the pace)."""
    phases = report.get("phases") or []
    deliver = next((p for p in phases if p.get("name") == "deliver"), None)
    return {"generator_cpu_percent": deliver.get("tool_cpu_percent") if deliver else None}


def get(report, *path):
    value = report
    for key in path:
        if value is None:
            return None
        value = value.get(key)
    return value


# (key, label, path in the report, unit, format, higher is better)
METRICS = {
    "fanout": [
        ("deliveries", "deliveries/s", ("delivery", "per_second"), "", "{:,.0f}", True),
        ("p50", "delivery p50", ("delivery", "latency", "p50_ms"), " ms", "{:,.1f}", False),
        ("p99", "delivery p99", ("delivery", "latency", "p99_ms"), " ms", "{:,.1f}", False),
        ("cpu", "server CPU", ("server", "cpu_s"), " s", "{:,.2f}", False),
        ("server_busy", "server core busy", ("server", "cpu_percent"), "%", "{:,.0f}", False),
        ("generator", "generator CPU", ("derived", "generator_cpu_percent"), "%", "{:,.0f}", False),
        ("per_read", "events per read", ("delivery", "per_read"), "", "{:,.1f}", True),
    ],
    "fanout-rate": [
        ("publishes", "publishes/s", ("publish", "per_second"), "", "{:,.1f}", True),
        ("deliveries", "deliveries/s", ("delivery", "per_second"), "", "{:,.0f}", True),
        ("p50", "delivery p50", ("delivery", "latency", "p50_ms"), " ms", "{:,.2f}", False),
        ("p99", "delivery p99", ("delivery", "latency", "p99_ms"), " ms", "{:,.2f}", False),
        ("cpu", "server CPU", ("server", "cpu_s"), " s", "{:,.2f}", False),
        ("server_busy", "server core busy", ("server", "cpu_percent"), "%", "{:,.0f}", False),
        ("generator", "generator CPU", ("derived", "generator_cpu_percent"), "%", "{:,.0f}", False),
        ("per_read", "events per read", ("delivery", "per_read"), "", "{:,.1f}", True),
    ],
    "idle": [
        ("kib", "KiB per subscriber", ("idle", "server_kib_per_subscriber"), "", "{:,.2f}", False),
        ("connect", "connect p99", ("subscribers", "connect_latency", "p99_ms"), " ms", "{:,.1f}", False),
    ],
    "throughput": [
        ("publishes", "publishes/s", ("publish", "per_second"), "", "{:,.0f}", True),
        ("req_p99", "publish request p99", ("publish", "request_latency", "p99_ms"), " ms", "{:,.2f}", False),
        ("p99", "delivery p99", ("delivery", "latency", "p99_ms"), " ms", "{:,.2f}", False),
        ("cpu", "server CPU", ("server", "cpu_s"), " s", "{:,.2f}", False),
        ("server_busy", "server core busy", ("server", "cpu_percent"), "%", "{:,.0f}", False),
        ("generator", "generator CPU", ("derived", "generator_cpu_percent"), "%", "{:,.0f}", False),
    ],
}


def family(label):
    return "idle" if label.startswith("idle-") else label


def values(runs, path):
    return [v for _, r in runs if r is not None for v in [get(r, *path)] if v is not None]


def stat(vals):
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def cell(s, fmt, unit):
    if s is None:
        return "–"
    med, lo, hi = s
    return f"{fmt.format(med)}{unit} ({fmt.format(lo)}–{fmt.format(hi)})"


def problems(runs):
    """(runs, failed runs, violations, delivered, expected, first problem)."""
    failed = 0
    violations = 0
    delivered = expected = 0
    first = None
    for _, r in runs:
        if r is None:
            failed += 1
            first = first or "no JSON report"
            continue
        if not r.get("ok"):
            failed += 1
            first = first or "; ".join(r.get("problems", []))[:200]
        violations += get(r, "violations", "total") or 0
        delivered += get(r, "delivery", "delivered") or 0
        expected += get(r, "delivery", "expected") or 0
    return len(runs), failed, violations, delivered, expected, first


def title(label, params):
    p = params or {}
    if label == "fanout":
        return f"fanout: {p.get('subscribers')} subscribers × {p.get('events')} events × {p.get('size')} B, as fast as possible"
    if label == "fanout-rate":
        return f"fanout at {p.get('rate')}/s: {p.get('subscribers')} subscribers × {p.get('events')} events × {p.get('size')} B"
    if label.startswith("idle-"):
        return f"idle: {p.get('subscribers')} subscribers, memory read {p.get('settle_s')} s after connecting"
    if label == "throughput":
        return (
            f"throughput: {p.get('publishers')} publishers × {p.get('topics')} topics, "
            f"{p.get('subscribers_per_topic')} subscriber each, {p.get('duration_s')} s, {p.get('size')} B"
        )
    return label


def label_order(label):
    order = ["fanout", "fanout-rate", "throughput"]
    if label in order:
        return (order.index(label), 0)
    if label.startswith("idle-"):
        return (len(order), int(label.split("-")[1]))
    return (99, 0)


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return None
    return a[0] / b[0]


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    write = "--no-write" not in sys.argv
    if len(args) != 1:
        sys.exit(__doc__)
    out = Path(args[0]).resolve()
    results = load(out)
    labels = sorted(results, key=label_order)
    servers = [s for s in SERVERS if any(s in results[l] for l in labels)]
    machine = (out / "machine.txt").read_text() if (out / "machine.txt").exists() else ""
    commands = (out / "commands.txt").read_text().splitlines() if (out / "commands.txt").exists() else []
    rel_out = os.path.relpath(out, ROOT)

    stats = {}  # (label, key, server) -> (median, min, max)
    lines = []
    w = lines.append
    w("## Comparison")
    w("")
    w("herald against its peers, every server measured in the same run, on the")
    w("same machine, with the same load generator (`herald bench`), written by")
    w("`scripts/compare` (which also wrote this section, with")
    w("`scripts/compare-report.py`, from the JSON reports in")
    w(f"`{rel_out}/`).")
    w("")
    w("```sh")
    w("scripts/compare            # COMPARE_* variables bound the sizes; see the script's header")
    w("```")
    w("")
    w("Machine and run (from `machine.txt`):")
    w("")
    w("```text")
    w(machine.rstrip())
    w("```")
    w("")
    w("Servers: each run starts a fresh server process per scenario, pinned to")
    w("core 0 (`taskset -c 0`); `herald bench` runs pinned to core 1. The servers'")
    w("order rotates from run to run.")
    w("")
    w("| server | what runs |")
    w("| --- | --- |")
    for s in servers:
        w(f"| {NAMES[s]} | {WHAT_RUNS[s]} |")
    w("")
    w("Medians over the runs, with min–max in brackets; every figure below is from")
    w("this one run of the script. \"Server core busy\" is the server's CPU time")
    w("over the scenario's wall time (its one core: 100% is saturated);")
    w("\"generator CPU\" is `herald bench`'s own CPU time over the measured phase,")
    w("on the one core it is pinned to: near 100%, the load generator may have set")
    w("the pace rather than the server.")
    w("")

    for label in labels:
        fam = family(label)
        metrics = METRICS.get(fam, [])
        first = next(
            (r for s in servers for _, r in results[label].get(s, []) if r is not None), None
        )
        w(f"### {title(label, first and first.get('parameters'))}")
        w("")
        w("| server | " + " | ".join(m[1] for m in metrics) + " | runs ok | loss / violations |")
        w("| --- | " + " | ".join("---:" for _ in metrics) + " | ---: | --- |")
        for s in servers:
            runs = results[label].get(s, [])
            if not runs:
                continue
            row = []
            for key, _, path, unit, fmt, _ in metrics:
                st = stat(values(runs, path))
                stats[(label, key, s)] = st
                row.append(cell(st, fmt, unit))
            n, failed, violations, delivered, expected, first_problem = problems(runs)
            stats[(label, "failed", s)] = failed
            stats[(label, "violations", s)] = violations
            stats[(label, "lost", s)] = expected - delivered
            if delivered > expected:
                # A publish that failed on the client's side (a timeout) can
                # still have been delivered: more arrived than was expected.
                loss = f"none missing, {delivered - expected:,} beyond the {expected:,} expected, {violations} violations"
            else:
                loss = f"{expected - delivered:,} of {expected:,} missing, {violations} violations"
            if first_problem:
                loss += f"; {first_problem}"
            w(f"| {NAMES[s]} | " + " | ".join(row) + f" | {n - failed}/{n} | {loss} |")
        w("")

    # Ratios the targets use.
    def st(label, key, server):
        return stats.get((label, key, server))

    w("### Ratios")
    w("")
    w("Medians divided by medians, from the tables above.")
    w("")
    shown = [s for s in HERALD if s in servers]
    w("| ratio | " + " | ".join(NAMES[s] for s in shown) + " |")
    w("| --- |" + " ---: |" * len(shown))
    ratio_rows = [
        ("fanout deliveries/s ÷ floor", "fanout", "deliveries", "floor"),
        ("fanout deliveries/s ÷ axum-broadcast", "fanout", "deliveries", "axum"),
        ("fanout deliveries/s ÷ nchan", "fanout", "deliveries", "nchan"),
        ("fanout p99 ÷ floor", "fanout", "p99", "floor"),
        ("fanout at rate p99 ÷ floor", "fanout-rate", "p99", "floor"),
        ("fanout at rate p99 ÷ axum-broadcast", "fanout-rate", "p99", "axum"),
        ("throughput publishes/s ÷ nchan", "throughput", "publishes", "nchan"),
        ("throughput publishes/s ÷ axum-broadcast", "throughput", "publishes", "axum"),
        ("fanout deliveries/s ÷ Mercure (local)", "fanout", "deliveries", "mercure-memory"),
        ("fanout p99 ÷ Mercure (local)", "fanout", "p99", "mercure-memory"),
        ("fanout at rate p99 ÷ Mercure (local)", "fanout-rate", "p99", "mercure-memory"),
        ("throughput publishes/s ÷ Mercure (local)", "throughput", "publishes", "mercure-memory"),
        ("throughput publishes/s ÷ Mercure (bolt)", "throughput", "publishes", "mercure-bolt"),
    ]
    for idle_label in [l for l in labels if l.startswith("idle-")]:
        ratio_rows.append((f"{idle_label} KiB/subscriber ÷ nchan", idle_label, "kib", "nchan"))
        ratio_rows.append(
            (f"{idle_label} KiB/subscriber ÷ Mercure (bolt)", idle_label, "kib", "mercure-bolt")
        )
    for name, label, key, peer in ratio_rows:
        if label not in results or peer not in results[label]:
            continue
        peer_stat = st(label, key, peer)
        w(
            f"| {name} | "
            + " | ".join(fmt_ratio(ratio(st(label, key, s), peer_stat)) for s in shown)
            + " |"
        )
    memory_publishes = st("throughput", "publishes", "herald-memory")
    dm = ratio(st("throughput", "publishes", "herald-durable"), memory_publishes)
    rm = ratio(st("throughput", "publishes", "herald-relaxed"), memory_publishes)
    if dm is not None or rm is not None:
        cells = {"herald-durable": fmt_ratio(dm), "herald-relaxed": fmt_ratio(rm)}
        w(
            "| throughput publishes/s ÷ the memory log's | "
            + " | ".join(cells.get(s, "") for s in shown)
            + " |"
        )
    w("")

    # Targets.
    w("### Targets")
    w("")
    w("| target | figure | verdict |")
    w("| --- | --- | --- |")

    def verdict(ok):
        return "–" if ok is None else ("**met**" if ok else "**missed**")

    def target(text, figure, ok):
        w(f"| {text} | {figure} | {verdict(ok)} |")

    for s in HERALD:
        if "fanout" not in results or s not in results["fanout"]:
            continue
        r_floor = ratio(st("fanout", "deliveries", s), st("fanout", "deliveries", "floor"))
        r_axum = ratio(st("fanout", "deliveries", s), st("fanout", "deliveries", "axum"))
        target(
            f"fanout deliveries/s ≥ 0.9× floor ({NAMES[s]})",
            fmt_ratio(r_floor),
            None if r_floor is None else r_floor >= 0.9,
        )
        target(
            f"fanout deliveries/s ≥ 1.5× axum-broadcast ({NAMES[s]})",
            fmt_ratio(r_axum),
            None if r_axum is None else r_axum >= 1.5,
        )
        r_p99 = ratio(st("fanout", "p99", s), st("fanout", "p99", "floor"))
        target(
            f"fanout p99 ≤ 1.2× floor ({NAMES[s]})",
            fmt_ratio(r_p99),
            None if r_p99 is None else r_p99 <= 1.2,
        )
    if "fanout-rate" in results:
        for s in HERALD:
            if s not in results["fanout-rate"]:
                continue
            r = ratio(st("fanout-rate", "p99", s), st("fanout-rate", "p99", "floor"))
            wanted = next(
                (get(rep, "parameters", "rate") for _, rep in results["fanout-rate"][s] if rep),
                None,
            )
            achieved = st("fanout-rate", "publishes", s)
            sustained = (
                stats.get(("fanout-rate", "failed", s)) == 0
                and stats.get(("fanout-rate", "lost", s)) == 0
                and achieved is not None
                and wanted is not None
                and achieved[1] >= 0.95 * wanted
            )
            target(
                f"fanout at the rate sustained, p99 ≤ 1.2× floor ({NAMES[s]})",
                f"p99 {fmt_ratio(r)}; publishes/s {achieved[0] if achieved else 0:,.1f} of {wanted}/s"
                f" (slowest run {achieved[1] if achieved else 0:,.1f}); sustained: {'yes' if sustained else 'no'}",
                None if r is None else (r <= 1.2 and sustained),
            )
    for idle_label in [l for l in labels if l.startswith("idle-")]:
        k = st(idle_label, "kib", "herald-durable")
        target(
            f"idle ≤ 4 KB per subscriber with auth and the durable log ({idle_label.split('-')[1]} subscribers)",
            "–" if k is None else f"{k[0]:.2f} KiB ({k[0] * 1.024:.2f} kB)",
            None if k is None else k[0] * 1.024 <= 4.0,
        )
    if "throughput" in results:
        r = ratio(st("throughput", "publishes", "herald-memory"), st("throughput", "publishes", "nchan"))
        target("publish, memory log ≥ nchan", fmt_ratio(r), None if r is None else r >= 1.0)
        target(
            "publish, durable ≥ 0.5× memory (strict durability, the default)",
            fmt_ratio(dm),
            None if dm is None else dm >= 0.5,
        )
        if rm is not None:
            target("publish, durable ≥ 0.5× memory (relaxed durability)", fmt_ratio(rm), rm >= 0.5)
    lossless = []
    for label in labels:
        for s in HERALD:
            if s in results[label]:
                lossless.append(
                    (label, s, stats.get((label, "lost", s)), stats.get((label, "violations", s)))
                )
    bad = [x for x in lossless if x[2] or x[3]]
    target(
        "no loss (herald, every scenario and run)",
        "none lost, no violations"
        if not bad
        else "; ".join(f"{l} {s}: {lost} missing, {v} violations" for l, s, lost, v in bad),
        None if not lossless else not bad,
    )
    w("")

    w("![herald and its peers](comparison.png)")
    w("")
    w("<details><summary>Every command of the run (tokens elided)</summary>")
    w("")
    w("```text")
    for c in commands:
        w(c)
    w("```")
    w("")
    w("</details>")

    section = "\n".join(lines) + "\n"
    if write:
        chart(results, labels, servers, stats, ROOT / "docs" / "comparison.png")
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
        block = f"{begin}\n{section}{end}"
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        doc.write_text(text)
        print(f"wrote {doc} and docs/comparison.png", file=sys.stderr)
    else:
        print(section)


# Short enough for eight bars side by side (the tables' names overlap there).
CHART_NAMES = {
    "herald-memory": "herald\nmemory",
    "herald-durable": "herald\nstrict",
    "herald-relaxed": "herald\nrelaxed",
    "nchan": "nginx\n+ nchan",
    "axum": "axum\nbroadcast",
    "floor": "floor",
    "mercure-memory": "Mercure\nlocal",
    "mercure-bolt": "Mercure\nbolt",
}


def chart(results, labels, servers, stats, path):
    try:
        import matplotlib
    except ImportError:
        sys.exit(
            "compare-report.py: the chart needs matplotlib, which is missing: "
            "pip install matplotlib (or apt-get install python3-matplotlib)"
        )

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if "fanout" in results:
        panels.append(("fanout", "deliveries", "fanout: deliveries/s (higher is better)", 1.0))
        panels.append(("fanout", "p99", "fanout: delivery p99, ms", 1.0))
    if "fanout-rate" in results:
        panels.append(("fanout-rate", "p99", "fanout at rate: delivery p99, ms", 1.0))
    for l in labels:
        if l.startswith("idle-"):
            panels.append((l, "kib", f"idle, {l.split('-')[1]} subscribers: KiB/subscriber", 1.0))
    if "throughput" in results:
        panels.append(("throughput", "publishes", "throughput: publishes/s (higher is better)", 1.0))
    if not panels:
        return
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = {
        "herald-memory": "#1f77b4",
        "herald-durable": "#6baed6",
        "herald-relaxed": "#9ecae1",
        "nchan": "#2ca02c",
        "axum": "#ff7f0e",
        "floor": "#7f7f7f",
        "mercure-memory": "#9467bd",
        "mercure-bolt": "#c5b0d5",
    }
    for ax, (label, key, name, _) in zip(axes.flat, panels):
        xs, meds, los, his, cs = [], [], [], [], []
        for s in servers:
            v = stats.get((label, key, s))
            if v is None:
                continue
            xs.append(CHART_NAMES[s])
            meds.append(v[0])
            los.append(v[0] - v[1])
            his.append(v[2] - v[0])
            cs.append(colors[s])
        ax.bar(range(len(xs)), meds, color=cs, yerr=[los, his], capsize=4)
        # A latency 20× another (the reference hub's seconds) would flatten
        # every other bar to nothing on a linear axis. Rates and memory stay
        # linear, where the targets' ratios read off the bars' heights.
        positive = [m for m in meds if m > 0]
        if key == "p99" and positive and max(positive) > 20 * min(positive):
            ax.set_yscale("log")
            name += " (log scale)"
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels(xs, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        "herald (memory log; durable log, strict and relaxed) vs peers"
        " (medians, bars: min–max over runs)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
