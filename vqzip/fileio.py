"""Safe output: never clobber without force, never leave a partial file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vqzip.errors import VqzError


def check_input(path: Path) -> None:
    """An existing regular file (a directory or a missing path gets a one-line error)."""
    if not path.exists():
        raise VqzError(f"{path}: No such file or directory")
    if path.is_dir():
        raise VqzError(f"{path}: Is a directory")


def check_output(output: Path, inputs: list[Path], force: bool) -> None:
    """Refuse to write over an input (ever) or an existing file (without force)."""
    for inp in inputs:
        if output.exists() and inp.exists() and output.resolve() == inp.resolve():
            raise VqzError(f"{output}: output would overwrite its own input")
    if output.exists() and not force:
        raise VqzError(f"{output} already exists; not overwritten (use -f to overwrite)")
    if output.exists() and output.is_dir():
        raise VqzError(f"{output} is a directory")
    if not output.absolute().parent.is_dir():
        raise VqzError(f"{output}: folder {output.parent} does not exist")


def write_atomic(output: Path, data: bytes) -> None:
    """Write data to a temporary file beside output, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent or ".")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would have given
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    except BaseException:  # Ctrl-C included: no partial file remains
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
