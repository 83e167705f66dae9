"""What the `vqzip train` commands do beyond one call: the priors' sizes for a run's maps, and a
run's export into a checkpoints folder (pack, validate, register its levels, write its card).
The command line parses options and calls these; a script can call them the same way.

    cfgs = sized_prior_configs(run, channels=96, blocks=3, fine_channels=32, fine_blocks=1)
    folder, entry, validation = export_model(run, "vqz-new", ladder=Path("ladder.json"), default_level=4)
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from vqzip.errors import UsageError, VqzError


def sized_prior_configs(run: Path, channels: int, blocks: int, fine_channels: int | None = None,
                        fine_blocks: int | None = None, context_free_stages: bool = False) -> list:
    """One prior config per code map of the run's network (`vqzip.training.prior_configs`):
    `channels` and `blocks` each, the maps of stride 2 (a code per 2x2 pixels: 4x the bottom's
    walk) `fine_channels` and `fine_blocks` where given; with context_free_stages, the residual
    stages after a latent's first get a 1x1 first kernel (no code context: each such map is
    computed at once)."""
    from vqzip.training.autoencoder import load_net
    from vqzip.training.priors import prior_configs

    maps = load_net(run).maps
    per_map = {}
    for m in maps:
        options = {"channels": fine_channels or channels, "blocks": fine_blocks or blocks} if m.stride == 2 else {}
        if context_free_stages and m.stage:
            options["first_kernel"] = 1
        if options:
            per_map[m.name] = options
    return prior_configs(maps, per_map=per_map, channels=channels, blocks=blocks)


def read_ladder(path: Path) -> dict:
    """The "levels" object of a bench/choose_levels.py JSON, or a one-line VqzError."""
    try:
        levels = json.loads(path.read_text())["levels"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VqzError(f"{path}: not a levels file ({{\"levels\": {{...}}}} as bench/choose_levels.py prints): {e}") from None
    if not isinstance(levels, dict):
        raise VqzError(f"{path}: \"levels\" is not an object of levels by number")
    return levels


def set_levels(ladder: Path, default_level: int, checkpoints: Path | None = None) -> Path:
    """Replace every quality level of the manifest of model folder `checkpoints` (default: the
    user's, `zoo.user_dir`) with a family's `ladder` (a bench/choose_levels.py JSON, its levels
    possibly of several of the folder's models) and make `default_level` the default
    (`set_ladder`: checked whole first, so a bad ladder leaves the old one). Returns the manifest's
    path; each model's card still shows its old levels until written again (`card_again`)."""
    from vqzip import training, zoo

    root = checkpoints or zoo.user_dir()  # never the package's own folder unless asked
    if not (root / "manifest.json").is_file():
        raise VqzError(f"{root}: no manifest.json (export a model into it first)")
    training.set_ladder(root, read_ladder(ladder), default_level)
    return root / "manifest.json"


def _check_new_name(name: str, root: Path, force: bool) -> None:
    """A VqzError for a name an installed model, or one in root, already has (unless force): a
    model exported over another makes every file coded with that one undecodable, and two models
    of one name leave `-m NAME` ambiguous."""
    from vqzip import zoo

    if force:
        return
    held = {}
    if (root / "manifest.json").is_file():
        held.update({n: str(root / e["folder"]) for n, e in json.loads((root / "manifest.json").read_text())["models"].items()})
    held.update({n: e["folder"] for n, e in zoo.manifest()["models"].items() if n not in held})
    if name in held:
        raise VqzError(f"a model named {name!r} is installed already ({held[name]}): give another --name, "
                       f"or --force to export over it in {root}")


def export_model(run: Path, name: str, *, scales: str | None = None, default_scale: str | None = None,
                 ladder: Path | None = None, default_level: int | None = None, data: Path | None = None,
                 checkpoints: Path | None = None, kodak: Path | None = None, rd: Path | None = None,
                 tile: tuple[int, int] = (0, 0), keep: str | None = None, force: bool = False) -> tuple[Path, dict, dict | None]:
    """Pack `run` into checkpoints/NAME (`export`; checkpoints: default the user's model folder,
    `zoo.user_dir`), validate it on `data`'s held-out images if
    given, record it in the manifest with its sha256 and its quality levels, and write its card
    (with bench/kodak.py's JSON `kodak` and rd-curve's vqzip.json `rd` where given).

    Levels: `scales` ("1/2,3/4,1"; "none" for no level; default "1") with `default_scale`, or a
    family's `ladder` (a bench/choose_levels.py JSON, replacing every level of the manifest) with
    `default_level`. `keep`: the model (a name in the checkpoints folder, or a folder) whose priors
    ship for the maps this run did not train. A lattice run (`vqzip train lattice`) is exported
    by `export_lattice`, `data` its calibration images and its validation's (required), `keep`
    its top and bottom priors' model (default: its init). Returns (folder, manifest entry,
    validation or None). Options that cannot go together are a UsageError naming the option;
    everything is checked before anything is written, but the ladder's levels of this model
    against the model itself: once it is exported, before it is registered (a bad one leaves the
    folder written and the manifest as it was)."""
    from vqzip import training, zoo
    from vqzip.training.export import export_lattice

    if ladder is not None and (scales is not None or default_scale is not None):
        raise UsageError("give --levels or --scales, not both", "--levels")
    if (ladder is None) != (default_level is None):
        raise UsageError("--levels and --default-level go together", "--default-level")
    family = read_ladder(ladder) if ladder else None
    kodak_result, rd_result = read_kodak(kodak), read_rd(rd)
    lattice = (Path(run) / "lattice.json").is_file()
    if lattice and (scales not in (None, "none") or default_scale is not None):
        raise UsageError("a lattice model's levels need rate anchors, which --scales cannot give: give --levels "
                         "(a ladder whose levels name an anchor), or none (then `-m NAME [--anchor A]`)", "--scales")
    scales = "none" if ladder or lattice else scales or "1"
    try:
        levels = [] if scales == "none" else [Fraction(x) for x in scales.split(",")]
        default = Fraction(default_scale) if default_scale else None
    except (ValueError, ZeroDivisionError):
        raise VqzError(f"--scales takes fractions such as 1/2,3/4,1, not {scales!r}") from None
    if default is not None and default not in levels:
        raise VqzError(f"--default-scale {default_scale} is not one of --scales {scales}")
    root = checkpoints or zoo.user_dir()  # never the package's own folder unless asked
    _check_new_name(name, root, force)
    if family is not None:
        training.check_ladder(root, family, default_level, name)
    kept = None if keep is None else Path(keep) if Path(keep).is_dir() else root / keep
    if lattice and data is None:
        raise UsageError("a lattice run's fine prior is calibrated on training images: give --data", "--data")
    if lattice and any(tile):
        raise UsageError("a lattice model's fine prior has no walk to tile; its coarse priors keep their own", "--tile")
    root.mkdir(parents=True, exist_ok=True)
    folder = export_lattice(run, root / name, data, kept) if lattice else training.export(run, root / name, tile, kept)
    validation = training.validate(folder, data) if data else None
    if family is not None:  # the levels of this model, now it can be loaded: a bad one leaves the manifest as it was
        training.check_ladder(root, family, default_level, name, folder)
    entry = training.register(root, name, levels, default, validation=validation)
    if family is not None:
        training.set_ladder(root, family, default_level)
    training.write_card(folder, entry, kodak_result, rd_result)
    return folder, entry, validation


def card_again(folder: Path, *, rd: Path | None = None, rd_command: str | None = None, kodak: Path | None = None,
               recipe: Path | None = None, packed_by: str | None = None) -> Path:
    """Write an exported model's MODEL_CARD.md again (`write_card`) with figures measured since
    its export: `rd` (a `vqzip rd-curve` vqzip.json over its levels) made by `rd_command`,
    `kodak` (a bench/kodak.py JSON), the `recipe` file it was trained by. `folder` is a model
    folder whose manifest.json beside it lists it. The command that packed it is `packed_by`,
    else the one its config records (a lattice export's); a model that records none needs it.
    Figures not given are left out of the card (those of the card before are not kept). A
    one-line VqzError for a folder, a result or a recipe that cannot be read, a UsageError for
    `rd_command` without `rd`."""
    from vqzip.training import recipe as recipes, write_card

    if rd_command is not None and rd is None:
        raise UsageError("--rd-command names the command that made --rd: give --rd too", "--rd-command")
    folder = Path(folder).resolve()  # "." names the folder it is run in: its parent holds the manifest
    manifest_path = folder.parent / "manifest.json"
    try:
        entry = json.loads(manifest_path.read_text())["models"][folder.name]
        training = json.loads((folder / "config.json").read_text())["training"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise VqzError(f"{folder}: not an exported model that {manifest_path} lists ({e.__class__.__name__}: {e})") from None
    if packed_by is None and "packed_by" not in training:
        raise UsageError(f"{folder / 'config.json'} does not record the command that packed the model: give it", "--packed-by")

    return write_card(folder, entry, read_kodak(kodak), read_rd(rd), recipe=recipes.load(recipe) if recipe else None,
                      packed_by=packed_by, **({"rd_command": rd_command} if rd_command else {}))


def read_kodak(path: Path | None) -> dict | None:
    """The bench/kodak.py result at `path` (None: none), every field the card reads checked
    (`card.check_kodak`): a one-line VqzError naming the file otherwise."""
    from vqzip.training.card import check_kodak

    return _result(path, check_kodak, "a bench/kodak.py result")


def read_rd(path: Path | None) -> dict | None:
    """The `vqzip rd-curve` vqzip.json at `path` (None: none), every field the card reads checked
    (`card.check_rd`): a one-line VqzError naming the file otherwise."""
    from vqzip.training.card import check_rd

    return _result(path, check_rd, "a `vqzip rd-curve` vqzip.json")


def _result(path: Path | None, check, what: str) -> dict | None:
    if path is None:
        return None
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VqzError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        check(found)
    except ValueError as e:
        raise VqzError(f"{path}: not {what} ({e})") from None
    return found
