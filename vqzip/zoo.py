"""The model zoo: models loaded from their folders, checked against their manifest (where they
are found and what each manifest.json says is `vqzip.manifest`, re-exported here: the folders,
the quality levels, `manifest()`).

A model folder holds `model.safetensors` (keys `net.*`: the network's float weights;
`prior.K.*`: the integer tensors of code map K's prior, of its kind: `vqzip.priors.registry`),
`config.json` (`arch`, the network's config `net`, one config per map in `priors`, and the
training record) and `MODEL_CARD.md`. Weights are loaded without pickle and only after their
sha256 matches the manifest, and the config only if its decoding fields (all but `name` and
`training`: they shape the network and the priors) match the manifest's digests of them
(`config_digests`). A .vqz file names its model by the first 8 bytes of the weights' sha256,
so a file made with another model is recognised as such. vqzip 0.2's weights file (keys
`vqvae.*`, `top_prior.*`, `bottom_prior.*`) is read as it is, renamed on load, so its sha256
and the files made with it stay valid.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vqzip import priors as prior_kinds
from vqzip.priors import fixedpoint
from vqzip.runtime import one_thread
from vqzip import models
from vqzip.errors import ModelError
from vqzip.fileio import write_atomic
from vqzip.models import MapSpec, VQVAE2
# The zoo's other half, re-exported: where models are and what the manifests say (`vqzip.manifest`)
from vqzip.manifest import (Expected, Level, check_manifest, checkpoints_dir, config_digests, expected,
                            given_dirs, level, levels, manifest, more_folders, name_for_hash, search_path, user_dir)
from vqzip.manifest import _for_hash, _manifest

__all__ = ["CodecModel", "Expected", "Level", "build", "check_manifest", "checkpoints_dir", "config_digests", "expected",
           "given_dirs", "level", "levels", "load", "load_folder", "load_for_hash", "manifest", "model_tensors",
           "more_folders", "name_for_hash", "save_folder", "search_path", "sha256_file", "user_dir"]


@dataclass
class CodecModel:
    name: str
    sha256: str
    net: torch.nn.Module  # an architecture of `vqzip.models`
    priors: list[prior_kinds.ExactPrior]  # one per code map, in coding order

    @property
    def maps(self) -> list[MapSpec]:
        return self.net.maps

    @property
    def hash8(self) -> bytes:
        return bytes.fromhex(self.sha256)[:8]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()




def load_for_hash(hash8: bytes) -> CodecModel | None:
    """The installed model a file names by hash (`_for_hash`), loaded once; None if none is."""
    found = _for_hash(hash8)
    return found and _load_entry(*found)


def load(name: str) -> CodecModel:
    """An installed model by name (`manifest`), its weights and config checked against its
    manifest; loaded once."""
    entries = _manifest()["models"]
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; installed: {', '.join(sorted(entries))}")
    return _load_entry(name, entries[name])


def _load_entry(name: str, entry: dict) -> CodecModel:
    return _load_cached(entry["folder"], name, entry["sha256"], json.dumps(entry["config_sha256"], sort_keys=True))


@functools.lru_cache(maxsize=4)
def _load_cached(folder: str, name: str, sha256: str, config_sha256: str) -> CodecModel:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model manifest {folder.parent / 'manifest.json'}: models.{name}.folder: no folder {folder}")
    with one_thread():  # thousands of small tensor conversions: a second thread only waits (0.08 s -> 0.6-0.9 s beside other work)
        return load_folder(folder, expected_sha256=sha256, name=name, expected_config=json.loads(config_sha256))


def load_folder(folder: str | Path, expected_sha256: str | None = None, name: str | None = None,
                expected_config: dict[str, str] | None = None) -> CodecModel:
    """A model from a folder with model.safetensors and config.json (as `vqzip train export`
    writes). With expected_sha256 and expected_config (the manifest's), a ModelError naming the
    model refuses weights of another sha256, or a config whose decoding fields differ from those
    digests (a changed padding or prior kernel would silently change what files decode to)."""
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
    if expected_config is not None:
        found = config_digests(cfg)
        differ = sorted(k for k in found.keys() | expected_config.keys() if found.get(k) != expected_config.get(k))
        if differ:
            raise ModelError(f"model {name or folder.name!r}: config.json's {', '.join(differ)} differ"
                             f"{'s' * (len(differ) == 1)} from what the manifest records for {folder / 'config.json'}: "
                             "it would not decode files as the model they name")
    if "vqvae.enc_b.0.weight" in tensors:
        tensors = _from_v02(tensors)
    try:
        net, prior_cfgs = build(cfg)
        net.load_state_dict(_part(tensors, "net"))
        priors = [prior_kinds.exact_prior(c, _part(tensors, f"prior.{k}")) for k, c in enumerate(prior_cfgs)]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"weights in {weights} do not fit config.json: {str(e).splitlines()[0]}") from None
    # channels-last convolutions run the VQ-VAE ~1.4x faster on CPU (same codes on Kodak)
    net = net.eval().to(memory_format=torch.channels_last)
    return CodecModel(name or cfg.get("name", folder.name), digest, net, priors)


def _part(tensors: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    prefix = part + "."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _from_v02(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vqzip 0.2's tensor names (a two-map vqvae2) -> this layout's."""
    out = {f"net.{k}": v for k, v in VQVAE2.from_v02(_part(tensors, "vqvae")).items()}
    out.update({f"prior.0.{k}": v for k, v in _part(tensors, "top_prior").items()})
    out.update({f"prior.1.{k}": v for k, v in fixedpoint.from_v02(_part(tensors, "bottom_prior")).items()})
    return out


def build(cfg: dict) -> tuple[torch.nn.Module, list]:
    """A fresh network and the prior configs (one per code map, of the kind each names:
    `vqzip.priors.registry`) from a model config dict; the priors must fit the network's maps."""
    net = models.build(cfg.get("arch", "vqvae2"), cfg["net"])
    prior_cfgs = [prior_kinds.config_from_dict(c) for c in cfg["priors"]]
    if len(prior_cfgs) != len(net.maps):
        raise ValueError(f"{len(prior_cfgs)} prior configs for {len(net.maps)} code maps")
    for m, c in zip(net.maps, prior_cfgs):
        if c.num_codes != m.num_codes or len(c.conds) != len(m.conds):
            raise ValueError(f"the prior config of map {m.name!r} does not fit it")
    return net, prior_cfgs


def save_folder(folder: str | Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """Write a model folder that `load_folder` reads: tensors keyed `<part>.<name>`, and config.
    The weights go in place atomically, with the mode the umask gives (safetensors' own
    `save_file` left them 0600)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "model.safetensors", save({k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}),
                 force=True)
    write_atomic(folder / "config.json", (json.dumps(config, indent=2) + "\n").encode(), force=True)
    return folder


def model_tensors(net: torch.nn.Module, fixed_priors: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The tensors of a model folder, keyed as `save_folder` expects: the network's state and
    each map's prior's integer tensors."""
    out = {f"net.{k}": v for k, v in net.state_dict().items()}
    out.update({f"prior.{k}.{name}": v for k, t in enumerate(fixed_priors) for name, v in t.items()})
    return out
