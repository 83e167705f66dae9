"""Startup: whole-process seconds of vqzip's main commands, side by side in several Python environments.

    python bench/startup.py                       # this Python (VQZIP_BACKEND unset)
    python bench/startup.py --env light=/tmp/light/bin/python --env torch=.venv/bin/python:VQZIP_BACKEND=torch
    python bench/startup.py --against main        # and a git revision's vqzip/ with this Python

An environment is `NAME=PYTHON[:VAR=VALUE...]`: the interpreter that runs `PYTHON -m vqzip`, and
variables set for it (VQZIP_BACKEND is unset unless one sets it). `--against REV` adds one more:
this Python, with the revision's vqzip/ and priors/ (`git archive`) ahead of the installed vqzip
on PYTHONPATH and this tree's models. Measured in fresh processes, launch to exit:

    vqzip --version
    refusal              vqzip decompress F.vqz -o EXISTING.png: exits 1, writes nothing
    decompress           vqzip decompress F.vqz -o OUT.png (F: the image coded at the default level)
    compress             vqzip compress IMAGE -o OUT.vqz, at the default level
    import torch         python -c "import torch", for scale ("absent" where it is not installed)
    import onnxruntime   likewise

and in one child process per run, the default level's model loaded first, the seconds of
`vqzip.decompress(F's bytes)` and `vqzip.compress(IMAGE)`: the in-process figures. Both are first
calls, as a command makes them, so what a whole process adds to them is its startup: imports,
model load, reading and writing files (the child times two of these parts too: the imports with
the model load, and the PNG of the decoded image, into memory). Each cell is the median (min-max) of --runs; a first
round, not counted, warms the file caches; the rounds alternate the environments, their order
rotating, so a drift of the machine's load weighs on each alike.

The targets are issue 37's (whole processes on an idle machine): --version at most 0.15 s, a
refusal at most 0.3 s, each whole-process command at most its in-process time + 0.4 s, and the
in-process times at most the --reference environment's (default: the one named `torch`). On a
busy machine (see the load averages at the top) compare environments, not seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KODIM01 = ROOT.parent / "shared" / "data" / "kodak" / "kodim01.png"
DEFAULT_IMAGE = KODIM01 if KODIM01.exists() else ROOT / "tests" / "assets" / "photo.png"

# The in-process child: argv = IMAGE F.vqz; prints the seconds of the imports and model load,
# of the first decompress and compress through the public API (which keeps the loaded model),
# and of the decoded image's PNG (a part of what a whole-process decompress adds to the decode).
CHILD = r"""
import io, json, sys, time
t0 = time.perf_counter()
import vqzip
from vqzip import zoo
zoo.load(zoo.level(None).point.model)
t1 = time.perf_counter()
data = open(sys.argv[2], "rb").read()
image = vqzip.decompress(data)
t2 = time.perf_counter()
image.save(io.BytesIO(), format="PNG")
t3 = time.perf_counter()
vqzip.compress(sys.argv[1])
t4 = time.perf_counter()
print(json.dumps({"imports + model load (in process)": t1 - t0, "decode (in process)": t2 - t1,
                  "PNG of the decoded image (in process)": t3 - t2, "compress (in process)": t4 - t3}))
"""

VERSION, REFUSAL, DECOMPRESS, COMPRESS = "vqzip --version", "refusal", "decompress", "compress"
DECODE_IN, COMPRESS_IN = "decode (in process)", "compress (in process)"
IMPORTS = ("torch", "onnxruntime")
ABSENT = float("nan")  # an import that fails: the module is not installed there


@dataclass
class Env:
    """A Python environment to run vqzip in: a name, an interpreter, variables set for it."""
    name: str
    python: str
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Env:
        """`NAME=PYTHON[:VAR=VALUE...]`; a relative PYTHON is taken from the current folder (not
        resolved: a venv's python is a link whose target is outside the venv)."""
        name, sep, rest = text.partition("=")
        python, *assignments = rest.split(":")
        if not sep or not name or not python or not all("=" in a for a in assignments):
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PYTHON[:VAR=VALUE...]")
        return cls(name, os.path.abspath(python), dict(a.split("=", 1) for a in assignments))

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VQZIP_BACKEND"}
        return {**env, **self.variables}

    def run(self, args: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess]:
        """Seconds from launch to exit of PYTHON ARGS; a RuntimeError with its stderr's last line
        if it exits with a code not in `ok`."""
        t = time.perf_counter()
        done = subprocess.run([self.python, *args], cwd=cwd, env=self.environ(), capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if done.returncode not in ok:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"{self.name}: `python {' '.join(args)}` exited {done.returncode}: {last}")
        return seconds, done


def export(rev: str, into: Path) -> Path:
    """vqzip/ and priors/ of a git revision in `into`, laid out as the installed package is
    (vqzip/priors), with this tree's models (vqzip/checkpoints)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "vqzip", "priors"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "vqzip" / "priors").symlink_to(into / "priors", target_is_directory=True)
    (into / "vqzip" / "checkpoints").symlink_to(ROOT / "checkpoints", target_is_directory=True)
    return into


def once(env: Env, image: Path, vqz: Path, work: Path) -> dict[str, float]:
    """One of each measure in fresh processes of `env`: seconds."""
    out = {VERSION: env.run(["-m", "vqzip", "--version"], work)[0]}
    existing = work / "existing.png"
    existing.write_bytes(b"not overwritten")
    out[REFUSAL], done = env.run(["-m", "vqzip", "decompress", str(vqz), "-o", str(existing)], work, ok=(1,))
    if existing.read_bytes() != b"not overwritten" or "exists" not in done.stderr:
        raise RuntimeError(f"{env.name}: the existing output was not refused: {done.stderr.strip()}")
    out[DECOMPRESS] = env.run(["-m", "vqzip", "decompress", "-q", "-f", str(vqz), "-o", str(work / "out.png")], work)[0]
    out[COMPRESS] = env.run(["-m", "vqzip", "compress", "-q", "-f", str(image), "-o", str(work / "out.vqz")], work)[0]
    for module in IMPORTS:
        seconds, done = env.run(["-c", f"import {module}"], work, ok=(0, 1))
        out[f"import {module}"] = seconds if done.returncode == 0 else ABSENT
    out.update(json.loads(env.run(["-c", CHILD, str(image), str(vqz)], work)[1].stdout.splitlines()[-1]))
    return out


def machine() -> str:
    """CPU model, cores and the load average, in one line."""
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def targets(runs: dict[str, list[dict]], reference: str | None) -> dict[str, dict[str, float]]:
    """The most seconds each measure may take in each environment (issue 37's targets); measures
    without a target are left out."""
    med = {name: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for name, rs in runs.items()}
    out = {}
    for name in runs:
        t = {VERSION: 0.15, REFUSAL: 0.3, DECOMPRESS: med[name][DECODE_IN] + 0.4,
             COMPRESS: med[name][COMPRESS_IN] + 0.4}
        if reference is not None and name != reference:
            t |= {DECODE_IN: med[reference][DECODE_IN], COMPRESS_IN: med[reference][COMPRESS_IN]}
        out[name] = t
    return out


def cell(values: list[float]) -> str:
    if any(v != v for v in values):  # NaN: the import failed
        return "absent"
    m = statistics.median(values)
    return f"{m:.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{m:.3f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", type=Env.parse, action="append", dest="envs", metavar="NAME=PYTHON[:VAR=VALUE...]",
                    help="an environment to measure (repeatable) [default: this Python, as `this`]")
    ap.add_argument("--against", metavar="REV", help="also measure this git revision's vqzip with this Python")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the image coded [default: %(default)s]")
    ap.add_argument("--runs", type=int, default=5, help="counted runs of each measure [default: %(default)s]")
    ap.add_argument("--reference", metavar="NAME",
                    help="the environment whose in-process times the others must match [default: `torch` if given]")
    args = ap.parse_args(argv)
    envs = args.envs or [Env("this", sys.executable)]
    names = [e.name for e in envs] + ([args.against] if args.against else [])
    if len(set(names)) < len(names):
        ap.error("each environment needs a name of its own")
    reference = args.reference or ("torch" if any(e.name == "torch" for e in envs) else None)
    if reference is not None and reference not in names:
        ap.error(f"--reference {reference}: no environment of that name")
    image = args.image.resolve()
    if not image.is_file():
        ap.error(f"--image {image}: no such file")
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="vqzip-startup-") as tmp:
        tmp = Path(tmp)
        if args.against:
            (tmp / "rev").mkdir()
            envs.append(Env(args.against, sys.executable, {"PYTHONPATH": str(export(args.against, tmp / "rev"))}))
        vqz = tmp / "image.vqz"  # one file, made by the first environment: each decodes the same bytes
        envs[0].run(["-m", "vqzip", "compress", "-q", str(image), "-o", str(vqz)], tmp)
        load = [os.getloadavg()]
        for env in envs:  # not counted: file caches warm
            once(env, image, vqz, tmp)
        runs: dict[str, list[dict]] = {e.name: [] for e in envs}
        for r in range(args.runs):
            for env in envs[r % len(envs):] + envs[: r % len(envs)]:
                runs[env.name].append(once(env, image, vqz, tmp))
        load.append(os.getloadavg())

    limits = targets(runs, reference)
    table = Table("seconds: median (min-max)", *(c for e in envs for c in (e.name, "target", "holds")),
                  title=f"vqzip startup, {image.name}: {args.runs} runs each\n{machine()}; load average "
                        f"{' '.join(f'{x:.2f}' for x in load[0])} at the start, "
                        f"{' '.join(f'{x:.2f}' for x in load[1])} at the end")
    for measure in runs[envs[0].name][0]:
        row = [measure]
        for env in envs:
            values = [r[measure] for r in runs[env.name]]
            limit = limits[env.name].get(measure)
            holds = "" if limit is None else ("yes" if statistics.median(values) <= limit else "NO")
            row += [cell(values), "" if limit is None else f"<= {limit:.3f}", holds]
        table.add_row(*row)
    Console(width=200).print(table)
    for env in envs:
        print(f"{env.name}: {env.python}" + "".join(f" {k}={v}" for k, v in env.variables.items()))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:  # a command that failed in an environment: its own last line says why
        sys.exit(f"startup: {e}")
