"""A model's whole training as one declarative file (TOML), run phase by phase, resumably:

    vqzip train run recipes/vqz-l3.toml --data ../shared/data/train --out runs/l3

A recipe holds
- `name`, and `[data]`: `about` (the images in words) and `[data.sha256]`, every training image's
  file name and sha256 (the validation split is every 20th in sorted order, `vqzip.data`),
  checked before anything trains;
- `[[phase]]` tables, in order, each with a `name` (its folder under the run) and a `kind`:
  - `vqvae`: phase I (`train_vqvae`): `arch`, `[phase.net]` (the network's config), `init`
    (a vqvae phase to start from) and the training options (`TrainConfig`'s fields);
  - `prior`: phase II (`train_prior`) on the network of phase `network` (and its code maps, where
    it has them: an rdo-codes phase's, or another prior phase's nearest codes): `prior_kind`,
    `[phase.prior]` (every map's prior options), `[phase.per_map.NAME]` (one map's, over them),
    `maps` (only these train), `init` (a prior phase to start from or cut from), training options;
  - `rdo-codes`: phase III (`rdo_codes`) under the priors of phase `priors`: `lambdas`, `jobs`;
  - `export`: the priors of phase `run` made integer into a model folder `model` (`export`):
    `keep` (an export phase whose model gives the maps `run` did not train), `tile`, `register`
    (default true: into RUN/checkpoints, with its figures on the validation images unless `validate`
    is false; false: RUN/NAME/MODEL);
- `[ladder]`: `default` and `[ladder.levels.N]` ({model, scale, maps?, lam?, skip?}), set on
  RUN/checkpoints/manifest.json once every phase is done; then each registered model's card.

Each phase's folder gets `done.json` (its options and record) when it finishes; a rerun skips it.
A training phase resumes from its saved state, so `max_steps` (the run's step budget for one call)
interrupts a run anywhere and the next call goes on from there.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from vqzip import data, zoo
from vqzip.errors import ModelError, VqzError
from vqzip.training.autoencoder import load_net, train_vqvae
from vqzip.training.card import write_card
from vqzip.training.export import export, register, set_ladder, validate
from vqzip.training.priors import prior_configs, train_prior
from vqzip.training.rdo_codes import rdo_codes
from vqzip.training.loop import TrainConfig

TRAIN_OPTIONS = {f.name for f in fields(TrainConfig)}
KINDS = {  # a phase kind's options beside `name` and `kind`, and those it needs
    "vqvae": ({"arch", "net", "init"} | TRAIN_OPTIONS, set()),
    "prior": ({"network", "prior_kind", "prior", "per_map", "maps", "init"} | TRAIN_OPTIONS, {"network"}),
    "rdo-codes": ({"priors", "lambdas", "jobs"}, {"priors", "lambdas"}),
    "export": ({"run", "model", "keep", "tile", "register", "validate"}, {"run", "model"}),
}
# each option's type (float options take integers too)
TYPES = {**{f.name: {"int": int, "float": (int, float), "str": str}[f.type] for f in fields(TrainConfig)},
         "arch": str, "net": dict, "init": str, "network": str, "prior_kind": str, "prior": dict, "per_map": dict,
         "maps": list, "priors": str, "lambdas": list, "jobs": int, "run": str, "model": str, "keep": str, "tile": list,
         "register": bool, "validate": bool}
TYPE_NAMES = {int: "a whole number", (int, float): "a number", str: "text", dict: "a table", list: "a list",
              bool: "true or false"}
# options naming an earlier phase, and the kinds it may be of ("init": the phase's own kind)
REFERENCES = {"init": None, "network": {"vqvae", "prior", "rdo-codes"}, "priors": {"prior"}, "run": {"prior"},
              "keep": {"export"}}
DONE = "done.json"


@dataclass(frozen=True)
class Phase:
    name: str
    kind: str
    options: dict


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    data: dict[str, str]  # training image file name -> sha256 (hex)
    about: str  # what the images are, in words (the card's)
    phases: list[Phase]
    ladder: dict | None  # {"default": N, "levels": {"N": {...}}}

    def exports(self) -> list[Phase]:
        """The export phases whose models are registered in the run's checkpoints."""
        return [p for p in self.phases if p.kind == "export" and p.options.get("register", True)]


def load(path: str | Path) -> Recipe:
    """A recipe file, checked whole: a one-line VqzError names the file and the first bad field."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        raise VqzError("training recipes need Python 3.11 or later (tomllib)") from None
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise VqzError(f"cannot read recipe {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise VqzError(f"recipe {path} is not valid TOML: {e}") from None

    def bad(field: str, problem: str) -> VqzError:
        return VqzError(f"recipe {path}: {field}: {problem}")

    if unknown := sorted(set(raw) - {"name", "data", "phase", "ladder"}):
        raise bad(unknown[0], "not a field of a recipe (name, data, phase, ladder)")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise bad("name", "missing (the model's name)")
    sha = raw["data"].get("sha256") if isinstance(raw.get("data"), dict) else None
    if not isinstance(sha, dict) or not sha:
        raise bad("data.sha256", "missing (each training image's file name and sha256)")
    for f, h in sha.items():
        if not isinstance(h, str) or not re.fullmatch("[0-9a-f]{64}", h):
            raise bad(f"data.sha256.{f}", f"{h!r} is not a sha256 (64 lowercase hex digits)")
    phases, seen = [], {}
    for i, p in enumerate(raw.get("phase", [])):
        name, kind = p.get("name"), p.get("kind")
        where = f"phase {i + 1}" if not isinstance(name, str) else f"phase {name!r}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name) or name == "checkpoints":
            raise bad(where, "needs a name of lowercase letters, digits, '.', '_' and '-' (its folder), not 'checkpoints'")
        if name in seen:
            raise bad(where, "a second phase of that name")
        if kind not in KINDS:
            raise bad(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        options = {k: v for k, v in p.items() if k not in ("name", "kind")}
        allowed, needed = KINDS[kind]
        if unknown := sorted(set(options) - allowed):
            raise bad(f"{where}.{unknown[0]}", f"not an option of a {kind} phase")
        if missing := sorted(needed - set(options)):
            raise bad(f"{where}.{missing[0]}", "missing")
        for key, value in options.items():
            if not isinstance(value, TYPES[key]) or (isinstance(value, bool) and TYPES[key] is not bool):
                raise bad(f"{where}.{key}", f"{json.dumps(value)} is not {TYPE_NAMES[TYPES[key]]}")
        for ref in sorted(set(REFERENCES) & set(options)):
            if options[ref] not in seen:
                raise bad(f"{where}.{ref}", f"{options[ref]!r} is no phase before it")
            if seen[options[ref]] not in (REFERENCES[ref] or {kind}):
                raise bad(f"{where}.{ref}", f"{options[ref]!r} is a {seen[options[ref]]} phase, not {' or '.join(sorted(REFERENCES[ref] or {kind}))}")
        seen[name] = kind
        phases.append(Phase(name, kind, options))
    if not phases:
        raise bad("phase", "no phases")
    recipe = Recipe(path, raw["name"], dict(sha), str(raw["data"].get("about", "")), phases, raw.get("ladder"))
    if recipe.ladder is not None:
        models = {p.options["model"]: {"folder": p.options["model"], "sha256": "0" * 64, "config_sha256": {}}
                  for p in recipe.exports()}
        try:
            zoo.check_manifest({"models": models, **recipe.ladder}, path)
        except ModelError as e:
            raise bad("ladder", str(e).removeprefix(f"model manifest {path}: ")) from None
    return recipe


def sha256_of(folder: str | Path) -> dict[str, str]:
    """Every training image of `folder` (as `vqzip.data.list_images` finds them) -> its sha256:
    a recipe's `[data.sha256]`."""
    return {p.name: zoo.sha256_file(p) for p in data.list_images(folder)}


def check_data(recipe: Recipe, folder: str | Path) -> None:
    """A one-line VqzError naming the first image (in sorted order) of `folder` that is missing,
    differs from the recipe's sha256, or is not in its list (it would change the split)."""
    folder = Path(folder)
    try:
        found = {p.name: p for p in data.list_images(folder)}
    except (FileNotFoundError, NotADirectoryError):
        found = {}
    for name in sorted(set(found) | set(recipe.data)):
        if name not in found:
            raise VqzError(f"{folder / name}: missing (recipe {recipe.path} lists it)")
        if name not in recipe.data:
            raise VqzError(f"{folder / name}: not in recipe {recipe.path}'s data list (it would change the split)")
        digest = zoo.sha256_file(found[name])
        if digest != recipe.data[name]:
            raise VqzError(f"{folder / name}: sha256 {digest[:16]}… is not the recipe's {recipe.data[name][:16]}…")


Progress = Callable[[int, int, dict], None]


def run(recipe: Recipe, data_dir: str | Path, out: str | Path, max_steps: int | None = None,
        progress: Progress | None = None, say: Callable[[str], None] = lambda line: None) -> bool:
    """Run `recipe` on the images of `data_dir` (checked first) in run folder `out`: every phase
    not done yet, in order, then the ladder and the cards. With `max_steps`, stop once that many
    training steps are taken in this call. Returns whether the recipe is done; `say` gets a line
    per phase."""
    check_data(recipe, data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = [max_steps]
    for phase in recipe.phases:
        folder = out / phase.name
        if _done(folder, phase):
            say(f"{phase.name}: done")
            continue
        if budget[0] == 0:
            say(f"{phase.name}: not started (the step budget is spent); run again to go on")
            return False
        say(f"{phase.name}: {phase.kind}")
        record = RUNNERS[phase.kind](phase, Path(data_dir), out, folder, budget, progress)
        if record.get("stopped"):
            say(f"{phase.name}: stopped at step {record['steps_done']} of {record['train']['steps']}; run again to go on")
            return False
        (folder / DONE).write_text(json.dumps({"kind": phase.kind, "options": phase.options, "record": record}, indent=2) + "\n")
    root = out / "checkpoints"
    if recipe.ladder is not None:
        set_ladder(root, recipe.ladder["levels"], recipe.ladder["default"])
    manifest = json.loads((root / "manifest.json").read_text()) if (root / "manifest.json").exists() else {"models": {}}
    for phase in recipe.exports():
        model = phase.options["model"]
        write_card(root / model, manifest["models"][model], None, recipe=recipe)
    return True


def _done(folder: Path, phase: Phase) -> bool:
    """Whether the phase finished in `folder`; a VqzError if it finished with other options."""
    if not (folder / DONE).exists():
        return False
    done = json.loads((folder / DONE).read_text())
    if (done["kind"], done["options"]) != (phase.kind, json.loads(json.dumps(phase.options))):
        raise VqzError(f"{folder} holds phase {phase.name!r} done with other options than the recipe's: give another --out")
    return True


def _train_config(phase: Phase) -> TrainConfig:
    return TrainConfig(**{k: v for k, v in phase.options.items() if k in TRAIN_OPTIONS})


def _spend(budget: list, record: dict, start: int) -> None:
    """Take the steps a phase trained from the call's budget."""
    if budget[0] is not None:
        budget[0] = max(0, budget[0] - (record["steps_done"] - start))


def _steps_before(folder: Path, name: str, cfg: TrainConfig) -> int:
    """The step a phase resumes at: its saved state's, else the schedule's first."""
    state = folder / f"{name}-state.pt"
    return int(torch.load(state, weights_only=True)["step"]) if state.exists() else cfg.start


def _vqvae(phase: Phase, data_dir: Path, out: Path, folder: Path, budget: list, progress) -> dict:
    o, cfg = phase.options, _train_config(phase)
    start = _steps_before(folder, "vqvae", cfg)
    try:
        record = train_vqvae(data_dir, folder, o.get("arch", "vqvae2"), o.get("net", {}), cfg, progress,
                             out / o["init"] if "init" in o else None, budget[0])
    except TypeError as e:  # a net option the architecture's config does not take
        raise VqzError(f"phase {phase.name!r}: {e}") from None
    _spend(budget, record, start)
    return record


def _prior(phase: Phase, data_dir: Path, out: Path, folder: Path, budget: list, progress) -> dict:
    o, cfg = phase.options, _train_config(phase)
    folder.mkdir(parents=True, exist_ok=True)
    source = out / o["network"]
    # the network, and its code maps and their record where the source has them (RDO's codes: `rdo-codes.json`)
    for part in ("vqvae.safetensors", "vqvae.json", "codes.npz", "rdo-codes.json"):
        if (source / part).exists() and not (folder / part).exists():
            shutil.copyfile(source / part, folder / part)
    try:
        cfgs = prior_configs(load_net(folder).maps, o.get("prior_kind", "pixelcnn"), o.get("per_map"), **o.get("prior", {}))
    except (TypeError, ValueError) as e:
        raise VqzError(f"phase {phase.name!r}: {e}") from None
    start = _steps_before(folder, "prior", cfg)
    record = train_prior(data_dir, folder, cfgs, cfg, progress, out / o["init"] if "init" in o else None,
                                o.get("maps"), budget[0])
    _spend(budget, record, start)
    return record


def _rdo_codes(phase: Phase, data_dir: Path, out: Path, folder: Path, budget: list, progress) -> dict:
    o = phase.options
    return rdo_codes(out / o["priors"], folder, data_dir, [float(v) for v in o["lambdas"]], o.get("jobs", 1),
                               None if progress is None else lambda done, total: progress(done, total, {}))


def _model_folder(out: Path, phase: Phase) -> Path:
    """Where an export phase puts its model: RUN/checkpoints/MODEL if registered, else RUN/NAME/MODEL."""
    model = phase.options["model"]
    return out / "checkpoints" / model if phase.options.get("register", True) else out / phase.name / model


def _export(phase: Phase, data_dir: Path, out: Path, folder: Path, budget: list, progress) -> dict:
    o = phase.options
    target = _model_folder(out, phase)
    keep = None
    if "keep" in o:
        done = json.loads((out / o["keep"] / DONE).read_text())
        keep = _model_folder(out, Phase(o["keep"], done["kind"], done["options"]))
    export(out / o["run"], target, tuple(o.get("tile", (0, 0))), keep)
    record = {"model": o["model"], "sha256": zoo.sha256_file(target / "model.safetensors")}
    if o.get("register", True):
        validation = validate(target, data_dir) if o.get("validate", True) else None
        record["manifest"] = register(out / "checkpoints", o["model"], [], validation=validation)
    folder.mkdir(parents=True, exist_ok=True)
    return record


RUNNERS = {"vqvae": _vqvae, "prior": _prior, "rdo-codes": _rdo_codes, "export": _export}
