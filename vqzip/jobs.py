"""Which outputs the command line writes for which inputs (as gzip and zstd do), before any
work starts: many inputs, directories with -r, `-` for stdin, -o as a file or a directory,
-c for stdout. No decoding or encoding here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqzip.errors import UsageError, VqzError

STDIO = "-"
# the files taken as images from a folder (-r here; training's folders, `vqzip.data`): kept here,
# beside no numpy, so that planning a command's files before a refusal imports none
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass(frozen=True)
class Job:
    src: Path | None  # None: standard input
    dst: Path | None  # None: standard output
    into_folder: bool = False  # dst lies in an -o folder: its folders are made as needed

    @property
    def name(self) -> str:
        return "<stdin>" if self.src is None else str(self.src)


def _expand(inputs: list[str], recursive: bool, suffixes: set[str]) -> list[tuple[Path | None, Path | None]]:
    """(file or None for stdin, the folder it was found under or None) for every input."""
    out = []
    for name in inputs:
        if name == STDIO:
            out.append((None, None))
            continue
        path = Path(name)
        if path.is_dir():
            if not recursive:
                raise VqzError(f"{path}: Is a directory (use -r to take the files in it)")
            out += [(f, path) for f in sorted(path.rglob("*")) if f.is_file() and f.suffix.lower() in suffixes]
        else:
            out.append((path, None))
    if not out:  # every input a folder, none holding a file to take
        kind = ".vqz files" if suffixes == {".vqz"} else "images"
        raise VqzError(f"{', '.join(inputs)}: no {kind} in {'it' if len(inputs) == 1 else 'them'}")
    return out


def plan(inputs: list[str], suffix: str, *, output: str | None = None, stdout: bool = False,
         recursive: bool = False, decompressing: bool = False) -> list[Job]:
    """The jobs for a command: outputs are INPUT with `suffix`, or in the folder -o names (a
    folder when there are several inputs, or when it already is one), mirroring the folders
    -r went into; stdin goes to stdout unless -o names a file. Several inputs (or files found)
    with an -o that is no folder yet and has a suffix, or beside an input that does not exist,
    are a UsageError, before anything is made."""
    found = _expand(inputs, recursive, {".vqz"} if decompressing else IMAGE_SUFFIXES)
    if stdout and output is not None:
        raise UsageError("give -c/--stdout or -o/--output, not both", "-c/--stdout")
    if stdout and len(found) > 1:
        raise UsageError("takes one input, not several", "-c/--stdout")
    given_folder = output is not None and (Path(output).is_dir() or output.endswith("/"))
    if output is not None and len(inputs) + len(found) > 2 and not given_folder and (
            Path(output).suffix or not all(name == STDIO or Path(name).exists() for name in inputs)):
        # `-q 8 a.png -o a.vqz` (-q taken for a quality, as cwebp's) would make a folder a.vqz/
        raise UsageError(f"{output} looks like a file name, and there are several inputs ({', '.join(inputs)}); "
                         "-o takes a folder for several (an existing one, or one ending in /)", "-o/--output")
    folder = output is not None and (len(found) > 1 or given_folder)
    jobs = []
    for src, base in found:
        if stdout or (src is None and output is None):
            dst = None
        elif folder:
            if src is None:
                raise UsageError("standard input needs -o FILE or -c, not an output folder", "-o/--output")
            rel = src.relative_to(base) if base is not None else Path(src.name)
            dst = Path(output) / rel.with_suffix(suffix)
        elif output is not None:
            dst = Path(output)
        else:
            dst = src.with_suffix(suffix)
        jobs.append(Job(src, dst, folder))
    seen: dict[Path, Job] = {}
    for job in jobs:
        if job.dst is not None and seen.setdefault(job.dst, job) is not job:
            raise VqzError(f"{seen[job.dst].name} and {job.name} would both write {job.dst}; "
                           "rename one")
    return jobs
