#!/usr/bin/env python3
"""Bar chart of scripts/bench-nas.sh's figures: speed relative to the network mount itself.

    bench-nas-plot.py FIGURES.json OUT.png

One group of bars per workload, one bar per system (direct access is the dashed line at 1),
on a log scale so that 0.5x and 20x read alike; each bar carries its ratio.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORKS = ["load-cold", "load-warm", "snapdl-warm", "snapdl-expired", "scan-expired",
         "cat300-cold", "cat300-warm"]
LABELS = ["model load\ncold", "model load\nwarm", "snapshot_download\nwarm",
          "snapshot_download\nafter caches expired", "scan_cache_dir\n20 repos",
          "cat 300 files\ncold", "cat 300 files\nwarm"]

fig_data = json.load(open(sys.argv[1]))
ratio = fig_data["ratio"]
systems = sorted({k.split("/")[0] for k in ratio} - {"direct"},
                 key=lambda s: (not s.startswith("hfcachefs"), s))
fig, ax = plt.subplots(figsize=(11, 5))
width = 0.8 / max(1, len(systems))
for i, s in enumerate(systems):
    xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(WORKS))]
    ys = [ratio[f"{s}/{w}"] for w in WORKS]
    bars = ax.bar(xs, ys, width, label=s)
    for x, y in zip(xs, ys):
        ax.annotate(f"{y:.2f}", (x, y), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 2), textcoords="offset points")
ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="direct (the network mount)")
ax.set_yscale("log")
ax.set_yticks([0.25, 0.5, 1, 2, 4, 8, 16, 32], ["0.25×", "0.5×", "1×", "2×", "4×", "8×", "16×", "32×"])
ax.set_xticks(range(len(WORKS)), LABELS, fontsize=8)
ax.set_ylabel("speed relative to direct access (log scale)")
ax.set_title(f"Hub workloads on a network store (sshfs, {fig_data['rtt_ms']} ms round trip, "
             f"median of {fig_data['runs']}): higher is better")
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print(f"plot: {sys.argv[2]}")
