"""The command line's frame: the typer apps, help as gzip prints it, and the error mapping (one
line on stderr per failure, exit codes). Commands register themselves on `app` and `train_app`
from their own modules."""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import typer
from PIL import Image, UnidentifiedImageError
from typer.core import TyperCommand

from vqzip import __version__
from vqzip.errors import UsageError, VqzError

EXIT_CODES = ("Exit codes: 0 success; 1 an error (damaged or foreign file, missing model, unreadable or "
              "unsupported image, existing output), one line each on stderr, the other files still done; "
              "2 bad usage, or an extra the command needs not installed; 130 interrupted; 143 terminated.")
USAGE, INTERRUPTED = 2, 130


class Command(TyperCommand):
    """Help as gzip and click print it: `INPUT...` in the usage line (typer writes `{INPUT}...`),
    and arguments listed by name and help, without typer's type labels (`<list[str]>`)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                name = _argument_name(p)
                pieces.append(name if p.required else f"[{name}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        arguments = [(_argument_name(p), p.help or "") for p in params if p.param_type_name == "argument"]
        options = [r for p in params if p.param_type_name == "option" and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(p) -> str:
    return (p.metavar or p.name.upper()) + ("..." if p.nargs != 1 else "")


# Plain help (rich_markup_mode=None): rich markup ate bracketed text in help strings
# ("[default: ...]" left "inputs ."); defaults are shown by show_default instead.
app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, epilog=EXIT_CODES, rich_markup_mode=None,
                  help="vqzip: a learned image codec (hierarchical VQ-VAE + PixelCNN priors + range coding).")
train_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Train models (seeded, resumable).")
app.add_typer(train_app, name="train")


@cache
def err():
    """Rich's console on stderr, for progress bars, tables and a command's report; made when first
    asked for, so that a refusal (one line, `say`) imports no rich."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say(line: str) -> None:
    """One line on stderr as it is (no markup, no emoji codes): errors, warnings, interrupts.
    While a progress bar shows, rich has put a proxy on sys.stderr that prints it above the bar."""
    print(line, file=sys.stderr, flush=True)


def _models(ctx: typer.Context, folders: list[str]) -> list[str]:
    """--models DIR: model folders searched first (`vqzip.manifest.more_folders`) until the command ends."""
    if folders:
        from vqzip import manifest

        ctx.with_resource(manifest.more_folders([Path(f) for f in folders]))
    return folders


MODELS = typer.Option([], "--models", metavar="DIR", callback=_models, show_default=False,
                      help="A model folder to search before the others (repeatable); they add to the shipped models.")


def _version(value: bool):
    if value:
        print(f"vqzip {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    pass


@contextmanager
def reported(job=None, interrupts: bool = True):
    """Turn expected failures into one line on stderr and exit code 1, a UsageError into typer's
    bad-usage message (exit code 2), and warnings (vqzip's and Pillow's) into one line each;
    lines name the job's file unless they name it already. Ctrl-C prints "vqzip: interrupted"
    and exits 130, unless not `interrupts` (it then goes on up, for the one caller that says it)."""
    def named(message: str) -> str:
        if job is None or message.startswith((job.name, *([str(job.dst)] if job.dst else []))):
            return message
        return f"{job.name}: {message}"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, *_, **__: say(f"vqzip: warning: {named(str(message))}")
            yield
    except UsageError as e:
        raise typer.BadParameter(str(e), param_hint=e.option) from None
    except (VqzError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        msg = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
        say(f"vqzip: error: {named(msg)}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        if not interrupts:
            raise
        say("vqzip: interrupted")
        raise typer.Exit(INTERRUPTED)


def each_reported(items, job_of, do) -> int:
    """do(item) for every item, each failure one line (`reported`, naming job_of(item)'s file):
    the number that failed. An interrupt ends them all."""
    failed = 0
    for item in items:
        try:
            with reported(job_of(item)):
                do(item)
        except typer.Exit as e:
            if e.exit_code == INTERRUPTED:
                raise
            failed += 1
    return failed
