#!/usr/bin/env python3
"""Plots frames per node per write against N, a full mesh of CONNECT links
against the overlay, from the CSV that `cargo bench --bench overlay_sim`
writes, to docs/img/frames_per_write.png. Needs matplotlib; without it,
says so and does nothing.

usage: bench/plot_frames_per_write.py target/bench/frames_per_write.csv
"""
import csv
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "img", "frames_per_write.png")


def main():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return 0
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(6, 4))
    series = [
        ("mesh", "first_write_payload_per_node", "full mesh, first write (flooding)"),
        ("mesh", "write_frames_per_node", "full mesh, steady (tuples + IHAVE + GRAFT + PRUNE)"),
        ("overlay", "write_frames_per_node", "overlay, steady (tuples + IHAVE + GRAFT + PRUNE)"),
        ("overlay", "payload_per_node", "overlay, steady, tuples only"),
    ]
    for topology, field, label in series:
        pts = [(int(r["nodes"]), float(r[field])) for r in rows if r["topology"] == topology]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("nodes")
    ax.set_ylabel("frames per node per write")
    ax.set_title("Simulator: frames per write, flooding vs tree")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
