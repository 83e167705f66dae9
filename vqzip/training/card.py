"""MODEL_CARD.md: what a shipped model is, its recipe, how it was trained (every command, from the
records in its config.json), and its figures. The card holds no machine's paths: commands and
notes are made portable (`portable`), and a training shared by several maps' priors is one row."""
from __future__ import annotations

import json
import re
from pathlib import Path

from safetensors import safe_open

from vqzip import priors, zoo
from vqzip.data import VAL_EVERY
from vqzip.fileio import write_atomic
from vqzip.models import lattice_config, lattice_map
from vqzip.training.export import CALIBRATION_MAPS
from vqzip.training.loop import command_line


def _stages(meta: dict) -> list[dict]:
    """A phase's training record and those it was fine-tuned from (`init`), oldest first."""
    return (_stages(meta["init"]) if "init" in meta else []) + [meta]


# The engine that ran the networks in a bench/kodak.py result (its "backend"); a result without
# one was measured before issue 37, when torch ran them all
_ENGINES = {"onnx": "ONNX Runtime", "torch": "torch"}

_ABSOLUTE = re.compile(r"(?<![\w.])/(?:root|home/[^/\s]+|work|tmp)(?:/[^\s'\")]*)?")


def _relative(path: str) -> str:
    """A machine's absolute path as the repository's conventions write it: the training images as
    ../shared/data/..., a run folder under runs/, a file of the source tree by its own path."""
    for marker, prefix in (("/shared/data/", "../shared/data/"), ("/vqzip-runs/", "runs/"), ("/work/main/", "")):
        if marker in path:
            return prefix + path.split(marker, 1)[1]
    return path.rstrip("/").rsplit("/", 1)[-1]


def portable(text: str) -> str:
    """A recorded command or note without machine paths: `python /…/vqzip/__main__.py` is `vqzip`,
    and every other absolute path under /root, /home, /work or /tmp is made relative (`_relative`)."""
    text = re.sub(r"'?python \S*vqzip/__main__\.py'?", "vqzip", text)
    return _ABSOLUTE.sub(lambda m: _relative(m.group(0)), text)


def _same(a: dict, b: dict) -> bool:
    """Whether two training records are the same training (their own fields, not their history)."""
    return {k: v for k, v in a.items() if k not in ("init", "config")} == {k: v for k, v in b.items() if k not in ("init", "config")}


def _shared_rows(tr: dict) -> int:
    """How many of its first prior trainings this run shares with the model its kept priors come from."""
    own, theirs = _stages(tr["prior"]), _stages(tr["kept_priors"]["training"]["prior"])
    n = 0
    while n < min(len(own), len(theirs)) and _same(own[n], theirs[n]):
        n += 1
    return n


def _prior_rows(tr: dict) -> list[tuple[int, dict, str]]:
    """(position in its chain, record, label) of each prior training, oldest first: with kept priors
    (`export --keep-priors`), the trainings both chains share once, then the kept maps' own, then
    this run's own (so that the last row is the last training of this run)."""
    own, kept = _stages(tr["prior"]), tr.get("kept_priors")
    if not kept:
        return [(k, m, "") for k, m in enumerate(own)]
    theirs, n = _stages(kept["training"]["prior"]), _shared_rows(tr)
    label = f" ({', '.join(kept['maps'])}: kept)"
    return ([(k, m, "") for k, m in enumerate(own[:n])] + [(k, m, label) for k, m in enumerate(theirs[n:], n)]
            + [(k, m, "") for k, m in enumerate(own[n:], n)])


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


def _map_words(m, lattice: bool) -> str:
    """A code map in the card's first line: its resolution and its codes (a `lattice` map's channels and symbols)."""
    if lattice:
        return f"{m.name} (1/{m.stride}, a lattice of {m.channels} channels of {m.num_codes} symbols)"
    return f"{m.name} (1/{m.stride}, {m.num_codes} codes)"


def _lattice_words(name: str, lattice) -> str:
    """The card's line on a lattice map (`vqzip.models.lattice`, its `LatticeConfig`): its symbols and anchors."""
    anchors = ", ".join(f"{k}: {lam:g}" for k, lam in enumerate(lattice.anchors))
    return (f"- the {name} map is a lattice (`vqzip.models.lattice`): each of its {lattice.channels} channels a symbol in"
            f" -{lattice.max_symbol}..{lattice.max_symbol}, its step a learned gain per channel and rate anchor; anchors 0 to"
            f" {len(lattice.anchors) - 1}, each trained for its rate-distortion multiplier λ ({anchors}); a fractional anchor"
            " (in 1/256 steps) interpolates the gains of the two about it, and the file records the anchor it was coded at")


def _row(name: str, m: dict) -> str:
    """The Training table's row of one training record `m` (a run's, `run_loop`'s record) named
    `name`; its hardware with its torchrun ranks where it had more than one (each that hardware)."""
    t = m["train"]
    ranks = f", {m['ranks']} ranks" if m.get("ranks", 1) > 1 else ""
    return (f"| {name} | {m['steps_done'] - t.get('start', 0)} | {t['batch']} | {t['crop']} px | {t['lr']} cosine to {t['min_lr']} | "
            f"{m['wall_seconds'] / 60:.1f} min | {m.get('hardware', '?')}, {m['torch_threads']} threads{ranks} | `{portable(m['command'])}` |")


def _vq_training(tr: dict, prefix: str = "") -> tuple[list[str], list[str]]:
    """(Training table rows, notes) of a VQ model's training record (phases I and II, RDO's codes,
    kept priors), each row's name and each note after `prefix` (another model's: its name); none
    for a record without phase I (a model whose config records no training)."""
    if "vqvae" not in tr:
        return [], []
    rows, notes = [], []
    kept = tr.get("kept_priors")
    for phase, stages in (("vqvae", [(k, m, "") for k, m in enumerate(_stages(tr["vqvae"]))]), ("prior", _prior_rows(tr))):
        for k, m, label in stages:
            start = m["train"].get("start", 0)
            name = phase if k == 0 else f"{phase}, continued from step {start}" if start else f"{phase}, fine-tuned"
            only = m.get("maps_trained") or m.get("config", {}).get("maps_trained")
            rows.append(_row(prefix + name + (f" ({', '.join(only)} only)" if only else label), m))
    notes += [f"{p}: {portable(m['launched_as'])}" for p in ("vqvae", "prior") for m in _stages(tr[p]) if "launched_as" in m]
    if "codes" in tr:
        notes.append(f"The last prior row trained on {_rdo_codes(tr['codes'])}; the rows before it on the nearest codes.")
    if kept:
        kc = kept["training"].get("codes")
        shared, theirs = _shared_rows(tr), len(_stages(kept["training"]["prior"]))
        notes.append(f"The priors of the {', '.join(kept['maps'])} map(s) are those of {kept['model']} as it was (sha256"
                     f" `{kept['sha256'][:16]}…`), unchanged, integer tensors included: their training is the first {shared}"
                     " prior row(s), which trained every map's prior"
                     + (f", then the {theirs - shared} marked kept" if theirs > shared else "")
                     + (f"; the last of them on {_rdo_codes(kc)}" if kc else "")
                     + ". The rows after them, this run's own, trained the maps they name; the other prior rows trained on the"
                     " nearest codes.")
    notes += [f"{p}: a snapshot, {portable(m['snapshot'])}: its learning rate had not finished its schedule"
              for p in ("vqvae", "prior") for m in _stages(tr[p]) if "snapshot" in m]
    if any(len(_stages(tr[p])) > 1 for p in ("vqvae", "prior")):
        notes.append("A fine-tuned or continued phase started from the weights of the row above it (`--init`); a continued"
                     " one took up its learning-rate schedule at the step it names (`--start-step`).")
    return rows, [prefix + n for n in notes]


def _lattice_calibration(tr: dict, fine: str) -> list[str]:
    """The card's line on a lattice model's integer priors (`export_lattice`): the frozen maps'
    kept as their model ships them, only the lattice map's calibrated at export."""
    kept, cal = tr["kept_priors"], tr["calibration"]
    return ["- the priors ship in integer form (`vqzip.priors`: each kind's exact arithmetic): the"
            f" {' and '.join(kept['maps'])} maps' as {kept['model']} ships them (kept at export), the {fine} map's",
            f"  calibrated at export on the coarser maps' codes of {cal['images']} training images; every rate below is",
            "  from these integer priors, which is what the codec codes with"]


def _lattice_training(tr: dict, fine: str, prior_words: str) -> tuple[list[str], list[str]]:
    """(Training table rows, notes) of a lattice model (`export_lattice`'s record): the frozen
    model's own training (its rows and notes, after its name), then the lattice phase, then the
    calibration of the fine map's prior (`prior_words`: that prior in words)."""
    from vqzip.training.lattice import RAMP

    kept, m, cal = tr["kept_priors"], tr["lattice"], tr["calibration"]
    frozen = " and ".join(kept["maps"])
    rows, notes = _vq_training(kept["training"], f"{kept['model']}: ")
    if not rows:
        notes.append(f"{kept['model']}'s own training is not recorded in its config.")
    ramp = m.get("rate_ramp", RAMP)  # runs whose record lacks it ran with RAMP, unchanged since lattice training began
    start = m["train"].get("start", 0)
    rows.append(_row(f"lattice{f', continued from step {start}' if start else ''} ({fine} map;"
                     f" {frozen} frozen)", m))
    notes += [
        f"The {frozen} maps, their network and their priors, are those of {kept['model']} (sha256"
        f" `{kept['sha256'][:16]}…`), frozen: integer tensors included, as they are in that model"
        + ("; its training is the rows that name it" if rows[:-1] else "") + ".",
        f"lattice: the {fine} map's network, gains and prior trained on {kept['model']}'s frozen layers, as the codec runs"
        " them (graphs in float32, nearest codes), with the loss λ_k · 255² · MSE + bits per pixel at an anchor k drawn per"
        f" batch (the anchors' λ above), the rate term ramped in from zero over the first {ramp:.0%} of"
        f" the steps; validated every {m['val_every']} steps on {m['val_images']} validation images.",
        f"The {fine} map's prior, {prior_words}, was made integer at export, calibrated on the coarser maps' codes of"
        f" {cal['images']} training images of `{portable(cal['data'])}`.",
    ]
    return rows, notes


# the rd-curve metrics a level's row shows: (key in its results, column, format); a metric the
# result has not measured is a blank cell, SSIMULACRA 2 a column only where it was measured
_RD_METRICS = (("psnr-rgb", "Kodak PSNR-RGB", "{:.2f} dB"), ("ms-ssim-rgb-db", "Kodak MS-SSIM", "{:.2f} dB"))
_RD_OPTIONAL = (("ssimulacra2", "Kodak SSIMULACRA 2", "{:.1f}"),)


# what write_card reads of a bench/kodak.py result's "mean", and of a `vqzip rd-curve` vqzip.json's
# "results" besides "setting": one figure per setting each
_KODAK_MEAN = ("bpp", "estimated_bpp", "psnr", "encode_s", "decode_s", "preview_s", "preview_psnr")
_RD_SERIES = ("bpp", "encoding_time", "decoding_time", *(m[0] for m in _RD_METRICS + _RD_OPTIONAL))


def check_kodak(result) -> None:
    """A ValueError naming the first field of a bench/kodak.py result that `write_card` reads and
    finds missing or of the wrong type."""
    if not isinstance(result, dict) or not isinstance(result.get("mean"), dict):
        raise ValueError("no \"mean\" object")
    for key in _KODAK_MEAN:
        if not _number(result["mean"].get(key)):
            raise ValueError(f"mean.{key} is not a number")
    for key, kind in (("images", str), ("json", str), ("threads", int)):
        if not isinstance(result.get(key), kind) or isinstance(result.get(key), bool):
            raise ValueError(f"{key} is not {'a number' if kind is int else 'a path'}")
    if result.get("backend", "torch") not in _ENGINES:
        raise ValueError(f"backend {result['backend']!r} is not one of {', '.join(_ENGINES)}")


def check_rd(result) -> None:
    """A ValueError naming the first field of a `vqzip rd-curve` vqzip.json that `write_card` reads
    and finds missing or of the wrong type: "results" with a list of "setting"s (the levels'
    numbers) and, for each figure it has, one number per setting."""
    if not isinstance(result, dict) or not isinstance(result.get("results"), dict):
        raise ValueError("no \"results\" object")
    r = result["results"]
    if not isinstance(r.get("setting"), list):
        raise ValueError("results.setting is not a list of levels")
    for key in (k for k in _RD_SERIES if k in r):
        if not isinstance(r[key], list) or len(r[key]) != len(r["setting"]) or not all(map(_number, r[key])):
            raise ValueError(f"results.{key} is not {len(r['setting'])} numbers, one per setting")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def write_card(folder: Path, entry: dict, kodak: dict | None, rd: dict | None = None, recipe=None,
               packed_by: str | None = None, former_levels: tuple[dict, str] | None = None,
               rd_command: str = "vqzip rd-curve ../shared/data/kodak --out results/kodak") -> Path:
    """MODEL_CARD.md from the model's config.json (training record: a VQ model's phases, or a
    lattice model's, `export_lattice`), its quality levels in the manifest beside it (a lattice
    level's anchor a column of their table), a bench/kodak.py result, a `vqzip rd-curve`
    vqzip.json (the metrics it measured), the recipe it was trained by
    (`vqzip.training.recipe.Recipe`, None: none) and the command that packed it (default: the
    one the config records, else the one running). `former_levels`: (levels, when they ended)
    for a model whose quality levels the manifest no longer holds, with `rd` measured on them:
    shown as they were. `rd_command`: the command that made `rd`, named under the table."""
    cfg = json.loads((folder / "config.json").read_text())
    tr, net_cfg = cfg["training"], cfg["net"]
    net, prior_cfgs = zoo.build(cfg)
    prior_params = sum(p.numel() for c in prior_cfgs for p in priors.float_prior(c).parameters())
    lattice, fine = lattice_config(net), lattice_map(net.maps)
    maps = ", ".join(_map_words(m, k == fine) for k, m in enumerate(net.maps))
    lines = [
        f"# {cfg['name']}",
        "",
        f"Architecture `{cfg['arch']}`: a hierarchical VQ-VAE with {len(net.maps)} code maps, {maps}, each",
        "with a prior conditioned on the maps before it, and a preview head that makes a",
        f"quarter-size image from the top codes alone (trained with loss weight {net_cfg.get('preview', 0)}).",
        "",
        f"- weights: `model.safetensors`, sha256 `{entry['sha256']}`",
        f"- parameters: network {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M, priors {prior_params / 1e6:.2f} M",
        f"- code vectors of dimension {net_cfg['code_dim']}",
        *([_lattice_words(net.maps[fine].name, lattice)] if lattice else []),
        *(f"- the {m.name} map's prior: {priors.kind_of(c).describe(c)}" for m, c in zip(net.maps, prior_cfgs)),
        *([f"- each code map is decoded in independent {tiles} (a tile's first rows and columns do not see its neighbours)"]
          if (tiles := _walk_tiles(folder)) else []),
        *(_lattice_calibration(tr, net.maps[fine].name) if lattice else [
            "- the priors ship in integer form (`vqzip.priors`: each kind's exact arithmetic), calibrated at export on",
            f"  {CALIBRATION_MAPS} code maps of training images; every rate below is from these integer priors, which is",
            "  what the codec codes with"]),
        "",
        *_data(recipe),
        "## Training",
        "| phase | steps | batch | crop | lr | wall time | hardware | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows, notes = (_lattice_training(tr, net.maps[fine].name,
                                     priors.kind_of(prior_cfgs[fine]).describe(prior_cfgs[fine]))
                   if lattice else _vq_training(tr))
    lines += rows + [""] + [f"- {n}" for n in notes]
    lines += ["- Wall times are as measured on a shared machine: other work ran on the same cores at times.",
              f"- Packed by `{portable(packed_by or tr.get('packed_by') or command_line())}`.", ""]
    lines += _validation(entry.get("validation"), lattice)
    if kodak:
        k = kodak["mean"]
        lines += ["## Kodak (24 images, through the real codec)",
                  "| mean bpp (file size) | priors' estimate | mean PSNR-RGB | compress s | decompress s | preview s | preview PSNR (4x reduced) |",
                  "|---|---|---|---|---|---|---|",
                  f"| {k['bpp']:.4f} | {k['estimated_bpp']:.4f} | {k['psnr']:.2f} dB | {k['encode_s']:.2f} | {k['decode_s']:.2f} "
                  f"| {k['preview_s']:.3f} | {k['preview_psnr']:.2f} dB |",
                  "", f"Measured by `python bench/kodak.py {portable(kodak['images'])} --json {portable(kodak['json'])}` with the model"
                  " loaded once" + (" at its middle anchor" if lattice else "") + ",",
                  f"{kodak['threads']} threads, the networks in {_ENGINES[kodak.get('backend', 'torch')]}.", ""]
    levels = {q: lv for q, lv in json.loads((folder.parent / "manifest.json").read_text())["levels"].items()
              if lv["model"] == cfg["name"]}
    if not levels and former_levels:
        levels, until = former_levels
        lines += ["## Quality levels", f"None now: the model is used by name (`vqzip compress -m {folder.name}`). Until {until}"
                  " it had these levels, measured on Kodak then:", ""]
    if not levels:
        lines += ["## Quality levels", f"None: the model is used by name (`vqzip compress -m {folder.name}`), at scale 1 "
                  "with every stage and nearest codes" + (" (at its middle anchor unless `--anchor` gives another)." if lattice else ".")]
    else:
        lines += ([] if former_levels else ["## Quality levels"]) + _levels_table(levels, rd, rd_command)
    path = folder / "MODEL_CARD.md"
    write_atomic(path, ("\n".join(lines) + "\n").encode(), force=True)  # a failed write leaves the card before
    return path


def _validation(val: dict | None, lattice) -> list[str]:
    """The card's Validation section from the manifest entry's (`export.validate`): a lattice
    model's PSNR and rate per anchor (`lattice`: its `LatticeConfig`, None for a VQ model)."""
    if not val:
        return []
    head = f"## Validation ({val['images']} held-out training-set images)"
    preview = f"the preview (top level alone) {val['preview_psnr']:.2f} dB against the image reduced 4x (box filter)."
    if "anchors" not in val:
        return [head, f"PSNR {val['psnr']:.2f} dB, priors' estimated rate {val['estimated_bpp']:.4f} bpp; {preview}", ""]
    return [head, "| anchor | λ | PSNR | priors' estimated rate |", "|---|---|---|---|",
            *(f"| {a} | {lattice.anchors[int(a)]:g} | {r['psnr']:.2f} dB | {r['estimated_bpp']:.4f} bpp |"
              for a, r in val["anchors"].items()),
            "", f"Each anchor's figures are of every map coded; {preview}", ""]


def _levels_table(levels: dict, rd: dict | None, rd_command: str) -> list[str]:
    """The Quality levels table of a model's levels (manifest entries by number), each row with
    the figures of `rd` (a `vqzip rd-curve` vqzip.json, None: none) at that level: an anchor
    column where any level has one (a lattice model's), a metric's where `rd` measured it."""
    anchored = any("anchor" in lv for lv in levels.values())
    r = rd["results"] if rd else {"setting": []}
    metrics = _RD_METRICS + tuple(m for m in _RD_OPTIONAL if m[0] in r)
    lines = ["Each level codes the image resampled (Lanczos) by its scale (the decoder resamples back), the first"
             " maps, as many as it names (all: every map), its codes chosen with the RDO multiplier"
             " lambda (0: nearest codes), and the fine level skipped in the blocks where it saves less than"
             " `skip` squared error per bit (0: coded whole)." + (" A lattice level codes its lattice map at its rate"
                                                                   " anchor (higher: finer steps, more bits)." if anchored else ""), "",
             "| level | scale | maps | lambda | skip | " + ("anchor | " if anchored else "") + "Kodak bpp | "
             + " | ".join(m[1] for m in metrics) + " | compress s | decompress s |",
             "|---|---|---|---|---|" + ("---|" if anchored else "") + "---|" * (len(metrics) + 3)]
    figures = [("bpp", "{:.4f}"), *((key, f) for key, _, f in metrics), ("encoding_time", "{:.2f}"), ("decoding_time", "{:.2f}")]
    for q, lv in levels.items():
        k = r["setting"].index(q) if q in r["setting"] else None
        cells = ["" if k is None or key not in r else f.format(r[key][k]) for key, f in figures]
        lines.append(f"| {q} | {lv['scale']} | {lv.get('maps', 'all')} | {lv.get('lam', 0):g} | {lv.get('skip', 0):g} | "
                     + (f"{lv.get('anchor', '-')} | " if anchored else "") + " | ".join(cells) + " |")
    if rd:
        lines += ["", f"Kodak figures: `{rd_command}` (real files, decoded pixels;"
                  " seconds per image as that run measured them, its `run.json` says with how many jobs and threads)."]
    return lines


def _data(recipe) -> list[str]:
    """The card's Data section, and its Recipe section where there is a recipe."""
    if recipe is None:
        return ["## Data", "The images given to `--data`, less every 20th in sorted order (held out for validation);",
                "no recipe lists them.", ""]
    names = sorted(recipe.data)
    val = len(names[::VAL_EVERY])
    lines = ["## Data",
             f"{recipe.about + '. ' if recipe.about else ''}{len(names)} images, each listed with its sha256 in the recipe,"
             f" less every {VAL_EVERY}th in sorted order, held out for validation: {len(names) - val} training images,"
             f" {val} validation images.", "",
             "## Recipe",
             f"`vqzip train run {recipe.path.parent.name}/{recipe.path.name} --data DATA --out RUN` runs these phases in order"
             " (each resumable; see the"
             " recipe file for what each row could not record):", "",
             "| phase | kind | from | steps | options |", "|---|---|---|---|---|"]
    for p in recipe.phases:
        refs = ", ".join(f"{k}: {v}" for k, v in p.options.items() if k in ("init", "network", "priors", "run", "keep"))
        opts = "; ".join(f"{k} {json.dumps(v, separators=(', ', ': '))}" for k, v in p.options.items()
                         if k not in ("init", "network", "priors", "run", "keep", "steps"))
        lines.append(f"| {p.name} | {p.kind} | {refs} | {p.options.get('steps', '')} | {opts} |")
    return lines + [""]
