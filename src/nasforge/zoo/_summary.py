"""The zoo at a glance: one row of cost and published accuracy per model, and the accuracy-vs-MACs plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasforge._files import save_figure
from nasforge.errors import NasforgeError
from nasforge.zoo._registry import create, list_models, model_info


def summary(resolution: int = 224, precision: str = "fp32") -> list[dict[str, Any]]:
    """One dict per registered model at ``resolution`` (1000 classes): analytic params, MACs, peak memory and
    weight bytes at ``precision``, plus the published ImageNet top-1 (measured at 224) and its source."""
    rows: list[dict[str, Any]] = []
    for name in list_models():
        cost = create(name, 1000, resolution).cost().at(precision)
        info = model_info(name)
        rows.append({
            "name": name,
            "family": info.family,
            "resolution": resolution,
            "precision": precision,
            "params": cost.params,
            "macs": cost.macs,
            "activations": cost.activations,
            "peak_memory_bytes": cost.peak_memory_bytes,
            "weight_bytes": cost.weight_bytes,
            "top1": info.top1,
            "top1_source": info.top1_source,
            "published_macs": info.macs,
            "macs_source": info.macs_source,
        })
    return rows


def plot_accuracy_vs_macs(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write a PNG of published top-1 against MACs (log scale), one labelled point per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    if out.suffix.lower() != ".png":
        raise NasforgeError(f"plot file {str(out)!r} must end with .png")
    if not out.parent.is_dir():
        raise NasforgeError(f"plot file {str(out)!r}: folder {str(out.parent)!r} does not exist")
    fig = Figure(figsize=(8, 5.5), dpi=120)
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    ax = fig.add_subplot()
    families = sorted({r["family"] for r in rows})
    colors = {f: f"C{i}" for i, f in enumerate(families)}
    for fam in families:
        pts = [r for r in rows if r["family"] == fam]
        ax.scatter([r["macs"] / 1e6 for r in pts], [r["top1"] for r in pts], color=colors[fam], label=fam, s=40)
    for r in rows:
        ax.annotate(r["name"], (r["macs"] / 1e6, r["top1"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    res = sorted({r["resolution"] for r in rows})
    ax.set_xlabel(f"MACs per image at {'/'.join(map(str, res))}x{'/'.join(map(str, res))} (millions, log scale)")
    ax.set_ylabel("published ImageNet top-1 accuracy (fraction, at 224)")
    ax.set_title("Classic networks: accuracy vs compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.margins(x=0.15, y=0.08)
    fig.tight_layout()
    save_figure(fig, out)
    return out
