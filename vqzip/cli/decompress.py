"""`vqzip decompress`: .vqz files to images, through `vqzip.api`. Each file's container is parsed
once: by the check, for a file (its checksum and header before anything is decoded), or by the
work, for standard input; the decoder is handed what was parsed."""
from __future__ import annotations

from typing import Optional

import typer

from vqzip import runtime
from vqzip.cli import batch
from vqzip.cli.app import MODELS, Command, app, reported
from vqzip.errors import VqzError


@app.command(cls=Command)
def decompress(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, folders with -r, or - for stdin."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", show_default="each INPUT as .png",
                                         help="Output image (its suffix picks the format), or folder for several inputs."),
    stdout: bool = typer.Option(False, "-c", "--stdout", help="Write a PNG to standard output (one input)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Take the .vqz files in folders, and in their folders."),
    force: bool = batch.FORCE,
    quiet: bool = batch.QUIET,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also the model and coding scale of each file."),
    threads: Optional[int] = batch.THREADS,
    max_pixels: int = batch.MAX_PIXELS,
    preview: bool = typer.Option(False, "-p", "--preview", help="Decode the top level only: a quarter-size image, several "
                                 "times faster, written as INPUT.preview.png unless -o says otherwise."),
    jobs_n: Optional[int] = batch.JOBS,
    strip: bool = typer.Option(False, "--strip", help="Leave out the EXIF, ICC profile and XMP the file keeps."),
    output_quality: int = typer.Option(95, "--output-quality", metavar="N", min=0, max=100,
                                       help="Quality of a JPEG, WebP or AVIF output (Pillow's 0-100 scale; its own defaults are 75-80)."),
    model_dirs: list[str] = MODELS,
):
    """Decompress .vqz files to images (PNG unless -o names another format; inputs are kept)."""
    from vqzip import backends, container, jobs, outputs  # nothing heavy: every check runs before the codec is imported

    with reported():  # options first, then the files: all before any decoding
        runtime.set_threads(threads)
        backends.backend()  # a bad VQZIP_BACKEND (or the torch backend without torch) before any file
        suffix = outputs.PREVIEW_SUFFIX if preview else ".png"
        plan = jobs.plan(inputs, suffix, output=output, stdout=stdout, recursive=recursive, decompressing=True)
        for job in plan:
            if job.dst is not None and not job.into_folder:  # -o FILE: its suffix must name a format
                try:
                    outputs.output_format(job.dst)
                except VqzError as e:
                    raise typer.BadParameter(str(e), param_hint="-o/--output") from None
        batch.no_terminal(plan, force, "a PNG image", "compressed data")

    # job -> (file bytes, container.unpack of them), from the check to the work (which a forked
    # worker inherits): the files of a batch are held meanwhile, a few hundred KB each
    parsed: dict = {}

    def check(job):
        with batch.pixel_limit():
            batch.check_paths(job, force)
            if job.src is not None:  # standard input is read once, by the work
                data = batch.read(job)
                parsed[job] = data, container.unpack(data)
                if job.dst is not None:
                    h = parsed[job][1][0]
                    outputs.check_writable(h.mode, job.dst, _decoded_size(h, preview))

    def ready():  # the models the files name, loaded once (worker processes inherit them)
        from vqzip import zoo

        for hash8 in {unpacked[0].model_hash for _, unpacked in parsed.values()}:
            zoo.load_for_hash(hash8)

    def work(job):
        from vqzip import api

        with batch.pixel_limit():
            batch.check_paths(job, force)
            data, unpacked = parsed.pop(job, None) or _parse(batch.read(job))
            h = unpacked[0]
            runtime.for_image(h.width * h.height)
            image = api.decompress(data, preview=preview, max_pixels=max_pixels or None, parsed=unpacked, strip=strip)
            out = outputs.encode_image(image, ".png" if job.dst is None else job.dst.suffix,
                                   "<stdout>" if job.dst is None else str(job.dst), output_quality)
            batch.write(job, out, force)
        message = f"{image.width}x{image.height} {image.mode}"
        if verbose:
            message += f" [{h.model_name} at scale {h.scale}, {8 * len(data) / (h.width * h.height):.4f} bpp]"
        return len(data), len(out), h.width * h.height, message  # bpp of the file, preview or not

    batch.run(plan, check, work, quiet, "decompress", ready, jobs_n, threads)


def _decoded_size(header, preview: bool) -> tuple[int, int]:
    """The size a file decodes to; a preview's needs the file's model (`api.decoded_size`)."""
    if not preview:
        return header.width, header.height
    from vqzip import api

    return api.decoded_size(header, preview)


def _parse(data: bytes):
    from vqzip import container

    return data, container.unpack(data)
