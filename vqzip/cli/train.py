"""`vqzip train ...`: the training phases' commands. Each parses its options and calls
`vqzip.training`; what is more than a call lives there (`vqzip.training.commands`)."""
from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer

from vqzip.cli.app import Command, err, reported, train_app
from vqzip.errors import VqzError
from vqzip.extras import require


def _needs_training(export: bool = False) -> None:
    """Torch (and onnx, which writes the networks' graphs, to export), from the train extra: a
    missing one is one line naming the extra (exit 2), before any work."""
    require("torch", "train", "training")
    if export:
        require("onnx", "train", "exporting a model")


def _main_rank() -> bool:
    """False in torchrun's ranks other than 0, which train silently (see vqzip.training.distributed)."""
    return os.environ.get("RANK", "0") == "0"


def _progress(title: str):
    """(a context for the phase, update(step, total, stats)): a bar at a terminal; elsewhere (a log
    file) one whole line per update, which a bar's columns would cut with "…"."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    def shown(stats: dict) -> str:
        return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items())

    if not err().is_terminal:
        def line(step: int, total: int, stats: dict):
            if _main_rank():
                err().print(f"{title} {step}/{total} {shown(stats)}", markup=False)

        return nullcontext(), line
    bar = Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[stats]}"), console=err(), disable=not _main_rank())
    task = bar.add_task(title, total=None, stats="")

    def update(step: int, total: int, stats: dict):
        bar.update(task, completed=step, total=total, stats=shown(stats))

    return bar, update


WARMUP = 100  # steps of warm-up unless --warmup says otherwise, or fewer if the run trains fewer


def _warmup(steps: int, warmup: int | None, start_step: int) -> int:
    """The warm-up a run trains with: --warmup, or WARMUP (at most the steps trained); bad usage
    for a --warmup longer than the steps the run trains."""
    if warmup is None:
        return max(1, min(WARMUP, steps - start_step))
    if warmup > steps - start_step:
        raise typer.BadParameter(f"a warm-up of {warmup} steps is longer than the {steps - start_step} steps trained "
                                 f"(--steps {steps}" + (f", --start-step {start_step}" if start_step else "") + ")",
                                 param_hint="--warmup")
    return warmup


WARMUP_HELP = ("Steps of linear learning-rate warm-up from the first step trained (a run continued from landed weights "
               "starts without Adam's moments: give it more).")
WARMUP_DEFAULT = f"{WARMUP}, or the steps trained if fewer"
PRECISION_HELP = ("bf16 (autocast), fp32, or auto: bf16 where it is native (a CPU with AVX-512 BF16 or AMX, "
                  "a GPU with bf16), else fp32, which is 27x faster than emulated bf16.")
START_STEP_HELP = ("Begin at step N of the schedule: with --init from weights landed at step N (its folder lost), "
                   "the run goes on where they stopped, with a new warm-up; give it another --seed for new crops.")


@train_app.command("vqvae", cls=Command)
def train_vqvae(
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="Folder of training images (every 20th is held out)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder; rerunning the command resumes from it."),
    steps: int = typer.Option(4000, metavar="N", help="Training steps."),
    batch: int = typer.Option(16, metavar="N", help="Crops per step."),
    crop: int = typer.Option(128, metavar="PIXELS", help="Side of the square training crops."),
    lr: float = typer.Option(1e-3, metavar="X", help="Learning rate."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    arch: str = typer.Option("vqvae2", metavar="NAME", help="Architecture (vqzip.models)."),
    channels: int = typer.Option(128, metavar="N", help="Channels of the network."),
    codes: int = typer.Option(512, metavar="N", help="Codebook size of each level."),
    code_dim: int = typer.Option(64, metavar="N", help="Dimension of the code vectors (every level and stage)."),
    bottom_stages: int = typer.Option(1, metavar="S", help="Residual VQ stages at the bottom level."),
    fine_stages: int = typer.Option(0, metavar="S", help="Residual VQ stages of a fine level at 1/2 resolution (0: none; needs one bottom stage)."),
    padding: str = typer.Option("zeros", metavar="MODE", help="Padding of the convolutions: zeros or replicate."),
    colour: float = typer.Option(0.0, metavar="F", help="Fraction of crops painted with flat colours (saturated colours, flat areas)."),
    rate: float = typer.Option(0.0, metavar="W", help="Entropy-constrained code assignment in training: what one bit weighs against a typical quantization error."),
    preview: float = typer.Option(0.5, metavar="W", help="Weight of the preview head's loss (top level alone -> 1/4-size image)."),
    precision: str = typer.Option("auto", metavar="P", help=PRECISION_HELP),
    init: Optional[Path] = typer.Option(None, "--init", metavar="RUN", help="Start from this run's network (fine-tuning); a preview head or residual stages it lacks start fresh."),
    start_step: int = typer.Option(0, "--start-step", metavar="N", help=START_STEP_HELP),
    warmup: Optional[int] = typer.Option(None, "--warmup", metavar="N", min=1, show_default=WARMUP_DEFAULT, help=WARMUP_HELP),
):
    """Phase I: the network (a hierarchical VQ-VAE)."""
    _needs_training()
    from vqzip import training

    warmup = _warmup(steps, warmup, start_step)
    with reported():
        net_cfg = dict(channels=channels, code_dim=code_dim, top_codes=codes, bottom_codes=codes, bottom_stages=bottom_stages, preview=preview,
                       padding=padding, rate=rate, fine_stages=fine_stages, fine_codes=codes)
        cfg = training.TrainConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, precision=precision, colour=colour,
                                   start=start_step, warmup=warmup)
        bar, update = _progress("vqvae")
        with bar:
            meta = training.train_vqvae(data, out, arch, net_cfg, cfg, update, init)
        if _main_rank():
            err().print(f"done: {meta['steps_done']} steps in {meta['wall_seconds']:.0f} s -> {out / 'vqvae.safetensors'}")


@train_app.command("prior", cls=Command)
def train_prior(
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the network was trained on."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder holding vqvae.safetensors."),
    steps: int = typer.Option(3000, metavar="N", help="Training steps."),
    batch: int = typer.Option(16, metavar="N", help="Crops per step."),
    crop: int = typer.Option(128, metavar="PIXELS", help="Side of the square training crops."),
    lr: float = typer.Option(1e-3, metavar="X", help="Learning rate."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    channels: int = typer.Option(96, metavar="N", help="Channels of each prior."),
    fine_channels: Optional[int] = typer.Option(None, metavar="N", show_default="--channels",
                                                help="Channels of the fine level's priors (a quarter of the image's pixels: 4x the bottom's walk)."),
    blocks: int = typer.Option(3, metavar="N", help="Gated blocks of each prior."),
    fine_blocks: Optional[int] = typer.Option(None, metavar="N", min=1, show_default="--blocks",
                                              help="Gated blocks of the fine level's priors."),
    maps_trained: Optional[str] = typer.Option(None, "--maps", metavar="LIST", show_default="every map",
                                               help="Comma-separated map names (top, bottom, fine, ...) whose priors train; "
                                                    "the others stay as --init left them."),
    free_stages: bool = typer.Option(False, "--context-free-stages",
                                     help="Residual stages after a level's first get priors without code context (a 1x1 first kernel): "
                                          "conditioned on the earlier maps alone, each such map is computed at once, in parallel."),
    precision: str = typer.Option("auto", metavar="P", help=PRECISION_HELP),
    init: Optional[Path] = typer.Option(None, "--init", metavar="RUN", help="Start from this run's priors (fine-tuning); a prior given fewer channels or blocks than its own starts cut from it."),
    start_step: int = typer.Option(0, "--start-step", metavar="N", help=START_STEP_HELP),
    warmup: Optional[int] = typer.Option(None, "--warmup", metavar="N", min=1, show_default=WARMUP_DEFAULT, help=WARMUP_HELP),
):
    """Phase II: one PixelCNN prior per code map of the run's network."""
    _needs_training()
    from vqzip import training
    from vqzip.training.commands import sized_prior_configs

    warmup = _warmup(steps, warmup, start_step)
    with reported():
        cfgs = sized_prior_configs(out, channels, blocks, fine_channels, fine_blocks, free_stages)
        cfg = training.TrainConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, precision=precision, start=start_step,
                                   warmup=warmup)
        bar, update = _progress("prior")
        with bar:
            meta = training.train_prior(data, out, cfgs, cfg, update, init,
                                        None if maps_trained is None else [n.strip() for n in maps_trained.split(",") if n.strip()])
        if _main_rank():
            err().print(f"done: {meta['steps_done']} steps in {meta['wall_seconds']:.0f} s -> {out / 'prior.safetensors'}")


@train_app.command("lattice", cls=Command)
def train_lattice(
    init: Path = typer.Option(..., "--init", metavar="RUN", help="A trained VQ-VAE with a fine level: a run folder (vqvae.json) or a model folder (config.json); its top and bottom layers are kept."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="Training images (every 20th is held out, and validates)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder; rerunning the command resumes from it."),
    channels: int = typer.Option(8, metavar="C", help="Channels of the lattice (symbols per position at 1/2 resolution)."),
    max_symbol: int = typer.Option(31, metavar="L", help="Largest |symbol|: each channel's alphabet is 2L+1."),
    steps: int = typer.Option(4000, metavar="N", help="Training steps."),
    batch: int = typer.Option(16, metavar="N", help="Crops per step."),
    crop: int = typer.Option(128, metavar="PIXELS", help="Side of the square training crops."),
    lr: float = typer.Option(1e-3, metavar="X", help="Learning rate (cosine decay after the warm-up)."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    train_coarse: bool = typer.Option(False, "--train-coarse", help="Train the top and bottom layers too (their priors then no longer fit them)."),
    val_every: int = typer.Option(500, "--val-every", metavar="N", min=1, help="Validate every N steps (and at the start and the end): the fine map's bpp and PSNR at anchors 0, 3 and 6."),
    val_images: int = typer.Option(0, "--val-images", metavar="N", min=0, show_default="all", help="Validate on the first N images of the validation split."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", min=1, show_default="torch's", help="Torch's CPU threads."),
    precision: str = typer.Option("auto", metavar="P", help=PRECISION_HELP),
    warmup: Optional[int] = typer.Option(None, "--warmup", metavar="N", min=1, show_default=WARMUP_DEFAULT, help=WARMUP_HELP),
):
    """A lattice fine level (issue 35) on a trained VQ-VAE: scalar symbols whose rate moves with a learned gain per anchor."""
    _needs_training()
    import torch

    from vqzip import training
    from vqzip.models.configs import LatticeConfig
    from vqzip.training.lattice import train_lattice as train

    warmup = _warmup(steps, warmup, 0)
    with reported():
        if threads:
            torch.set_num_threads(threads)
        try:
            lattice = LatticeConfig(channels=channels, max_symbol=max_symbol)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--channels/--max-symbol") from None
        cfg = training.TrainConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, precision=precision, warmup=warmup)
        bar, update = _progress("lattice")
        with bar:
            meta = train(data, out, init, lattice, cfg, train_coarse=train_coarse, val_every=val_every,
                         val_images=val_images, progress=update)
        err().print(f"done: {meta['steps_done']} steps in {meta['wall_seconds']:.0f} s -> {out / 'lattice.safetensors'}; "
                    f"validation: {out / 'validation.jsonl'}")


@train_app.command("rdo-codes", cls=Command)
def train_rdo_codes(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder with both phases done: its priors choose the codes."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="New run folder: the network, the codes, then `train prior --init RUN`."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the network was trained on."),
    lambdas: str = typer.Option("0,0.01,0.02,0.04", metavar="LIST", help="Comma-separated RDO multipliers; 0: the nearest codes."),
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="N", min=1, help="Worker processes (one thread each)."),
):
    """Phase III: the training images coded with RDO under the run's priors, for fine-tuning them on what the encoder chooses."""
    _needs_training()
    from vqzip.training.rdo_codes import rdo_codes

    with reported():
        try:
            lams = [float(x) for x in lambdas.split(",")]
        except ValueError:
            raise typer.BadParameter(f"{lambdas!r} is not a comma-separated list of numbers", param_hint="--lambdas") from None
        bar, update = _progress("rdo-codes")
        with bar:
            record = rdo_codes(run, out, data, lams, jobs, lambda done, total: update(done, total, {}))
        err().print(f"done: {record['images']} images x {len(lams)} multipliers -> {out / 'codes.npz'}")


@train_app.command("snapshot", cls=Command)
def train_snapshot(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder of a phase under way (or stopped)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="New run folder for the weights as they stand."),
    phase: str = typer.Option("vqvae", metavar="PHASE", help="vqvae or prior."),
):
    """The weights of a phase as of its last saved state, as a run folder of their own (then `train prior`, `train export`)."""
    _needs_training()
    from vqzip import training

    with reported():
        if phase not in ("vqvae", "prior"):
            raise typer.BadParameter(f"{phase!r} is not vqvae or prior", param_hint="--phase")
        if not (run / f"{phase}-state.pt").exists():
            raise VqzError(f"{run}: no {phase}-state.pt (nothing trained yet)")
        meta = training.snapshot(run, phase, out)
        err().print(f"{out / (phase + '.safetensors')}: {meta['snapshot']}")


@train_app.command("export", cls=Command)
def train_export(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder with both phases done, or a finished `train lattice` run."),
    name: str = typer.Option(..., "--name", metavar="NAME", help="Model name, e.g. vqz-base."),
    scales: Optional[str] = typer.Option(None, "--scales", metavar="LIST", show_default="1",
                                         help="Comma-separated scales (e.g. 1/2,3/4,1), one quality level each; 'none' for no level (the model is then used with -m NAME)."),
    default_scale: Optional[str] = typer.Option(None, "--default-scale", metavar="S", help="Make this scale's level the default."),
    ladder: Optional[Path] = typer.Option(None, "--levels", metavar="FILE",
                                          help="A family's ladder instead of --scales: the JSON bench/choose_levels.py prints; it replaces every quality level of the manifest."),
    default_level: Optional[int] = typer.Option(None, "--default-level", metavar="Q", help="With --levels: the default level's number."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="FOLDER", help="Training images, to report validation PSNR/bpp (a lattice run's: also to calibrate its fine prior; required)."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", metavar="FOLDER", show_default="$XDG_DATA_HOME/vqzip/models, else ~/.local/share/vqzip/models",
                                               help="Model folder to export into (never the package's unless named)."),
    kodak: Optional[Path] = typer.Option(None, "--kodak", metavar="FILE", help="bench/kodak.py JSON result for the model card."),
    rd: Optional[Path] = typer.Option(None, "--rd", metavar="FILE", help="`vqzip rd-curve` vqzip.json for the card's level table."),
    tile: str = typer.Option("0x0", "--tile", metavar="ROWSxCOLS",
                             help="Decode each code map in independent tiles of ROWSxCOLS codes (0: the whole height or width): fewer, larger steps of the priors' walk, for a little rate."),
    keep: Optional[str] = typer.Option(None, "--keep-priors", metavar="MODEL",
                                       help="For a run that trained only some maps' priors (`train prior --maps`): the model (a name in the "
                                            "checkpoints folder, or a folder) whose priors of the other maps ship as they are; "
                                            "for a lattice run, the model whose top and bottom priors ship (default: its --init)."),
    force: bool = typer.Option(False, "-f", "--force", help="Export over a model of the same name (files coded with it no longer decode)."),
):
    """Pack a run into checkpoints/NAME, record it and its quality levels in the manifest with its
    sha256, write its card."""
    _needs_training(export=True)
    from vqzip.training.commands import export_model

    with reported():
        folder, entry, val = export_model(run, name, scales=scales, default_scale=default_scale, ladder=ladder,
                                          default_level=default_level, data=data, checkpoints=checkpoints, kodak=kodak,
                                          rd=rd, tile=_tile(tile), keep=keep, force=force)
        err().print(f"exported {folder} (sha256 {entry['sha256'][:16]}…)" + (f"; validation {val}" if val else ""))


@train_app.command("ladder", cls=Command)
def train_ladder(
    levels: Path = typer.Argument(..., metavar="FILE", help="A family's ladder: the JSON bench/choose_levels.py prints."),
    default_level: int = typer.Option(..., "--default-level", metavar="Q", help="The default level's number."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", metavar="FOLDER", show_default="$XDG_DATA_HOME/vqzip/models, else ~/.local/share/vqzip/models",
                                               help="Model folder whose manifest takes the ladder (never the package's unless named)."),
):
    """Replace every quality level of a model folder's manifest with a ladder of its exported models
    (then write their cards again: `vqzip train card`)."""
    _needs_training()
    from vqzip.training.commands import set_levels

    with reported():
        err().print(f"levels set in {set_levels(levels, default_level, checkpoints)}", markup=False)


@train_app.command("card", cls=Command)
def train_card(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="An exported model's folder (the manifest.json beside it lists it)."),
    rd: Optional[Path] = typer.Option(None, "--rd", metavar="FILE", help="`vqzip rd-curve` vqzip.json over the model's levels, for their table."),
    rd_command: Optional[str] = typer.Option(None, "--rd-command", metavar="TEXT", show_default="vqzip rd-curve ../shared/data/kodak --out results/kodak",
                                             help="The command that made --rd, named under the table."),
    kodak: Optional[Path] = typer.Option(None, "--kodak", metavar="FILE", help="bench/kodak.py JSON result."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", metavar="FILE", help="The recipe the model was trained by (recipes/*.toml)."),
    packed_by: Optional[str] = typer.Option(None, "--packed-by", metavar="TEXT", show_default="the command its config records",
                                            help="The command that exported the model (needed where its config records none)."),
):
    """Write an exported model's MODEL_CARD.md again, with its Kodak figures measured since its
    export. Figures not given (--rd, --kodak) are dropped from the card: give every result it should show."""
    _needs_training()
    from vqzip.training.commands import card_again

    with reported():
        path = card_again(folder, rd=rd, rd_command=rd_command, kodak=kodak, recipe=recipe, packed_by=packed_by)
        err().print(f"wrote {path}", markup=False)


@train_app.command("graphs", cls=Command)
def train_graphs(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="A model folder (model.safetensors and config.json)."),
):
    """Add the network's ONNX graphs to a model folder exported before they existed, and record
    them in the manifest beside it: the model then runs without torch."""
    _needs_training(export=True)
    from vqzip.training.onnx_export import add_graphs

    with reported():
        graphs, manifest = add_graphs(folder)
        if manifest is None:
            err().print(f"{folder}: {len(graphs)} graphs written but not recorded: no manifest.json beside the folder "
                        "lists this model, so a model loaded by name does not use them", markup=False)
        else:
            err().print(f"{folder}: {len(graphs)} graphs added, recorded in {manifest}", markup=False)


@train_app.command("run", cls=Command)
def train_run(
    recipe: Path = typer.Argument(..., metavar="RECIPE", help="A training recipe (recipes/*.toml)."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the recipe lists (checked by sha256)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder; rerunning the command resumes from it."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", metavar="N", min=0,
                                            help="Stop after N training steps in all; the next run goes on from there."),
):
    """Train a model by its recipe, phase by phase: every phase resumes from its state, a finished one is skipped."""
    _needs_training(export=True)
    from vqzip.training import recipe as recipes

    with reported():
        bar, update = _progress("train")
        with bar:
            done = recipes.run(recipes.load(recipe), data, out, max_steps, update, lambda line: err().print(line, markup=False))
        err().print(f"done: {out / 'checkpoints'}" if done else "stopped: run the command again to go on")


def _tile(text: str) -> tuple[int, int]:
    """--tile's ROWSxCOLS as two sizes >= 0."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        rows = cols = -1
    if rows < 0 or cols < 0 or rows >= 1 << 31 or cols >= 1 << 31:
        raise typer.BadParameter(f"takes two sizes such as 32x64 (0 for the whole height or width), not {text!r}", param_hint="--tile")
    return rows, cols
