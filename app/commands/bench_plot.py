"""``harmonicam bench --plot PATH``: the benchmark table as a bar chart (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

from models.ops.files import atomic_path


def plot_results(results: list[dict], path: Path) -> None:
    """End-to-end FPS per row (device, runtime, resolution, blend + harmonizer), idle and busy side by side;
    written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    def label(r: dict) -> str:
        return f"{r['device']} {r.get('runtime', 'torch')} {r['resolution']}\n{r['blend']} + {r['harmonizer']}"

    groups = list(dict.fromkeys(label(r) for r in results))
    loads = sorted({r.get("busy_cores", 0) for r in results})
    width = 0.8 / len(loads)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups)), 4.0), dpi=120)
    for k, busy in enumerate(loads):
        fps = {label(r): r["fps"]
               for r in results if r.get("busy_cores", 0) == busy}
        xs = [i + (k - (len(loads) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [fps.get(g, 0) for g in groups], width, label="idle" if busy == 0 else f"{busy} core(s) busy")
    ax.axhline(30, color="grey", linewidth=0.8, linestyle="--")  # camera rate
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel("frames per second (end to end)")
    ax.set_title("harmonicam bench")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
