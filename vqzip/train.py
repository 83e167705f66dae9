"""Training: phase I fits the VQ-VAE on image crops; phase II fits the PixelCNN priors on the
code maps the trained VQ-VAE gives for the training images.

    vqzip train vqvae --data ../shared/data/train --out runs/base --steps 4000
    vqzip train prior --data ../shared/data/train --out runs/base --steps 3000
    vqzip train export --run runs/base --name vqz-base

Export turns the float priors into integer ones (`priors.calibrate`), calibrated on code maps
of training images, and packs them with the VQ-VAE. Every run is seeded and resumable: `state.pt` in the run folder holds the step, the model,
the optimizer and the sampler's RNG, and a rerun of the same command continues from it.
The codec never imports this module.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from priors.calibrate import calibrate
from priors.pixelcnn import PixelCNN, PixelCNNConfig
from vqzip import data, metrics, zoo
from vqzip.codec import decode_pixels, encode_codes, ideal_bits, preview_pixels
from vqzip.errors import VqzError
from vqzip.vqvae import VQVAE, VQVAEConfig


@dataclass
class TrainConfig:
    steps: int = 4000
    batch: int = 16
    crop: int = 128  # image pixels for phase I; phase II uses crop // 4 bottom codes
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup: int = 100
    seed: int = 0
    save_every: int = 250
    log_every: int = 50


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def command_line() -> str:
    """The command that is running, as a user would type it."""
    prog = Path(sys.argv[0]).name
    return shlex.join(["vqzip" if prog == "vqzip" else f"python {sys.argv[0]}"] + sys.argv[1:])


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def save_weights(module: torch.nn.Module, path: Path, config: dict, meta: dict) -> None:
    """safetensors weights plus a JSON config beside them, both written atomically."""
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(path)
    cfg_tmp = path.with_suffix(".json.tmp")
    cfg_tmp.write_text(json.dumps({"config": config, **meta}, indent=2))
    cfg_tmp.replace(path.with_suffix(".json"))


def _run_loop(
    name: str,
    out: Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    sampler,
    step_fn: Callable[[np.ndarray], tuple[torch.Tensor, dict]],
    config: dict,
    progress: Callable[[int, int, dict], None] | None,
    extra: dict | None = None,
) -> dict:
    """The loop both phases share: schedule, clipping, logging, resumable state, final weights."""
    out.mkdir(parents=True, exist_ok=True)
    state_path, log_path = out / f"{name}-state.pt", out / f"{name}-log.jsonl"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        sampler.rng.bit_generator.state = json.loads(state["rng"])

    def save_state():
        tmp = state_path.with_suffix(".tmp")
        rng = json.dumps(sampler.rng.bit_generator.state)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "elapsed": elapsed, "rng": rng}, tmp)
        tmp.replace(state_path)

    model.train()
    t0, stats = time.time() - elapsed, {}
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss, stats = step_fn(sampler.batch(cfg.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.time() - t0
        if step % cfg.log_every == 0 or step == cfg.steps:
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, "seconds": round(elapsed, 1), **stats}) + "\n")
        if progress:
            progress(step, cfg.steps, stats)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_state()
    meta = {"train": asdict(cfg), "steps_done": step, "wall_seconds": round(elapsed, 1),
            "device": str(next(model.parameters()).device), "hardware": hardware(),
            "torch_threads": torch.get_num_threads(), "command": command_line(), **(extra or {})}
    save_weights(model, out / f"{name}.safetensors", config, meta)
    return meta


def _load_init(module: torch.nn.Module, run: Path, name: str, new: str | None = None) -> dict:
    """Load run/NAME.safetensors into module for fine-tuning; only parameters under `new` may be
    missing (they start fresh). Returns the run's training record for the card."""
    try:
        missing, unexpected = module.load_state_dict(load_file(str(run / f"{name}.safetensors")), strict=False)
    except RuntimeError:  # shapes differ
        missing, unexpected = ["(shapes differ)"], []
    if unexpected or any(new is None or not k.startswith(new) for k in missing):
        raise VqzError(f"{run} does not fit this {name} config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return json.loads((run / f"{name}.json").read_text())


def _load_images(root: str | Path) -> list[np.ndarray]:
    return [data.load_rgb(p) for p in data.split(data.list_images(root), "train")]


def train_vqvae(data_dir, out, vq_cfg: VQVAEConfig, cfg: TrainConfig, progress=None, init: Path | None = None) -> dict:
    """Phase I. With `init` (a run folder), start from that run's VQ-VAE weights: parts the new
    config adds (such as the preview head) start fresh, and the card keeps that run's record."""
    torch.manual_seed(cfg.seed)
    device = pick_device()
    model = VQVAE(vq_cfg)
    extra = {} if init is None else {"init": _load_init(model, Path(init), "vqvae", new="head.")}
    model = model.to(device)
    sampler = data.CropSampler(_load_images(data_dir), cfg.crop, cfg.seed)

    def step_fn(batch: np.ndarray):
        x = VQVAE.normalize(torch.from_numpy(batch).to(device).float())
        o = model(x)
        mse = F.mse_loss(o["x_hat"], x)
        preview = F.mse_loss(o["preview"], F.avg_pool2d(x, 4))
        stats = {"mse": mse.item(), "psnr": -10 * math.log10(max(mse.item(), 1e-10)),
                 "preview_psnr": -10 * math.log10(max(preview.item(), 1e-10)), "vq": o["vq_loss"].item(),
                 "top_used": int(o["top"].unique().numel()), "bottom_used": int(o["bottom"].unique().numel())}
        return mse + vq_cfg.preview * preview + o["vq_loss"], stats

    return _run_loop("vqvae", Path(out), model, cfg, sampler, step_fn, vq_cfg.to_dict(), progress, extra)


def load_vqvae(run: Path) -> VQVAE:
    cfg = json.loads((run / "vqvae.json").read_text())["config"]
    model = VQVAE(VQVAEConfig(**cfg))
    model.load_state_dict(load_file(str(run / "vqvae.safetensors")))
    return model.eval()


@torch.no_grad()
def extract_codes(vqvae: VQVAE, files: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(top, bottom) code maps of whole images, through the codec's own path."""
    out = []
    for f in files:
        top, bottom = encode_codes(vqvae, data.load_rgb(f))
        out.append((top.numpy().astype(np.int16), bottom.numpy().astype(np.int16)))
    return out


class CodeCropSampler:
    """Random aligned crops of code maps: size x size bottom codes and the top codes over them."""

    def __init__(self, maps: list[tuple[np.ndarray, np.ndarray]], size: int, seed: int):
        self.maps, self.size = maps, size
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> list[tuple[int, int, int]]:
        out = []
        for _ in range(n):
            k = int(self.rng.integers(len(self.maps)))
            rows, cols = self.maps[k][1].shape
            y = 2 * int(self.rng.integers((rows - self.size) // 2 + 1))
            x = 2 * int(self.rng.integers((cols - self.size) // 2 + 1))
            out.append((k, y, x))
        return out


def cond_canvas_crop(prior, top: torch.Tensor, y: int, x: int, size: int) -> torch.Tensor:
    """Rows [y, y+size+R) and columns [x, x+size+2R) of `prior.cond_canvas(prior.condition(top))`,
    computed from just the top codes they depend on (the condition net reaches 2 top codes)."""
    r = prior.cfg.reach
    (ht, wt), (hb, wb) = top.shape, (2 * top.shape[0], 2 * top.shape[1])
    a0, a1, b0, b1 = y - r, y + size, x - r, x + size + r  # map coordinates of the crop
    ca0, ca1, cb0, cb1 = max(a0, 0), min(a1, hb), max(b0, 0), min(b1, wb)
    t0, t1 = max(ca0 // 2 - 2, 0), min(-(-ca1 // 2) + 2, ht)
    u0, u1 = max(cb0 // 2 - 2, 0), min(-(-cb1 // 2) + 2, wt)
    f = prior.condition(top[None, t0:t1, u0:u1])[0][:, ca0 - 2 * t0 : ca1 - 2 * t0, cb0 - 2 * u0 : cb1 - 2 * u0]
    return F.pad(f, (cb0 - b0, b1 - cb1, ca0 - a0, a1 - ca1))


class PriorPair(torch.nn.Module):
    def __init__(self, top_cfg, bottom_cfg):
        super().__init__()
        self.top_prior, self.bottom_prior = PixelCNN(top_cfg), PixelCNN(bottom_cfg)


def train_prior(data_dir, out, top_cfg, bottom_cfg, cfg: TrainConfig, progress=None, init: Path | None = None) -> dict:
    """Phase II: both priors on crops of the code maps of the training images. With `init` (a run
    folder), start from that run's priors, which must have the same configs."""
    torch.manual_seed(cfg.seed)
    out = Path(out)
    vqvae = load_vqvae(out)
    files = data.split(data.list_images(data_dir), "train")
    cache = out / "codes.npz"
    if cache.exists():
        z = np.load(cache)
        maps = [(z[f"t{i}"], z[f"b{i}"]) for i in range(len(files))]
    else:
        maps = extract_codes(vqvae, files)
        np.savez(cache, **{f"t{i}": t for i, (t, _) in enumerate(maps)}, **{f"b{i}": b for i, (_, b) in enumerate(maps)})
    device = pick_device()
    pair = PriorPair(top_cfg, bottom_cfg)
    extra = {} if init is None else {"init": _load_init(pair, Path(init), "prior")}
    pair = pair.to(device)
    tp, bp = pair.top_prior, pair.bottom_prior
    s = cfg.crop // 4
    sampler = CodeCropSampler(maps, s, cfg.seed)
    tensors = [(torch.from_numpy(t.astype(np.int64)).to(device), torch.from_numpy(b.astype(np.int64)).to(device))
               for t, b in maps]

    def step_fn(batch):
        rt, rb = tp.cfg.reach, bp.cfg.reach
        tc, bc, cc, tt, bt = [], [], [], [], []
        for k, y, x in batch:
            top, bottom = tensors[k]
            ty, tx = y // 2, x // 2
            tc.append(tp.canvas(top[None])[0, ty : ty + s // 2 + rt, tx : tx + s // 2 + 2 * rt])
            bc.append(bp.canvas(bottom[None])[0, y : y + s + rb, x : x + s + 2 * rb])
            cc.append(cond_canvas_crop(bp, top, y, x, s))
            tt.append(top[ty : ty + s // 2, tx : tx + s // 2])
            bt.append(bottom[y : y + s, x : x + s])
        ce_t = F.cross_entropy(tp(torch.stack(tc)), torch.stack(tt), reduction="sum")
        ce_b = F.cross_entropy(bp(torch.stack(bc), torch.stack(cc)), torch.stack(bt), reduction="sum")
        pixels = len(batch) * (4 * s) ** 2
        loss = (ce_t + ce_b) / pixels / math.log(2)  # bits per pixel
        n_t, n_b = len(batch) * (s // 2) ** 2, len(batch) * s * s
        return loss, {"bpp": loss.item(), "top_bits": ce_t.item() / n_t / math.log(2),
                      "bottom_bits": ce_b.item() / n_b / math.log(2)}

    config = {"top_prior": top_cfg.to_dict(), "bottom_prior": bottom_cfg.to_dict()}
    return _run_loop("prior", out, pair, cfg, sampler, step_fn, config, progress, extra)


@torch.no_grad()
def validate(folder: Path, data_dir) -> dict:
    """PSNR, the priors' teacher-forced bpp, and the preview's PSNR against the image reduced 4x,
    of an exported model on the held-out validation images."""
    model = zoo.load_folder(folder)
    psnr, bpp, preview = [], [], []
    for f in data.split(data.list_images(data_dir), "val"):
        pixels = data.load_rgb(f)
        h, w = pixels.shape[:2]
        top, bottom = encode_codes(model.vqvae, pixels)
        psnr.append(metrics.psnr(decode_pixels(model.vqvae, top, bottom, w, h), pixels))
        preview.append(metrics.preview_psnr(preview_pixels(model.vqvae, top, w, h), pixels))
        bits = ideal_bits(model.top_prior, top) + ideal_bits(model.bottom_prior, bottom, top)
        bpp.append(bits / (h * w))
    return {"images": len(psnr), "psnr": float(np.mean(psnr)), "estimated_bpp": float(np.mean(bpp)),
            "preview_psnr": float(np.mean(preview))}


CALIBRATION_MAPS = 16


def fixed_point_priors(top: PixelCNN, bottom: PixelCNN, maps: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Both priors' integer tensors, calibrated on (top, bottom) code maps, CALIBRATION_MAPS of
    them spread evenly over the list."""
    picked = [tuple(torch.from_numpy(m.astype(np.int64)) for m in maps[i])
              for i in np.linspace(0, len(maps) - 1, min(CALIBRATION_MAPS, len(maps))).astype(int)]
    return {"top_prior": calibrate(top, [(t, None) for t, _ in picked]),
            "bottom_prior": calibrate(bottom, [(b, t) for t, b in picked])}


def load_priors(run: Path) -> tuple[PixelCNN, PixelCNN]:
    cfg = json.loads((run / "prior.json").read_text())["config"]
    pair = PriorPair(*(PixelCNNConfig(**cfg[k]) for k in ("top_prior", "bottom_prior")))
    pair.load_state_dict(load_file(str(run / "prior.safetensors")))
    return pair.top_prior.eval(), pair.bottom_prior.eval()


def export(run, folder) -> Path:
    """Join a run's VQ-VAE and its priors, made integer and calibrated on the code maps phase II
    trained on, into one model folder: model.safetensors and config.json."""
    run = Path(run)
    z = np.load(run / "codes.npz")
    maps = [(z[f"t{i}"], z[f"b{i}"]) for i in range(len(z.files) // 2)]
    tensors = zoo.model_tensors(load_vqvae(run), fixed_point_priors(*load_priors(run), maps))
    vq_meta, prior_meta = (json.loads((run / f"{n}.json").read_text()) for n in ("vqvae", "prior"))
    config = {"name": Path(folder).name, "vqvae": vq_meta.pop("config"), **prior_meta.pop("config"),
              "training": {"vqvae": vq_meta, "prior": prior_meta}}
    return zoo.save_folder(folder, tensors, config)


def register(root: Path, name: str, scales: list[Fraction], default_scale: Fraction | None = None,
             validation: dict | None = None) -> dict:
    """Record checkpoints/NAME in manifest.json with the sha256 of its weights, and give it one
    quality level per scale, numbered after the levels of the other models; with default_scale,
    that level becomes the default."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"default": 1, "levels": {}, "models": {}}
    entry = {"folder": name, "sha256": zoo.sha256_file(root / name / "model.safetensors"),
             "size_bytes": (root / name / "model.safetensors").stat().st_size}
    if validation:
        entry["validation"] = validation
    manifest["models"][name] = entry
    kept = [lv for lv in manifest["levels"].values() if lv["model"] != name]
    ours = [{"model": name, "scale": str(s)} for s in scales]
    manifest["levels"] = {str(q): lv for q, lv in enumerate(kept + ours, 1)}
    if default_scale is not None:
        manifest["default"] = len(kept) + 1 + list(scales).index(default_scale)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return entry


def _stages(meta: dict) -> list[dict]:
    """A phase's training record and those it was fine-tuned from (`init`), oldest first."""
    return (_stages(meta["init"]) if "init" in meta else []) + [meta]


def write_card(folder: Path, entry: dict, kodak: dict | None, rd: dict | None = None) -> Path:
    """MODEL_CARD.md from the model's config.json (training record), its quality levels in the
    manifest beside it, a bench/kodak.py result, a `vqzip rd-curve` vqzip.json, and the running
    export command."""
    cfg = json.loads((folder / "config.json").read_text())
    tr = cfg["training"]
    nets = zoo.build(cfg)
    params = {k: sum(p.numel() for p in n.parameters()) for k, n in nets.items()}
    lines = [
        f"# {cfg['name']}",
        "",
        "A hierarchical VQ-VAE (top codes at 1/8, bottom codes at 1/4 of the image size) with a PixelCNN",
        "prior for each level, the bottom one conditioned on the top codes, and a preview head that makes a",
        f"quarter-size image from the top codes alone (trained with loss weight {cfg['vqvae']['preview']}).",
        "",
        f"- weights: `model.safetensors`, sha256 `{entry['sha256']}`",
        "- parameters: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in params.items()),
        f"- codebooks: top {cfg['vqvae']['top_codes']}, bottom {cfg['vqvae']['bottom_codes']} codes of dimension {cfg['vqvae']['code_dim']}",
        f"- prior reach: {cfg['top_prior']['first_kernel'] // 2 + cfg['top_prior']['blocks']} rows up and columns aside",
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
    for phase in ("vqvae", "prior"):
        for k, m in enumerate(_stages(tr[phase])):
            t = m["train"]
            name = phase if k == 0 else f"{phase}, fine-tuned"
            lines.append(f"| {name} | {m['steps_done']} | {t['batch']} | {t['crop']} px | {t['lr']} cosine to {t['min_lr']} | "
                         f"{m['wall_seconds'] / 60:.1f} min | {m.get('hardware', '?')}, {m['torch_threads']} threads | `{m['command']}` |")
    lines += [""] + [f"- {p}: {m['launched_as']}" for p in ("vqvae", "prior") for m in _stages(tr[p]) if "launched_as" in m]
    if any(len(_stages(tr[p])) > 1 for p in ("vqvae", "prior")):
        lines.append("- A fine-tuned phase started from the weights of the row above it (`--init`).")
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
    lines += ["## Quality levels",
              "Each level codes the image resampled (Lanczos) by its scale, and the decoder resamples back.", "",
              "| level | scale | Kodak bpp | Kodak PSNR-RGB | Kodak MS-SSIM |", "|---|---|---|---|---|"]
    r = rd["results"] if rd else {"setting": []}
    for q, lv in levels.items():
        k = r["setting"].index(q) if q in r["setting"] else None
        cells = ("", "", "") if k is None else (f"{r['bpp'][k]:.4f}", f"{r['psnr-rgb'][k]:.2f} dB", f"{r['ms-ssim-rgb-db'][k]:.2f} dB")
        lines.append(f"| {q} | {lv['scale']} | " + " | ".join(cells) + " |")
    if rd:
        lines += ["", "Kodak figures: `vqzip rd-curve ../shared/data/kodak --out results/kodak` (real files, decoded pixels)."]
    path = folder / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
