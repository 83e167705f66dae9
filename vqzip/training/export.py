"""From a run folder to a shipped model: the priors made integer, the network's graphs in ONNX
(`vqzip.training.onnx_export`), validation, the manifest."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from torch import nn

from vqzip import data, metrics, priors as prior_kinds, zoo
from vqzip.fileio import write_atomic
from vqzip.errors import ModelError, VqzError
from vqzip.codec import check_point, decode_pixels, encode_codes, estimated_bits, preview_map, preview_pixels
from vqzip.manifest import level_point
from vqzip.models import MapSpec, lattice_config
from vqzip.training import onnx_export
from vqzip.training.autoencoder import load_net
from vqzip.training.loop import command_line
from vqzip.training.priors import CodeMaps, load_codes, load_priors

CALIBRATION_MAPS = 16


def fixed_point_priors(priors: list[nn.Module], specs: list[MapSpec], maps: CodeMaps,
                       ks: list[int] | None = None) -> list[dict[str, torch.Tensor]]:
    """The integer tensors of the priors of maps ks (default: every map, in order), calibrated on
    the code maps of CALIBRATION_MAPS images spread evenly over the list (each by its kind's
    calibration, `vqzip.priors.registry`)."""
    ks = list(range(len(priors))) if ks is None else ks
    picked = [[torch.from_numpy(m.astype(np.int64)) for m in maps[i]]
              for i in np.linspace(0, len(maps) - 1, min(CALIBRATION_MAPS, len(maps))).astype(int)]
    return [prior_kinds.calibrate(prior, [(ms[k], [ms[j] for j in specs[k].conds]) for ms in picked]) for prior, k in zip(priors, ks)]


def export(run, folder, tile: tuple[int, int] = (0, 0), keep: Path | None = None) -> Path:
    """Join a run's network and its priors, made integer and calibrated on the code maps phase II
    trained on, into one model folder: model.safetensors and config.json. With `tile` (rows,
    columns; 0 for the whole height or width) every prior walks its map in independent tiles of
    that size (`vqzip.priors.decode`). A run that trained only some maps' priors (`train prior
    --maps`) takes the others from the model folder `keep`, as they are there (their integer
    tensors, tiles included, and their training record): `keep` must hold the run's network."""
    run = Path(run)
    net = load_net(run)
    vq_meta, prior_meta = (json.loads((run / f"{n}.json").read_text()) for n in ("vqvae", "prior"))
    names = [m.name for m in net.maps]
    trained = prior_meta["config"].get("maps_trained", names)
    ks = [k for k, n in enumerate(names) if n in trained]
    priors, codes = load_priors(run), load_codes(run)
    fixed = dict(zip(ks, fixed_point_priors([priors[k] for k in ks], net.maps, codes, ks)))
    if any(tile):
        for t in fixed.values():
            t["walk.tile"] = torch.tensor(tile, dtype=torch.int32)
    prior_cfg = prior_meta.pop("config")
    if "maps_trained" in prior_cfg:
        prior_meta["maps_trained"] = prior_cfg["maps_trained"]
    config = {"name": Path(folder).name, "arch": vq_meta.pop("arch"), "net": vq_meta.pop("config"),
              "priors": prior_cfg["priors"], "training": {"vqvae": vq_meta, "prior": prior_meta}}
    if (run / "rdo-codes.json").is_file():  # phase III: the priors' last training was on RDO's codes
        config["training"]["codes"] = json.loads((run / "rdo-codes.json").read_text())
    if len(ks) < len(names):
        kept = _kept_priors(Path(keep) if keep else None, run, net, config, [k for k in range(len(names)) if k not in ks])
        if any(tile) and any(not torch.equal(t.get("walk.tile", torch.zeros(2, dtype=torch.int32)), torch.tensor(tile, dtype=torch.int32))
                             for t in kept.values()):
            raise VqzError(f"--tile {tile[0]}x{tile[1]}: the kept priors walk other tiles; give theirs")
        fixed.update(kept)
    elif keep is not None:
        raise VqzError(f"{run} trained every map's prior: there are none to keep from {keep}")
    tensors = zoo.model_tensors(net, [fixed[k] for k in range(len(names))])
    folder = zoo.save_folder(folder, tensors, config)
    onnx_export.write_graphs(net, folder)
    return folder


def export_lattice(run, folder, data_dir, keep: Path | None = None) -> Path:
    """A lattice run (`vqzip train lattice`, its coarse layers frozen) -> a model folder as
    `export`'s: the network; the top and bottom maps' priors as they are in the model folder
    `keep` (default: the run's init, when that was a model folder), whose coarse weights the run
    must hold unchanged; the fine map's Gaussian prior calibrated on the top and bottom codes of
    CALIBRATION_MAPS training images of `data_dir` spread over its train split; and the
    quantizer's integer log2 gains (`lattice.log2_gain`, int32 (anchors, C): what the codec's
    probabilities are computed from, checked at load against the float gains). A one-line
    VqzError for a run that trained its coarse layers or a `keep` that does not fit it."""
    from vqzip.training.lattice import FINE_PARTS, NAME, coarse, load_lattice

    run = Path(run)
    meta = json.loads((run / f"{NAME}.json").read_text())
    if meta["config"]["train_coarse"]:
        raise VqzError(f"{run} trained its coarse layers (--train-coarse): no trained model's top and bottom priors fit its codes")
    keep = Path(keep) if keep else Path(meta["init"]["model"]) if "model" in meta["init"] else None
    if keep is None:
        raise VqzError(f"{run} started from a run folder: give --keep-priors, the model of it whose top and bottom priors ship")
    kept_cfg, kept = _read_kept(keep)
    model = load_lattice(run)
    net = model.net
    ours = {k: v for k, v in net.state_dict().items() if not k.startswith(FINE_PARTS)}
    if any(f"net.{k}" not in kept or not torch.equal(kept[f"net.{k}"], v) for k, v in ours.items()):
        raise VqzError(f"{keep} is not the model {run} froze the coarse layers of: its top and bottom priors would not fit")
    coarse_priors = [{n[len(f"prior.{k}."):]: v for n, v in kept.items() if n.startswith(f"prior.{k}.")} for k in (0, 1)]
    files = data.split(data.list_images(data_dir), "train")
    if not files:
        raise VqzError(f"{data_dir}: no training images to calibrate the fine map's prior on")
    maps = []
    for i in np.linspace(0, len(files) - 1, min(CALIBRATION_MAPS, len(files))).astype(int):
        px = data.load_rgb(files[i])
        px = px[: px.shape[0] // net.STRIDE * net.STRIDE, : px.shape[1] // net.STRIDE * net.STRIDE]
        _, _, codes = coarse(net, net.normalize(torch.from_numpy(px.transpose(2, 0, 1).copy()).float()[None]))
        maps.append((None, [c[0] for c in codes]))
    tensors = zoo.model_tensors(net, coarse_priors + [prior_kinds.calibrate(model.prior, maps)])
    tensors["lattice.log2_gain"] = net.vq_f.fixed_gains()
    config = {"name": Path(folder).name, "arch": meta["config"]["arch"], "net": meta["config"]["net"],
              "priors": kept_cfg["priors"][:2] + [prior_kinds.config_to_dict(model.prior.cfg)],
              "training": {"lattice": {k: v for k, v in meta.items() if k != "config"},
                           "kept_priors": {"maps": [m.name for m in net.maps[:2]], "model": kept_cfg["name"],
                                           "sha256": zoo.sha256_file(keep / "model.safetensors"),
                                           "training": kept_cfg.get("training", {})},
                           "calibration": {"data": str(data_dir), "images": len(maps)},
                           "packed_by": command_line()}}  # for its card, which is written again once Kodak is measured
    folder = zoo.save_folder(folder, tensors, config)
    onnx_export.write_graphs(net, folder)
    return folder


def _read_kept(keep: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Model folder `keep`'s config and tensors; a one-line VqzError where they cannot be read."""
    try:
        return json.loads((keep / "config.json").read_text()), load_file(str(keep / "model.safetensors"))
    except (OSError, json.JSONDecodeError, SafetensorError) as e:
        raise VqzError(f"cannot read the model to keep priors from, {keep}: {e}") from None


def _kept_priors(keep: Path | None, run: Path, net, config: dict, ks: list[int]) -> dict[int, dict[str, torch.Tensor]]:
    """Maps ks' integer priors from model folder `keep`, checked to fit the run; records where
    they came from (and how they were trained) in config["training"]["kept_priors"]."""
    names = [net.maps[k].name for k in ks]
    if keep is None:
        raise VqzError(f"{run} trained no prior for the {', '.join(names)} map(s): give --keep-priors, the model to take them from")
    kept_cfg, tensors = _read_kept(keep)
    ours, theirs = net.state_dict(), {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    if theirs.keys() != ours.keys() or any(not torch.equal(ours[k], v) for k, v in theirs.items()):
        raise VqzError(f"{keep} is not a model of {run}'s network: its priors would not fit the codes")
    for k in ks:
        if kept_cfg["priors"][k] != config["priors"][k]:
            raise VqzError(f"{keep}'s prior for the {net.maps[k].name} map is not the config {run} holds for it")
    record = {"model": kept_cfg["name"], "sha256": zoo.sha256_file(keep / "model.safetensors"), "training": kept_cfg["training"]}
    inner = kept_cfg["training"].get("kept_priors")
    if inner and set(names) <= set(inner["maps"]):  # kept there too: their history is the model they came from
        record = {k: inner[k] for k in ("model", "sha256", "training")}
    config["training"]["kept_priors"] = {"maps": names, **record}
    return {k: {n[len(f"prior.{k}."):]: v for n, v in tensors.items() if n.startswith(f"prior.{k}.")} for k in ks}


@torch.no_grad()
def validate(folder: Path, data_dir) -> dict:
    """PSNR, the priors' teacher-forced bpp, and the preview's PSNR against the image reduced 4x,
    of an exported model on the held-out validation images. A lattice model's PSNR and bpp are
    per anchor, at its first, middle and last (`anchors`: {anchor: {psnr, estimated_bpp}})."""
    model = zoo.load_folder(folder)
    lattice = lattice_config(model.net)
    anchors = [None] if lattice is None else sorted({0, (len(lattice.anchors) - 1) // 2, len(lattice.anchors) - 1})
    psnr, bpp, preview = {a: [] for a in anchors}, {a: [] for a in anchors}, []
    for f in data.split(data.list_images(data_dir), "val"):
        pixels = data.load_rgb(f)
        h, w = pixels.shape[:2]
        for a in anchors:
            codes = encode_codes(model.net, pixels, anchor=a)
            psnr[a].append(metrics.psnr(decode_pixels(model.net, codes, w, h, anchor=a), pixels))
            bpp[a].append(sum(estimated_bits(model, codes, a).values()) / (h * w))
        preview.append(metrics.preview_psnr(preview_pixels(model.net, codes[preview_map(model.maps)], w, h), pixels))
    rows = {a: {"psnr": float(np.mean(psnr[a])), "estimated_bpp": float(np.mean(bpp[a]))} for a in anchors}
    return {"images": len(preview), **(rows[None] if lattice is None else {"anchors": {str(a): r for a, r in rows.items()}}),
            "preview_psnr": float(np.mean(preview))}


def register(root: Path, name: str, scales: list[Fraction], default_scale: Fraction | None = None,
             validation: dict | None = None) -> dict:
    """Record checkpoints/NAME in manifest.json with the sha256 of its weights, the digests of
    its config's decoding fields (`zoo.config_digests`) and the sha256 of each graph its
    architecture runs (graphs/<graph>.onnx, where it has them; stale files of another export
    are left out), and give it one
    quality level per scale, numbered after the levels of the other models; with default_scale,
    that level becomes the default."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"default": 1, "levels": {}, "models": {}}
    cfg = json.loads((root / name / "config.json").read_text())
    entry = {"folder": name, "sha256": zoo.sha256_file(root / name / "model.safetensors"),
             "config_sha256": zoo.config_digests(cfg), "size_bytes": (root / name / "model.safetensors").stat().st_size}
    graphs = [root / name / zoo.GRAPHS / f"{g}.onnx" for g in sorted(zoo.configs(cfg)[1].graphs())]
    if any(p.is_file() for p in graphs):
        entry["graphs_sha256"] = {p.stem: zoo.sha256_file(p) for p in graphs if p.is_file()}
    if validation:
        entry["validation"] = validation
    manifest["models"][name] = entry
    kept = [lv for lv in manifest["levels"].values() if lv["model"] != name]
    ours = [{"model": name, "scale": str(s)} for s in scales]
    manifest["levels"] = {str(q): lv for q, lv in enumerate(kept + ours, 1)}
    if default_scale is not None:
        manifest["default"] = len(kept) + 1 + list(scales).index(default_scale)
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)  # a half-written manifest would stop every command
    return entry


def check_ladder(root: Path, levels: dict[str, dict], default: int, adding: str, folder: Path | None = None) -> None:
    """`set_ladder`'s checks, made before model `adding` is registered, so a bad ladder costs no
    registration (and, checked before the export too, no export): a ModelError names the first bad
    field. Without `folder` adding's levels are checked only as far as the manifest's fields go;
    with it (adding's exported folder, not yet registered) they are checked against that model too."""
    _laddered(root, levels, default, adding, folder)


def set_ladder(root: Path, levels: dict[str, dict], default: int) -> None:
    """Replace every quality level of root/manifest.json with `levels` ({"N": {model, scale,
    maps?, lam?, skip?, anchor?}}, as `bench/choose_levels.py` prints them: a family's ladder, possibly across
    models) and make level `default` the default. The new manifest is checked whole first, each
    level against its model (a ModelError names the bad field), so a bad ladder leaves the old one in place."""
    path = root / "manifest.json"
    write_atomic(path, (json.dumps(_laddered(root, levels, default), indent=2) + "\n").encode(), force=True)


def _laddered(root: Path, levels: dict[str, dict], default: int, adding: str | None = None,
              folder: Path | None = None) -> dict:
    """root's manifest with `levels` and `default` in place of its own, checked: its fields
    (`check_manifest`, with `adding` counted among its models, as it will be once registered),
    then each level's point against its model (`codec.check_point`: an anchor the model cannot
    code at, a lattice level without one, lam > 0 on one, an anchor on a VQ model, too many maps),
    each model loaded from root as its manifest records it (adding's from `folder`; not at all
    without it)."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    if adding is not None:
        manifest["models"][adding] = {"folder": adding, "sha256": "0" * 64, "config_sha256": {}}
    manifest.update(levels=levels, default=default)
    zoo.check_manifest(manifest, path)
    models = {}
    for q, entry in levels.items():
        name = entry["model"]
        if name == adding and folder is None:
            continue
        if name not in models:
            models[name] = zoo.load_folder(folder, name=name) if name == adding else _registered(root, name, manifest["models"][name])
        try:
            check_point(models[name], level_point(entry))
        except ValueError as e:
            raise ModelError(f"model manifest {path}: levels.{q}: {e}") from None
    return manifest


def _registered(root: Path, name: str, entry: dict) -> zoo.CodecModel:
    """Model `name` of root's manifest (its `entry`), loaded and checked as the zoo loads it."""
    return zoo.load_folder(root / entry["folder"], expected_sha256=entry["sha256"], name=name,
                           expected_config=entry["config_sha256"], expected_graphs=entry.get("graphs_sha256", {}))
