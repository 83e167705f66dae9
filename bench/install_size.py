"""Installed size: the wheel of this tree in a fresh venv, as `pip install vqzip` would make it.

    python bench/install_size.py                 # from the public index alone (pip's defaults)
    python bench/install_size.py --extras eval   # vqzip[eval]
    python bench/install_size.py --pip-config    # with this machine's pip configuration
    python bench/install_size.py --venv /tmp/light   # and keep the venv (for bench/startup.py --env)

Builds the wheel (`pip wheel . --no-deps`), makes a venv in a temporary folder and installs the
wheel into it. By default pip runs as on a machine that has never been configured: a fresh HOME,
PIP_CONFIG_FILE=/dev/null (no global, site or user file) and no PIP_FIND_LINKS, PIP_INDEX_URL,
PIP_EXTRA_INDEX_URL or PIP_CONSTRAINT, so every package comes from PyPI, as for a user. With
--pip-config pip reads this machine's configuration (here: a local CPU torch wheel in find-links).
If the wheel requires torch and pip would take it from PyPI (on Linux its CUDA build, about
2.8 GB of wheels), the bench stops before downloading anything, unless --allow-torch.

Prints each installed distribution's size (the files its RECORD lists), site-packages in all,
the whole venv, what the install added to the fresh venv (its own pip left out), whether torch is absent (`import torch` fails), and the target of
issue 37: site-packages at most 150 MB.
"""
from __future__ import annotations

import argparse
import csv
import email.parser
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 150
MACHINE_PIP = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_CONFIG_FILE")


def pip_env(home: Path, machine_config: bool) -> dict[str, str]:
    """The environment pip runs in: this one, or (by default) one with no pip configuration."""
    if machine_config:
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if k not in MACHINE_PIP}
    return env | {"HOME": str(home), "PIP_CONFIG_FILE": os.devnull, "XDG_CONFIG_HOME": str(home / ".config")}


def requirements(wheel: Path, extras: set[str]) -> list[str]:
    """The distributions the wheel requires, with the given extras, by name (lower case)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        headers = email.parser.Parser().parsestr(z.read(meta).decode())
    names = []
    for req in headers.get_all("Requires-Dist") or []:
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if extra is None or extra.group(1) in extras:
            names.append(re.match(r"[A-Za-z0-9._-]+", req).group(0).lower())
    return names


def distribution_sizes(site: Path) -> dict[str, int]:
    """Bytes on disk of each distribution in a site-packages folder, by the files of its RECORD."""
    sizes = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.removesuffix(".dist-info").replace("-", " ", 1)  # name version
        total = 0
        with open(record, newline="") as f:
            for row in csv.reader(f):
                if row and (site / row[0]).is_file():
                    total += (site / row[0]).stat().st_size
        sizes[name] = total
    return sizes


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extras", default="", help="extras to install with it, e.g. eval or train,eval")
    ap.add_argument("--pip-config", action="store_true", help="let pip read this machine's configuration")
    ap.add_argument("--allow-torch", action="store_true", help="install even a torch from PyPI (CUDA, ~2.8 GB)")
    ap.add_argument("--venv", type=Path, help="make the venv here and keep it (a new folder)")
    ap.add_argument("--top", type=int, default=15, help="distributions listed, largest first [default: 15]")
    args = ap.parse_args(argv)
    extras = {e for e in args.extras.split(",") if e}
    if args.venv is not None and args.venv.exists():
        ap.error(f"--venv {args.venv}: already exists; not overwritten")
    with tempfile.TemporaryDirectory(prefix="vqzip-install-size-") as tmp:
        tmp = Path(tmp)
        (tmp / "home").mkdir()
        env = pip_env(tmp / "home", args.pip_config)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "--no-build-isolation",
                        "-w", str(tmp / "dist")], check=True)
        wheel = next((tmp / "dist").glob("vqzip-*.whl"))
        needs = requirements(wheel, extras)
        if "torch" in needs and not (args.pip_config or args.allow_torch):
            print(f"{wheel.name}{'[' + ','.join(sorted(extras)) + ']' if extras else ''} requires torch: from PyPI "
                  "that is its CUDA build, about 2.8 GB; not installed (--pip-config: this machine's torch; "
                  "--allow-torch: PyPI's)", file=sys.stderr)
            return 1
        venv = args.venv.absolute() if args.venv else tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        fresh = tree_size(venv)  # a fresh venv's own pip (and setuptools before Python 3.12)
        target = f"{wheel}[{','.join(sorted(extras))}]" if extras else str(wheel)
        subprocess.run([str(python), "-m", "pip", "install", "-q", target], env=env, check=True)
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        sizes = distribution_sizes(site)
        site_total, venv_total = tree_size(site), tree_size(venv)
        torch_absent = subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0

    mb = 1e6
    print(f"{wheel.name}{' [' + ','.join(sorted(extras)) + ']' if extras else ''}, pip "
          + ("with this machine's configuration" if args.pip_config else "from PyPI alone (no pip configuration)"))
    print(f"{'distribution':32} {'MB':>9}")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{name:32} {size / mb:9.1f}")
    rest = sorted(sizes.values(), reverse=True)[args.top:]
    if rest:
        print(f"{f'{len(rest)} more':32} {sum(rest) / mb:9.1f}")
    print(f"{'site-packages in all':32} {site_total / mb:9.1f}   target <= {TARGET_MB}: "
          + ("holds" if site_total <= TARGET_MB * mb else "MISSED"))
    print(f"{'the whole venv':32} {venv_total / mb:9.1f}")
    print(f"{'added by the install':32} {(venv_total - fresh) / mb:9.1f}   (the fresh venv's own {fresh / mb:.1f} MB left out)")
    print(f"torch: {'absent' if torch_absent else 'INSTALLED'}")
    if args.venv:
        print(f"the venv is kept: {venv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
