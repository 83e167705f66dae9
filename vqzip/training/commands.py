"""What the `vqzip train` commands do beyond one call: the priors' sizes for a run's maps, and a
run's export into a checkpoints folder (pack, validate, register its levels, write its card).
The command line parses options and calls these; a script can call them the same way.

    cfgs = prior_configs(run, channels=96, blocks=3, fine_channels=32, fine_blocks=1)
    folder, entry, validation = export_model(run, "vqz-new", ladder=Path("ladder.json"), default_level=4)
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from vqzip.errors import UsageError, VqzError


def prior_configs(run: Path, channels: int, blocks: int, fine_channels: int | None = None,
                  fine_blocks: int | None = None, context_free_stages: bool = False) -> list:
    """One PixelCNN config per code map of the run's network: `channels` and `blocks` each, the
    fine level's maps (a quarter of the image's pixels: 4x the bottom's walk) `fine_channels` and
    `fine_blocks` where given; with context_free_stages, the residual stages after a level's
    first get a 1x1 first kernel (no code context: each such map is computed at once)."""
    from vqzip import models
    from vqzip.training.autoencoder import load_net

    maps = load_net(run).maps
    cfgs = []
    for k, m in enumerate(maps):
        fine = m.name.startswith("fine")  # the fine level's maps: fine, fine1, ... by name until MapSpec has roles
        cfgs.append(models.prior_config(maps, k, channels=(fine_channels or channels) if fine else channels,
                                        blocks=(fine_blocks or blocks) if fine else blocks,
                                        **({"first_kernel": 1} if context_free_stages and m.stage else {})))
    return cfgs


def read_ladder(path: Path) -> dict:
    """The "levels" object of a bench/choose_levels.py JSON, or a one-line VqzError."""
    try:
        levels = json.loads(path.read_text())["levels"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VqzError(f"{path}: not a levels file ({{\"levels\": {{...}}}} as bench/choose_levels.py prints): {e}") from None
    if not isinstance(levels, dict):
        raise VqzError(f"{path}: \"levels\" is not an object of levels by number")
    return levels


def export_model(run: Path, name: str, *, scales: str | None = None, default_scale: str | None = None,
                 ladder: Path | None = None, default_level: int | None = None, data: Path | None = None,
                 checkpoints: Path | None = None, kodak: Path | None = None, rd: Path | None = None,
                 tile: tuple[int, int] = (0, 0), keep: str | None = None) -> tuple[Path, dict, dict | None]:
    """Pack `run` into checkpoints/NAME (`export`), validate it on `data`'s held-out images if
    given, record it in the manifest with its sha256 and its quality levels, and write its card
    (with bench/kodak.py's JSON `kodak` and rd-curve's vqzip.json `rd` where given).

    Levels: `scales` ("1/2,3/4,1"; "none" for no level; default "1") with `default_scale`, or a
    family's `ladder` (a bench/choose_levels.py JSON, replacing every level of the manifest) with
    `default_level`. `keep`: the model (a name in the checkpoints folder, or a folder) whose priors
    ship for the maps this run did not train. Returns (folder, manifest entry, validation or None).
    Options that cannot go together are a UsageError naming the option; everything is checked
    before anything is written."""
    from vqzip import training, zoo

    if ladder is not None and (scales is not None or default_scale is not None):
        raise UsageError("give --levels or --scales, not both", "--levels")
    if (ladder is None) != (default_level is None):
        raise UsageError("--levels and --default-level go together", "--default-level")
    family = read_ladder(ladder) if ladder else None
    scales = "none" if ladder else scales or "1"
    try:
        levels = [] if scales == "none" else [Fraction(x) for x in scales.split(",")]
        default = Fraction(default_scale) if default_scale else None
    except (ValueError, ZeroDivisionError):
        raise VqzError(f"--scales takes fractions such as 1/2,3/4,1, not {scales!r}") from None
    if default is not None and default not in levels:
        raise VqzError(f"--default-scale {default_scale} is not one of --scales {scales}")
    root = checkpoints or zoo.checkpoints_dir()
    if family is not None:
        training.check_ladder(root, family, default_level, name)
    kept = None if keep is None else Path(keep) if Path(keep).is_dir() else root / keep
    folder = training.export(run, root / name, tile, kept)
    validation = training.validate(folder, data) if data else None
    entry = training.register(root, name, levels, default, validation=validation)
    if family is not None:
        training.set_ladder(root, family, default_level)
    training.write_card(folder, entry, json.loads(kodak.read_text()) if kodak else None,
                        json.loads(rd.read_text()) if rd else None)
    return folder, entry, validation
