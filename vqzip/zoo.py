"""Shipped models and quality levels: checkpoints/manifest.json names each model's folder and
sha256, and maps each quality level to a model and the scale the image is coded at.

A model folder holds `model.safetensors` (keys `vqvae.*`: the VQ-VAE's float weights;
`top_prior.*`, `bottom_prior.*`: the priors' integer tensors, see `priors.fixedpoint`),
`config.json` (the three configs and the training record) and `MODEL_CARD.md`. Weights are loaded without pickle and
only after their sha256 matches the manifest. A .vqz file names its model by the first 8
bytes of that sha256, so a file made with another model is recognised as such.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from priors.fixedpoint import FixedPointPrior
from priors.pixelcnn import PixelCNN, PixelCNNConfig
from vqzip.errors import ModelError
from vqzip.vqvae import VQVAE, VQVAEConfig

def checkpoints_dir() -> Path:
    """$VQZIP_CHECKPOINTS, else the checkpoints/ folder of this source tree."""
    return Path(os.environ.get("VQZIP_CHECKPOINTS") or Path(__file__).resolve().parent.parent / "checkpoints")


@dataclass
class CodecModel:
    name: str
    sha256: str
    vqvae: VQVAE
    top_prior: FixedPointPrior
    bottom_prior: FixedPointPrior

    @property
    def hash8(self) -> bytes:
        return bytes.fromhex(self.sha256)[:8]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest() -> dict:
    path = checkpoints_dir() / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"model manifest {path} is not valid JSON: {e}") from None
    ok = isinstance(m, dict) and isinstance(m.get("models"), dict) and isinstance(m.get("levels"), dict)
    if not ok or not all(isinstance(lv, dict) and lv.get("model") in m["models"] and "scale" in lv
                         for lv in m["levels"].values()):
        raise ModelError(f"model manifest {path} is not in the expected layout (default, levels, models)")
    return m


@dataclass(frozen=True)
class Level:
    """A quality level: a model, and the scale images are resampled to before coding."""

    quality: int
    model: str
    scale: Fraction


def levels() -> list[Level]:
    """Every shipped quality level, in increasing order."""
    return sorted((Level(int(q), e["model"], Fraction(e["scale"])) for q, e in manifest()["levels"].items()),
                  key=lambda lv: lv.quality)


def level(quality: int | None) -> Level:
    """The level of that number, or the default level for None."""
    if quality is None:
        quality = manifest()["default"]
    for lv in levels():
        if lv.quality == quality:
            return lv
    raise ModelError(f"no quality level {quality}; available: {', '.join(str(lv.quality) for lv in levels())}")


def name_for_hash(hash8: bytes) -> str | None:
    for name, entry in manifest()["models"].items():
        if bytes.fromhex(entry["sha256"])[:8] == hash8:
            return name
    return None


def load(name: str) -> CodecModel:
    """A shipped model by name, its weights checked against the manifest's sha256; loaded once."""
    return _load_cached(str(checkpoints_dir()), name)


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, name: str) -> CodecModel:
    entries = manifest()["models"]
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; shipped: {', '.join(sorted(entries))}")
    folder = Path(root) / entries[name]["folder"]
    return load_folder(folder, expected_sha256=entries[name]["sha256"], name=name)


def load_folder(folder: str | Path, expected_sha256: str | None = None, name: str | None = None) -> CodecModel:
    """A model from a folder with model.safetensors and config.json (as `vqzip train export` writes)."""
    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"missing weights file {weights}")
    digest = sha256_file(weights)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ModelError(f"weights {weights} are damaged: sha256 {digest[:16]}… does not match the manifest")
    try:
        cfg = json.loads((folder / "config.json").read_text())
        tensors = load_file(str(weights))
    except (OSError, json.JSONDecodeError, SafetensorError) as e:
        raise ModelError(f"cannot read model in {folder}: {e}") from None
    try:
        vqvae = VQVAE(VQVAEConfig(**cfg["vqvae"]))
        vqvae.load_state_dict(_part(tensors, "vqvae"))
        priors = {p: FixedPointPrior(PixelCNNConfig(**cfg[p]), _part(tensors, p)) for p in ("top_prior", "bottom_prior")}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"weights in {weights} do not fit config.json: {str(e).splitlines()[0]}") from None
    # channels-last convolutions run the VQ-VAE ~1.4x faster on CPU (same codes on Kodak)
    vqvae = vqvae.eval().to(memory_format=torch.channels_last)
    return CodecModel(name or cfg.get("name", folder.name), digest, vqvae, **priors)


def _part(tensors: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    prefix = part + "."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def build(cfg: dict) -> dict[str, torch.nn.Module]:
    """Fresh float networks from a model config dict (the priors as trained, before
    `priors.calibrate` turns them into the integer tensors a model folder ships)."""
    return {
        "vqvae": VQVAE(VQVAEConfig(**cfg["vqvae"])),
        "top_prior": PixelCNN(PixelCNNConfig(**cfg["top_prior"])),
        "bottom_prior": PixelCNN(PixelCNNConfig(**cfg["bottom_prior"])),
    }


def save_folder(folder: str | Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """Write a model folder that `load_folder` reads: tensors keyed `<part>.<name>`, and config."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def model_tensors(vqvae: VQVAE, fixed_priors: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The tensors of a model folder, keyed as `save_folder` expects: the VQ-VAE's state and
    each prior's integer tensors, {"top_prior": ..., "bottom_prior": ...}."""
    out = {f"vqvae.{k}": v for k, v in vqvae.state_dict().items()}
    out.update({f"{part}.{k}": v for part, t in fixed_priors.items() for k, v in t.items()})
    return out
