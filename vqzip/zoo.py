"""The model zoo: models loaded from their folders, checked against their manifest (where they
are found and what each manifest.json says is `vqzip.manifest`, re-exported here: the folders,
the quality levels, `manifest()`).

A model folder holds `model.safetensors` (keys `net.*`: the network's float weights;
`prior.K.*`: the integer tensors of code map K's prior, of its kind: `vqzip.priors.registry`),
`config.json` (`arch`, the network's config `net`, one config per map in `priors`, and the
training record), `graphs/<name>.onnx` (the network's graphs without their weights:
`vqzip.training.onnx_export`) and `MODEL_CARD.md`. Weights are loaded without pickle and only
after their sha256 matches the manifest, the config only if its decoding fields (all but `name`
and `training`: they shape the network and the priors) match the manifest's digests of them
(`config_digests`), and each graph only if its sha256 matches the manifest's
(`graphs_sha256`). A .vqz file names its model by the first 8 bytes of the weights' sha256, so
a file made with another model is recognised as such. vqzip 0.2's weights file (keys `vqvae.*`,
`top_prior.*`, `bottom_prior.*`) is read as it is, renamed on load, so its sha256 and the files
made with it stay valid.

The network runs on a backend (`vqzip.backends.backend`: the argument, else VQZIP_BACKEND,
else "onnx"): "onnx", its graphs in ONNX Runtime, or "torch", the same graphs as the torch
module's functions (the `train` extra). A folder without graphs (or whose manifest records
none) runs on torch where torch is installed; without torch it is refused in one line saying
how to add them. Loading imports no torch on the onnx backend.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from vqzip import backends, inference, priors as prior_kinds
from vqzip.priors import fixedpoint
from vqzip.inference.codebooks import LatticeCodebook
from vqzip.errors import ModelError
from vqzip.fileio import write_atomic
from vqzip.models import MapSpec, arch_config
# The zoo's other half, re-exported: where models are and what the manifests say (`vqzip.manifest`)
from vqzip.manifest import (Expected, Level, check_manifest, checkpoints_dir, config_digests, expected,
                            given_dirs, level, levels, manifest, more_folders, name_for_hash, search_path, user_dir)
from vqzip.manifest import _for_hash, _manifest

GRAPHS = "graphs"  # the folder of a model's graphs, one <name>.onnx each
ADD_GRAPHS = "vqzip train graphs"  # the command that adds them to a model folder (needs vqzip[train])

__all__ = ["ADD_GRAPHS", "CodecModel", "Expected", "GRAPHS", "Level", "build", "check_manifest", "checkpoints_dir",
           "config_digests", "configs", "expected", "from_v02", "given_dirs", "graph_paths", "level", "levels", "load", "load_folder", "load_for_hash", "manifest", "model_tensors",
           "more_folders", "name_for_hash", "save_folder", "search_path", "sha256_file", "user_dir"]


@dataclass
class CodecModel:
    name: str
    sha256: str
    net: object  # an architecture's numpy network (`vqzip.inference.network`)
    priors: list[prior_kinds.ExactPrior]  # one per code map, in coding order
    backend: str  # what runs the network's graphs: "onnx" or "torch"

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


def load_for_hash(hash8: bytes, backend: str | None = None) -> CodecModel | None:
    """The installed model a file names by hash (`_for_hash`), loaded once; None if none is."""
    found = _for_hash(hash8)
    return found and _load_entry(*found, backend)


def load(name: str, backend: str | None = None) -> CodecModel:
    """An installed model by name (`manifest`), its weights, config and graphs checked against
    its manifest; loaded once per backend (`vqzip.backends.backend`)."""
    entries = _manifest()["models"]
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; installed: {', '.join(sorted(entries))}")
    return _load_entry(name, entries[name], backend)


def _load_entry(name: str, entry: dict, backend: str | None) -> CodecModel:
    return _load_cached(entry["folder"], name, entry["sha256"], json.dumps(entry["config_sha256"], sort_keys=True),
                        json.dumps(entry.get("graphs_sha256", {}), sort_keys=True), backends.backend(backend))


@functools.lru_cache(maxsize=4)
def _load_cached(folder: str, name: str, sha256: str, config_sha256: str, graphs_sha256: str, backend: str) -> CodecModel:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model manifest {folder.parent / 'manifest.json'}: models.{name}.folder: no folder {folder}")
    return load_folder(folder, expected_sha256=sha256, name=name, expected_config=json.loads(config_sha256),
                       expected_graphs=json.loads(graphs_sha256), backend=backend)


def load_folder(folder: str | Path, expected_sha256: str | None = None, name: str | None = None,
                expected_config: dict[str, str] | None = None, expected_graphs: dict[str, str] | None = None,
                backend: str | None = None) -> CodecModel:
    """A model from a folder with model.safetensors, config.json and graphs/ (as `vqzip train
    export` writes), its network on `backend` (`vqzip.backends.backend`). With expected_sha256,
    expected_config and expected_graphs (the manifest's), a ModelError naming the model refuses
    weights of another sha256, a config whose decoding fields differ from those digests (a
    changed padding or prior kernel would silently change what files decode to), or a graph of
    another sha256; graphs the manifest does not record are not used. Without them, the
    folder's graphs are used as they are."""
    folder = Path(folder)
    label = name or folder.name
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
            raise ModelError(f"model {label!r}: config.json's {', '.join(differ)} differ"
                             f"{'s' * (len(differ) == 1)} from what the manifest records for {folder / 'config.json'}: "
                             "it would not decode files as the model they name")
    if "vqvae.enc_b.0.weight" in tensors:
        tensors = from_v02(tensors)
    backend = backends.backend(backend)
    try:
        arch, net_cfg, prior_cfgs = configs(cfg)
        net_tensors = _part(tensors, "net")
        priors = [prior_kinds.exact_prior(c, _part(tensors, f"prior.{k}")) for k, c in enumerate(prior_cfgs)]
        paths = graph_paths(folder, net_cfg, expected_graphs if expected_sha256 is not None else None, label)
        if backend == "onnx" and paths is None:
            backend = _torch_instead(folder, label)
        graphs = inference.OnnxGraphs(paths, net_tensors, weights) if backend == "onnx" else _torch_graphs(cfg, net_tensors)
        net = inference.network(arch, net_cfg, net_tensors, graphs)
        _check_lattice_gains(net, tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"weights in {weights} do not fit config.json: {str(e).splitlines()[0]}") from None
    return CodecModel(name or cfg.get("name", folder.name), digest, net, priors, backend)


def _check_lattice_gains(net, tensors: dict) -> None:
    """A ValueError unless a lattice latent's integer log2 gains (`lattice.log2_gain`, int32
    (anchors, C): what its prior's probabilities are computed from) are what its float gains
    round to (`LatticeConfig.fixed_gains`)."""
    for book in net.quantizers:
        if isinstance(book, LatticeCodebook):
            stored = tensors.get("lattice.log2_gain")
            if stored is None or stored.dtype != np.int32 or not np.array_equal(stored, np.array(book.fixed, np.int32)):
                raise ValueError("the lattice's integer gains (lattice.log2_gain) are missing or not what its float gains round to")


def graph_paths(folder: Path, net_cfg, expected: dict[str, str] | None = None, label: str = "") -> dict[str, Path] | None:
    """Each graph's file in folder/graphs (the graphs a network of config net_cfg runs), or None
    if any is missing, or (with `expected`, the manifest's sha256 by graph name) not recorded;
    a ModelError naming the model for a graph of another sha256 than recorded."""
    paths = {g: folder / GRAPHS / f"{g}.onnx" for g in net_cfg.graphs()}
    if not all(p.is_file() for p in paths.values()) or (expected is not None and not paths.keys() <= expected.keys()):
        return None
    for g, path in paths.items():
        if expected is not None and sha256_file(path) != expected[g]:
            raise ModelError(f"model {label!r}: graph {path} is damaged: its sha256 does not match the manifest")
    return paths


def _torch_instead(folder: Path, label: str) -> str:
    """The backend of a model without (recorded) graphs: torch, if installed; else a ModelError
    saying how to add them."""
    try:
        import torch  # noqa: F401 (only whether it is installed)
    except ImportError:
        raise ModelError(f"model {label!r} in {folder} has no ONNX graphs (or none its manifest records): add them with "
                         f"`{ADD_GRAPHS} {folder}`, which needs vqzip[train]") from None
    return "torch"


def _torch_graphs(cfg: dict, net_tensors: dict[str, np.ndarray]):
    """The torch backend's graphs: the torch module of config `cfg`, its weights loaded."""
    import torch

    from vqzip import models
    from vqzip.inference.torch_graphs import TorchGraphs

    net = models.build(cfg.get("arch", "vqvae2"), cfg["net"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in net_tensors.items()})
    return TorchGraphs(net)


def _part(tensors: dict, part: str) -> dict:
    prefix = part + "."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def from_v02(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """vqzip 0.2's tensor names (a two-map vqvae2, one quantizer per latent) -> this layout's."""
    def net_key(k: str) -> str:
        for q in ("vq_t.", "vq_b."):
            if k.startswith(q):
                return f"{q}stages.0.{k[len(q):]}"
        return k

    out = {f"net.{net_key(k)}": v for k, v in _part(tensors, "vqvae").items()}
    out.update({f"prior.0.{k}": v for k, v in _part(tensors, "top_prior").items()})
    out.update({f"prior.1.{k}": v for k, v in fixedpoint.from_v02(_part(tensors, "bottom_prior")).items()})
    return out


def configs(cfg: dict) -> tuple[str, object, list]:
    """A model config dict -> (arch, the network's config, the prior configs: one per code map,
    of the kind each names, `vqzip.priors.registry`), the priors checked to fit the network's maps
    (ValueError, TypeError otherwise). No torch."""
    arch = cfg.get("arch", "vqvae2")
    net_cfg = arch_config(arch, cfg["net"])
    prior_cfgs = [prior_kinds.config_from_dict(c) for c in cfg["priors"]]
    maps = net_cfg.maps()
    if len(prior_cfgs) != len(maps):
        raise ValueError(f"{len(prior_cfgs)} prior configs for {len(maps)} code maps")
    for m, c in zip(maps, prior_cfgs):
        if c.num_codes != m.num_codes or len(c.conds) != len(m.conds):
            raise ValueError(f"the prior config of map {m.name!r} does not fit it")
    return arch, net_cfg, prior_cfgs


def build(cfg: dict) -> tuple:
    """A fresh network (an nn.Module: needs torch) and the prior configs (`configs`) from a model
    config dict, for training."""
    from vqzip import models

    arch, _, prior_cfgs = configs(cfg)
    return models.build(arch, cfg["net"]), prior_cfgs


def save_folder(folder: str | Path, tensors: dict, config: dict) -> Path:
    """Write a model folder that `load_folder` reads: tensors (torch) keyed `<part>.<name>`, and
    config (graphs are added by `vqzip.training.onnx_export`). The weights go in place
    atomically, with the mode the umask gives (safetensors' own `save_file` left them 0600)."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "model.safetensors", save({k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}),
                 force=True)
    write_atomic(folder / "config.json", (json.dumps(config, indent=2) + "\n").encode(), force=True)
    return folder


def model_tensors(net, fixed_priors: list[dict]) -> dict:
    """The tensors of a model folder, keyed as `save_folder` expects: the network's state (an
    nn.Module's) and each map's prior's integer tensors."""
    out = {f"net.{k}": v for k, v in net.state_dict().items()}
    out.update({f"prior.{k}.{name}": v for k, t in enumerate(fixed_priors) for name, v in t.items()})
    return out
