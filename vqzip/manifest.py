"""The model folders and their manifests: where models are found (the search path), what each
folder's manifest.json says (models by name: folder, weights' sha256, digests of the config's
decoding fields, each ONNX graph's sha256; quality levels: operating points of those models), every field checked, and
the quality levels and their Kodak figures. Reads JSON and text only: no torch, no weights
(`vqzip.zoo` loads the models).
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vqzip.errors import ModelError
from vqzip.operating_point import OperatingPoint

# config.json's fields that do not change what a model decodes to: the rest are digested.
UNDIGESTED = ("name", "training")

def checkpoints_dir() -> Path:
    """The shipped models' folder: `vqzip/checkpoints/` of an installed wheel (the repository's
    top-level `checkpoints/` is packaged there); else, running from a source tree or an editable
    install, the repository's `checkpoints/`. Never written by vqzip (`user_dir` is)."""
    here = Path(__file__).resolve().parent
    installed = here / "checkpoints"
    return installed if installed.is_dir() else here.parent / "checkpoints"


def user_dir() -> Path:
    """The user's model folder, where `vqzip train export` writes by default:
    $XDG_DATA_HOME/vqzip/models (~/.local/share/vqzip/models without it)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "vqzip" / "models"


def given_dirs() -> list[Path]:
    """The model folders named by $VQZIP_CHECKPOINTS (several: separated by os.pathsep) and the
    command line's --models (`more_folders`), in that order."""
    return [Path(p) for p in os.environ.get("VQZIP_CHECKPOINTS", "").split(os.pathsep) if p]


def search_path() -> list[Path]:
    """Every model folder, first found first: the given ones (`given_dirs`), the user's
    (`user_dir`, where it has a manifest), the shipped one. Each adds its models; the quality
    levels are the first given folder's that has any, else the shipped ladder (a user folder's models are
    chosen by name, -m, and never change what a level means)."""
    user = [user_dir()] if (user_dir() / "manifest.json").is_file() else []
    return given_dirs() + user + [checkpoints_dir()]


@contextmanager
def more_folders(folders: list[Path]):
    """Model folders added before the others for the length of a command (`--models DIR`), in
    the environment, so worker processes see them too."""
    before = os.environ.get("VQZIP_CHECKPOINTS")
    if folders:
        os.environ["VQZIP_CHECKPOINTS"] = os.pathsep.join([*map(str, folders), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("VQZIP_CHECKPOINTS", None)
        else:
            os.environ["VQZIP_CHECKPOINTS"] = before




def config_digests(cfg: dict) -> dict[str, str]:
    """sha256 of each of a model config's decoding fields (every field but UNDIGESTED), as
    canonical JSON (sorted keys, no spaces): what the manifest records and `load_folder` checks."""
    return {k: hashlib.sha256(json.dumps(v, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            for k, v in sorted(cfg.items()) if k not in UNDIGESTED}


def manifest() -> dict:
    """The manifest of every folder on the search path (`search_path`), each checked
    (`check_manifest`): `models` from them all (the first folder holding a name wins; each
    entry's `folder` made a full path), `levels` and `default` from the first given folder with levels, else
    the shipped one; a copy the caller may change."""
    return copy.deepcopy(_manifest())


def _manifest() -> dict:
    """`manifest`, merged anew, each file read and checked once per version of it: not to be
    changed. The ladder's folder comes first among the models, so its levels code with its own
    models whatever another folder names alike."""
    found = [(root, _manifest_of(root)) for root in search_path()]
    given = [(root, m) for root, m in found[: len(given_dirs())] if m["levels"]]
    ladder_root, ladder = given[0] if given else found[-1]
    if not ladder["levels"]:
        raise ModelError(f"model manifest {ladder_root / 'manifest.json'}: levels: no quality levels")
    models = {}
    for root, m in [(ladder_root, ladder), *found]:
        for name, entry in m["models"].items():
            models.setdefault(name, _entry(root, entry))
    return {**ladder, "models": models}


def _entry(root: Path, entry: dict) -> dict:
    return {**entry, "folder": str(root / entry["folder"])}


def _manifest_of(root: Path) -> dict:
    path = root / "manifest.json"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}") from None
    except OSError as e:
        raise ModelError(f"cannot read model manifest {path}: {e.strerror or e}") from None
    return _read_manifest(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _read_manifest(path: Path, mtime_ns: int, size: int) -> dict:
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read model manifest {path}: {getattr(e, 'strerror', None) or e}") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"model manifest {path} is not valid JSON: {e}") from None
    check_manifest(m, path, ladder=False)
    return m


def check_manifest(m, path: Path, ladder: bool = True) -> None:
    """A ModelError naming the manifest and the field for the first field that is missing, of the
    wrong type, or out of range: `default` (a level's number), `levels` ({"N": {model, scale,
    maps?, lam?, skip?, anchor?}}, at least one) and `models` ({name: {folder, sha256, config_sha256,
    graphs_sha256?, ...}})."""
    def bad(field: str, problem: str):
        raise ModelError(f"model manifest {path}: " + (f"{field}: " if field else "") + problem)

    def need(d: dict, key: str, where: str, kind: type | tuple, what: str):
        if key not in d:
            bad(f"{where}{key}", "missing")
        value = d[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            bad(f"{where}{key}", f"{json.dumps(value)} is not {what}")
        return value

    if not isinstance(m, dict):
        bad("", "not a JSON object with default, levels and models")
    models = need(m, "models", "", dict, "an object of models by name")
    for name, entry in models.items():
        where = f"models.{name}."
        if not isinstance(entry, dict):
            bad(where[:-1], f"{json.dumps(entry)} is not an object")
        if not need(entry, "folder", where, str, "a folder name"):
            bad(f"{where}folder", "empty")
        sha = need(entry, "sha256", where, str, "a sha256 in hex")
        if not re.fullmatch("[0-9a-f]{64}", sha):
            bad(f"{where}sha256", f"{sha!r} is not a sha256 (64 lowercase hex digits)")
        digests = need(entry, "config_sha256", where, dict, "an object of sha256 by config field")
        for field, digest in digests.items():
            if not isinstance(digest, str) or not re.fullmatch("[0-9a-f]{64}", digest):
                bad(f"{where}config_sha256.{field}", f"{json.dumps(digest)} is not a sha256 (64 lowercase hex digits)")
        if "graphs_sha256" in entry:  # the network's ONNX graphs (`vqzip.zoo`); a model without them runs on torch
            for graph, digest in need(entry, "graphs_sha256", where, dict, "an object of sha256 by graph name").items():
                if not isinstance(digest, str) or not re.fullmatch("[0-9a-f]{64}", digest):
                    bad(f"{where}graphs_sha256.{graph}", f"{json.dumps(digest)} is not a sha256 (64 lowercase hex digits)")
    levels = need(m, "levels", "", dict, "an object of quality levels by number")
    if not levels and ladder:  # a folder of models used by name (-m) need not have levels
        bad("levels", "no quality levels")
    for q, entry in levels.items():
        where = f"levels.{q}."
        if not re.fullmatch("[1-9][0-9]*", q):
            bad(f"levels.{q}", "not a quality level number (a positive integer)")
        if not isinstance(entry, dict):
            bad(where[:-1], f"{json.dumps(entry)} is not an object")
        model = need(entry, "model", where, str, "a model name")
        if model not in models:
            bad(f"{where}model", f"{model!r} is not one of models ({', '.join(sorted(models)) or 'none'})")
        scale = need(entry, "scale", where, (str, int, float), "a scale such as \"3/4\"")
        try:
            ok = Fraction(scale) > 0
        except (ValueError, ZeroDivisionError, OverflowError):
            ok = False
        if not ok:
            bad(f"{where}scale", f"{json.dumps(scale)} is not a positive fraction such as \"3/4\"")
        if "stages" in entry:  # vqzip 0.3.0's name, counted after the first latent's maps: not guessed at
            bad(f"{where}stages", "renamed: give maps, the number of code maps coded counted from the first")
        if entry.get("maps") is not None and need(entry, "maps", where, int, "a number of maps") < 2:
            bad(f"{where}maps", f"{entry['maps']} is not at least 2")
        for knob in ("lam", "skip"):
            if knob in entry:
                value = need(entry, knob, where, (int, float), "a number")
                if not 0 <= value < float("inf"):
                    bad(f"{where}{knob}", f"{json.dumps(value)} is not a finite number at least 0")
        if "anchor" in entry:  # a lattice model's rate anchor, as a scale is written ("5/2")
            try:
                ok = Fraction(need(entry, "anchor", where, (str, int), "an anchor such as \"5/2\"")) >= 0
            except (ValueError, ZeroDivisionError):
                ok = False
            if not ok:
                bad(f"{where}anchor", f"{json.dumps(entry['anchor'])} is not a fraction at least 0 such as \"5/2\"")
    default = need(m, "default", "", int, "a quality level's number")
    if levels and str(default) not in levels:
        bad("default", f"{default} is not one of levels ({', '.join(levels)})")


@dataclass(frozen=True)
class Level:
    """A quality level: its number, and the operating point of a model it codes at."""

    quality: int
    point: OperatingPoint


def levels() -> list[Level]:
    """Every shipped quality level, in increasing order."""
    return sorted((Level(int(q), level_point(e)) for q, e in _manifest()["levels"].items()), key=lambda lv: lv.quality)


def level_point(entry: dict) -> OperatingPoint:
    """The operating point of a manifest's level entry ({model, scale, maps?, lam?, skip?,
    anchor?}, checked by `check_manifest`)."""
    return OperatingPoint(entry["model"], entry.get("maps"), Fraction(entry["scale"]), float(entry.get("lam", 0.0)),
                          float(entry.get("skip", 0.0)), Fraction(entry["anchor"]) if "anchor" in entry else None)


def level(quality: int | None) -> Level:
    """The level of that number, or the default level for None."""
    if quality is None:
        quality = _manifest()["default"]
    for lv in levels():
        if lv.quality == quality:
            return lv
    raise ModelError(f"no quality level {quality}; available: {', '.join(str(lv.quality) for lv in levels())}")


@dataclass(frozen=True)
class Expected:
    """What a level gave on Kodak when its model was packed (its card's figures)."""

    bpp: float
    psnr: float  # dB, PSNR-RGB


def expected(lv: Level) -> Expected | None:
    """Level lv's Kodak figures from its model's card (MODEL_CARD.md, shipped with the weights:
    the table of quality levels `vqzip train export` writes), or None where the card has no row
    of that number at lv's scale, lambda, skip and anchor (a level moved since the card was made)."""
    folder = _manifest()["models"][lv.point.model]["folder"]
    try:
        lines = (Path(folder) / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    head = next((k for k, line in enumerate(lines) if line.startswith("| level |") and "Kodak bpp" in line), None)
    if head is None:
        return None
    names = _cells(lines[head])
    p = lv.point
    for line in lines[head + 2:]:
        if not line.startswith("|"):
            break
        row = dict(zip(names, _cells(line)))
        try:
            anchor = row.get("anchor", "-")  # a VQ model's card has no anchor column; a lattice model's "-" for a level coding no lattice map
            same = (int(row["level"]) == lv.quality and Fraction(row["scale"]) == p.scale
                    and float(row["lambda"]) == p.lam and float(row["skip"]) == p.skip
                    and (None if anchor == "-" else Fraction(anchor)) == p.anchor)
            if same:
                return Expected(float(row["Kodak bpp"]), float(row["Kodak PSNR-RGB"].removesuffix(" dB")))
        except (KeyError, ValueError, ZeroDivisionError):
            return None
    return None


def _cells(line: str) -> list[str]:
    """A markdown table row's cells."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _for_hash(hash8: bytes) -> tuple[str, dict] | None:
    """(name, manifest entry) of the first model on the search path whose weights' sha256 starts
    with hash8, in whichever folder: a file names its model by hash, so a model another folder
    names alike never hides it."""
    for root in search_path():
        for name, entry in _manifest_of(root)["models"].items():
            if bytes.fromhex(entry["sha256"])[:8] == hash8:
                return name, _entry(root, entry)
    return None


def name_for_hash(hash8: bytes) -> str | None:
    """The name of the installed model whose weights' sha256 starts with hash8, or None."""
    found = _for_hash(hash8)
    return found and found[0]
