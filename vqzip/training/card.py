"""MODEL_CARD.md: what a shipped model is, how it was trained (every command), and its figures."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from vqzip import priors, zoo
from vqzip.training.export import CALIBRATION_MAPS
from vqzip.training.loop import command_line


def _stages(meta: dict) -> list[dict]:
    """A phase's training record and those it was fine-tuned from (`init`), oldest first."""
    return (_stages(meta["init"]) if "init" in meta else []) + [meta]


def _walk_tiles(folder: Path) -> str | None:
    """The independent tiles the priors walk (`vqzip train export --tile`) in words, None for whole maps."""
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        if "prior.0.walk.tile" not in f.keys():
            return None
        rows, cols = (int(v) for v in f.get_tensor("prior.0.walk.tile"))
    return f"bands of {rows} rows" if not cols else f"columns {cols} wide" if not rows else f"tiles of {rows}x{cols} codes"


def _rdo_codes(c: dict) -> str:
    """Phase III's training codes (`vqzip train rdo-codes`'s record) in words."""
    wall = f", {c['wall_seconds'] / 60:.0f} min ({c['wall_note']})" if "wall_seconds" in c else ""
    return (f"the code maps RDO chose (`vqzip train rdo-codes --lambdas {','.join(f'{v:g}' for v in c['lambdas'])}`:"
            f" {c['images']} training images at each λ, chosen under the priors of the row before it, integer model"
            f" sha256 `{c['chooser_sha256'][:16]}…`{wall})")


def write_card(folder: Path, entry: dict, kodak: dict | None, rd: dict | None = None) -> Path:
    """MODEL_CARD.md from the model's config.json (training record), its quality levels in the
    manifest beside it, a bench/kodak.py result, a `vqzip rd-curve` vqzip.json, and the running
    export command."""
    cfg = json.loads((folder / "config.json").read_text())
    tr, net_cfg = cfg["training"], cfg["net"]
    net, prior_cfgs = zoo.build(cfg)
    prior_params = sum(p.numel() for c in prior_cfgs for p in priors.float_prior(c).parameters())
    maps = ", ".join(f"{m.name} (1/{m.stride}, {m.num_codes} codes)" for m in net.maps)
    lines = [
        f"# {cfg['name']}",
        "",
        f"Architecture `{cfg['arch']}`: a hierarchical VQ-VAE with {len(net.maps)} code maps, {maps}, each",
        "with a PixelCNN prior conditioned on the maps before it, and a preview head that makes a",
        f"quarter-size image from the top codes alone (trained with loss weight {net_cfg['preview']}).",
        "",
        f"- weights: `model.safetensors`, sha256 `{entry['sha256']}`",
        f"- parameters: network {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M, priors {prior_params / 1e6:.2f} M",
        f"- code vectors of dimension {net_cfg['code_dim']}",
        f"- prior reach: {prior_cfgs[0].reach} rows up and columns aside",
        *([f"- each code map is decoded in independent {tiles} (a tile's first rows and columns do not see its neighbours)"]
          if (tiles := _walk_tiles(folder)) else []),
        "- the priors ship in integer form (`priors/fixedpoint.py`): int8 weights and integer activations,",
        f"  calibrated at export on {CALIBRATION_MAPS} code maps of training images (`priors/calibrate.py`); every rate",
        "  below is from these integer priors, which is what the codec codes with",
        "",
        "## Data",
        "`../shared/data/train` (618 photos: BSDS500, Urban100, McMaster), less every 20th image in sorted",
        "order, which is held out for validation: 587 training images, 31 validation images. Kodak was",
        "never used in training or in choosing the design.",
        "",
        "## Training",
        "| phase | steps | batch | crop | lr | wall time | hardware | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    kept = tr.get("kept_priors")
    # kept priors' rows before the run's own, so that the last row is the last training of this run
    for phase, record, label in [("vqvae", tr["vqvae"], ""),
                                 *([("prior", kept["training"]["prior"], f" ({', '.join(kept['maps'])}: kept)")] if kept else []),
                                 ("prior", tr["prior"], "")]:
        for k, m in enumerate(_stages(record)):
            t = m["train"]
            start = t.get("start", 0)
            name = phase if k == 0 else f"{phase}, continued from step {start}" if start else f"{phase}, fine-tuned"
            only = m.get("maps_trained") or m.get("config", {}).get("maps_trained")
            name += f" ({', '.join(only)} only)" if only else label
            lines.append(f"| {name} | {m['steps_done'] - start} | {t['batch']} | {t['crop']} px | {t['lr']} cosine to {t['min_lr']} | "
                         f"{m['wall_seconds'] / 60:.1f} min | {m.get('hardware', '?')}, {m['torch_threads']} threads | `{m['command']}` |")
    lines += [""] + [f"- {p}: {m['launched_as']}" for p in ("vqvae", "prior") for m in _stages(tr[p]) if "launched_as" in m]
    if "codes" in tr:
        lines.append(f"- The last prior row trained on {_rdo_codes(tr['codes'])}; the rows before it on the nearest codes.")
    if kept:
        kc = kept["training"].get("codes")
        lines.append(f"- The priors of the {', '.join(kept['maps'])} map(s) are those of {kept['model']} as it was (sha256"
                     f" `{kept['sha256'][:16]}…`), unchanged, integer tensors included; the rows marked kept are their training"
                     + (f", the last of them on {_rdo_codes(kc)}, the others on the nearest codes" if kc else "")
                     + ". The other rows trained the rest.")
    lines += [f"- {p}: a snapshot, {m['snapshot']}: its learning rate had not finished its schedule"
              for p in ("vqvae", "prior") for m in _stages(tr[p]) if "snapshot" in m]
    if any(len(_stages(tr[p])) > 1 for p in ("vqvae", "prior")):
        lines.append("- A fine-tuned or continued phase started from the weights of the row above it (`--init`); a continued"
                     " one took up its learning-rate schedule at the step it names (`--start-step`).")
    lines += ["- Wall times are as measured on a shared machine: other work ran on the same cores at times.",
              f"- Packed by `{command_line()}`.", ""]
    val = entry.get("validation")
    if val:
        lines += [f"## Validation ({val['images']} held-out training-set images)",
                  f"PSNR {val['psnr']:.2f} dB, priors' estimated rate {val['estimated_bpp']:.4f} bpp; the preview (top level"
                  f" alone) {val['preview_psnr']:.2f} dB against the image reduced 4x (box filter).", ""]
    if kodak:
        k = kodak["mean"]
        lines += ["## Kodak (24 images, through the real codec)",
                  "| mean bpp (file size) | priors' estimate | mean PSNR-RGB | compress s | decompress s | preview s | preview PSNR (4x reduced) |",
                  "|---|---|---|---|---|---|---|",
                  f"| {k['bpp']:.4f} | {k['estimated_bpp']:.4f} | {k['psnr']:.2f} dB | {k['encode_s']:.2f} | {k['decode_s']:.2f} "
                  f"| {k['preview_s']:.3f} | {k['preview_psnr']:.2f} dB |",
                  "", f"Measured by `python bench/kodak.py {kodak['images']} --json {kodak['json']}` with the model loaded once,",
                  f"{kodak['threads']} torch threads.", ""]
    levels = {q: lv for q, lv in json.loads((folder.parent / "manifest.json").read_text())["levels"].items()
              if lv["model"] == cfg["name"]}
    if not levels:
        lines += ["## Quality levels", f"None: the model is used by name (`vqzip compress -m {folder.name}`), at scale 1 "
                  "with every stage and nearest codes."]
    else:
        lines += ["## Quality levels",
                  "Each level codes the image resampled (Lanczos) by its scale (the decoder resamples back), the maps"
                  " after the first level's that it names (all: every map), its codes chosen with the RDO multiplier"
                  " lambda (0: nearest codes), and the fine level skipped in the blocks where it saves less than"
                  " `skip` squared error per bit (0: coded whole).", "",
                  "| level | scale | maps after first | lambda | skip | Kodak bpp | Kodak PSNR-RGB | Kodak MS-SSIM | compress s | decompress s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        r = rd["results"] if rd else {"setting": []}
        for q, lv in levels.items():
            k = r["setting"].index(q) if q in r["setting"] else None
            cells = ("",) * 5 if k is None else (f"{r['bpp'][k]:.4f}", f"{r['psnr-rgb'][k]:.2f} dB", f"{r['ms-ssim-rgb-db'][k]:.2f} dB",
                                                  f"{r['encoding_time'][k]:.2f}", f"{r['decoding_time'][k]:.2f}")
            lines.append(f"| {q} | {lv['scale']} | {lv.get('stages', 'all')} | {lv.get('lam', 0):g} | {lv.get('skip', 0):g} | " + " | ".join(cells) + " |")
        if rd:
            lines += ["", "Kodak figures: `vqzip rd-curve ../shared/data/kodak --out results/kodak` (real files, decoded pixels;"
                      " seconds per image as that run measured them, its `run.json` says with how many jobs and threads)."]
    path = folder / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
