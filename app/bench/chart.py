"""The benchmark chart (PNG): throughput, ID switches under occlusion and keypoint jitter per video."""

from __future__ import annotations

from pathlib import Path

NAMES = {"bytetrack": "Ultralytics ByteTrack", "botsort": "Ultralytics BoT-SORT", "occlupose": "occlupose"}
COLOURS = {"bytetrack": "#8c8c8c", "botsort": "#5b7fa6", "occlupose": "#e07b39", "bytetrack_openvino": "#b5b5b5",
           "botsort_openvino": "#8fb0d4"}
OTHER_COLOURS = ("#f2b47e", "#c8551b", "#7a2e0e")  # occlupose on other runtimes
ORDER = ("bytetrack", "botsort", "occlupose")


def write_chart(report: dict, path: str | Path) -> Path | None:
    """Draw ``report`` (the benchmark's JSON dict) to ``path``; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    videos = report["videos"]
    labels = [v["video"] for v in videos]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    width = 0.8 / len(ORDER)
    panels = (
        ("throughput (frames/s, higher is better)", lambda v, t: v["throughput"][t]["fps"]),
        ("ID switches under occlusion (lower is better)", lambda v, t: v["quality"]["id_switches"][t]["total"]),
        ("keypoint jitter, |accel| / size (lower is better)", lambda v, t: v["quality"]["jitter"][t]["mean"]),
    )
    every = list(videos[0]["throughput"])  # the throughput panel shows every contender raced
    for n, (ax, (title, value)) in enumerate(zip(axes, panels)):
        keys = every if n == 0 else ORDER
        w = 0.8 / len(keys)
        for i, t in enumerate(keys):
            xs = [j + (i - (len(keys) - 1) / 2) * w for j in range(len(videos))]
            ys = [_num(value(v, t)) for v in videos]
            colour = COLOURS.get(t) or OTHER_COLOURS[i % len(OTHER_COLOURS)]
            bars = ax.bar(xs, ys, w, label=videos[0]["throughput"][t]["label"] if n == 0 else NAMES[t],
                          color=colour)
            for b, y in zip(bars, ys):
                ax.annotate(_fmt(y), (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(videos)))
        ax.set_xticklabels(labels, fontsize=8, rotation=10)
        ax.grid(axis="y", alpha=0.3)
    for j, v in enumerate(videos):
        rt = v.get("source_fps")
        if rt:
            axes[0].hlines(rt, j - 0.45, j + 0.45, colors="k", linestyles="dotted", linewidth=1)
        ratio = v["ratio"].get("best")
        if ratio:
            top = max(_num(v["throughput"][t]["fps"]) for t in every)
            axes[0].annotate(f"{ratio:.2f}x", (j + width, top * 1.06), ha="center", fontsize=9, fontweight="bold",
                             color=COLOURS["occlupose"])
    highest = max(_num(v["throughput"][t]["fps"]) for v in videos for t in every)
    axes[0].set_ylim(top=max([highest] + [_num(v.get("source_fps")) for v in videos]) * 1.18)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=9, frameon=False)
    s = report["settings"]
    fig.suptitle(f"occlupose bench: imgsz {s['imgsz']}, {s['device']}, {s['cores']} cores "
                 f"(dotted: source frame rate)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(x) -> float:
    return float(x) if x is not None else 0.0


def _fmt(y: float) -> str:
    if y == 0 or y >= 10:
        return f"{y:.0f}" if y == int(y) else f"{y:.1f}"
    return f"{y:.3g}"
