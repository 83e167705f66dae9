"""A sweep's results: per codec, CompressAI's results layout, and the files a sweep writes.

    summarize(points, descriptions) -> {codec: {name, description, results: one entry per setting}}
    write(out, points, summary, bds, run, references) -> rd.csv, <codec>.json, bd-rate.json,
        bd-rate.md, run.json, rd.png, rd.pdf, rd.svg and rd.caption.txt
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vqzip import metrics
from vqzip.eval.bdrate import bd_table
from vqzip.eval.measures import METRICS
from vqzip.eval.plot import plot
from vqzip.eval.points import VQZIP, Point
from vqzip.eval.record import Run, label, title
from vqzip.eval.references import Reference


def summarize(points: list[Point], descriptions: dict[str, str]) -> dict[str, dict]:
    """Per codec, CompressAI's results layout: one entry per setting, means over the images,
    settings in increasing rate, with the qualities measured: psnr-rgb; ms-ssim-rgb (the raw
    index) and ms-ssim-rgb-db, that mean in dB, as CompressAI's plots and published curves take
    it; ssimulacra2."""
    def mean(ps: list[Point], field: str) -> float | None:
        values = [getattr(p, field) for p in ps]
        return None if None in values else float(np.mean(values))

    out = {}
    for name in dict.fromkeys(p.codec for p in points):
        rows = {}
        for p in points:
            if p.codec == name:
                rows.setdefault(p.setting, []).append(p)
        means = sorted(({k: mean(ps, k) for k in ("bpp", "psnr", "ms_ssim", "ssimulacra2", "encode_s", "decode_s")}
                        | {"setting": s} for s, ps in rows.items()), key=lambda m: m["bpp"])
        r = {"setting": [m["setting"] for m in means], "bpp": [m["bpp"] for m in means]}
        if means[0]["psnr"] is not None:
            r["psnr-rgb"] = [m["psnr"] for m in means]
        if means[0]["ms_ssim"] is not None:
            r["ms-ssim-rgb"] = [m["ms_ssim"] for m in means]
            r["ms-ssim-rgb-db"] = [metrics.mean_db([p.ms_ssim for p in rows[m["setting"]]]) for m in means]
        if means[0]["ssimulacra2"] is not None:
            r["ssimulacra2"] = [m["ssimulacra2"] for m in means]
        r["encoding_time"], r["decoding_time"] = [m["encode_s"] for m in means], [m["decode_s"] for m in means]
        if name == VQZIP:
            r["estimated_bpp"] = [float(np.mean([p.estimated_bpp for p in rows[m["setting"]]])) for m in means]
        out[name] = {"name": name, "description": descriptions.get(name, name), "results": r}
    return out


def write(out: Path, points: list[Point], summary: dict, bds: dict, run: Run,
          references: list[Reference] = ()) -> list[Path]:
    """rd.csv (every image and setting; a quality not measured left empty), <codec>.json,
    bd-rate.json and bd-rate.md (every curve against every other, the published ones included),
    run.json (which published files, with their sha256), the figure with the published curves
    as rd.png, rd.pdf and rd.svg, and its caption, rd.caption.txt, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "rd.csv"]
    with open(files[0], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(points[0])))
        w.writeheader()
        w.writerows(asdict(p) for p in points)
    for name, s in summary.items():
        files.append(out / f"{name}.json")
        files[-1].write_text(json.dumps(s, indent=2) + "\n")
    files.append(out / "bd-rate.json")
    files[-1].write_text(json.dumps({
        "note": "bd_rate_percent[test][anchor][quality]: the test curve's rate change against the anchor's at equal "
                "quality (negative: fewer bits); null where undefined", "metrics": [METRICS[n].key for n in run.metrics],
        "curves": {k: label(run, k) for k in bds}, "references": run.references, "bd_rate_percent": bds}, indent=2) + "\n")
    files.append(out / "bd-rate.md")
    files[-1].write_text(bd_table(bds, run))
    files.append(out / "run.json")
    files[-1].write_text(json.dumps(asdict(run) | {"timings_disturbed": run.disturbed}, indent=2) + "\n")
    files += plot(summary, run, out / "rd", references)
    files.append(out / "rd.caption.txt")
    files[-1].write_text(caption(summary, run))
    return files


def caption(summary: dict, run: Run) -> str:
    """The figure's caption, then everything needed to reproduce it: versions, settings, models."""
    models = {lv["model"]: lv["sha256"] for lv in run.levels}
    codecs = ", ".join(f"{c['label']} ({c['library']}; {c['setting']} {', '.join(map(str, c['settings']))})"
                       for c in run.codecs.values())
    load = ", ".join(f"{k} {v:.2f}" for k, v in run.load_average.items() if v is not None) or "not available"
    others = "not measured" if run.others_busy is None else f"{run.others_busy:.2f} cores"
    text = [
        f"Rate-distortion on {title(run)}: {_qualities(run.metrics)} of the decoded "
        f"8-bit RGB pixels against bits per pixel of the coded files, averaged over the images at each setting. "
        f"vqzip {run.vqzip} at quality levels "
        + ", ".join(f"q{lv['quality']} (scale {lv['scale']}" + (f", lambda {lv['lambda']:g}" if lv["lambda"] else "") + ")"
                    for lv in run.levels)
        + f" of model{'s' * (len(models) > 1)} " + ", ".join(models) + (f"; {codecs}." if codecs else ".")
        + (" Published curves, not run here (dotted): " + ", ".join(r["label"].removesuffix(" (published)")
                                                                     for r in run.references) + "." if run.references else ""),
        "",
        f"vqzip {run.vqzip}; models (sha256): " + "; ".join(f"{m} {h}" for m, h in models.items()),
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in run.libraries.items()),
        *(f"{c['label']}: {c['library']}; {c['description']}; {c['setting']} {', '.join(map(str, c['settings']))}"
          for c in run.codecs.values()),
        *(f"{r['label']}: {r['file']} (sha256 {r['sha256']})" for r in run.references),
        f"Run: {run.date}, {run.machine}, {run.cores} cores, threads {run.threads or 'one per core'}, "
        f"{run.jobs} job{'s' * (run.jobs != 1)}; 1-minute load average {load}; other processes kept {others} busy "
        "during the run" + ("; timings disturbed" if run.disturbed else ""),
    ]
    return "\n".join(text) + "\n"


def _qualities(names: list[str]) -> str:
    """'PSNR-RGB, MS-SSIM (in dB, ...) and SSIMULACRA 2', as the caption names the metrics."""
    words = {"psnr": "PSNR-RGB", "ms-ssim": "MS-SSIM (in dB, -10 log10(1 - MS-SSIM) of the mean index)",
             "ssimulacra2": "SSIMULACRA 2 (the ssimulacra2 package)"}
    said = [words[n] for n in names]
    return said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
