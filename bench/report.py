#!/usr/bin/env python3
"""Summarises bench/compare.sh results: medians per implementation and
scenario, ratios against the targets of issue 8, and SVG plots in docs/img/.

usage: bench/report.py target/bench/results.jsonl [target/bench/sim.jsonl]
Standard library only.
"""
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMG = os.path.join(ROOT, "docs", "img")


def load(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def median(rows, impl, scenario, field, n=None):
    vals = [r[field] for r in rows
            if r["impl"] == impl and r["scenario"] == scenario and r.get("ok")
            and field in r and (n is None or r["n"] == n)]
    return statistics.median(vals) if vals else None


def per_run(rows, impl, scenario, field, n=None):
    """The value of each run, in order (None for a failed run)."""
    return [r[field] if r.get("ok") and field in r else None for r in rows
            if r["impl"] == impl and r["scenario"] == scenario
            and (n is None or r["n"] == n)]


def run_ratios(rows, scenario, field, a="zgossip", b="czmq", n=None):
    """zgossip against CZMQ run by run: each pair ran back to back, so a
    slow spell of the machine moves both halves of a ratio."""
    return [x / y if x and y else None
            for x, y in zip(per_run(rows, a, scenario, field, n),
                            per_run(rows, b, scenario, field, n))]


def ok_any(rows, impl, scenario):
    runs = [r for r in rows if r["impl"] == impl and r["scenario"] == scenario]
    if not runs:
        return None
    return any(r.get("ok") for r in runs)


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def bar_chart(path, title, unit, groups, note=""):
    """groups: list of (label, czmq_value, zgossip_value)."""
    width, height = 640, 320
    left, right, top, bottom = 70, 20, 50, 60
    vmax = max([v for _, a, b in groups for v in (a, b) if v] + [1])
    plot_w = width - left - right
    plot_h = height - top - bottom
    slot = plot_w / max(len(groups), 1)
    bw = slot * 0.32
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width/2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
           f'<line x1="{left}" y1="{top+plot_h}" x2="{width-right}" y2="{top+plot_h}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top+plot_h}" stroke="black"/>',
           f'<text x="14" y="{top+plot_h/2}" transform="rotate(-90 14 {top+plot_h/2})" '
           f'text-anchor="middle">{unit}</text>']
    for i in range(5):
        v = vmax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<text x="{left-6}" y="{y+4}" text-anchor="end">{fmt(v, 0)}</text>')
        out.append(f'<line x1="{left}" y1="{y}" x2="{width-right}" y2="{y}" stroke="#ddd"/>')
    for gi, (label, a, b) in enumerate(groups):
        x0 = left + slot * gi + slot * 0.15
        for j, (v, colour) in enumerate(((a, "#999999"), (b, "#2a7ab9"))):
            if v is None:
                continue
            h = plot_h * v / vmax
            x = x0 + j * (bw + 4)
            out.append(f'<rect x="{x:.1f}" y="{top+plot_h-h:.1f}" width="{bw:.1f}" '
                       f'height="{h:.1f}" fill="{colour}"/>')
            out.append(f'<text x="{x+bw/2:.1f}" y="{top+plot_h-h-4:.1f}" '
                       f'text-anchor="middle" font-size="10">{fmt(v)}</text>')
        out.append(f'<text x="{left + slot*gi + slot/2:.1f}" y="{top+plot_h+18}" '
                   f'text-anchor="middle">{label}</text>')
    out.append(f'<rect x="{width-190}" y="{height-28}" width="12" height="12" fill="#999999"/>'
               f'<text x="{width-174}" y="{height-18}">CZMQ 4.2.1</text>'
               f'<rect x="{width-100}" y="{height-28}" width="12" height="12" fill="#2a7ab9"/>'
               f'<text x="{width-84}" y="{height-18}">zgossip</text>')
    if note:
        out.append(f'<text x="{left}" y="{height-18}" font-size="10">{note}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def line_chart(path, title, xs, series, xlabel, ylabel):
    """series: list of (name, colour, values) with one value per x."""
    width, height = 640, 320
    left, right, top, bottom = 70, 20, 50, 60
    plot_w = width - left - right
    plot_h = height - top - bottom
    vmax = max([v for _, _, vs in series for v in vs] + [1])
    import math
    lx = [math.log10(x) for x in xs]
    lo, hi = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1
    px = lambda x: left + plot_w * (math.log10(x) - lo) / (hi - lo)
    py = lambda v: top + plot_h - plot_h * v / vmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width/2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
           f'<line x1="{left}" y1="{top+plot_h}" x2="{width-right}" y2="{top+plot_h}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top+plot_h}" stroke="black"/>',
           f'<text x="{width/2}" y="{height-12}" text-anchor="middle">{xlabel}</text>',
           f'<text x="14" y="{top+plot_h/2}" transform="rotate(-90 14 {top+plot_h/2})" '
           f'text-anchor="middle">{ylabel}</text>']
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{top+plot_h+16}" text-anchor="middle">{x:,}</text>')
    for i in range(5):
        v = vmax * i / 4
        out.append(f'<text x="{left-6}" y="{py(v)+4:.1f}" text-anchor="end">{fmt(v)}</text>')
    for li, (name, colour, vs) in enumerate(series):
        pts = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, vs))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, v in zip(xs, vs):
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{left+10}" y="{top+14+li*16}" fill="{colour}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    rows = load(sys.argv[1] if len(sys.argv) > 1 else "target/bench/results.jsonl")
    sim = load(sys.argv[2] if len(sys.argv) > 2 else "target/bench/sim.jsonl")
    lines = []
    p = lines.append
    cz_star = median(rows, "czmq", "star", "tuples_per_s")
    zg_star = median(rows, "zgossip", "star", "tuples_per_s")
    cz_join = median(rows, "czmq", "join", "tuples_per_s", 100000)
    zg_join = median(rows, "zgossip", "join", "tuples_per_s", 100000)
    zg_join_1m = median(rows, "zgossip", "join", "seconds", 1000000)
    zg_join_1m_rate = median(rows, "zgossip", "join", "tuples_per_s", 1000000)
    cz_hop = median(rows, "czmq", "chain", "us_per_hop")
    zg_hop = median(rows, "zgossip", "chain", "us_per_hop")
    cz_mem = median(rows, "czmq", "memory", "bytes_per_tuple")
    zg_mem = median(rows, "zgossip", "memory", "bytes_per_tuple")
    zg_swarm = median(rows, "zgossip", "swarm", "seconds")
    ratio = lambda a, b: (a / b) if a and b else None

    def times_row(label, cz, zg, met=("yes", "no")):
        """A row whose target is 20 times CZMQ or more."""
        r = ratio(zg, cz)
        p(f"| {label} | {fmt(cz)} | {fmt(zg)} | {fmt(r)}x | >= 20x | {met[0] if r and r >= 20 else met[1]} |")

    def share_row(label, cz, zg, limit):
        """A row whose target is at most `limit` of CZMQ's figure."""
        r = ratio(zg, cz)
        p(f"| {label} | {fmt(cz)} | {fmt(zg)} | {fmt(r, 2)} | <= {limit} | {'yes' if r and r <= limit else 'no'} |")

    p("| scenario | CZMQ 4.2.1 | zgossip | ratio | target | met |")
    p("| --- | --- | --- | --- | --- | --- |")
    times_row("star: tuples/s two hops away, after 50,000 of warm-up", cz_star, zg_star)
    cold_star = median(rows, "zgossip-cold", "star", "tuples_per_s")
    if cold_star:
        times_row("star, cold: the first tuples after the nodes were idle (`BENCH_WARMUP=0`)",
                  median(rows, "czmq-cold", "star", "tuples_per_s"), cold_star)
    recvx_star = median(rows, "zgossip-recvx", "star", "tuples_per_s")
    if recvx_star:
        times_row("star, deliveries read with `zgossip_recvx` (a new string per frame, as CZMQ) instead of `zgossip_recv_view`",
                  cz_star, recvx_star)
    own_star = median(rows, "zgossip-own", "star", "tuples_per_s")
    if own_star:
        times_row("star, a thread per node (`ZGOSSIP_IO_THREADS=0`)", cz_star, own_star)
    pin_star = median(rows, "zgossip-pinned", "star", "tuples_per_s")
    if pin_star:
        # Against CZMQ's better figure: pinned, its actors share one CPU.
        cz_pinned = median(rows, "czmq-pinned", "star", "tuples_per_s")
        cz_best = max((v for v in (cz_star, cz_pinned) if v), default=None)
        times_row("star, application and library threads pinned to separate CPUs (`BENCH_PIN=1`), against CZMQ's better of pinned and not",
                  cz_best, pin_star, met=("(pinned) yes", "(pinned) no"))
    persist_star = median(rows, "zgossip-persist", "star", "tuples_per_s")
    if persist_star:
        # Issue 26: with a data directory on every node (default fsync,
        # 100 ms), at least half of the in-memory throughput.
        r = persist_star / zg_star if zg_star else None
        p(f"| star, every node with a data directory (`store/path`, default `store/fsync`), against zgossip in memory | {fmt(zg_star)} | {fmt(persist_star)} | {fmt(r, 2)} | >= 0.5 | {'yes' if r and r >= 0.5 else 'no'} |")
    times_row("join: tuples/s, 100,000 held", cz_join, zg_join)
    p(f"| join: 1,000,000 held, seconds | | {fmt(zg_join_1m, 3)} ({fmt(zg_join_1m_rate)}/s) | | < 1 s | {'yes' if zg_join_1m and zg_join_1m < 1 else 'no'} |")
    share_row("chain of 32: us per hop", cz_hop, zg_hop, 0.2)
    own_hop = median(rows, "zgossip-own", "chain", "us_per_hop")
    if own_hop:
        share_row("chain, a thread per node (`ZGOSSIP_IO_THREADS=0`)", cz_hop, own_hop, 0.2)
    share_row("memory: bytes per tuple beyond key+value", cz_mem, zg_mem, 0.25)
    cz_swarm_ok = ok_any(rows, "czmq", "swarm")
    p(f"| swarm 254 nodes x 1,270 tuples: seconds | {'complete' if cz_swarm_ok else 'incomplete'} | {fmt(zg_swarm, 2)} | | < 5 s | {'yes' if zg_swarm and zg_swarm < 5 else 'no'} |")
    for sc in ("chain128", "mesh1000"):
        c, z = ok_any(rows, "czmq", sc), ok_any(rows, "zgossip", sc)
        zs = median(rows, "zgossip", sc, "seconds")
        p(f"| {sc}: every tuple everywhere | {'yes' if c else 'no'} | {'yes' if z else 'no'} ({fmt(zs, 2)} s) | | complete | {'yes' if z else 'no'} |")
    star_runs = run_ratios(rows, "star", "tuples_per_s")
    hop_runs = run_ratios(rows, "chain", "us_per_hop")
    if len(star_runs) > 1 or len(hop_runs) > 1:
        each = lambda rs, d, x: ", ".join("failed" if r is None else f"{r:.{d}f}{x}" for r in rs)
        p("")
        p(f"Run by run (each pair back to back): star {each(star_runs, 1, 'x')}; "
          f"chain {each(hop_runs, 2, '')}.")
    if sim:
        p("")
        p("| simulator: nodes | hops until every node holds every tuple | messages per tuple | seconds (wall) |")
        p("| --- | --- | --- | --- |")
        for s in sorted(sim, key=lambda s: s["nodes"]):
            p(f"| {s['nodes']:,} | {fmt(s.get('rounds'), 1)} | {fmt(s.get('messages_per_tuple'), 1)} | {fmt(s.get('wall_seconds'), 1)} |")
    print("\n".join(lines))
    os.makedirs(IMG, exist_ok=True)
    bar_chart(os.path.join(IMG, "throughput.svg"), "Throughput (tuples/s, median)", "tuples/s",
              [("star", cz_star, zg_star), ("join 100k", cz_join, zg_join)])
    bar_chart(os.path.join(IMG, "latency.svg"), "Chain of 32 nodes: latency per hop (median)", "us",
              [("per hop", cz_hop, zg_hop)], note="lower is better")
    if sim:
        sim = sorted(sim, key=lambda s: s["nodes"])
        xs = [s["nodes"] for s in sim]
        line_chart(os.path.join(IMG, "convergence.svg"), "Simulator: convergence against N", xs,
                   [("messages per tuple per node", "#2a7ab9", [s["messages_per_tuple"] / s["nodes"] * 1000 for s in sim]),
                    ("hops to converge", "#c0392b", [s["rounds"] for s in sim])],
                   "nodes (log scale)", "hops; messages per tuple per 1000 nodes")
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench", "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # The results table of docs/benchmarks.md.
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    if os.path.exists(doc) and rows:
        text = open(doc).read()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start in text and end in text:
            import datetime
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            runs = max((sum(1 for r in rows if r["impl"] == "zgossip" and r["scenario"] == "star")), 1)
            stamp = datetime.date.today().isoformat()
            body = f"\nMedians of {runs} run(s), {stamp}:\n\n" + "\n".join(lines) + "\n\n"
            with open(doc, "w") as f:
                f.write(head + start + body + end + tail)


if __name__ == "__main__":
    main()
