"""A sweep's figure: PSNR and MS-SSIM (dB) against bits per pixel, every codec, as PNG, PDF and SVG."""
from __future__ import annotations

import math
from pathlib import Path

from vqzip.eval.points import METRICS, VQZIP
from vqzip.eval.record import Run, title

MARKERS = {VQZIP: "o", "jpeg": "s", "webp": "^", "avif": "D", "jp2": "v", "jxl": "P"}


def figure(summary: dict, run: Run):
    """PSNR and MS-SSIM (dB) against bpp for every codec, side by side: vqzip's points labelled
    with their quality levels, each codec's library in the legend, axes around every point."""
    from matplotlib.figure import Figure  # no pyplot: no backend or global figure state

    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (metric, label, _) in zip(axes, METRICS):
        xs, ys = [], []
        for k, (name, s) in enumerate(summary.items()):
            r = s["results"]
            x, y = r["bpp"], r[metric]
            ours = name == VQZIP
            legend = (f"vqzip {run.vqzip} ({', '.join(dict.fromkeys(lv['model'] for lv in run.levels))})" if ours else
                      f"{run.codecs[name]['label']} ({run.codecs[name]['library'].split(' (')[0]})" if name in run.codecs else name)
            ax.plot(x, y, marker=MARKERS.get(name, "o"), ms=4 if ours else 3, lw=1.6 if ours else 0.9,
                    ls="-" if ours else "--", color=f"C{k}", label=legend, zorder=3 if ours else 2)
            if ours:
                for xi, yi, q in zip(x, y, r["setting"]):
                    ax.annotate(f"q{q}", (xi, yi), xytext=(3, -9), textcoords="offset points", fontsize=6.5, color=f"C{k}")
            xs += [v for v in x if math.isfinite(v)]
            ys += [v for v in y if math.isfinite(v)]
        if xs:  # every point inside, with a margin (and room for the level labels)
            ax.set_xlim(0, max(xs) * 1.06)
            pad = 0.06 * (max(ys) - min(ys) or 1)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, lw=0.5)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Rate-distortion on {title(run)}", fontsize=10)
    return fig


def plot(summary: dict, run: Run, stem: Path) -> list[Path]:
    """The figure as stem.png (200 dpi), stem.pdf and stem.svg (text kept as text, TrueType
    fonts in the PDF, no dates inside, so reruns give the same files)."""
    import matplotlib

    paths = [stem.with_suffix(s) for s in (".png", ".pdf", ".svg")]
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "vqzip"}):
        fig = figure(summary, run)
        fig.savefig(paths[0], dpi=200)
        fig.savefig(paths[1], metadata={"CreationDate": None})
        fig.savefig(paths[2], metadata={"Date": None})
    return paths
