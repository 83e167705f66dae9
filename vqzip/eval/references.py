"""Published rate-distortion curves, read from files in CompressAI's results layout, to stand
beside the codecs a sweep runs (`vqzip rd-curve --reference FILE`).

    refs = read_all(["hyperprior.json", "published/kodak/"], taken={"vqzip", "jpeg", ...})
    refs[0].key, .results {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb-db": [...]}, .record() for run.json

A file is {"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb":
[...], ...}}, one entry per rate point (CompressAI's `results/image/kodak/*.json`, and a sweep's
own <codec>.json). MS-SSIM there is the raw index; it is turned into dB, -10 log10(1 - x), as a
sweep reports it. A metric a file lacks is not in its results. Each file is checked whole when
read, so a bad one stops a sweep before any coding.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from vqzip import metrics
from vqzip.errors import UsageError

OPTION = "--reference"
# the file's key -> the summary's key of each quality a file may give (MS-SSIM converted to dB)
QUALITIES = {"psnr-rgb": "psnr-rgb", "ms-ssim-rgb": "ms-ssim-rgb-db", "ssimulacra2": "ssimulacra2"}


@dataclass(frozen=True)
class Reference:
    path: Path
    sha256: str  # of the file's bytes
    name: str  # the file's "name" (else its stem)
    description: str
    key: str  # how results and bd-rate.json name it: the name, with the file's where that is taken
    results: dict[str, list[float]]  # "bpp" and the summary keys of the qualities it gives

    def record(self) -> dict:
        """What run.json says of it, with its label in figures and tables."""
        return {"key": self.key, "label": f"{self.key} (published)", "name": self.name, "file": str(self.path),
                "sha256": self.sha256, "qualities": [k for k in self.results if k != "bpp"]}


def read_all(paths: list[Path], taken: set[str] = frozenset()) -> list[Reference]:
    """The curves of the files named (a folder: each *.json in it, in name order), in that order.
    A reference whose name is in `taken` (a codec of the sweep), or an earlier file's, is keyed
    "name (file name)". A bad file, or one given twice, is a UsageError naming it and what is wrong."""
    files = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    if not files:
        raise UsageError(f"{', '.join(map(str, paths))}: no .json files", OPTION)
    refs: list[Reference] = []
    for f in files:
        if f.resolve() in {r.path.resolve() for r in refs}:
            raise UsageError(f"{f}: given twice", OPTION)
        ref = read(f)
        if ref.key in taken or ref.key in {r.key for r in refs}:
            ref = replace(ref, key=f"{ref.name} ({f.name})")
            if ref.key in {r.key for r in refs}:
                raise UsageError(f"{f}: an earlier reference has its name and file name", OPTION)
        refs.append(ref)
    return refs


def read(path: Path) -> Reference:
    """One file's curve; a UsageError, naming the file, where it cannot be read, is not JSON, has no
    "results" object, its results.bpp is missing, not positive rates or fewer than two, a quality
    list's length differs from it or holds what is not a finite number (MS-SSIM: not in [0, 1)),
    or it gives none of psnr-rgb, ms-ssim-rgb and ssimulacra2."""
    def bad(problem: str) -> UsageError:
        return UsageError(f"{path}: {problem}", OPTION)

    try:
        data = path.read_bytes()
    except OSError as e:
        raise bad(e.strerror or str(e)) from None
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise bad('no "results" object (CompressAI\'s results layout: {"name", "results": {"bpp": [...], "psnr-rgb": [...]}})')
    given = doc["results"]
    if "bpp" not in given:
        raise bad("results.bpp is missing")
    bpp = _numbers(given["bpp"], "results.bpp", bad)
    if len(bpp) < 2:
        raise bad(f"results.bpp has {len(bpp)} point{'s' * (len(bpp) != 1)}; a curve needs at least two")
    if not all(b > 0 for b in bpp):
        raise bad("results.bpp holds a rate that is not positive")
    results = {"bpp": bpp}
    for key, ours in QUALITIES.items():
        if key not in given:
            continue
        values = _numbers(given[key], f"results.{key}", bad)
        if len(values) != len(bpp):
            raise bad(f"results.{key} has {len(values)} points, results.bpp {len(bpp)}")
        if key == "ms-ssim-rgb":
            if not all(0 <= v < 1 for v in values):
                raise bad("results.ms-ssim-rgb holds a value outside [0, 1): it should be the raw MS-SSIM index, not dB")
            values = [metrics.db(v) for v in values]
        results[ours] = values
    if len(results) == 1:
        raise bad(f"results gives none of {', '.join(QUALITIES)}")
    name = doc.get("name") if isinstance(doc.get("name"), str) and doc.get("name") else path.stem
    description = doc.get("description") if isinstance(doc.get("description"), str) else ""
    return Reference(path, hashlib.sha256(data).hexdigest(), name, description, name, results)


def _numbers(values, where: str, bad) -> list[float]:
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v) for v in values):
        raise bad(f"{where} is not a list of finite numbers")
    return [float(v) for v in values]
