"""Phase II: one prior per code map (of the kind its config names, `vqzip.priors.registry`), on
random aligned crops of the code maps the trained network gives for the training images (through
the codec's own encoder), each conditioned on the maps its `MapSpec` names."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from vqzip.models.spec import MapSpec
from vqzip import data, models, priors
from vqzip.codec import encode_codes
from vqzip.inference.torch_graphs import torch_network
from vqzip.training.autoencoder import load_net
from vqzip.training import distributed
from vqzip.errors import VqzError
from vqzip.training.loop import TrainConfig, autocast, pick_device, run_loop

CodeMaps = list[list[np.ndarray]]  # per image, its code maps in coding order


@torch.no_grad()
def extract_codes(net, files: list[Path]) -> CodeMaps:
    runs = torch_network(net)
    return [[c.astype(np.int16) for c in encode_codes(runs, data.load_rgb(f))] for f in files]


def cached_codes(run: Path, net, files: list[Path]) -> CodeMaps:
    """The code maps of `files`, kept in run/codes.npz across runs (a run's network is fixed
    once phase I is done)."""
    if (run / "codes.npz").exists():
        return load_codes(run)
    maps = extract_codes(net, files)
    np.savez(run / "codes.npz", **{f"m{k}_{i}": m for i, ms in enumerate(maps) for k, m in enumerate(ms)})
    return maps


def load_codes(run: Path) -> CodeMaps:
    """run/codes.npz (keys m<map>_<image>) as written by `cached_codes`."""
    z = np.load(run / "codes.npz")
    n_maps = 1 + max(int(k[1 : k.index("_")]) for k in z.files)
    return [[z[f"m{k}_{i}"] for k in range(n_maps)] for i in range(len(z.files) // n_maps)]


class CodeCropSampler:
    """Random crops of crop x crop image pixels, at positions aligned to `stride` (the network's
    STRIDE, its first map's), as (image, y, x)."""

    def __init__(self, maps: CodeMaps, crop: int, seed: int, stride: int):
        self.sizes = [(stride * m[0].shape[0], stride * m[0].shape[1]) for m in maps]
        self.stride = stride
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> list[tuple[int, int, int]]:
        out = []
        for _ in range(n):
            k = int(self.rng.integers(len(self.sizes)))
            h, w = self.sizes[k]
            y = self.stride * int(self.rng.integers(max(h - self.crop, 0) // self.stride + 1))
            x = self.stride * int(self.rng.integers(max(w - self.crop, 0) // self.stride + 1))
            out.append((k, y, x))
        return out


def crop_batch(prior: nn.Module, spec: MapSpec, k: int, tensors: list[list[torch.Tensor]], batch: list[tuple[int, int, int]],
               crop: int) -> tuple[tuple, torch.Tensor]:
    """Map k's part of the crops `batch` ((image, y, x) of crop x crop image pixels, as
    `CodeCropSampler` gives them; tensors: each image's code maps): the prior's inputs for its
    crops of crop // spec.stride codes, and their codes (`vqzip.priors.registry.FloatPrior.crops`)."""
    s = spec.stride
    return prior.crops([ms[k] for ms in tensors], [[ms[j] for j in spec.conds] for ms in tensors],
                       [(i, y // s, x // s) for i, y, x in batch], crop // s)


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Logits (B, K, h, w) against codes (B, h, w): the summed cross-entropy, in nats."""
    # classes last: the logits are channels-last in memory (the embedding's permute carries
    # through the convolutions), and log-softmax is slow across a strided class axis
    return F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1]).float(), targets.reshape(-1),
                           reduction="sum")


class PriorStack(nn.Module):
    """The priors of every code map, trained together."""

    def __init__(self, cfgs: list):
        super().__init__()
        self.priors = nn.ModuleList(priors.float_prior(c) for c in cfgs)


RANK_MAPS = 6  # training images whose maps a cut prior's kind ranks its parts on (`PriorKind.cut`)


def init_priors(stack: PriorStack, init: Path, specs: list[MapSpec], maps: CodeMaps, trained: list[int]) -> dict:
    """Start every prior of `stack` from run `init`'s prior for the same map: its weights where
    the configs are the same, else, for a map in `trained`, cut from it (its kind's `cut`, given
    the first RANK_MAPS images' maps: e.g. fewer channels or blocks); a map left
    untrained must have init's config. Returns init's training record."""
    init = Path(init)
    try:
        old = load_priors(init)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as e:  # ValueError: bad JSON too
        raise VqzError(f"{init}: no priors to start from ({e})") from None
    if len(old) != len(stack.priors):
        raise VqzError(f"{init} has {len(old)} priors, this run's network {len(stack.priors)} code maps")
    for k, (prior, src, spec) in enumerate(zip(stack.priors, old, specs)):
        def misfit(how: str) -> VqzError:
            return VqzError(f"{init} does not fit this prior config: the {spec.name} map's prior is {src.cfg}, "
                            f"asked for {prior.cfg} ({how})")

        if prior.cfg == src.cfg:
            prior.load_state_dict(src.state_dict())
            continue
        if k not in trained:
            raise misfit("a map not trained keeps its config")
        cut = priors.kind_of(src.cfg).cut if type(src.cfg) is type(prior.cfg) else None
        if cut is None:
            raise misfit("no prior of this kind can be cut from it")
        ranking = [(torch.from_numpy(ms[k].astype(np.int64)), [torch.from_numpy(ms[j].astype(np.int64)) for j in spec.conds])
                   for ms in maps[:RANK_MAPS]]
        try:
            prior.load_state_dict(cut(src, prior.cfg, ranking).state_dict())
        except ValueError as e:
            raise misfit(str(e)) from None
    return json.loads((init / "prior.json").read_text())


def train_prior(data_dir, out, cfgs: list, cfg: TrainConfig, progress=None, init: Path | None = None,
                maps_trained: list[str] | None = None, stop_after: int | None = None) -> dict:
    """Phase II: the priors (one config per code map of the run's network) on crops of the code
    maps of the training images. With `init` (a run folder), start from that run's priors
    (`init_priors`: the same configs, or cut smaller). With `maps_trained` (map names), train
    only those maps' priors; the others stay as `init` left them (and the run's prior.json says
    which were trained, for `export --keep-priors`). `stop_after`: as `run_loop`'s."""
    device = pick_device()
    distributed.setup(device)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    net = load_net(out)
    if len(cfgs) != len(net.maps):
        raise ValueError(f"{len(cfgs)} prior configs for {len(net.maps)} code maps")
    names = [m.name for m in net.maps]
    if maps_trained is not None:
        if not maps_trained:
            raise VqzError("--maps names no map")
        if unknown := [n for n in maps_trained if n not in names]:
            raise VqzError(f"this run's network has no map {unknown[0]!r} (its maps: {', '.join(names)})")
        if init is None:
            raise VqzError("training only some maps' priors needs --init: the others would stay untrained")
    trained = [k for k, n in enumerate(names) if maps_trained is None or n in maps_trained]
    if distributed.is_main():
        maps = cached_codes(out, net, data.split(data.list_images(data_dir), "train"))
    distributed.barrier()  # the other ranks read the codes rank 0 wrote
    if not distributed.is_main():
        maps = load_codes(out)
    stack = PriorStack(cfgs)
    extra = {} if init is None else {"init": init_priors(stack, Path(init), net.maps, maps, trained)}
    for k, prior in enumerate(stack.priors):
        prior.requires_grad_(k in trained)
    stack = stack.to(device)
    sampler = CodeCropSampler(maps, cfg.crop, cfg.seed, net.STRIDE)
    tensors = [[torch.from_numpy(m.astype(np.int64)).to(device) for m in ms] for ms in maps]

    def step_fn(batch):
        losses, stats = [], {}
        for k in trained:
            spec, prior = net.maps[k], stack.priors[k]
            inputs, targets = crop_batch(prior, spec, k, tensors, batch, cfg.crop)
            with autocast(cfg, device):
                logits = prior(*inputs)
            ce = summed_cross_entropy(logits, targets)
            losses.append(ce)
            stats[f"bits_{spec.name}"] = ce.item() / targets.numel() / math.log(2)
        loss = sum(losses) / (len(batch) * cfg.crop**2) / math.log(2)  # bits per pixel
        return loss, {"bpp": loss.item(), **stats}

    config = {"priors": [priors.config_to_dict(c) for c in cfgs]}
    if maps_trained is not None:
        config["maps_trained"] = [names[k] for k in trained]
    return run_loop("prior", out, stack, cfg, sampler, step_fn, config, progress, extra, stop_after)


def prior_configs(maps: list[MapSpec], kind: str = priors.DEFAULT, per_map: dict[str, dict] | None = None,
                  **options) -> list:
    """One prior config of kind `kind` per map (`vqzip.models.prior_config`): `options` for every
    map, and per_map's options (by map name) over them for the maps it names; ValueError naming a
    map the network does not have."""
    per_map = per_map or {}
    if unknown := sorted(set(per_map) - {m.name for m in maps}):
        raise ValueError(f"the network has no map {unknown[0]!r} (its maps: {', '.join(m.name for m in maps)})")
    return [models.prior_config(maps, k, kind, **{**options, **per_map.get(m.name, {})}) for k, m in enumerate(maps)]


def load_priors(run: Path) -> list[nn.Module]:
    """A run's trained float priors, one per code map, in eval mode."""
    cfgs = [priors.config_from_dict(c) for c in json.loads((run / "prior.json").read_text())["config"]["priors"]]
    stack = PriorStack(cfgs)
    stack.load_state_dict(load_file(str(run / "prior.safetensors")))
    return [p.eval() for p in stack.priors]
