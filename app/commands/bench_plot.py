"""``harmonicam bench --plot PATH``: the benchmark table as a bar chart (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

from app.commands.plain_reference import PLAIN
from models.ops.files import atomic_path


def _panel(r: dict) -> str:
    return f"{r['device']}, {r.get('runtime', 'torch')}, {r['resolution']}"


def _pair(r: dict) -> str:
    return PLAIN if r["blend"] == PLAIN else f"{r['blend']}\n+ {r['harmonizer']}"


def _in_panel(r: dict, panel: str) -> bool:
    """The plain reference row belongs to every panel of its resolution: it is each panel's yardstick."""
    return _panel(r) == panel or (r["blend"] == PLAIN and panel.endswith(f", {r['resolution']}"))


def plot_results(results: list[dict], path: Path) -> None:
    """End-to-end FPS, one panel per device, runtime and resolution and one group of bars per blend +
    harmonizer (the plain reference first), idle and busy side by side; written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(_panel(r) for r in results if r["blend"] != PLAIN))
    pairs = list(dict.fromkeys(_pair(r) for r in results))
    loads = sorted({r.get("busy_cores", 0) for r in results})
    width = 0.8 / len(loads)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 1.0 * len(pairs) + 1.5), 2.8 * len(panels)),
                             dpi=120, squeeze=False, sharey=True)
    for ax, panel in zip(axes[:, 0], panels):
        rows = [r for r in results if _in_panel(r, panel)]
        for k, busy in enumerate(loads):
            fps = {_pair(r): r["fps"] for r in rows if r.get("busy_cores", 0) == busy}
            xs = [i + (k - (len(loads) - 1) / 2) * width for i in range(len(pairs))]
            ax.bar(xs, [fps.get(p, 0) for p in pairs], width,
                   label="idle" if busy == 0 else f"{busy} core(s) busy", color=f"C{k}")
        ax.axhline(30, color="grey", linewidth=0.8, linestyle="--")  # camera rate
        ax.set_xticks(range(len(pairs)), pairs, fontsize=8)
        ax.set_title(panel, fontsize=9, loc="left")
        ax.set_ylabel("FPS (end to end)", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("harmonicam bench", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
