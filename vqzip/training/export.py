"""From a run folder to a shipped model: the priors made integer, validation, the manifest."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vqzip.priors.calibrate import calibrate
from vqzip.priors.pixelcnn import PixelCNN
from vqzip import data, metrics, zoo
from vqzip.codec import decode_pixels, encode_codes, ideal_bits, preview_pixels
from vqzip.models import MapSpec
from vqzip.training.autoencoder import load_net
from vqzip.training.priors import CodeMaps, load_codes, load_priors

CALIBRATION_MAPS = 16


def fixed_point_priors(priors: list[PixelCNN], specs: list[MapSpec], maps: CodeMaps) -> list[dict[str, torch.Tensor]]:
    """Every prior's integer tensors, calibrated on the code maps of CALIBRATION_MAPS images
    spread evenly over the list."""
    picked = [[torch.from_numpy(m.astype(np.int64)) for m in maps[i]]
              for i in np.linspace(0, len(maps) - 1, min(CALIBRATION_MAPS, len(maps))).astype(int)]
    return [calibrate(prior, [(ms[k], [ms[j] for j in spec.conds]) for ms in picked])
            for k, (prior, spec) in enumerate(zip(priors, specs))]


def export(run, folder, tile: tuple[int, int] = (0, 0)) -> Path:
    """Join a run's network and its priors, made integer and calibrated on the code maps phase II
    trained on, into one model folder: model.safetensors and config.json. With `tile` (rows,
    columns; 0 for the whole height or width) every prior walks its map in independent tiles of
    that size (`vqzip.priors.decode`)."""
    run = Path(run)
    net = load_net(run)
    fixed = fixed_point_priors(load_priors(run), net.maps, load_codes(run))
    if any(tile):
        for t in fixed:
            t["walk.tile"] = torch.tensor(tile, dtype=torch.int32)
    tensors = zoo.model_tensors(net, fixed)
    vq_meta, prior_meta = (json.loads((run / f"{n}.json").read_text()) for n in ("vqvae", "prior"))
    config = {"name": Path(folder).name, "arch": vq_meta.pop("arch"), "net": vq_meta.pop("config"),
              "priors": prior_meta.pop("config")["priors"], "training": {"vqvae": vq_meta, "prior": prior_meta}}
    if (run / "rdo-codes.json").is_file():  # phase III: the priors' last training was on RDO's codes
        config["training"]["codes"] = json.loads((run / "rdo-codes.json").read_text())
    return zoo.save_folder(folder, tensors, config)


@torch.no_grad()
def validate(folder: Path, data_dir) -> dict:
    """PSNR, the priors' teacher-forced bpp, and the preview's PSNR against the image reduced 4x,
    of an exported model on the held-out validation images."""
    model = zoo.load_folder(folder)
    psnr, bpp, preview = [], [], []
    for f in data.split(data.list_images(data_dir), "val"):
        pixels = data.load_rgb(f)
        h, w = pixels.shape[:2]
        codes = encode_codes(model.net, pixels)
        psnr.append(metrics.psnr(decode_pixels(model.net, codes, w, h), pixels))
        preview.append(metrics.preview_psnr(preview_pixels(model.net, codes[0], w, h), pixels))
        bits = sum(ideal_bits(p, codes[k], [codes[j] for j in m.conds]) for k, (m, p) in enumerate(zip(model.maps, model.priors)))
        bpp.append(bits / (h * w))
    return {"images": len(psnr), "psnr": float(np.mean(psnr)), "estimated_bpp": float(np.mean(bpp)),
            "preview_psnr": float(np.mean(preview))}


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


def check_ladder(root: Path, levels: dict[str, dict], default: int, adding: str) -> None:
    """`set_ladder`'s checks, made before model `adding` is exported and registered (so a bad
    ladder costs no export): a ModelError names the first bad field."""
    _laddered(root, levels, default, adding)


def set_ladder(root: Path, levels: dict[str, dict], default: int) -> None:
    """Replace every quality level of root/manifest.json with `levels` ({"N": {model, scale,
    stages?, lam?, skip?}}, as `bench/choose_levels.py` prints them: a family's ladder, possibly across
    models) and make level `default` the default. The new manifest is checked whole first (a
    ModelError names the bad field), so a bad ladder leaves the old one in place."""
    path = root / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_laddered(root, levels, default), indent=2) + "\n")
    tmp.replace(path)


def _laddered(root: Path, levels: dict[str, dict], default: int, adding: str | None = None) -> dict:
    """root's manifest with `levels` and `default` in place of its own, checked (with `adding`
    counted among its models, as it will be once registered)."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    if adding is not None:
        manifest["models"][adding] = {"folder": adding, "sha256": "0" * 64}
    manifest.update(levels=levels, default=default)
    zoo.check_manifest(manifest, path)
    return manifest
