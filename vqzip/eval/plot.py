"""A sweep's figure: each quality measured (PSNR, MS-SSIM in dB, SSIMULACRA 2) against bits per
pixel, one panel each, every codec run and every published curve given, as PNG, PDF and SVG."""
from __future__ import annotations

import math
from pathlib import Path

from vqzip.eval.measures import METRICS
from vqzip.eval.points import VQZIP
from vqzip.eval.record import Run, title
from vqzip.eval.references import Reference

MARKERS = {VQZIP: "o", "jpeg": "s", "webp": "^", "avif": "D", "jp2": "v", "jxl": "P"}
PUBLISHED_MARKERS = "xh*+<>pd"


def figure(summary: dict, run: Run, references: list[Reference] = ()):
    """Each of the run's metrics against bpp, side by side, for every codec: vqzip's points
    labelled with their quality levels, each codec's library in the legend; the published curves
    dotted and thin, with hollow markers, labelled "<name> (published)", on the panels of the
    qualities they give; axes around every point run, and the published ones at those rates."""
    from matplotlib.figure import Figure  # no pyplot: no backend or global figure state

    metrics = [METRICS[n] for n in run.metrics]
    fig = Figure(figsize=(3.6 * len(metrics), 3.2), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    labels = {r["key"]: r["label"] for r in run.references}
    for ax, m in zip(axes, metrics):
        xs, ys = [], []
        for k, (name, s) in enumerate(summary.items()):
            r = s["results"]
            x, y = r["bpp"], r[m.key]
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
        published = []
        for k, ref in enumerate(references):
            if m.key not in ref.results:
                continue
            x, y = ref.results["bpp"], ref.results[m.key]
            ax.plot(x, y, marker=PUBLISHED_MARKERS[k % len(PUBLISHED_MARKERS)], ms=3.5, mfc="none", lw=0.8, ls=":",
                    color=f"C{len(summary) + k % max(1, 10 - len(summary))}", label=labels[ref.key], zorder=1)  # none of the run's
            published += list(zip(x, y))
        if xs:  # every point run inside, with a margin (and room for the level labels), and the published
            right = max(xs) * 1.06  # ones at those rates: theirs may go on far beyond
            ys += [y for x, y in published if x <= right]
            ax.set_xlim(0, right)
            pad = 0.06 * (max(ys) - min(ys) or 1)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(m.label)
        ax.grid(alpha=0.3, lw=0.5)
    entries = {}  # every curve once, a published one lacking the last panel's quality too
    for ax in axes:
        entries |= {label: handle for handle, label in zip(*ax.get_legend_handles_labels()) if label not in entries}
    if len(entries) <= 8:
        axes[-1].legend(entries.values(), entries.keys(), fontsize=7, loc="lower right")
    else:  # more than a panel's corner holds
        fig.legend(entries.values(), entries.keys(), fontsize=6.5, loc="outside right upper")
    fig.suptitle(f"Rate-distortion on {title(run)}", fontsize=10)
    return fig


def plot(summary: dict, run: Run, stem: Path, references: list[Reference] = ()) -> list[Path]:
    """The figure (`figure`) as stem.png (200 dpi), stem.pdf and stem.svg (text kept as text,
    TrueType fonts in the PDF, no dates inside, so reruns give the same files)."""
    import matplotlib

    paths = [stem.with_suffix(s) for s in (".png", ".pdf", ".svg")]
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "vqzip"}):
        fig = figure(summary, run, references)
        fig.savefig(paths[0], dpi=200)
        fig.savefig(paths[1], metadata={"CreationDate": None})
        fig.savefig(paths[2], metadata={"Date": None})
    return paths
