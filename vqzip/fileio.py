"""Safe output: never clobber without force, never leave a partial file."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from vqzip.errors import VqzError


def check_input(path: Path) -> None:
    """An existing regular file (a directory or a missing path gets a one-line error)."""
    try:
        if not path.exists():
            raise VqzError(f"{path}: No such file or directory")
        if path.is_dir():
            raise VqzError(f"{path}: Is a directory")
    except OSError as e:  # a name too long, a loop of links, ...
        raise VqzError(f"{path}: {e.strerror or e}") from None


def check_output(output: Path, inputs: list[Path], force: bool) -> None:
    """Refuse to write over an input (ever) or an existing file (without force)."""
    try:
        for inp in inputs:
            if output.exists() and inp.exists() and output.resolve() == inp.resolve():
                raise VqzError(f"{output}: output would overwrite its own input")
        if output.exists() and not force:
            raise VqzError(f"{output} already exists; not overwritten (use -f to overwrite)")
        if output.exists() and output.is_dir():
            raise VqzError(f"{output} is a directory")
        if not output.absolute().parent.is_dir():
            raise VqzError(f"{output}: folder {output.parent} does not exist")
    except OSError as e:
        raise VqzError(f"{output}: {e.strerror or e}") from None


def write_atomic(output: Path, data: bytes, force: bool = False) -> None:
    """Write data to a temporary file beside output, then put it in place: linked (which fails
    if output exists, so two writers cannot both succeed) unless force, renamed over output
    with force. The temporary file is made with mode 0o666, so the process umask applies
    without being read or changed (umask is process-wide; changing it races other threads).
    A failure (a full disk, a name too long) is a VqzError naming output, and leaves nothing."""
    try:
        tmp = _create_temp(output)
        try:
            with os.fdopen(tmp[0], "wb") as f:
                f.write(data)
            if force:
                os.replace(tmp[1], output)
            else:
                _link_new(tmp[1], output)
                os.unlink(tmp[1])
        except BaseException:  # Ctrl-C and SIGTERM (see cli.run) included: no partial file remains
            Path(tmp[1]).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise VqzError(f"{output}: {e.strerror or e}") from None


def _link_new(tmp: str, output: Path) -> None:
    """Give tmp's file the name output, failing if output exists. Where hard links are not
    supported, output is reserved by exclusive creation and then replaced."""
    try:
        try:
            os.link(tmp, output)
        except FileExistsError:
            raise
        except OSError:
            os.close(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.replace(tmp, output)
    except FileExistsError:
        raise VqzError(f"{output} already exists; not overwritten (use -f to overwrite)") from None


NAME_MAX = 255  # bytes of a file name on Linux's, macOS's and Windows' common file systems


def temp_name(name: str, token: str) -> str:
    """The hidden temporary name for an output named `name`: `.{name}.{token}.tmp`, `name` cut
    (by whole characters) so that it is at most NAME_MAX bytes, as the output's own name is."""
    while len(os.fsencode(f".{name}.{token}.tmp")) > NAME_MAX:
        name = name[:-1]
    return f".{name}.{token}.tmp"


def _create_temp(output: Path) -> tuple[int, str]:
    """(fd, path) of a new, exclusively created hidden file beside output."""
    folder = output.parent if str(output.parent) else Path(".")
    for _ in range(100):
        path = str(folder / temp_name(output.name, secrets.token_hex(4)))
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue
    raise VqzError(f"{output}: cannot create a temporary file beside it")
